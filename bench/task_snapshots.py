#!/usr/bin/python3
"""What asyncio task snapshots cost a target with many live tasks.

The workload (bench/workloads/many_tasks.py) keeps 10,000 tasks suspended and 100 tasks looping
`await asyncio.sleep(0)`, and reports its own throughput over a timed window. Each round runs,
interleaved: no profiler (B), loopspy with task snapshots off (`--task-rate 0`, T0) and loopspy
with the default snapshots (`--task-rate 10`, T10), in the order B T0 T10 B T10 T0 ... Each
profiled throughput is divided by the mean of the baselines of its round. loopspy's summary line
gives the number of snapshots and their average cost; its own CPU time comes from rusage.

usage: task_snapshots.py [--rounds N] [--window S] [--python PATH] [--loopspy PATH] [--out FILE.md]
"""
import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKLOAD = os.path.join(REPO, "bench", "workloads", "many_tasks.py")


def run_workload(python, window, tmp, loopspy=None, task_rate=None):
    ready, go = os.path.join(tmp, "ready"), os.path.join(tmp, "go")
    for f in (ready, go):
        if os.path.exists(f):
            os.unlink(f)
    wl = subprocess.Popen([python, WORKLOAD, "--seconds", str(window), "--warmup", "1.0", "--ready", ready, "--go", go],
                          stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not os.path.exists(ready):
        if wl.poll() is not None or time.monotonic() > deadline:
            sys.exit("task_snapshots: the workload did not start")
        time.sleep(0.01)
    prof = None
    if loopspy:
        prof = subprocess.Popen([loopspy, "record", "--no-status", "-p", str(wl.pid), "-o", os.path.join(tmp, "r.lspy"),
                                 "--task-rate", str(task_rate)], stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)  # start-up (BPF load) and the first snapshot happen before the window
        if prof.poll() is not None:
            sys.exit("task_snapshots: loopspy exited early:\n" + prof.stderr.read())
    open(go, "w").write("go")
    out, _ = wl.communicate(timeout=window + 120)
    if wl.returncode != 0:
        sys.exit(f"task_snapshots: the workload failed ({wl.returncode})")
    result = json.loads(out.strip().splitlines()[-1])
    if prof:
        _, status, usage = os.wait4(prof.pid, 0)
        prof.returncode = os.waitstatus_to_exitcode(status)
        err = prof.stderr.read()
        if prof.returncode != 0 or "fully symbolized" not in err:
            sys.exit(f"task_snapshots: loopspy failed ({prof.returncode}):\n{err}")
        m = re.search(r"(\d+) task snapshots \(up to (\d+) tasks\), ([\d.]+) ms of CPU each", err)
        result["snapshots"] = int(m.group(1)) if m else 0
        result["tasks_seen"] = int(m.group(2)) if m else 0
        result["snapshot_ms"] = float(m.group(3)) if m else 0.0
        result["loopspy_cpu_s"] = usage.ru_utime + usage.ru_stime
        if task_rate and not m:
            sys.exit("task_snapshots: loopspy took no task snapshot:\n" + err)
    return result


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--window", type=float, default=5.0)
    p.add_argument("--python", default=os.path.expanduser("~/.cache/loopspy/pythons/3.14/python"))
    p.add_argument("--loopspy", default=os.path.join(REPO, "build", "loopspy"))
    p.add_argument("--out", default=os.path.join(REPO, "bench", "results", "task_snapshots.md"))
    a = p.parse_args()
    ratios = {"T0": [], "T10": []}
    rows = {"T0": [], "T10": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.rounds):
            order = ["B", "T0", "T10", "B"] if r % 2 == 0 else ["B", "T10", "T0", "B"]
            base, prof = [], {}
            for what in order:
                if what == "B":
                    base.append(run_workload(a.python, a.window, tmp)["ops_per_s"])
                else:
                    prof[what] = run_workload(a.python, a.window, tmp, a.loopspy, 0 if what == "T0" else 10)
            b = statistics.mean(base)
            for k, res in prof.items():
                ratios[k].append(res["ops_per_s"] / b)
                rows[k].append(res)
            print(f"round {r + 1}: baseline {b:,.0f} ops/s, T0 {ratios['T0'][-1]:.3f}, T10 {ratios['T10'][-1]:.3f}",
                  file=sys.stderr)
    lines = ["# Task snapshots with 10,000 live tasks", "",
             f"- command: `bench/task_snapshots.py --rounds {a.rounds} --window {a.window}`",
             f"- date: {time.strftime('%Y-%m-%dT%H:%M:%S%z')}; target: `{a.python}`",
             f"- {a.rounds} rounds, each B T0 T10 B (or B T10 T0 B); ratio = throughput / mean of the round's baselines", "",
             "| loopspy | throughput / baseline, median [min-max] | snapshots in the run | tasks seen | ms per snapshot | loopspy CPU s |",
             "|---|---|---:|---:|---:|---:|"]
    for k, label in (("T0", "`--task-rate 0`"), ("T10", "`--task-rate 10` (default)")):
        rs = ratios[k]
        res = rows[k]
        lines.append(f"| {label} | {statistics.median(rs):.3f} [{min(rs):.3f}-{max(rs):.3f}] | "
                     f"{statistics.median(x.get('snapshots', 0) for x in res):.0f} | "
                     f"{max(x.get('tasks_seen', 0) for x in res)} | "
                     f"{statistics.median(x.get('snapshot_ms', 0) for x in res):.1f} | "
                     f"{statistics.median(x['loopspy_cpu_s'] for x in res):.2f} |")
    text = "\n".join(lines) + "\n"
    with open(a.out, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
