#!/usr/bin/env bash
# Installs what loopspy needs to build (and, with --test, to run its tests) on Debian 12.
# Idempotent: packages already present are not fetched again.
set -euo pipefail

packages=(cmake g++ clang llvm bpftool libbpf-dev libelf-dev zlib1g-dev libcli11-dev doctest-dev
          nlohmann-json3-dev pkg-config python3)
if [[ "${1:-}" == "--test" ]]; then
    packages+=(python3-pytest python3-aiohttp python3-uvloop)
fi

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    SUDO=""
    [[ $(id -u) -eq 0 ]] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [[ "${1:-}" == "--test" ]]; then
    "$(dirname "$0")/fetch-sid-pythons.sh"
fi
