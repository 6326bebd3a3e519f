#!/usr/bin/python3
"""Target overhead and the profiler's own cost (issue items 1 and 2).

Workloads: bench/workloads/cpu_ops.py (CPU-bound, 4 tasks computing fib(12); ops = calls) and
bench/workloads/sleep0.py (100 tasks x `await asyncio.sleep(0)`; ops = task iterations), each
reporting its own throughput over a timed window. Peers, on the same interpreter (Python 3.15,
since profiling.sampling attaches only to its own version):

  loopspy            `loopspy record -p PID -r RATE` (off-CPU and loop tracking are always on)
  ps-wall            `python -m profiling.sampling attach -r RATE --mode wall`
  ps-async           `python -m profiling.sampling attach -r RATE --async-aware`
  asyncio-debug      the workload run with PYTHONASYNCIODEBUG=1, no profiler

at each rate (100 Hz, 1 kHz, 10 kHz). Every round runs, per workload, B P1 B P2 ... Pn B (B: the
workload alone; P: the peers in a shuffled order), and each P's throughput is divided by the mean
of the two B runs beside it. The workload warms up, the profiler attaches, a settle time passes,
then the window starts (a go file), so attaching and start-up are outside the window.

Per profiled run also: the profiler's CPU time during the window (schedstat of all its threads,
read every 20 ms, per second of window) and over its whole life (rusage, start-up included), its
peak RSS (its VmHWM), and the samples it kept against those requested (loopspy: fully symbolized
on-CPU samples of the loop thread inside the window, from the recording, / rate x the thread's CPU
time in the window; profiling.sampling: its samples of the loop thread in the same window, by the
timestamps of its Gecko profile / rate x the window's wall time).

usage: overhead.py [--quick] [--rounds N] [--window S] [--rates 100,1000,10000]
                   [--peers loopspy,ps-wall,ps-async,asyncio-debug] [--sampling per-cpu[,per-thread]]
                   [--workloads cpu_ops,sleep0] [--loopspy PATH] [--python PATH] [--out FILE.json]
"""
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import env, measure, procs, quiet, stats  # noqa: E402
from lib.profilers import LoopspySpec, SamplingSpec  # noqa: E402

PART = "overhead"
ALL_PEERS = ("loopspy", "ps-wall", "ps-async", "asyncio-debug")
TARGETS = {1000: 0.005, 10000: 0.03}  # overhead targets of the issue
CPU_TARGET_1K = 0.01


def add_args(ap):
    env.add_common_args(ap, quiet_budget_full=90.0, quiet_budget_quick=5.0)
    ap.add_argument("--rounds", type=int, help="pairs per configuration (default 5, quick 1)")
    ap.add_argument("--window", type=float, help="measurement window, s (default 2, quick 0.5)")
    ap.add_argument("--rates", default="100,1000,10000")
    ap.add_argument("--peers", default=",".join(ALL_PEERS))
    ap.add_argument("--sampling", default="per-cpu", help="loopspy sampling modes to compare, comma-separated")
    ap.add_argument("--workloads", default="cpu_ops,sleep0")
    ap.add_argument("--seed", type=int, default=1)


def configs(cfg):
    out = []
    for peer in cfg.peers:
        if peer == "asyncio-debug":
            out.append(("asyncio-debug", None, None))
            continue
        for rate in cfg.rates:
            if peer == "loopspy":
                out += [("loopspy", rate, mode) for mode in cfg.sampling]
            else:
                out.append((peer, rate, None))
    return out


def label(c):
    peer, rate, mode = c
    if peer == "asyncio-debug":
        return "asyncio debug mode (PYTHONASYNCIODEBUG=1)"
    if peer == "loopspy":
        return f"loopspy {rate:,} Hz" + ("" if mode == "per-cpu" else f" {mode}")
    return f"profiling.sampling {'wall' if peer == 'ps-wall' else '--async-aware'} {rate:,} Hz"


def spec_for(c, cfg, binary):
    peer, rate, mode = c
    if peer == "loopspy":
        return LoopspySpec(binary, rate, sampling=mode)
    if peer in ("ps-wall", "ps-async"):
        return SamplingSpec(cfg.python, rate, async_aware=peer == "ps-async")
    return None


def run_once(cfg, workload, c, tmp, binary):
    r = measure.run_once(cfg.python, workload, spec_for(c, cfg, binary) if c else None, tmp, cfg.window, cfg.warmup,
                         cfg.settle, env={"PYTHONASYNCIODEBUG": "1"} if c and c[0] == "asyncio-debug" else None)
    r["config"] = c
    del r["workload_result"]
    return r


def run(cfg, tmp, binary, facts):
    cfg.rounds = cfg.rounds or (1 if cfg.quick else 5)
    cfg.window = cfg.window or (0.5 if cfg.quick else 2.0)
    cfg.warmup = 0.2 if cfg.quick else 0.3
    cfg.settle = 0.3  # loopspy wakes on every sample for 250 ms after new code appears; the window starts after
    cfg.rates = [int(x) for x in cfg.rates.split(",")]
    cfg.peers = [p for p in cfg.peers.split(",") if p]
    cfg.sampling = cfg.sampling.split(",")
    cfg.workloads = cfg.workloads.split(",")
    for p in cfg.peers:
        if p not in ALL_PEERS:
            raise procs.BenchError(f"unknown peer {p} (known: {', '.join(ALL_PEERS)})")
    py = env.python_facts(cfg.python, need_sampling=any(p.startswith("ps-") for p in cfg.peers))
    result = env.base_result(cfg, facts, py)
    result["settings"] = {"rounds": cfg.rounds, "window_s": cfg.window, "warmup_s": cfg.warmup, "settle_s": cfg.settle,
                          "rates": cfg.rates, "peers": cfg.peers, "sampling": cfg.sampling,
                          "workloads": cfg.workloads}
    rng = random.Random(cfg.seed)
    gate = quiet.QuietGate(threshold=cfg.quiet, budget_s=cfg.quiet_budget)
    cs = configs(cfg)
    total = cfg.rounds * len(cfg.workloads) * (2 * len(cs) + 1)
    runs, index = [], 0
    for rnd in range(cfg.rounds):
        order = cfg.workloads if rnd % 2 == 0 else list(reversed(cfg.workloads))
        for wl in order:
            done = []
            for c in stats.interleave(cs, rng):
                index += 1
                r = gate.run(lambda: run_once(cfg, wl, c, tmp, binary))
                r["round"] = rnd
                done.append(r)
                env.progress(PART, f"{index}/{total} round {rnd + 1} {wl} {label(c) if c else 'alone'}: "
                             f"{r['ops_per_s']:,.0f} ops/s"
                             + (f", profiler {r['window_cpu_per_s']:.3f} CPU s/s, kept {r['kept']:.3f}"
                                if c and c[0] != "asyncio-debug" else ""))
            for i, r in enumerate(done):
                if r["config"] is not None:
                    r["ratio"] = r["ops_per_s"] / ((done[i - 1]["ops_per_s"] + done[i + 1]["ops_per_s"]) / 2)
            runs += done
    result["runs"] = runs
    result["quiet"] = gate.facts()
    result["summary"] = summarize(cfg.workloads, cs, runs, cfg.rounds)
    return result


def summarize(workloads, cs, runs, rounds):
    rows = []
    for wl in workloads:
        base = [r["ops_per_s"] for r in runs if r["workload"] == wl and r["config"] is None]
        rows.append({"workload": wl, "config": None, "ops_per_s": base,
                     "target_cpu_share": [r["target_cpu_share"] for r in runs
                                          if r["workload"] == wl and r["config"] is None]})
        for c in cs:
            rs = [r for r in runs if r["workload"] == wl and r["config"] is not None and tuple(r["config"]) == c]
            if len(rs) != rounds:
                raise procs.BenchError(f"{wl} {label(c)}: {len(rs)} runs, expected {rounds}")
            row = {"workload": wl, "config": list(c), "label": label(c), "ratio": [r["ratio"] for r in rs],
                   "target_cpu_share": [r["target_cpu_share"] for r in rs]}
            if c[0] != "asyncio-debug":
                row.update({k: [r[k] for r in rs] for k in ("window_cpu_per_s", "cpu_s", "maxrss_kib", "kept",
                                                            "lost_share", "attach_s")})
            rows.append(row)
    return rows


# ---------------------------------------------------------------- report

def render(res):
    """Markdown for BENCHMARKS.md: (lines, targets) where targets are (name, met, detail)."""
    s = res["settings"]
    lines = [f"Interpreter `{res['python']['path']}` (Python {res['python']['version']}); {s['rounds']} interleaved "
             f"round(s) of B P B P … B per workload (each profiled run against the mean of the two "
             f"runs alone beside it, peers shuffled per round); {s['window_s']} s windows after {s['warmup_s']} s "
             f"warm-up, the window opening {s['settle_s']} s after the profiler attached. loopspy's off-CPU and "
             f"loop tracking are always on; profiling.sampling samples the main thread (its default).", ""]
    for wl in s["workloads"]:
        rows = [r for r in res["summary"] if r["workload"] == wl]
        base = rows[0]
        lines.append(f"**{wl}** alone: {stats.cell(base['ops_per_s'], lambda v: f'{v:,.0f}')} ops/s, on-CPU "
                     f"{stats.pct(stats.median(base['target_cpu_share']), 0)} of the window.")
        lines.append("")
        lines.append("| peer | throughput vs alone, median [min–max] | overhead (median) | profiler CPU s/s in window "
                     "| profiler CPU s, whole run | peak RSS MiB | samples kept / requested | lost or error rate |")
        lines.append("|---|---|---:|---|---:|---:|---|---:|")
        for r in rows[1:]:
            ov = 1 - stats.median(r["ratio"])
            if r["config"][0] == "asyncio-debug":
                lines.append(f"| {r['label']} | {stats.cell(r['ratio'], lambda v: f'{v:.3f}')} | {stats.pct(ov)} "
                             f"| – | – | – | – | – |")
                continue
            lines.append(
                f"| {r['label']} | {stats.cell(r['ratio'], lambda v: f'{v:.3f}')} | {stats.pct(ov)} "
                f"| {stats.cell(r['window_cpu_per_s'], lambda v: f'{v:.3f}')} "
                f"| {stats.median(r['cpu_s']):.2f} | {max(r['maxrss_kib']) / 1024:.1f} "
                f"| {stats.cell(r['kept'], lambda v: f'{v:.3f}')} "
                f"| {stats.pct(stats.median(r['lost_share']), 2)} |")
        lines.append("")
    q = res["quiet"]
    lines.append(f"Noise: other processes used a median {q['foreign_cores_median']:.2f} cores (max "
                 f"{q['foreign_cores_max']:.2f}) during the runs; {q['repeated']} disturbed runs were repeated, "
                 f"**{q['kept_disturbed']} of {q['runs']} kept although disturbed** (over {q['threshold_cores']} cores "
                 f"of other load, or another process holding perf events/BPF links"
                 + (f": {', '.join(q['foreign_samplers'])}" if q["foreign_samplers"] else "") + ").")
    lines.append("")
    lines.append("*Throughput vs alone* is the workload's own ops/s over the window divided by the mean of the "
                 "runs alone beside it; *overhead* is 1 − its median. *Profiler CPU s/s in window* is the "
                 "profiler's CPU time (all its threads) per second of window; loopspy's BPF program runs in the "
                 "target's context, so its cost is in the throughput, not here. *Whole run* is rusage user+sys "
                 "from start to exit, start-up (BPF load; Python imports) and output writing included. "
                 "*Samples kept / requested*: loopspy, fully symbolized on-CPU samples of the loop thread in "
                 "the window (read from the recording) / (rate × the thread's CPU time in the window); "
                 "profiling.sampling, its samples of the loop thread in the same window (by the timestamps of "
                 "its Gecko profile) / (rate × the window's wall time). *Lost or error rate*, as each tool defines "
                 "it: loopspy's lost / (samples + lost), samples the kernel took but could not deliver or read "
                 "over the whole recording; profiling.sampling's printed error rate, failed reads over attempted "
                 "samples over its whole run. *Peak RSS* is the profiler's own VmHWM (/proc/PID/status), read "
                 "while it runs.")
    targets = []
    for rate, goal in TARGETS.items():
        rs = [r for r in res["summary"] if r["config"] and r["config"][0] == "loopspy" and r["config"][1] == rate
              and r["config"][2] == "per-cpu"]
        if not rs:
            continue
        worst = max(1 - stats.median(r["ratio"]) for r in rs)
        detail = ", ".join(f"{r['workload']} {stats.pct(1 - stats.median(r['ratio']), 2)}"
                           + (f" [{stats.pct(1 - max(r['ratio']), 1)} to {stats.pct(1 - min(r['ratio']), 1)}]"
                              if len(r["ratio"]) > 1 else " (one pair)") for r in rs)
        targets.append((f"target overhead ≤ {stats.pct(goal, 1)} at {rate // 1000} kHz", worst <= goal,
                        f"median overhead {detail}" + (f"; {stats.pct(worst - goal, 2)} over" if worst > goal else "")))
    rs = [r for r in res["summary"] if r["config"] and r["config"][0] == "loopspy" and r["config"][1] == 1000
          and r["config"][2] == "per-cpu"]
    if rs:
        worst = max(stats.median(r["window_cpu_per_s"]) for r in rs)
        targets.append(("loopspy's own CPU ≤ 1% of a core at 1 kHz", worst <= CPU_TARGET_1K,
                        ", ".join(f"{r['workload']} {stats.pct(stats.median(r['window_cpu_per_s']), 2)}" for r in rs)
                        + " of a core in the window (median)"))
    return lines, targets


if __name__ == "__main__":
    env.main(PART, __doc__.splitlines()[0], add_args, run)
