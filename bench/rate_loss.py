#!/usr/bin/python3
"""Rate and loss (issue item 3): how many of the requested samples each profiler keeps as the rate
rises, and the highest rate at which it keeps at least 99.9%.

The target is bench/workloads/cpu_ops.py on Python 3.15, always on-CPU, so a wall-clock sampler
and a CPU-time sampler are asked for the same number of samples. Rates 1, 2, 5, 10, 20 and 50 kHz
(quick: 1, 10, 50), each profiler, --repeats runs each in a shuffled order; per run (see
lib/measure.py):

  loopspy             requested = rate x the loop thread's CPU time in the window; recorded = its
                      on-CPU samples of the loop thread in the window (from the recording); kept =
                      those fully symbolized; plus the summary's lost counters (whole recording);
  profiling.sampling  (attach --mode wall --gecko) requested = rate x the window's wall time;
                      recorded = kept = its samples of the loop thread in the same window, by their
                      timestamps (a failed read leaves no sample, so every one has a stack).
  Both sides are counted over the same window. "Lost" differs and is shown as each defines it:
  loopspy's lost counter (samples the kernel took but could not deliver or read, whole recording);
  profiling.sampling's printed error rate (failed reads over attempted samples, whole run).

usage: rate_loss.py [--quick] [--rates 1000,...] [--repeats N] [--window S] [--loopspy PATH]
                    [--python PATH] [--out FILE.json]
"""
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import env, measure, procs, quiet, stats  # noqa: E402
from lib.profilers import LoopspySpec, SamplingSpec  # noqa: E402

PART = "rate_loss"
KEEP = 0.999
NO_LOSS_BELOW = 20000


def add_args(ap):
    env.add_common_args(ap, quiet_budget_full=30.0, quiet_budget_quick=3.0)
    ap.add_argument("--rates", help="default 1000,2000,5000,10000,20000,50000 (quick 1000,10000,50000)")
    ap.add_argument("--repeats", type=int, help="runs per rate and profiler (default 3, quick 1)")
    ap.add_argument("--window", type=float, help="seconds (default 2, quick 0.5)")
    ap.add_argument("--seed", type=int, default=2)


def run(cfg, tmp, binary, facts):
    cfg.rates = [int(x) for x in (cfg.rates or ("1000,10000,50000" if cfg.quick
                                                 else "1000,2000,5000,10000,20000,50000")).split(",")]
    cfg.repeats = cfg.repeats or (1 if cfg.quick else 3)
    cfg.window = cfg.window or (0.5 if cfg.quick else 2.0)
    warmup, settle = (0.2, 0.3) if cfg.quick else (0.3, 0.3)
    py = env.python_facts(cfg.python, need_sampling=True)
    result = env.base_result(cfg, facts, py)
    result["settings"] = {"rates": cfg.rates, "repeats": cfg.repeats, "window_s": cfg.window, "workload": "cpu_ops"}
    plan = [(p, r) for p in ("loopspy", "profiling.sampling") for r in cfg.rates] * cfg.repeats
    random.Random(cfg.seed).shuffle(plan)
    gate = quiet.QuietGate(threshold=cfg.quiet, budget_s=cfg.quiet_budget)
    runs = []
    for i, (peer, rate) in enumerate(plan, 1):
        spec = LoopspySpec(binary, rate) if peer == "loopspy" else SamplingSpec(cfg.python, rate)
        cap0 = perf_rate_cap()
        r = gate.run(lambda: measure.run_once(cfg.python, "cpu_ops", spec, tmp, cfg.window, warmup, settle))
        del r["workload_result"]
        r["perf_rate_cap"] = [cap0, perf_rate_cap()]  # the kernel lowers it when perf interrupts take too long
        r.update({"peer": peer, "rate": rate})
        runs.append(r)
        env.progress(PART, f"{i}/{len(plan)} {spec.label}: recorded {r['recorded']:.4f}, kept {r['kept']:.4f} "
                     f"of requested, profiler {r['window_cpu_per_s']:.2f} CPU s/s")
    result["runs"] = runs
    result["quiet"] = gate.facts()
    caps = sorted({c for r in runs for c in r["perf_rate_cap"] if c is not None})
    result["perf_rate_caps"] = caps
    rows = []
    for peer in ("loopspy", "profiling.sampling"):
        for rate in cfg.rates:
            rs = [r for r in runs if r["peer"] == peer and r["rate"] == rate]
            if len(rs) != cfg.repeats:
                raise procs.BenchError(f"{peer} {rate} Hz: {len(rs)} runs, expected {cfg.repeats}")
            row = {"peer": peer, "rate": rate, **{k: [r[k] for r in rs] for k in
                                                  ("recorded", "kept", "requested", "lost_share",
                                                   "window_cpu_per_s", "target_cpu_share")}}
            if peer == "loopspy":
                row["lost"] = [r["summary"]["lost"] for r in rs]
                row["samples"] = [r["summary"]["samples"] for r in rs]
            rows.append(row)
    result["summary"] = rows
    return result


def perf_rate_cap():
    try:
        with open("/proc/sys/kernel/perf_event_max_sample_rate") as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def keeps(row):
    """Median kept >= 99.9% of requested, or at most one sample short (a window's edge can cut one
    period, which matters only for short windows at low rates)."""
    missing = [q * (1 - k) for q, k in zip(row["requested"], row["kept"])]
    return stats.median(row["kept"]) >= KEEP or stats.median(missing) <= 1.0


def verdicts(rows, peer):
    """(highest rate that keeps >= 99.9% with every lower rate too, first rate that does not)."""
    best, first_fail = None, None
    for row in sorted((r for r in rows if r["peer"] == peer), key=lambda r: r["rate"]):
        if keeps(row) and first_fail is None:
            best = row["rate"]
        elif first_fail is None:
            first_fail = row["rate"]
    return best, first_fail


def render(res):
    s = res["settings"]
    lines = [f"bench/workloads/cpu_ops.py on Python {res['python']['version']} (always on-CPU), {s['window_s']} s "
             f"windows, {s['repeats']} run(s) per rate and profiler in a shuffled order.", "",
             "| profiler | rate | recorded / requested | kept / requested, median [min–max] | lost (loopspy summary) "
             "or error rate | profiler CPU s/s | target on-CPU share |", "|---|---:|---|---|---|---|---:|"]
    for row in res["summary"]:
        if row["peer"] == "loopspy":
            loss = f"{stats.median(row['lost']):.0f} of {stats.median(row['samples']):,.0f} (max {max(row['lost'])})"
        else:
            loss = f"{stats.pct(stats.median(row['lost_share']), 2)}"
        lines.append(f"| {row['peer']} | {row['rate']:,} Hz | {stats.cell(row['recorded'], lambda v: f'{v:.4f}')} "
                     f"| {stats.cell(row['kept'], lambda v: f'{v:.4f}')} | {loss} "
                     f"| {stats.cell(row['window_cpu_per_s'], lambda v: f'{v:.2f}')} "
                     f"| {stats.pct(stats.median(row['target_cpu_share']), 0)} |")
    lines.append("")
    for peer in ("loopspy", "profiling.sampling"):
        best, fail = verdicts(res["summary"], peer)
        lines.append(f"- **{peer}**: keeps ≥ 99.9% of requested samples up to "
                     f"{f'{best:,} Hz' if best else 'none of the rates tried'}"
                     + (f"; below that from {fail:,} Hz" if fail else " (every rate tried)") + ".")
    caps = res.get("perf_rate_caps") or []
    if len(caps) > 1:
        lines.append(f"- **the kernel lowered kernel.perf_event_max_sample_rate during the runs** (values seen: "
                     f"{', '.join(map(str, caps))}): perf interrupts took too long, and it throttles every sampler.")
    elif caps:
        lines.append(f"- kernel.perf_event_max_sample_rate stayed at {caps[0]:,} throughout.")
    q = res["quiet"]
    lines.append("")
    lines.append(f"Noise: other processes used a median {q['foreign_cores_median']:.2f} cores (max "
                 f"{q['foreign_cores_max']:.2f}); {q['repeated']} disturbed runs repeated, {q['kept_disturbed']} of "
                 f"{q['runs']} kept although disturbed.")
    lines.append("")
    lines.append("Both profilers are counted over the same window (the workload's timed window, after "
                 "attaching and settling). *Requested*: loopspy, rate × the loop thread's CPU time in the window "
                 "(it samples on-CPU time); profiling.sampling, rate × the window's wall time (it samples wall "
                 "time; the target is always on-CPU, so the two ask for the same). *Recorded*: loopspy, on-CPU "
                 "samples of the loop thread in the window, read from the recording; profiling.sampling, its "
                 "samples of the loop thread in the window, by the timestamps of its Gecko profile. *Kept*: "
                 "loopspy, those fully symbolized (no unreadable, unknown or truncated frame); "
                 "profiling.sampling, the same as recorded (a failed read leaves no sample in its profile). A "
                 "rate *keeps* its samples when the median kept is ≥ 99.9% of requested (or at most one sample "
                 "short: a window's edge can cut one period). *Lost* means different things and is shown as each "
                 "tool defines it: loopspy's lost counter, samples the kernel took but could not deliver or read, "
                 "over the whole recording, start-up included; profiling.sampling's printed error rate, failed "
                 "reads over attempted samples, over its whole run. The target "
                 "*no loss below 20 kHz* asks for 0 lost and ≥ 99.9% kept at every rate below 20 kHz.")
    rows = [r for r in res["summary"] if r["peer"] == "loopspy" and r["rate"] < NO_LOSS_BELOW]
    bad = [r for r in rows if max(r["lost"]) > 0 or not keeps(r)]
    detail = "; ".join(f"{r['rate'] // 1000} kHz: kept {stats.median(r['kept']):.4f}, lost {max(r['lost'])}"
                       for r in rows)
    best, _ = verdicts(res["summary"], "loopspy")
    targets = [(f"no loss below {NO_LOSS_BELOW // 1000} kHz", bool(rows) and not bad,
                f"highest rate keeping ≥ 99.9%: {f'{best:,} Hz' if best else 'none'}; {detail}")]
    return lines, targets


if __name__ == "__main__":
    env.main(PART, __doc__.splitlines()[0], add_args, run)
