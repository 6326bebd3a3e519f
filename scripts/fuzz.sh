#!/usr/bin/env bash
# Fuzzes the recording reader: builds tests/fuzz/fuzz_recording with clang (libFuzzer, ASan,
# UBSan) in build-fuzz/ and runs it for SECONDS (default 60) starting from the committed seeds
# in tests/fuzz/corpus/. New inputs go to build-fuzz/corpus/, a crash or hang to
# build-fuzz/crashes/ (reproduce with: build-fuzz/tests/fuzz/fuzz_recording FILE).
#
# The seeds are written by a unit test:
#   LOOPSPY_FUZZ_CORPUS=tests/fuzz/corpus build/unit_tests -tc='*the fuzz seed corpus*'
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]]; then
    echo "usage: scripts/fuzz.sh SECONDS" >&2
    exit 2
fi
cmake -S . -B build-fuzz -DLOOPSPY_FUZZ=ON -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz --target fuzz_recording -j"$(nproc)"
mkdir -p build-fuzz/corpus build-fuzz/crashes
exec build-fuzz/tests/fuzz/fuzz_recording -max_total_time="$seconds" -max_len=65536 -timeout=10 \
     -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=build-fuzz/crashes/ \
     build-fuzz/corpus tests/fuzz/corpus
