#!/usr/bin/env bash
# Fuzzes what reads untrusted input, each target for SECONDS (default 60):
#   fuzz_recording       the recording reader (seeds in tests/fuzz/corpus/, written by a unit test:
#                        LOOPSPY_FUZZ_CORPUS=tests/fuzz/corpus build/unit_tests -tc='*the fuzz seed corpus*')
#   fuzz_remote_readers  the symbolizer's reads of a target's memory (seeds in tests/fuzz/corpus-remote-readers/)
#   fuzz_command_line    the command line's parsing and routing (seeds in tests/fuzz/corpus-command-line/)
# Built with clang (libFuzzer, ASan, UBSan) in build-fuzz/. New inputs go to build-fuzz/corpus*/, a
# crash or hang to build-fuzz/crashes/ (reproduce with: build-fuzz/tests/fuzz/TARGET FILE).
# FUZZ_TARGETS="fuzz_recording ..." picks targets; FUZZ_RUNS=N runs each N inputs instead of SECONDS;
# FUZZ_SANITIZERS=fuzzer,undefined builds without ASan (in build-fuzz-fuzzer-undefined/), several
# times faster for runs of millions (the default is fuzzer,address,undefined).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]]; then
    echo "usage: scripts/fuzz.sh SECONDS" >&2
    exit 2
fi
targets="${FUZZ_TARGETS:-fuzz_recording fuzz_remote_readers fuzz_command_line}"
sanitizers="${FUZZ_SANITIZERS:-fuzzer,address,undefined}"
out=build-fuzz
if [[ "$sanitizers" != fuzzer,address,undefined ]]; then out="build-fuzz-${sanitizers//,/-}"; fi
cmake -S . -B "$out" -DLOOPSPY_FUZZ=ON -DLOOPSPY_FUZZ_SANITIZE="$sanitizers" -DCMAKE_C_COMPILER=clang \
      -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
# shellcheck disable=SC2086
cmake --build "$out" --target $targets -j"$(nproc)"
mkdir -p "$out/crashes"
for target in $targets; do
    case "$target" in
        fuzz_recording) seeds=tests/fuzz/corpus; max_len=65536 ;;
        fuzz_remote_readers) seeds=tests/fuzz/corpus-remote-readers; max_len=65536 ;;
        fuzz_command_line) seeds=tests/fuzz/corpus-command-line; max_len=1024 ;;
        *) echo "scripts/fuzz.sh: unknown target $target" >&2; exit 2 ;;
    esac
    corpus="$out/corpus-${target#fuzz_}"
    mkdir -p "$corpus"
    budget=(-max_total_time="$seconds")
    if [[ -n "${FUZZ_RUNS:-}" ]]; then budget=(-runs="$FUZZ_RUNS"); fi
    echo "fuzzing $target (${FUZZ_RUNS:-$seconds s})"
    log="$out/$target.log"
    status=0
    "$out/tests/fuzz/$target" "${budget[@]}" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$out/crashes/" "$corpus" "$seeds" >"$log" 2>&1 || status=$?
    # Its log without the line per new input.
    grep -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)' "$log" | tail -40
    if [[ $status -ne 0 ]]; then
        echo "scripts/fuzz.sh: $target failed (exit $status): see $log and $out/crashes/" >&2
        exit 1
    fi
done
