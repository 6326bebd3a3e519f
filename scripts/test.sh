#!/usr/bin/env bash
# Runs every test: installs what is missing (packages and the Debian-sid test interpreters),
# builds, runs the unit tests and the integration tests through ctest, then the unit tests and an
# integration subset under ASan+UBSan (scripts/sanitize.sh), then fuzzes the recording reader, the
# symbolizer's remote readers and the command line, each for a bounded time
# (LOOPSPY_FUZZ_SECONDS, default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
scripts/build.sh
rm -f build/interpreters-covered.txt
ctest --test-dir build --output-on-failure
# Interpreters covered and every skipped test, with its reason (shown even when all pass).
cat build/interpreters-covered.txt
scripts/sanitize.sh
scripts/fuzz.sh "${LOOPSPY_FUZZ_SECONDS:-60}"
