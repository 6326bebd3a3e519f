#!/usr/bin/env bash
# On a fresh machine: install what is missing, build, and profile the bundled demo service
# into a flame graph (demo.svg).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
build/loopspy record --rate 1000 --flamegraph demo.svg --collapsed demo.collapsed -- python3 demo/shop.py --seconds 5
echo "demo: open demo.svg in a browser"
