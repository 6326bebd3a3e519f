#!/usr/bin/env bash
# Runs the benchmark suite (bench/run_all.py) and writes BENCHMARKS.md; about 30 minutes, best on
# a quiet machine. `scripts/bench.sh --quick` is a ~2-minute smoke run of every part (results in
# bench/results/quick/). Installs what is missing (build packages, the Debian-sid 3.15
# interpreter that profiling.sampling needs) and builds build/loopspy first, unless
# --loopspy PATH names a binary to measure. Other options: bench/run_all.py --help.
set -euo pipefail
cd "$(dirname "$0")/.."
build=1
for arg in "$@"; do
    [[ "$arg" == --loopspy || "$arg" == --loopspy=* ]] && build=0
done
scripts/setup.sh
scripts/fetch-sid-pythons.sh
if ((build)); then
    scripts/build.sh
fi
export LOOPSPY_BENCH_COMMAND="scripts/bench.sh${*:+ $*}"
exec /usr/bin/python3 bench/run_all.py "$@"
