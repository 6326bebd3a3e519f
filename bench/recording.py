#!/usr/bin/python3
"""Recording size, recorder memory, and replay speed (issue item 5).

One long recording at 1 kHz (--duration, default 600 s; quick 20 s) of a busy asyncio loop
(tests/workloads/cpu_shares.py: CPU-bound, ~500 loop iterations a second, as in
docs/recording-format.md), attached with `loopspy record -p PID -d DURATION`. While it records,
loopspy's VmRSS is read from /proc every --rss-interval seconds and its CPU time (schedstat)
every 20 ms. Then:
  * bytes per sample = the file's size / on-CPU samples (everything included: tables, off-CPU
    intervals, selector waits, task snapshots), and per event (samples + off-CPU intervals +
    selector waits);
  * recorder RSS over time (first reading after 10 s, peak, last, growth over the second half)
    and its CPU per second of recording after the first 5 s;
  * replay speed: `loopspy replay FILE --flamegraph F.svg`, `... --slow-callbacks`, and a bare
    `replay` (summary only) for reference, each --replays times; on-CPU samples / wall time of
    the whole command (process start and reading the file included).

usage: recording.py [--quick] [--duration S] [--rss-interval S] [--replays N] [--loopspy PATH] [--python PATH]
"""
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import env, procs, quiet, stats  # noqa: E402
from lib.profilers import LoopspySpec  # noqa: E402

PART = "recording"
WORKLOAD = os.path.join(env.REPO, "tests", "workloads", "cpu_shares.py")
BYTES_TARGET = 4.0
REPLAY_TARGET = 5e6
REPLAY_SUMMARY_RE = re.compile(r"samples:\s+(?P<on>\d+) on-CPU, (?P<off>\d+) off-CPU intervals")


def add_args(ap):
    env.add_common_args(ap, quiet_budget_full=10.0, quiet_budget_quick=2.0)
    ap.add_argument("--duration", type=float, help="recording length, s (default 600, quick 20)")
    ap.add_argument("--rss-interval", type=float, help="seconds between RSS readings (default 5, quick 1)")
    ap.add_argument("--replays", type=int, help="timed replays per output (default 3, quick 2)")
    ap.add_argument("--rate", type=int, default=1000)


def record(cfg, binary, tmp, gate):
    ready, truth = os.path.join(tmp, "ready"), os.path.join(tmp, "truth.json")
    w = procs.spawn([cfg.python, WORKLOAD, "--seconds", cfg.duration + 60, "--truth", truth, "--ready", ready])
    lp = None
    try:
        procs.wait_for(lambda: os.path.exists(ready) or w.poll() is not None, time.monotonic() + 60, "the workload")
        if w.poll() is not None:
            raise procs.BenchError(f"{WORKLOAD} exited early ({w.returncode})")
        time.sleep(0.3)
        gate.wait()
        meter = quiet.LoadMeter()
        lp = LoopspySpec(binary, cfg.rate).start(w.pid, tmp, "long", cfg.duration)
        meter.start([w.pid, lp.pid])
        t0 = time.monotonic()
        lp.wait_attached(t0 + 30)
        cpu = procs.CpuPoller(lp.pid)
        rss, next_rss = [], t0

        def poll():
            nonlocal next_rss
            cpu.poll()
            now = time.monotonic()
            if now >= next_rss:
                kib = procs.rss_kib(lp.pid)
                if kib:
                    rss.append((round(now - t0, 2), kib))
                next_rss = now + cfg.rss_interval

        env.progress(PART, f"recording {cfg.duration:g} s at {cfg.rate:,} Hz (pid {w.pid})")
        parsed = lp.finish(t0 + cfg.duration + 120, on_poll=poll)
        load = meter.stop({lp.pid: cpu.last()})
    finally:
        procs.kill(w)
        if lp:
            lp.kill()
    s = parsed["summary"]
    start_ns = cpu.readings[0][0] if cpu.readings else None
    steady = cpu.rate(start_ns + 5_000_000_000, cpu.readings[-1][0]) if start_ns else None
    half = [k for t, k in rss if t >= cfg.duration / 2]
    growth = None
    if len(half) >= 2:
        t_half = [t for t, k in rss if t >= cfg.duration / 2]
        growth = (half[-1] - half[0]) / 1024 / ((t_half[-1] - t_half[0]) / 60) if t_half[-1] > t_half[0] else None
    after10 = [k for t, k in rss if t >= 10] or [k for _, k in rss]
    return {"recording": parsed["recording"], "bytes": parsed["recording_bytes"], "summary": s,
            "summary_line": parsed["summary_line"], "cpu_s": parsed["cpu_s"], "maxrss_kib": parsed["maxrss_kib"],
            "steady_cpu_per_s": steady, "rss": rss, "rss_after_10s_kib": after10[0] if after10 else None,
            "rss_last_kib": rss[-1][1] if rss else None, "rss_growth_mib_per_min_second_half": growth,
            "bytes_per_sample": parsed["recording_bytes"] / s["samples"],
            "bytes_per_event": parsed["recording_bytes"] / (s["samples"] + s["off_cpu"] + s["waits"]), **load}


def replays(cfg, binary, tmp, path, samples):
    outputs = {"flame graph": ["--flamegraph", os.path.join(tmp, "replay.svg")],
               "slow callbacks": ["--slow-callbacks", "--threshold", "100"],
               "summary only": []}
    res = {}
    for name, args in outputs.items():
        runs = []
        for i in range(cfg.replays):
            err = os.path.join(tmp, f"replay-{i}.err")
            wall, ru, _ = procs.run_timed([binary, "replay", path] + args, 300, f"loopspy replay {' '.join(args)}",
                                          stdout=subprocess.DEVNULL, stderr_path=err)
            runs.append({"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "maxrss_kib": ru.ru_maxrss})
        res[name] = {"runs": runs, "samples_per_s": [samples / r["wall_s"] for r in runs]}
        env.progress(PART, f"replay into {name}: {stats.median(res[name]['samples_per_s']):,.0f} samples/s")
    # The replay summary names the same sample count the recorder did.
    out = subprocess.run([binary, "replay", path], capture_output=True, text=True, timeout=300)
    m = REPLAY_SUMMARY_RE.search(out.stdout)
    if out.returncode != 0 or not m:
        raise procs.BenchError(f"loopspy replay {path}: no summary ({out.returncode}): {out.stderr[-2000:]}")
    if int(m.group("on")) != samples:
        raise procs.BenchError(f"replay counts {m.group('on')} on-CPU samples, the recorder said {samples}")
    return res


def run(cfg, tmp, binary, facts):
    cfg.duration = cfg.duration or (20.0 if cfg.quick else 600.0)
    cfg.rss_interval = cfg.rss_interval or (1.0 if cfg.quick else 5.0)
    cfg.replays = cfg.replays or (2 if cfg.quick else 3)
    py = env.python_facts(cfg.python)
    result = env.base_result(cfg, facts, py)
    result["settings"] = {"duration_s": cfg.duration, "rate": cfg.rate, "rss_interval_s": cfg.rss_interval,
                          "replays": cfg.replays, "workload": "tests/workloads/cpu_shares.py"}
    gate = quiet.QuietGate(threshold=cfg.quiet, budget_s=cfg.quiet_budget)
    rec = record(cfg, binary, tmp, gate)
    env.progress(PART, f"{rec['bytes']:,} bytes, {rec['summary']['samples']:,} samples: "
                 f"{rec['bytes_per_sample']:.2f} B/sample; RSS {rec['rss_after_10s_kib']} -> {rec['rss_last_kib']} KiB")
    result["recording"] = rec
    result["replay"] = replays(cfg, binary, tmp, rec["recording"], rec["summary"]["samples"])
    return result


def render(res):
    s, r = res["settings"], res["recording"]
    sm = r["summary"]
    mib = lambda k: f"{k / 1024:.1f}"  # noqa: E731
    lines = [f"One {s['duration_s']:g} s recording at {s['rate']:,} Hz of {s['workload']} (a CPU-bound loop) on Python "
             f"{res['python']['version']}, `loopspy record -p PID -d {s['duration_s']:g}`.", "",
             "| figure | value |", "|---|---:|",
             f"| file | {r['bytes']:,} bytes |",
             f"| on-CPU samples / off-CPU intervals / selector waits | {sm['samples']:,} / {sm['off_cpu']:,} / {sm['waits']:,} |",
             f"| bytes per on-CPU sample, everything included | {r['bytes_per_sample']:.2f} |",
             f"| bytes per event (samples + off-CPU intervals + selector waits) | {r['bytes_per_event']:.2f} |",
             f"| recorder RSS after 10 s / last / peak, MiB | {mib(r['rss_after_10s_kib'])} / "
             f"{mib(r['rss_last_kib'])} / {mib(max([r['maxrss_kib']] + [k for _, k in r['rss']]))} |",
             "| RSS growth over the second half | "
             + (f"{r['rss_growth_mib_per_min_second_half']:+.2f} MiB/min" if r['rss_growth_mib_per_min_second_half']
                is not None else "n/a") + " |",
             f"| recorder CPU after the first 5 s, per second | {r['steady_cpu_per_s']:.4f} |",
             f"| recorder CPU, whole run (rusage) | {r['cpu_s']:.2f} s |",
             f"| lost | {sm['lost']:,} ({sm['sym']}% fully symbolized) |", "",
             "RSS readings (s, MiB): " + ", ".join(f"{t:g}: {k / 1024:.1f}" for t, k in
                                                   r["rss"][:: max(1, len(r["rss"]) // 12)]), "",
             f"Replay of that recording ({sm['samples']:,} on-CPU samples), {s['replays']} run(s) each; wall time "
             f"of the whole `loopspy replay` command (start-up and reading the file included; *summary only* "
             f"reads and decodes the file and prints the summary, the floor under the other two):", "",
             "| output | on-CPU samples per second, median [min–max] | wall s | CPU s | peak RSS MiB |",
             "|---|---|---:|---:|---:|"]
    for name, v in res["replay"].items():
        runs = v["runs"]
        lines.append(f"| {name} | {stats.cell(v['samples_per_s'], lambda x: f'{x:,.0f}')} "
                     f"| {stats.median([x['wall_s'] for x in runs]):.3f} | {stats.median([x['cpu_s'] for x in runs]):.3f} "
                     f"| {max(x['maxrss_kib'] for x in runs) / 1024:.1f} |")
    lines.append("")
    lines.append(f"Noise: other processes used {r['foreign_cores']:.2f} cores on average during the recording.")
    slowest = min(stats.median(v["samples_per_s"]) for k, v in res["replay"].items() if k != "summary only")
    targets = [("≤ 4 bytes per sample", r["bytes_per_sample"] <= BYTES_TARGET,
                f"{r['bytes_per_sample']:.2f} bytes per on-CPU sample over {s['duration_s']:g} s "
                f"({r['bytes_per_sample'] / BYTES_TARGET - 1:+.0%} against 4)"),
               ("replay ≥ 5 million samples per second", slowest >= REPLAY_TARGET,
                ", ".join(f"{k} {stats.median(v['samples_per_s']) / 1e6:.2f} M/s" for k, v in res["replay"].items()
                          if k != "summary only") + f" ({sm['samples']:,} samples)")]
    return lines, targets


if __name__ == "__main__":
    env.main(PART, __doc__.splitlines()[0], add_args, run)
