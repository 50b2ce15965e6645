# SPDX-License-Identifier: GPL-2.0-or-later
#
# nvstore: an overlay on QEMU 10.0.2.  See README.md.

.PHONY: all deps fetch assemble build clang check test demo patches \
	checkpatch fuzz clean distclean

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

# Fuzz the nvstore directory decoder (RUNS executions)
RUNS ?= 1000000
fuzz: build
	project/fuzz.sh $(RUNS)

# The overlay as a git patch series against pristine QEMU (build/patches).
patches: assemble
	project/export-patches.sh --check

# Removes the build tree; the downloaded tarball stays in the cache
# (~/.cache/nvstore), and so does ccache's cache.
clean:
	rm -rf build

distclean: clean
	rm -rf "$${NVSTORE_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/nvstore}"
