# Tollgate developer tasks. Envoy is installed project-locally into .tools/envoy/
# (git-ignored) from the version pinned in envoy/VERSION; redis-server (for the shared quota store's
# tests) into .tools/redis/ from redis/VERSION.

ENVOY_BIN := $(CURDIR)/.tools/envoy/bin/envoy
REDIS_BIN := $(CURDIR)/.tools/redis/bin/redis-server

# Optional: make run CONFIG=path/to/tollgate.toml
CONFIG ?=

.PHONY: all envoy redis build run test lint bench fake-platform fuzz fuzz-tools

all: build

envoy:
	bash envoy/install.sh

redis:
	bash redis/install.sh

build:
	cargo build --release --bin tollgate

run: envoy build
	TOLLGATE_ENVOY_BIN="$(ENVOY_BIN)" ./target/release/tollgate run$(if $(CONFIG), --config "$(CONFIG)")

test: envoy redis
	TOLLGATE_ENVOY_BIN="$(ENVOY_BIN)" TOLLGATE_REDIS_BIN="$(REDIS_BIN)" cargo test --workspace --all-targets

# A fake WSO2 platform API (control plane) to try the control-plane link by hand.
fake-platform:
	cargo run -p tollgate-testkit --bin fake-platform-api

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

bench:
	cargo run --release -p tollgate-bench --bin xds-publish

# Dependency policy (deny.toml: licenses, bans, sources); installs cargo-deny under .tools/ once.
.PHONY: deny
deny:
	bash .ci/deny.sh

# Fuzzing (not part of `make test` or CI): every target in fuzz/ for FUZZ_SECONDS seconds each, on the
# nightly toolchain (libFuzzer needs its sanitizer flags). cargo-fuzz is installed project-locally into
# the git-ignored .tools/cargo-fuzz, and fuzz builds use their own target dir so they do not invalidate
# the main one. New corpus entries go to fuzz/runs/<target>/, crashes to fuzz/artifacts/<target>/
# (both git-ignored); every target runs, and make fails if any of them found something.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= document authz_check authz_wire archive timestamp
FUZZ_TOOLCHAIN ?= nightly
# Seconds one input may take before libFuzzer reports it as a hang (sanitizers slow everything down).
FUZZ_INPUT_TIMEOUT ?= 10
CARGO_FUZZ := $(CURDIR)/.tools/cargo-fuzz/bin/cargo-fuzz
FUZZ_TARGET_DIR := $(CURDIR)/.tools/fuzz-target

fuzz-tools: $(CARGO_FUZZ)

$(CARGO_FUZZ):
	cargo install cargo-fuzz --locked --root "$(CURDIR)/.tools/cargo-fuzz"

fuzz: $(CARGO_FUZZ)
	@failed=""; for t in $(FUZZ_TARGETS); do \
		echo "== fuzz $$t for $(FUZZ_SECONDS) s"; \
		mkdir -p "fuzz/runs/$$t" && \
		PATH="$(dir $(CARGO_FUZZ)):$$PATH" CARGO_TARGET_DIR="$(FUZZ_TARGET_DIR)" \
		cargo +$(FUZZ_TOOLCHAIN) fuzz run "$$t" "fuzz/runs/$$t" "fuzz/corpus/$$t" -- \
			-max_total_time=$(FUZZ_SECONDS) -timeout=$(FUZZ_INPUT_TIMEOUT) || failed="$$failed $$t"; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: failures in$$failed (inputs under fuzz/artifacts/)"; exit 1; fi
