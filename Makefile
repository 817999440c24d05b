# Tollgate developer tasks. Envoy is installed project-locally into .tools/envoy/
# (git-ignored) from the version pinned in envoy/VERSION.

ENVOY_BIN := $(CURDIR)/.tools/envoy/bin/envoy

# Optional: make run CONFIG=path/to/tollgate.toml
CONFIG ?=

.PHONY: all envoy build run test lint bench fake-platform

all: build

envoy:
	bash envoy/install.sh

build:
	cargo build --release --bin tollgate

run: envoy build
	TOLLGATE_ENVOY_BIN="$(ENVOY_BIN)" ./target/release/tollgate run$(if $(CONFIG), --config "$(CONFIG)")

test: envoy
	TOLLGATE_ENVOY_BIN="$(ENVOY_BIN)" cargo test --workspace --all-targets

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
