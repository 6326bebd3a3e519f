#!/usr/bin/python3
"""Cost where the target does not run: bystanders' syscalls and context switches, and timer
interrupts on idle CPUs (issue 11).

Bystander: a process loopspy does not profile, timed alone (B) and while a profiler profiles
another process, an idle asyncio service (bench/workloads/idle_service.py on Python 3.15), in
the order B P1 B P2 ... B per round; each profiled time is divided by the mean of the two B runs
beside it, so the figure is the share of its speed the bystander keeps. Two bystanders:
  syscalls   `dd if=/dev/zero of=/dev/null bs=1 count=N`: 2N read/write syscalls
  switches   bench/workloads/pingpong.py: two processes pass a byte over pipes (2 switches a round)
Profilers: loopspy (`record -p PID`, 1 kHz, per-cpu and per-thread sampling) and Python 3.15's
`profiling.sampling attach` (1 kHz).

Interrupts: local timer interrupts per second (the LOC line of /proc/interrupts, every CPU),
over a window, with no profiler and with each profiler attached, the target idle (idle_service)
and busy (bench/workloads/cpu_ops.py, one thread always on-CPU). The figure is the profiled
rate minus the rate alone measured beside it.

usage: bystander.py [--quick] [--rounds N] [--window S] [--loopspy PATH] [--python PATH]
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import env, procs, quiet, stats  # noqa: E402
from lib.profilers import LoopspySpec, SamplingSpec  # noqa: E402
from lib.workload import WorkloadRun  # noqa: E402

PART = "bystander"
RATE = 1000
KEEP_TARGET = 0.99      # the goal: a bystander keeps >= 0.99 of its speed
IRQ_SHARE_TARGET = 0.02  # idle target: < 2% of rate x CPUs extra timer interrupts
IDLE = os.path.join(env.REPO, "bench", "workloads", "idle_service.py")
PINGPONG = os.path.join(env.REPO, "bench", "workloads", "pingpong.py")


def add_args(ap):
    env.add_common_args(ap, quiet_budget_full=60.0, quiet_budget_quick=5.0)
    ap.add_argument("--rounds", type=int, help="rounds per bystander (default 5, quick 1)")
    ap.add_argument("--window", type=float, help="interrupt window, s (default 5, quick 1)")
    ap.add_argument("--dd-count", type=int, help="dd's bytes, one syscall pair each (default 1500000)")
    ap.add_argument("--pingpong-rounds", type=int, help="default 40000")


def profilers(cfg, binary):
    return [("loopspy", LoopspySpec(binary, RATE)), ("loopspy-per-thread", LoopspySpec(binary, RATE, "per-thread")),
            ("profiling.sampling", SamplingSpec(cfg.python, RATE))]


class Target:
    """A target for the profilers: the idle service, or cpu_ops (busy)."""

    def __init__(self, cfg, tmp, tag, busy):
        if busy:
            self.w = WorkloadRun(cfg.python, "cpu_ops", tmp, tag, seconds=600, warmup=0.3, go_file=False)
            self.w.wait_ready()
            self.pid, self.proc = self.w.pid, None
        else:
            ready = os.path.join(tmp, tag + ".idle.ready")
            self.w, self.proc = None, procs.spawn([cfg.python, IDLE, "--ready", ready])
            self.pid = self.proc.pid
            procs.wait_for(lambda: os.path.exists(ready) or self.proc.poll() is not None, time.monotonic() + 30,
                           "the idle service")
            if not os.path.exists(ready):
                raise procs.BenchError("the idle service exited before it was ready")

    def kill(self):
        if self.w:
            self.w.kill()
        if self.proc:
            procs.kill(self.proc)


def attached(spec, target, tmp, tag):
    run = spec.start(target.pid, tmp, tag, 600)
    run.wait_attached(time.monotonic() + 30)
    time.sleep(0.3)  # settle: start-up work is not the steady cost
    return run


def time_dd(count):
    t0 = time.monotonic()
    p = subprocess.run(["dd", "if=/dev/zero", "of=/dev/null", "bs=1", f"count={count}"], capture_output=True)
    if p.returncode != 0:
        raise procs.BenchError(f"dd failed: {p.stderr.decode()[-200:]}")
    return time.monotonic() - t0


def time_pingpong(python, rounds):
    p = subprocess.run([python, PINGPONG, "--rounds", str(rounds)], capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise procs.BenchError(f"pingpong failed: {p.stderr[-200:]}")
    return json.loads(p.stdout)["seconds"]


def timer_interrupts():
    """Local timer interrupts so far, summed over CPUs, and per CPU."""
    with open("/proc/interrupts") as f:
        cpus = len(f.readline().split())
        for line in f:
            if line.strip().startswith("LOC:"):
                per = [int(x) for x in line.split()[1:1 + cpus]]
                return sum(per), per
    raise procs.BenchError("no LOC line in /proc/interrupts")


def irq_rate(window):
    a, pa = timer_interrupts()
    t0 = time.monotonic()
    time.sleep(window)
    b, pb = timer_interrupts()
    dt = time.monotonic() - t0
    return (b - a) / dt, [(y - x) / dt for x, y in zip(pa, pb)]


def bystander_rounds(cfg, binary, tmp, gate, name, measure):
    """B P1 B P2 ... B per round; returns {profiler: [kept share per round]}."""
    kept = {label: [] for label, _ in profilers(cfg, binary)}
    raw = []
    for r in range(cfg.rounds):
        def one_round():
            target = Target(cfg, tmp, f"{name}{r}-{time.monotonic_ns()}", busy=False)
            try:
                row = {"alone": [measure()]}
                for label, spec in profilers(cfg, binary):
                    run = attached(spec, target, tmp, f"{name}{r}-{label}-{time.monotonic_ns()}")
                    try:
                        row[label] = measure()
                    finally:
                        run.kill()
                    row["alone"].append(measure())
                return row
            finally:
                target.kill()
        row = gate.run(one_round)
        alone = row["alone"]
        for i, (label, _) in enumerate(profilers(cfg, binary)):
            kept[label].append(((alone[i] + alone[i + 1]) / 2) / row[label])
        raw.append(row)
        env.progress(PART, f"{name} round {r + 1}/{cfg.rounds}: " + ", ".join(
            f"{label} keeps {kept[label][-1]:.3f}" for label in kept))
    return kept, raw


def interrupt_rows(cfg, binary, tmp, gate):
    rows = []
    for busy in (False, True):
        def one():
            target = Target(cfg, tmp, f"irq{int(busy)}-{time.monotonic_ns()}", busy=busy)
            try:
                time.sleep(0.5)
                base, base_per = irq_rate(cfg.window)
                out = {"busy": busy, "alone": base, "alone_per_cpu": base_per, "profiled": {}}
                for label, spec in profilers(cfg, binary):
                    run = attached(spec, target, tmp, f"irq-{label}-{time.monotonic_ns()}")
                    try:
                        rate, per = irq_rate(cfg.window)
                    finally:
                        run.kill()
                    after, _ = irq_rate(cfg.window)
                    out["profiled"][label] = {"rate": rate, "per_cpu": per, "alone_after": after,
                                              "added": rate - (base + after) / 2}
                    base = after
                return out
            finally:
                target.kill()
        row = gate.run(one)
        rows.append(row)
        env.progress(PART, f"timer interrupts, target {'busy' if busy else 'idle'}: alone {row['alone']:.0f}/s; " +
                     ", ".join(f"{k} +{v['added']:.0f}/s" for k, v in row["profiled"].items()))
    return rows


def run(cfg, tmp, binary, facts):
    cfg.rounds = cfg.rounds or (1 if cfg.quick else 5)
    cfg.window = cfg.window or (1.0 if cfg.quick else 5.0)
    count = cfg.dd_count or (300_000 if cfg.quick else 1_500_000)
    rounds = cfg.pingpong_rounds or (10_000 if cfg.quick else 40_000)
    py = env.python_facts(cfg.python, need_sampling=True)
    result = env.base_result(cfg, facts, py)
    result["settings"] = {"rounds": cfg.rounds, "window_s": cfg.window, "dd_count": count, "pingpong_rounds": rounds,
                          "rate": RATE, "cpus": os.cpu_count()}
    gate = quiet.QuietGate(threshold=cfg.quiet, budget_s=cfg.quiet_budget)
    result["syscalls"], result["syscalls_raw"] = bystander_rounds(cfg, binary, tmp, gate, "syscalls",
                                                                  lambda: time_dd(count))
    result["switches"], result["switches_raw"] = bystander_rounds(cfg, binary, tmp, gate, "switches",
                                                                  lambda: time_pingpong(cfg.python, rounds))
    result["interrupts"] = interrupt_rows(cfg, binary, tmp, gate)
    result["quiet"] = gate.facts()
    return result


def render(res):
    s = res["settings"]
    share = lambda v: f"{v:.3f}"  # noqa: E731
    lines = [f"A process loopspy does not profile, while a profiler profiles an idle asyncio service "
             f"(Python {res['python']['version']}, {s['rate']} Hz): the share of its speed it keeps (1.000: none "
             f"lost), median [min–max] of {s['rounds']} rounds, each against the runs alone beside it.", "",
             "| bystander | " + " | ".join(res["syscalls"]) + " |", "|---|" + "---|" * len(res["syscalls"]),
             f"| `dd bs=1 count={s['dd_count']:,}` ({2 * s['dd_count']:,} syscalls) | "
             + " | ".join(stats.cell(v, share) for v in res["syscalls"].values()) + " |",
             f"| pipe ping-pong, {s['pingpong_rounds']:,} round trips | "
             + " | ".join(stats.cell(v, share) for v in res["switches"].values()) + " |", "",
             f"Local timer interrupts per second on the {s['cpus']} CPUs ({s['window_s']:g} s windows): alone, and "
             "added by each profiler (profiled minus the mean of the windows alone before and after it).", "",
             "| target | alone | " + " | ".join(f"{k} adds" for k in res["interrupts"][0]["profiled"]) + " |",
             "|---|---|" + "---|" * len(res["interrupts"][0]["profiled"])]
    for row in res["interrupts"]:
        lines.append(f"| {'busy (cpu_ops)' if row['busy'] else 'idle (idle_service)'} | {row['alone']:.0f} | "
                     + " | ".join(f"{v['added']:+.0f} (per CPU: {', '.join(f'{x:.0f}' for x in v['per_cpu'])})"
                                  for v in row["profiled"].values()) + " |")
    lines += ["", f"Noise: before each of its {res['quiet']['runs']} rounds the harness waited for other processes to "
              f"use under {res['quiet']['threshold_cores']} cores ({res['quiet']['waited_s']} s of waiting in all); "
              "a round's own load is the measurement, so rounds are not judged disturbed afterwards."]
    targets = []
    for label in ("loopspy", "loopspy-per-thread"):
        worst = min(stats.median(res["syscalls"][label]), stats.median(res["switches"][label]))
        targets.append((f"a bystander keeps ≥ {KEEP_TARGET} of its speed ({label})", worst >= KEEP_TARGET,
                        f"syscalls {stats.median(res['syscalls'][label]):.3f}, "
                        f"switches {stats.median(res['switches'][label]):.3f}"))
    idle = next(r for r in res["interrupts"] if not r["busy"])
    budget = IRQ_SHARE_TARGET * s["rate"] * s["cpus"]
    for label in ("loopspy", "loopspy-per-thread"):
        added = idle["profiled"][label]["added"]
        targets.append((f"idle target: < {IRQ_SHARE_TARGET:.0%} of rate × CPUs extra timer interrupts ({label})",
                        added < budget, f"+{added:.0f}/s (budget {budget:.0f}/s)"))
    return lines, targets


if __name__ == "__main__":
    env.main(PART, __doc__.splitlines()[0], add_args, run)
