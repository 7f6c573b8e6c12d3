# Makefile - the two commands a newcomer needs: `make run` and `make test`.
#
# make run   installs missing Debian packages, builds, and serves on :3000 with a demo
# make test  checks formatting and the layering (tools/), builds with warnings as errors, runs
#            every test (ctest), then again under AddressSanitizer + UndefinedBehaviorSanitizer

DEB_PACKAGES := build-essential cmake pkg-config clang-format libmicrohttpd-dev libjansson-dev libjwt-dev \
                libsqlite3-dev libpq-dev libcurl4-openssl-dev libssl-dev libcmocka-dev libwslay-dev libjemalloc-dev sqlite3
DEB_TOOLS := dpkg-dev fakeroot
# the tests also build the .deb and check the unit with systemd-analyze
TEST_PACKAGES := chromium $(DEB_TOOLS) systemd
PORT ?= 3000
JOBS ?= $(shell nproc)

PREFIX ?= /usr/local
DESTDIR ?=

.PHONY: all deps test-deps deb-deps format-check layers-check build build-asan test test-plain test-asan run e2e-deps bench fuzz fuzz-smoke clean format install deb

all: build

# Installs only what is missing, so that a second run is instant and needs no root.
deps test-deps deb-deps: PACKAGES = $(if $(filter test-deps,$@),$(TEST_PACKAGES),$(if $(filter deb-deps,$@),$(DEB_TOOLS),$(DEB_PACKAGES)))
deps test-deps deb-deps:
	@missing=""; for p in $(PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	@[ $@ != test-deps ] || command -v node >/dev/null || { echo "node (>= 20) is needed for the end-to-end tests"; exit 1; }

build/Makefile:
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: build/Makefile
	cmake --build build -j $(JOBS)

build-asan/Makefile:
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTASSA_SANITIZE=ON

build-asan: build-asan/Makefile
	cmake --build build-asan -j $(JOBS)

tests/e2e/node_modules: tests/e2e/package.json tests/e2e/package-lock.json
	cd tests/e2e && npm ci --no-audit --no-fund
	@touch $@

e2e-deps: tests/e2e/node_modules

test-plain: build e2e-deps
	cd build && ctest --output-on-failure -j $(JOBS)

test-asan: build-asan e2e-deps
	cd build-asan && ctest --output-on-failure -j $(JOBS)

test: deps test-deps format-check layers-check test-plain test-asan

# Quiet: what deps installs, one line, then the demo's URLs (warnings and errors still show).
# Only the tassa target is built; a failed build prints its output.
run: deps
	@echo "building build/tassa"
	@out=$$( { [ -f build/Makefile ] || cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo; } 2>&1 && \
	  cmake --build build --target tassa -j $(JOBS) 2>&1 ) || { echo "$$out"; exit 1; }
	@TASSA_LOG_LEVEL=warn ./build/tassa serve --port $(PORT) --demo --quiet

# Installs the binary, tassa.1, the systemd unit and /etc/tassa/tassa.env (kept if present)
# under $(DESTDIR)$(PREFIX); e.g. `sudo make install`, or `make install DESTDIR=/tmp/stage`.
install: build/Makefile
	cmake -S . -B build -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	cmake --build build --target tassa tassa_docs -j $(JOBS)
	DESTDIR=$(DESTDIR) cmake --install build

# dist/tassa_<version>_<arch>.deb with Debian's tools (dpkg-shlibdeps, dpkg-deb, fakeroot):
# the binary, tassa.1, the unit and /etc/tassa/tassa.env as a conffile (kept on upgrade).
deb: deps deb-deps build
	packaging/build-deb.sh build dist

bench: build
	./bench/run.sh

fuzz:
	cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DTASSA_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug
	cmake --build build-fuzz -j $(JOBS)

# Runs every fuzz target for FUZZ_SECONDS over its seed corpus (fuzz/corpus/<target>, read
# only: new inputs go to a temporary folder) and fails on the first crash, leak, UB or broken
# invariant; the reproducer is left in build-fuzz/artifacts/. See fuzz/README.md.
FUZZ_SECONDS ?= 20
# A fixed seed: every run tries the same inputs in the same order, so a red smoke is a real
# finding to reproduce, not a roll of the dice. FUZZ_SEED=0 lets libFuzzer pick one.
FUZZ_SEED ?= 1
fuzz-smoke: fuzz
	@mkdir -p build-fuzz/artifacts; failed=""; \
	for src in fuzz/fuzz_*.c; do \
	  t=$$(basename $$src .c); name=$${t#fuzz_}; work=$$(mktemp -d); \
	  echo "fuzz-smoke: $$t ($(FUZZ_SECONDS) s)"; \
	  if ! ./build-fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -seed=$(FUZZ_SEED) -timeout=30 -rss_limit_mb=4096 \
	      -print_final_stats=1 -artifact_prefix=build-fuzz/artifacts/$$name- \
	      $$work fuzz/corpus/$$name > build-fuzz/$$t.log 2>&1; then \
	    failed="$$failed $$t"; tail -n 40 build-fuzz/$$t.log; fi; \
	  grep -h "stat::number_of_executed_units" build-fuzz/$$t.log || true; \
	  rm -rf $$work; done; \
	if [ -n "$$failed" ]; then echo "fuzz-smoke FAILED:$$failed"; exit 1; fi; echo "fuzz-smoke ok"

C_FILES = $$(git ls-files 'src/*.c' 'src/*.h' 'tests/unit/*.c' 'fuzz/*.c')

format:
	clang-format -i $(C_FILES)

# Fails when a C file is not formatted as .clang-format says (STYLE.md rule 12).
format-check:
	@if command -v clang-format >/dev/null; then clang-format --dry-run --Werror $(C_FILES) && echo "format ok"; \
	else echo "clang-format not installed: format not checked"; fi

# Fails when an include runs up a layer or forms a circle (src/LAYERS), or when README.md's
# Layout block does not list the folders truthfully.
layers-check:
	@tools/check_layers.sh src
	@tools/check_readme_layout.sh .

clean:
	rm -rf build build-asan build-fuzz dist
