# The two commands of the README, over CMake:
#   make train   install what is missing, build, train on Fashion-MNIST on the default device
#   make test    install what is missing, build, run the whole test suite (ctest)
# Other targets: make build, make deps, make perf, make clean.

BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release

# Debian 12 packages the build, the tests and training need.
PACKAGES := cmake make gcc pkg-config ocl-icd-opencl-dev opencl-headers libclblast-dev \
	pocl-opencl-icd clinfo libcmocka-dev zlib1g-dev libjansson-dev libpng-dev \
	dataset-fashion-mnist

.PHONY: all deps build test train perf clean

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

test: build
	cd $(BUILD) && ctest --output-on-failure $(CTEST_FLAGS)

train: build
	$(BUILD)/clcnn train $(ARGS)

perf: build
	$(BUILD)/clcnn-perf --op conv2d_fwd --suite anchors --algo all --format csv

clean:
	rm -rf $(BUILD)
