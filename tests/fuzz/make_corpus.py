#!/usr/bin/env python3
"""Write the hand-made seed inputs of tests/fuzz/corpus/<harness>/ (small valid and
invalid files). The safetensors seeds that hold real checkpoints come from the harness
itself (CLCNN_FUZZ_WRITE_SEEDS, see run.sh --seeds). Deterministic; run from anywhere:
    python3 tests/fuzz/make_corpus.py"""
import gzip
import json
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def put(harness, name, data):
    d = os.path.join(CORPUS, harness)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def gz(data):
    return gzip.compress(data, mtime=0)


# ---- IDX -----------------------------------------------------------------------------
def idx(ndims, dims, payload, magic_type=0x08):
    return bytes([0, 0, magic_type, ndims]) + b"".join(struct.pack(">I", d) for d in dims) + payload


labels = idx(1, [5], bytes([0, 1, 2, 9, 3]))
images = idx(3, [5, 3, 2], bytes(range(30)))
put("idx", "labels.idx1", labels)
put("idx", "images.idx3", images)
put("idx", "labels.idx1.gz", gz(labels))
put("idx", "images.idx3.gz", gz(images))
# pairs for the split: 2 bytes (offset of the split) + images + labels
put("idx", "pair-plain", struct.pack(">H", len(images)) + images + labels)
put("idx", "pair-gzip", struct.pack(">H", len(gz(images))) + gz(images) + gz(labels))
put("idx", "bad-magic", idx(3, [1, 1, 1], b"\0", magic_type=0x0d))
put("idx", "truncated", images[:-7])
put("idx", "trailing", labels + b"\x00\x00")
put("idx", "huge-count", idx(3, [0x7FFFFFFF, 28, 28], b""))
put("idx", "huge-plane", idx(3, [1, 65536, 65536], b""))
put("idx", "label-range", struct.pack(">H", len(images)) + images + idx(1, [5], bytes([0, 1, 2, 10, 255])))
put("idx", "gzip-truncated", gz(images)[:-6])
put("idx", "gzip-bomb-header", gz(idx(3, [60000, 28, 28], bytes(1000))))

# ---- safetensors (hand-made invalid ones; valid ones come from the harness) ------------
def safetensors(header, data=b""):
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


put("safetensors", "empty-header", safetensors({}))
put("safetensors", "metadata-only", safetensors({"__metadata__": {"format": "pt"}}))
put("safetensors", "len-too-big", struct.pack("<Q", 1 << 40) + b"{}")
put("safetensors", "not-json", struct.pack("<Q", 8) + b"{not js}")
put("safetensors", "overlap", safetensors({
    "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
    "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, bytes(12)))
put("safetensors", "bad-dtype", safetensors({
    "layers.0.weight": {"dtype": "Q4", "shape": [1], "data_offsets": [0, 4]}}, bytes(4)))
put("safetensors", "shape-overflow", safetensors({
    "layers.0.weight": {"dtype": "F32", "shape": [4294967296, 4294967296, 16],
                        "data_offsets": [0, 0]}}))
put("safetensors", "past-end", safetensors({
    "layers.0.weight": {"dtype": "F32", "shape": [18], "data_offsets": [0, 72]}}, bytes(8)))

# ---- device selectors (first byte: bit 0 set = through $CLCNN_DEVICE) ---------------------
for i, sel in enumerate(["0", "1", "cpu", "gpu", "accelerator", "pocl", "POCL", "intel",
                         "99999999999999999999999", "-1", "", " ", "portable computing",
                         "pthread"]):
    put("selector", "sel-%02d" % i, b"\x00" + sel.encode())
    put("selector", "env-%02d" % i, b"\x01" + sel.encode())

# ---- images ---------------------------------------------------------------------------------
def png(w, h, color_type, bit_depth, raw_rows, palette=None, trns=None):
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0))
    if palette:
        out += chunk(b"PLTE", palette)
    if trns:
        out += chunk(b"tRNS", trns)
    out += chunk(b"IDAT", zlib.compress(b"".join(b"\x00" + r for r in raw_rows)))
    return out + chunk(b"IEND", b"")


put("image", "gray8.png", png(3, 2, 0, 8, [bytes([0, 128, 255]), bytes([1, 2, 3])]))
put("image", "gray1.png", png(8, 1, 0, 1, [bytes([0xA5])]))
put("image", "gray16.png", png(2, 2, 0, 16, [bytes(4), bytes([255] * 4)]))
put("image", "rgb.png", png(2, 1, 2, 8, [bytes([255, 0, 0, 0, 255, 0])]))
put("image", "rgba.png", png(1, 1, 6, 8, [bytes([10, 20, 30, 40])]))
put("image", "palette.png", png(2, 1, 3, 8, [bytes([0, 1])], palette=bytes([0, 0, 0, 255, 255, 255]), trns=b"\x80"))
put("image", "huge-dims.png", png(16384, 16384, 0, 8, [b""])[:33] + b"\x00" * 12)
put("image", "p5.pgm", b"P5\n# comment\n3 2\n255\n" + bytes([0, 100, 255, 1, 2, 3]))
put("image", "p5-16bit.pgm", b"P5 2 1 65535 " + bytes([0, 0, 255, 255]))
put("image", "p2.pgm", b"P2\n2 2\n15\n0 5\n10 15\n")
put("image", "p2-over-maxval.pgm", b"P2\n2 1\n3\n4 9\n")
put("image", "p5-truncated.pgm", b"P5\n4 4\n255\n" + bytes(5))
put("image", "p5-huge.pgm", b"P5\n16384 16384\n255\n")


def jpeg(mode, w, h, **save):
    """A small JPEG through Pillow (Debian's python3-pil): a gradient with some texture."""
    import io
    from PIL import Image
    img = Image.new("RGB", (w, h))
    img.putdata([(255 * x // (w - 1), 255 * y // (h - 1), (37 * x * y) % 256)
                 for y in range(h) for x in range(w)])
    out = io.BytesIO()
    img.convert(mode).save(out, "JPEG", **save)
    return out.getvalue()


def jpeg_sof_size(data, w, h):
    """The same file with its frame header declaring w x h."""
    i = data.index(b"\xff\xc0")
    return data[:i + 5] + struct.pack(">HH", h, w) + data[i + 9:]


rgb_jpg = jpeg("RGB", 16, 12, quality=90)
put("image", "rgb.jpg", rgb_jpg)
put("image", "rgb444.jpg", jpeg("RGB", 9, 7, quality=95, subsampling=0))
put("image", "gray.jpg", jpeg("L", 8, 8, quality=75))
put("image", "progressive.jpg", jpeg("RGB", 24, 17, quality=80, progressive=True))
put("image", "cmyk.jpg", jpeg("CMYK", 8, 8))
put("image", "truncated.jpg", rgb_jpg[:len(rgb_jpg) // 2])
put("image", "huge-dims.jpg", jpeg_sof_size(rgb_jpg, 8000, 8000))

# ---- tuning files ---------------------------------------------------------------------------
xgemm = {"GEMMK": 0, "KREG": 1, "KWG": 16, "KWI": 2, "MDIMA": 8, "MDIMC": 8, "MWG": 32,
         "NDIMB": 8, "NDIMC": 8, "NWG": 64, "SA": 0, "SB": 0, "STRM": 0, "STRN": 0,
         "VWM": 4, "VWN": 1}
direct = {"KWID": 2, "MDIMAD": 8, "MDIMCD": 8, "NDIMBD": 8, "NDIMCD": 8, "PADA": 1,
          "PADB": 1, "VWMD": 1, "VWND": 1, "WGD": 32}
base = {"format": "clcnn-tune", "version": 1, "device": "pthread-cpu", "platform": "pocl",
        "driver": "3.1", "clblast": {"Xgemm": xgemm, "XgemmDirect": direct,
                                     "GemmRoutine": {"XGEMM_MIN_INDIRECT_SIZE": 384}},
        "gemm_tuning": {"before_gflops": 10.5, "after_gflops": 20.25, "seconds": 12, "tried": 40}}
put("tune", "valid.json", json.dumps(base, indent=1))
bad = json.loads(json.dumps(base)); bad["clblast"]["Xgemm"]["KWI"] = 0
put("tune", "zero-kwi.json", json.dumps(bad))
bad = json.loads(json.dumps(base)); bad["clblast"]["XgemmDirect"]["MDIMAD"] = 0
put("tune", "zero-mdimad.json", json.dumps(bad))
bad = json.loads(json.dumps(base)); bad["clblast"]["Xgemm"]["GEMMK"] = 1
put("tune", "gemmk1.json", json.dumps(bad))
bad = json.loads(json.dumps(base)); bad["version"] = 2
put("tune", "version2.json", json.dumps(bad))
put("tune", "not-object.json", "[1, 2, 3]")
put("tune", "truncated.json", json.dumps(base)[:80])
put("tune", "huge-int.json", json.dumps(base).replace('"KWG": 16', '"KWG": 99999999999999999999'))
# convolution winners (lib/tune/conv_db.c)
conv = {"pass": "forward", "n": 16, "c": 64, "h": 56, "w": 56, "k": 64, "r": 3, "s": 3,
        "stride": [1, 1], "pad": [1, 1], "dilation": [1, 1], "groups": 1, "algo": "winograd",
        "ms": 21.4, "times_ms": {"direct": 60.2, "gemm": 75.0, "winograd": 21.4}, "runs": 3}
good = json.loads(json.dumps(base)); good["conv2d"] = [conv, dict(conv, **{"pass": "backward_filter", "algo": "direct"})]
put("tune", "conv-valid.json", json.dumps(good, indent=1))
bad = json.loads(json.dumps(base)); bad["conv2d"] = [dict(conv, algo="fastest")]
put("tune", "conv-bad-algo.json", json.dumps(bad))
bad = json.loads(json.dumps(base)); bad["conv2d"] = [conv, dict(conv, algo="direct")]
put("tune", "conv-duplicate.json", json.dumps(bad))
bad = json.loads(json.dumps(base)); bad["conv2d"] = [dict(conv, stride=[0, 1])]
put("tune", "conv-zero-stride.json", json.dumps(bad))
bad = json.loads(json.dumps(base)); bad["conv2d"] = [dict(conv, h=1, w=1, pad=[0, 0])]
put("tune", "conv-empty-output.json", json.dumps(bad))
bad = json.loads(json.dumps(base)); bad["conv2d"] = [dict(conv, n=2147483647, c=2147483647)]
put("tune", "conv-huge.json", json.dumps(bad))
bad = json.loads(json.dumps(base)); bad["conv2d"] = {"forward": "winograd"}
put("tune", "conv-not-array.json", json.dumps(bad))
# kernel parameters of the winner ("params", "" = the algorithm's heuristic)
good = json.loads(json.dumps(base)); good["conv2d"] = [dict(conv, params="4 0 8 0 0"), dict(conv, **{"pass": "backward_filter", "algo": "direct", "params": ""})]
put("tune", "conv-params.json", json.dumps(good, indent=1))
bad = json.loads(json.dumps(base)); bad["conv2d"] = [dict(conv, params="8 4 " * 16)]
put("tune", "conv-params-long.json", json.dumps(bad))
