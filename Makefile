# The two commands of the README, over CMake:
#   make train   install what is missing, build, train on Fashion-MNIST on the default device
#   make test    install what is missing, build, run the whole test suite (ctest)
# Other targets: make build, make deps, make perf, make clean,
#   make sweep           the full perf sweep (perf/sweep.sh) into perf/results/<date>-<device>
#   make test-sanitize   the whole suite under ASan + UBSan (+ LSan) in build-sanitize
#   make fuzz            the libFuzzer harnesses of tests/fuzz, FUZZ_SECONDS each
#   make test-oclgrind   the kernel-level tests on Oclgrind's simulated device (Debian's
#                        oclgrind, installed for this target): every memory access, barrier
#                        and data race checked, as a GPU (CLCNN_DEVICE_CLASS=gpu, also with
#                        a 256-item work-group limit and 48 KiB of local memory) and as a
#                        CPU; prints every kernel and define set launched and fails on any
#                        Oclgrind report or kernel of cl/ left unrun (tests/oclgrind/run.sh)

BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
# ctest runs one test more than there are cores: a test that waits (an MPI watchdog, a
# killed child) then leaves no core idle.
TEST_JOBS ?= $(shell echo $$(( $(JOBS) + 1 )))
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release

# Debian 12 packages the build, the tests and training need.
PACKAGES := cmake make gcc pkg-config ocl-icd-opencl-dev opencl-headers libclblast-dev \
	pocl-opencl-icd clinfo libcmocka-dev zlib1g-dev libjansson-dev libpng-dev \
	libprotobuf-c-dev protobuf-c-compiler libonnx-dev libonnx-testdata python3-onnx \
	libjpeg62-turbo-dev libopenmpi-dev openmpi-bin \
	dataset-fashion-mnist

.PHONY: all deps build test train perf sweep clean test-sanitize fuzz fuzz-deps test-oclgrind

all: build

# Install only what is missing; apt-get as root, else through sudo.
deps:
	@missing=""; for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing missing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# In parallel, one test per core (tests share build/cache safely: files are written under a
# temporary name and renamed); the costliest start first (COST in CMakeLists.txt).
test: build
	cd $(BUILD) && ctest --output-on-failure -j $(TEST_JOBS) $(CTEST_FLAGS)

train: build
	$(BUILD)/clcnn train $(ARGS)

perf: build
	$(BUILD)/clcnn-perf --op conv2d_fwd --suite anchors --algo all --format csv

# gnuplot draws the sweep's charts (perf/chart.sh); nothing else needs it.
sweep: build
	@$(MAKE) --no-print-directory deps PACKAGES=gnuplot-nox
	perf/sweep.sh -b $(BUILD) $(SWEEP_ARGS)

clean:
	rm -rf $(BUILD)

# ---- hardening: sanitizers and fuzzing ----------------------------------------------------
# The whole ctest suite built with -DCLCNN_SANITIZE=ON (ASan + UBSan, gcc, Debug).
# Leaks of the OpenCL driver are suppressed in tests/lsan.supp (each line says why);
# every other leak, overflow or undefined behaviour fails the run.
# Left out: install_check, which links consumers of the installed archive without
# -fsanitize (they cannot link a sanitized static library); `make test` runs it.
# A failing test is run once more (--repeat until-pass:2): LeakSanitizer's stop-the-world
# tracer sometimes crashes at process exit while the OpenCL driver's worker threads run
# ("Tracer caught signal 11 ... LeakSanitizer has encountered a fatal error", a known
# sanitizer flake, google/sanitizers#1353); a real failure fails both times.
SAN_BUILD ?= build-sanitize
SAN_EXCLUDE ?= ^install_check$$
SAN_ENV = ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp

test-sanitize: deps
	cmake -S . -B $(SAN_BUILD) -DCLCNN_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug \
	    -DCLCNN_TEST_POCL_CACHE=$(abspath $(BUILD))/pocl-cache
	cmake --build $(SAN_BUILD) -j $(JOBS)
	cd $(SAN_BUILD) && $(SAN_ENV) ctest --output-on-failure -j $(JOBS) --repeat until-pass:2 -E '$(SAN_EXCLUDE)' $(CTEST_FLAGS)

# libFuzzer harnesses (tests/fuzz, a separate CMake project in build-fuzz): each runs for
# FUZZ_SECONDS and prints its executions; tests/fuzz/run.sh runs them longer.
# clang and compiler-rt are installed for this target only.
FUZZ_SECONDS ?= 60
FUZZ_PACKAGES := clang-14 libclang-rt-14-dev

fuzz-deps:
	@$(MAKE) --no-print-directory deps PACKAGES="$(FUZZ_PACKAGES)"

fuzz: deps fuzz-deps
	tests/fuzz/run.sh --build build-fuzz --seconds $(FUZZ_SECONDS)

# ---- Oclgrind: the kernels on a simulated device ------------------------------------------
# Oclgrind's ICD goes into a private vendors folder (BUILD/oclgrind/vendors, OCL_ICD_VENDORS),
# so the system's drivers stay as they are; its binaries get their own cache
# (BUILD/oclgrind/cache). The tests and the runs each takes part in: tests/oclgrind/tests.txt.
test-oclgrind: build
	@$(MAKE) --no-print-directory deps PACKAGES=oclgrind
	tests/oclgrind/run.sh -b $(BUILD) -j $(JOBS)
