#!/usr/bin/env bash
# What sampling costs the target with no loopspy at all: Linux's own `perf record` (cpu-clock,
# no call chains) attached to the same CPU-bound workload at 1 kHz and 10 kHz, interleaved with
# runs alone (B P1 B P10 B per round). On this VM the timer interrupts alone cost what loopspy
# costs, which places the overhead below the BPF program. Needs `perf` (linux-perf).
# usage: bench/perf_floor.sh [ROUNDS]   (prints one line per round: throughput ratios)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
python="${LOOPSPY_PYTHONS_DIR:-$HOME/.cache/loopspy/pythons}/3.15/python"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
command -v perf >/dev/null || { echo "perf_floor: perf is not installed" >&2; exit 1; }

run() {  # run MODE -> prints the workload's ops/s
    rm -f "$tmp/ready" "$tmp/go"
    "$python" bench/workloads/cpu_ops.py --seconds 2 --warmup 0.3 --ready "$tmp/ready" --go "$tmp/go" >"$tmp/out.json" &
    local wl=$! perf_pid=""
    until [[ -s "$tmp/ready" ]]; do sleep 0.01; done
    case "$1" in
        1k) perf record -e cpu-clock -c 1000000 -p "$wl" -o "$tmp/p.data" -- sleep 3 >/dev/null 2>&1 & perf_pid=$! ;;
        10k) perf record -e cpu-clock -c 100000 -p "$wl" -o "$tmp/p.data" -- sleep 3 >/dev/null 2>&1 & perf_pid=$! ;;
    esac
    sleep 0.5
    touch "$tmp/go"
    wait "$wl"
    [[ -n "$perf_pid" ]] && wait "$perf_pid" || true
    /usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['ops_per_s'])" "$tmp/out.json"
}

for ((r = 1; r <= rounds; r++)); do
    a=$(run none); b=$(run 1k); c=$(run none); d=$(run 10k); e=$(run none)
    /usr/bin/python3 -c "import sys; a,b,c,d,e=map(float,sys.argv[1:6]); print(f'round {sys.argv[6]}: perf 1 kHz {b/((a+c)/2):.3f}, perf 10 kHz {d/((c+e)/2):.3f} of the throughput alone')" "$a" "$b" "$c" "$d" "$e" "$r"
done
