#!/usr/bin/env bash
# Installs what loopspy needs to build (and, with --test, to run its tests) on Debian 12.
# Idempotent: packages already present are not fetched again.
set -euo pipefail

packages=(cmake g++ clang llvm bpftool libbpf-dev libelf-dev zlib1g-dev libcli11-dev doctest-dev
          nlohmann-json3-dev pkg-config python3)
if [[ "${1:-}" == "--test" ]]; then
    # What the tests use: pytest and the servers' libraries under Debian's python3.11; xmllint
    # (flame-graph validity); clang's runtime for the fuzzer; tmux (a real terminal for the
    # status line) and strace (dump's ptrace use).
    # The viewers' checks: go tool pprof (golang-go), speedscope's schema (npm, below) checked
    # with python3-jsonschema, and headless chromium driven by puppeteer-core (npm, below);
    # man-db for the installed man page.
    packages+=(python3-pytest python3-aiohttp python3-uvloop python3.11 libxml2-utils libclang-rt-14-dev tmux strace gunicorn python3-uvicorn
               golang-go python3-jsonschema chromium man-db)
    # npm comes with this machine's nodejs; where it does not, Debian's.
    command -v npm >/dev/null || packages+=(npm)
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
    # speedscope (its file-format schema, and the viewer itself), where the tests look for it.
    npm_prefix="${LOOPSPY_NPM_PREFIX:-$HOME/.cache/loopspy-test/npm}"
    if [[ ! -d "$npm_prefix/node_modules/speedscope" ]]; then
        echo "setup: installing speedscope from npm into $npm_prefix"
        mkdir -p "$npm_prefix"
        npm install --silent --no-audit --no-fund --prefix "$npm_prefix" speedscope@1.25 >/dev/null
    fi
    # puppeteer-core drives Debian's chromium (it downloads no browser of its own).
    if [[ ! -d "$npm_prefix/node_modules/puppeteer-core" ]]; then
        echo "setup: installing puppeteer-core from npm into $npm_prefix"
        npm install --silent --no-audit --no-fund --prefix "$npm_prefix" puppeteer-core@22 >/dev/null
    fi
    # The pyenv interpreters come with this kind of machine's image; no registry reachable here
    # ships them, so they cannot be installed: name any that is missing, and fail.
    missing_py=()
    for v in 3.9.18 3.10.13 3.11.7 3.12.1 3.13.0; do
        [[ -x "/root/.pyenv/versions/$v/bin/python3" ]] || missing_py+=("/root/.pyenv/versions/$v/bin/python3")
    done
    if ((${#missing_py[@]})); then
        echo "setup: test interpreters missing (they come with the machine image): ${missing_py[*]}" >&2
        exit 1
    fi
fi
