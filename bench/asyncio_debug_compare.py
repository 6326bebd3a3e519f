"""loopspy against asyncio's debug mode, the tool the asyncio docs recommend for slow callbacks.

1. What each finds: tests/workloads/stalls.py (deliberate stalls with their true durations) run
   once with PYTHONASYNCIODEBUG=1 (asyncio logs "Executing ... took N seconds" for every
   callback >= loop.slow_callback_duration, 0.1 s by default) and once under
   `loopspy record --slow-callbacks --threshold 100`; both lists beside the truth.
2. What each costs: the callback-heavy bench/workloads/sleep0.py (100 tasks x await
   asyncio.sleep(0)) alone, with PYTHONASYNCIODEBUG=1, and under loopspy at 1 kHz, interleaved
   (A B C A B C ...), N rounds; median throughput ratio to the baseline with min-max.

usage: /usr/bin/python3 bench/asyncio_debug_compare.py [--python PATH] [--rounds N] [--seconds S]
Bounded: about rounds x 3 x (seconds + 1) s plus two short stall runs. Fails if a run fails.
"""
import argparse
import json
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
LOOPSPY = ROOT / "build" / "loopspy"


def run(cmd, env=None, timeout=120):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, timeout=timeout)
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(map(str, cmd))}\n{p.stderr[-2000:]}")
    return p


def findings(python, tmp):
    truth = tmp / "truth.json"
    env = {**os.environ, "PYTHONASYNCIODEBUG": "1"}
    debug = run([python, ROOT / "tests/workloads/stalls.py", "--truth", truth, "--rounds", 1], env=env)
    debug_hits = re.findall(r"Executing (<.*?>) took ([0-9.]+) seconds", debug.stderr)
    stalls = json.loads(truth.read_text())["stalls"]
    report = tmp / "report.json"
    run([LOOPSPY, "record", "--threshold", 100, "--report", report, "--", python,
         ROOT / "tests/workloads/stalls.py", "--truth", truth, "--rounds", 1])
    ours = json.loads(report.read_text())["slow_callbacks"]
    stalls2 = json.loads(truth.read_text())["stalls"]
    lines = ["### What each reports (threshold 100 ms)", "",
             "| truth (run A) | asyncio debug mode (run A) | truth (run B) | loopspy (run B) |", "|---|---|---|---|"]
    ours_sorted = sorted(ours, key=lambda c: c["start_ms"])
    for i in range(max(len(stalls), len(debug_hits), len(stalls2), len(ours_sorted))):
        def cell(seq, fmt):
            return fmt(seq[i]) if i < len(seq) else ""
        lines.append("| " + " | ".join([
            cell(stalls, lambda s: f"{s['coroutine']} {(s['end_ns'] - s['start_ns']) / 1e6:.1f} ms ({s['kind']})"),
            cell(debug_hits, lambda h: f"{h[0][:60]} {float(h[1]) * 1000:.0f} ms"),
            cell(stalls2, lambda s: f"{s['coroutine']} {(s['end_ns'] - s['start_ns']) / 1e6:.1f} ms ({s['kind']})"),
            cell(ours_sorted, lambda c: f"{c['callback'].split(' (')[0]} {c['duration_ms']:.1f} ms, on-CPU {c['on_cpu_ms']:.1f}, "
                                        f"blocked {c['off_cpu_ms']:.1f}" + (f" in {c['blocking'][0]['syscall']}" if c['blocking'] else "")),
        ]).replace("|  |", "| |") + " |")
    return lines


def throughput(python, mode, seconds, tmp):
    result = tmp / f"{mode}.json"
    ready = tmp / f"{mode}.ready"
    for f in (result, ready):
        f.unlink(missing_ok=True)
    env = {**os.environ}
    if mode == "debug":
        env["PYTHONASYNCIODEBUG"] = "1"
    cmd = [python, ROOT / "bench/workloads/sleep0.py", "--seconds", seconds, "--result", result, "--ready", ready]
    w = subprocess.Popen([str(c) for c in cmd], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rec = None
    if mode == "loopspy":
        while not ready.exists():
            if w.poll() is not None:
                sys.exit("workload exited early")
            time.sleep(0.01)
        rec = subprocess.Popen([str(LOOPSPY), "record", "-p", str(w.pid), "-r", "1000", "--no-status",
                                "--report", str(tmp / "r.json")], stderr=subprocess.DEVNULL)
    if w.wait(timeout=seconds + 60) != 0:
        sys.exit(f"{mode} run failed")
    if rec and rec.wait(timeout=60) != 0:
        sys.exit("loopspy failed")
    return json.loads(result.read_text())["ops_per_s"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--python", default="/root/.pyenv/versions/3.12.1/bin/python3")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = pathlib.Path(d)
        out = [f"# loopspy vs asyncio debug mode ({a.python})", ""] + findings(a.python, tmp) + [""]
        runs = {"alone": [], "debug": [], "loopspy": []}
        for _ in range(a.rounds):
            for mode in runs:
                runs[mode].append(throughput(a.python, mode, a.seconds, tmp))
        base = statistics.median(runs["alone"])
        out += ["### What each costs: callback-heavy workload (100 tasks x sleep(0)), throughput vs alone", "",
                "| run | median ops/s | ratio to alone, median [min-max] |", "|---|---:|---|"]
        for mode, vals in runs.items():
            ratios = [v / base for v in vals]
            out.append(f"| {mode} | {statistics.median(vals):,.0f} | {statistics.median(ratios):.3f} "
                       f"[{min(ratios):.3f}-{max(ratios):.3f}] |")
        print("\n".join(out))


if __name__ == "__main__":
    main()
