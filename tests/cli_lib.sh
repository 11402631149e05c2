# Helpers of the command-line tests that train on Fashion-MNIST (onnx_export_cli.sh,
# onnx_finetune_cli.sh, safetensors_official.sh; sourced): $tag names the script in messages.

# cli_need_data: skip the test (exit 77, ctest's SKIP_RETURN_CODE) without Debian's
# dataset-fashion-mnist; sets $data to its folder
cli_need_data() {
    data=/usr/share/datasets/fashion-mnist
    if [ ! -f "$data/train-images-idx3-ubyte.gz" ]; then
        echo "$tag: skipped: $data not found (apt-get install dataset-fashion-mnist)"
        exit 77
    fi
}

# cli_tmp: a temporary folder in $tmp, removed when the script exits
cli_tmp() {
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
}

# fail MESSAGE...: print it under $tag and fail the test
fail() {
    echo "$tag: $*"
    exit 1
}
