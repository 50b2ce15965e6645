# SPDX-License-Identifier: GPL-2.0-or-later
#
# nvstore: an overlay on QEMU 10.0.2.  See README.md.

.PHONY: all deps fetch assemble build clang check test demo patches \
	series-steps checkpatch fuzz crash clean distclean

all: build

deps:
	project/deps.sh

fetch: deps
	project/fetch.sh

assemble: deps
	project/assemble.sh

build: assemble
	project/build.sh gcc

clang: assemble
	project/clang-check.sh

checkpatch: assemble
	project/checkpatch.sh

# Everything: set up, build, run every test; last line "N passed, N failed".
check test:
	project/test.sh

# The main job: a demonstration of nvstore.
demo: build
	project/demo.sh

# Fuzz the nvstore directory decoder, the driver and the UEFI variable
# stores (RUNS executions of each target; FUZZ_TARGETS: one of them)
RUNS ?= 500000
FUZZ_TARGETS ?= nvstore-dir-fuzz nvstore-fuzz edk2-varstore-fuzz
fuzz: build
	project/fuzz.sh $(RUNS) $(FUZZ_TARGETS)

# The crash harness, long mode: POINTS writers killed with SIGKILL,
# POINTS power cuts on a raw image and POINTS through qcow2 (make check
# runs 1000, 1000 and 500); the power cuts print their seed,
# NVSTORE_POWERCUT_SEED=N replays them
POINTS ?= 10000
crash: build
	project/build.sh gcc tests/unit/test-nvstore
	NVSTORE_CRASH_ITERATIONS=$(POINTS) NVSTORE_POWERCUT_POINTS=$(POINTS) \
	NVSTORE_POWERCUT_QCOW2_POINTS=$(POINTS) \
	G_TEST_SRCDIR=$(CURDIR)/build/src/tests/unit \
	    build/gcc/tests/unit/test-nvstore -m slow --tap \
	    -p /nvstore/crash-loop -p /nvstore/power-cut \
	    -p /nvstore/power-cut-qcow2 >build/crash.tap 2>&1; \
	rc=$$?; grep -Ev '^(# point|Leaked|Repairing) ' build/crash.tap; \
	echo "(every crash point: build/crash.tap)"; exit $$rc

# The overlay as a git patch series against pristine QEMU (build/patches).
patches: assemble
	project/export-patches.sh --check

# Every patch of the series applied in turn: each step built (the whole
# tree) and its own tests run (the "Tests:" lines of project/series), in
# build/steps; FIRST and LAST limit it to those patches.  Long (the tree
# rebuilt once per patch); not part of "make check".
FIRST ?= 1
LAST ?= 1000
series-steps: assemble
	project/series-steps.sh $(FIRST) $(LAST)

# Removes the build tree; the downloaded tarball stays in the cache
# (~/.cache/nvstore), and so does ccache's cache.
clean:
	rm -rf build

distclean: clean
	rm -rf "$${NVSTORE_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/nvstore}"
