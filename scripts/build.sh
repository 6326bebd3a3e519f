#!/usr/bin/env bash
# Configures and builds loopspy into build/ (the binary is build/loopspy).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
