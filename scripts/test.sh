#!/usr/bin/env bash
# Runs every test: installs what is missing (packages and the Debian-sid test interpreters),
# builds, then runs the unit tests and the integration tests through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
scripts/build.sh
ctest --test-dir build --output-on-failure
