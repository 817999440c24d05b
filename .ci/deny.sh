#!/usr/bin/env bash
# Dependency policy check (deny.toml): licenses, banned crates and allowed sources, with
# cargo-deny installed project-locally under .tools/cargo-deny/ (git-ignored) the first time.
#
#   bash .ci/deny.sh                 install cargo-deny if needed (compiles for several minutes),
#                                    then check
#   bash .ci/deny.sh --if-installed  check only when cargo-deny is already there (CI), else say so
#
# The RustSec advisory check is not run here: its database is fetched from the network. With a
# network, run `.tools/cargo-deny/bin/cargo-deny check advisories` (see SECURITY.md).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo_root}"

version="0.20.2"
root="${repo_root}/.tools/cargo-deny"
bin="${root}/bin/cargo-deny"

if ! "${bin}" --version 2>/dev/null | grep -q " ${version}\$"; then
    if [[ "${1:-}" == "--if-installed" ]]; then
        echo "cargo-deny ${version} is not installed under .tools/: dependency check skipped (run: make deny)"
        exit 0
    fi
    cargo install cargo-deny --locked --version "${version}" --root "${root}"
fi

"${bin}" --locked check --hide-inclusion-graph licenses bans sources
