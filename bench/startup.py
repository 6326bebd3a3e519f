#!/usr/bin/python3
"""Start-up (issue item 6): from launching `loopspy record -p PID` to its first sample.

The target is bench/workloads/cpu_ops.py on Python 3.15, always on-CPU, so once sampling is live
the next sample follows within one period (1 ms at 1 kHz). The harness reads CLOCK_MONOTONIC
just before it spawns `loopspy record -p PID -d 1 -r 1000`; the recording stamps every sample
with the same clock (docs/recording-format.md), so the first on-CPU sample of the target's loop
thread in the recording, minus the launch time, is the time to the first sample: it includes
exec, the BPF load and attach, and finding the interpreter, as a user waits for them. Also shown:
launch to loopspy's perf events appearing in /proc/PID/fd (polled every ms), to the recording's
start (ProfileInfo::start, when the recorder's loop begins) and to the first fully symbolized
sample.

Beside it, `python -m profiling.sampling attach -r 1000 -d 1 PID` on the same target: launch to
the start of its sampling loop, which takes its first sample at once (lib/sampling_launcher.py
runs it unchanged and writes the time as the loop starts).

usage: startup.py [--quick] [--repeats N] [--loopspy PATH] [--python PATH]
"""
import itertools
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import env, lspy, procs, quiet, stats  # noqa: E402
from lib.profilers import LoopspySpec, SamplingSpec  # noqa: E402
from lib.workload import WorkloadRun  # noqa: E402

PART = "startup"
TARGET_MS = 200


def add_args(ap):
    env.add_common_args(ap, quiet_budget_full=15.0, quiet_budget_quick=2.0)
    ap.add_argument("--repeats", type=int, help="default 10, quick 3")
    ap.add_argument("--rate", type=int, default=1000)


# A fresh tag for every attempt, retries included: a repeated run must not find the ready file,
# recording or output of the attempt before it.
_attempts = itertools.count(1)


def once_sampling(cfg, tmp, i):
    tag = f"p{i}-{next(_attempts)}"
    w = WorkloadRun(cfg.python, "cpu_ops", tmp, tag, seconds=30, warmup=0.3, go_file=False)
    ps = None
    try:
        w.wait_ready()
        meter = quiet.LoadMeter()
        meter.start([w.pid])
        ps = SamplingSpec(cfg.python, cfg.rate).start(w.pid, tmp, tag, 1)
        meter.add(ps.pid)  # the profiler under test is not outside load
        ps.wait_attached(time.monotonic() + 30)
        first = ps.sampling_started_ns()
        p = ps.finish(time.monotonic() + 30)
        load = meter.stop({ps.pid: p["cpu_s"] * 1e9})
    finally:
        w.kill()
        if ps:
            ps.kill()
    return {"first_sample_ms": (first - ps.t_spawn_ns) / 1e6, "cpu_s": p["cpu_s"], **load}


def once(cfg, binary, tmp, i):
    tag = f"s{i}-{next(_attempts)}"
    w = WorkloadRun(cfg.python, "cpu_ops", tmp, tag, seconds=30, warmup=0.3, go_file=False)
    lp = None
    try:
        w.wait_ready()
        meter = quiet.LoadMeter()
        meter.start([w.pid])
        lp = LoopspySpec(binary, cfg.rate).start(w.pid, tmp, tag, 1.0)
        meter.add(lp.pid)  # the profiler under test is not outside load
        t_launch = lp.t_spawn_ns
        lp.wait_attached(time.monotonic() + 30)
        t_fds = time.monotonic_ns()
        p = lp.finish(time.monotonic() + 30)
        load = meter.stop({lp.pid: p["cpu_s"] * 1e9})
    finally:
        w.kill()
        if lp:
            lp.kill()
    rec = lspy.read(p["recording"])
    mine = rec.on_cpu(tid=w.pid)
    if not mine:
        raise procs.BenchError("no sample of the target's loop thread in the recording")
    first = min(s[2] for s in mine)
    first_sym = min((s[2] for s in mine if rec.fully_symbolized(s)), default=None)
    ms = lambda t: (t - t_launch) / 1e6  # noqa: E731
    return {"perf_fds_ms": ms(t_fds), "recording_start_ms": ms(rec.meta["start_ns"]), "first_sample_ms": ms(first),
            "first_symbolized_ms": ms(first_sym) if first_sym else None, "cpu_s": p["cpu_s"], **load}


def run(cfg, tmp, binary, facts):
    cfg.repeats = cfg.repeats or (3 if cfg.quick else 10)
    py = env.python_facts(cfg.python, need_sampling=True)
    result = env.base_result(cfg, facts, py)
    result["settings"] = {"repeats": cfg.repeats, "rate": cfg.rate, "workload": "cpu_ops"}
    gate = quiet.QuietGate(threshold=cfg.quiet, budget_s=cfg.quiet_budget)
    runs, ps_runs = [], []
    for i in range(cfg.repeats):
        r = gate.run(lambda: once(cfg, binary, tmp, i))
        runs.append(r)
        p = gate.run(lambda: once_sampling(cfg, tmp, i))
        ps_runs.append(p)
        env.progress(PART, f"{i + 1}/{cfg.repeats}: loopspy's first sample {r['first_sample_ms']:.1f} ms after launch "
                     f"(perf events {r['perf_fds_ms']:.1f} ms); profiling.sampling {p['first_sample_ms']:.1f} ms")
    result["runs"] = runs
    result["sampling_runs"] = ps_runs
    result["quiet"] = gate.facts()
    return result


def render(res):
    s, runs = res["settings"], res["runs"]
    f = lambda v: f"{v:.1f}"  # noqa: E731
    lines = [f"`loopspy record -p PID -r {s['rate']}` attached to bench/workloads/cpu_ops.py (always on-CPU) on "
             f"Python {res['python']['version']}, {s['repeats']} times; ms after the harness spawned loopspy.", "",
             "| event | ms after launch, median [min–max] |", "|---|---|",
             f"| perf events visible in /proc/PID/fd | {stats.cell([r['perf_fds_ms'] for r in runs], f)} |",
             f"| recording start (recorder loop begins) | {stats.cell([r['recording_start_ms'] for r in runs], f)} |",
             f"| **first sample** (its kernel timestamp) | {stats.cell([r['first_sample_ms'] for r in runs], f)} |",
             f"| first fully symbolized sample | "
             f"{stats.cell([r['first_symbolized_ms'] for r in runs if r['first_symbolized_ms'] is not None], f)} |",
             f"| profiling.sampling attach: its sampling loop starts (first sample) | "
             f"{stats.cell([r['first_sample_ms'] for r in res['sampling_runs']], f)} |",
             "", f"Noise: {res['quiet']['kept_disturbed']} of {res['quiet']['runs']} runs kept although other processes "
             f"used more than {res['quiet']['threshold_cores']} cores (median "
             f"{res['quiet']['foreign_cores_median']:.2f})."]
    med, worst = stats.median([r["first_sample_ms"] for r in runs]), max(r["first_sample_ms"] for r in runs)
    targets = [(f"first sample within {TARGET_MS} ms", worst <= TARGET_MS,
                f"median {med:.0f} ms, worst {worst:.0f} ms of {len(runs)}")]
    return lines, targets


if __name__ == "__main__":
    env.main(PART, __doc__.splitlines()[0], add_args, run)
