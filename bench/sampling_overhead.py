#!/usr/bin/python3
"""What sampling costs: the target's throughput, loopspy's own CPU and memory, and sample loss.

For each workload (bench/workloads/cpu_ops.py, CPU-bound; bench/workloads/sleep0.py, 100 tasks
looping `await asyncio.sleep(0)`), each rate (100 Hz, 1 kHz, 10 kHz) and each sampling mode
(per-cpu, per-thread), the workload is run alone (baseline) and under `loopspy record -p`
(profiled), interleaved: every round runs, per workload,

    B P1 B P2 B P3 B P4 B P5 B P6 B

with the six profiled configurations in a shuffled order, and each profiled throughput is
divided by the mean of the two baselines next to it. The workload warms up, signals readiness
through a file, loopspy is attached (profiled runs), and once loopspy's perf events exist (and a
short settle) the harness creates a go file that starts the workload's timed window. Nothing is
pinned: the machine may have few cores, so loopspy's user-space half competes with the target.

Per profiled run it also records:
  * loopspy's CPU time (os.wait4 rusage, utime+stime) minus what it had used by the time its
    perf events existed (start-up: BPF load, interpreter discovery), per second of recording
    (the elapsed time loopspy reports), and its peak RSS (ru_maxrss);
  * from loopspy's summary line: samples, lost, the fully-symbolized share;
  * expected samples = rate x the target thread's CPU time while loopspy was attached (from
    /proc/PID/task/PID/schedstat when the perf events appeared to the workload's own
    time.thread_time() at exit).

The machine may be shared: before each run the suite waits (at most 5 s) until other
processes use under --quiet cores and no other process holds perf events or BPF links (another
profiler's hooks tax the target without showing up as CPU time of their own), and repeats a run
so disturbed (at most twice), within --quiet-budget seconds; runs kept although disturbed are
counted in the report.

Any failed run (workload or loopspy exit status, a missing summary line, zero samples, a
timeout) stops the suite with a non-zero exit status; no partial table is printed.

usage: sampling_overhead.py [--quick] [--out FILE] [--loopspy PATH] [--python PATH] [--quiet-budget S]
                            [--rounds N] [--window S] [--rates 100,1000,10000]
"""
import argparse
import datetime
import hashlib
import itertools
import json
import os
import platform
import random
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKLOADS = {
    "cpu_ops": os.path.join(REPO, "bench", "workloads", "cpu_ops.py"),
    "sleep0": os.path.join(REPO, "bench", "workloads", "sleep0.py"),
}
MODES = ("per-cpu", "per-thread")
DEFAULT_PYTHON = "/root/.pyenv/versions/3.12.1/bin/python3"
CLK_TCK = os.sysconf("SC_CLK_TCK")

SUMMARY_RE = re.compile(
    r"loopspy: (?P<samples>\d+) samples \((?P<sym>[\d.]+)% fully symbolized\), (?P<lost>\d+) lost "
    r"\((?P<ringbuf>\d+) ring buffer full, (?P<unreadable>\d+) unreadable, (?P<unknown>\d+) before the thread "
    r"was known\).*?(?P<threads>\d+) Python threads seen, (?P<elapsed>[\d.]+) s"
)


class BenchError(Exception):
    pass


# Every process this suite starts, so a failure can end exactly those.
_children = set()


def kill_children():
    for pid in list(_children):
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        _children.discard(pid)


def spawn(argv, stdout, stderr):
    p = subprocess.Popen(argv, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, close_fds=True)
    _children.add(p.pid)
    return p


def reap(p, deadline, what):
    """Waits (polling, so there is a deadline) for p; returns (exit code, rusage)."""
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid == p.pid:
            _children.discard(p.pid)
            p.returncode = os.waitstatus_to_exitcode(status)
            return p.returncode, ru
        if time.monotonic() > deadline:
            raise BenchError(f"{what} (pid {p.pid}) did not finish in time")
        time.sleep(0.005)


def wait_for(cond, deadline, what, interval=0.002):
    while not cond():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out waiting for {what}")
        time.sleep(interval)


def proc_cpu_s(pid):
    """utime+stime of a live process from /proc/PID/stat, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def thread_cpu_ns(pid):
    """On-CPU time of the main thread (sum_exec_runtime), or None where schedstat is missing."""
    try:
        with open(f"/proc/{pid}/task/{pid}/schedstat") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def perf_event_fds(pid):
    n = 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:[perf_event]":
                    n += 1
            except OSError:
                pass
    except OSError:
        pass
    return n


def system_busy_s():
    """CPU time all CPUs spent not idle (user..steal, no idle/iowait), in seconds."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / CLK_TCK


def self_cpu_s():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def read_json(path, what):
    try:
        with open(path) as f:
            return json.loads(f.read())
    except (OSError, ValueError) as e:
        raise BenchError(f"{what}: no result ({e})")


def tail(path, n=2000):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-n:]
    except OSError:
        return ""


_attempts = itertools.count(1)


def run_once(cfg, workload, profile, tmp):
    """One run. profile is None (baseline) or (rate, mode). Returns a dict of measurements."""
    tag = f"{next(_attempts):04d}"
    ready, go = os.path.join(tmp, tag + ".ready"), os.path.join(tmp, tag + ".go")
    result = os.path.join(tmp, tag + ".json")
    w_err = open(os.path.join(tmp, tag + ".workload.err"), "w")
    argv = [cfg.python, WORKLOADS[workload], "--seconds", str(cfg.window), "--warmup", str(cfg.warmup),
            "--ready", ready, "--go", go, "--result", result, "--max-wait", "60"]
    deadline = time.monotonic() + cfg.window + 60
    wp = spawn(argv, subprocess.DEVNULL, w_err)
    lp = l_err = None
    out = {"workload": workload, "profile": profile}
    try:
        wait_for(lambda: os.path.exists(ready) or wp.poll() is not None, deadline, f"{workload} readiness")
        if not os.path.exists(ready):
            raise BenchError(f"{workload} exited before it was ready: {tail(w_err.name)}")
        if profile:
            rate, mode = profile
            l_err_path = os.path.join(tmp, tag + ".loopspy.err")
            l_err = open(l_err_path, "w")
            largv = [cfg.loopspy, "record", "-p", str(wp.pid), "-d", str(cfg.window + 30), "-r", str(rate),
                     "--sampling", mode, "--collapsed", os.path.join(tmp, tag + ".collapsed"), "--no-status"]
            t_spawn = time.monotonic()
            lp = spawn(largv, subprocess.DEVNULL, l_err)
            want = os.cpu_count() if mode == "per-cpu" else 1

            def attached():
                if lp.poll() is not None:
                    raise BenchError(f"loopspy exited ({lp.returncode}) before attaching: {tail(l_err_path)}")
                return perf_event_fds(lp.pid) >= want

            wait_for(attached, deadline, "loopspy's perf events")
            out["attach_s"] = time.monotonic() - t_spawn
            out["target_cpu_ns_at_attach"] = thread_cpu_ns(wp.pid)
            out["loopspy_cpu_at_attach_s"] = proc_cpu_s(lp.pid)
            time.sleep(cfg.settle)
        busy0, self0, t0 = system_busy_s(), self_cpu_s(), time.monotonic()
        lcpu0 = proc_cpu_s(lp.pid) if lp else 0.0
        wcpu0 = proc_cpu_s(wp.pid)
        samplers = set(foreign_samplers())
        with open(go, "w"):
            pass
        wrc, wru = reap(wp, deadline, workload)
        samplers.update(foreign_samplers())
        out["foreign_samplers"] = sorted(samplers)
        busy1, self1, t1 = system_busy_s(), self_cpu_s(), time.monotonic()
        lcpu1 = proc_cpu_s(lp.pid) if lp and lp.poll() is None else None
        if wrc != 0:
            raise BenchError(f"{workload} exited with {wrc}: {tail(w_err.name)}")
        res = read_json(result, workload)
        out.update(res)
        if lp:
            lrc, lru = reap(lp, time.monotonic() + 30, "loopspy")
            err = tail(l_err_path, 20000)
            if lrc != 0:
                raise BenchError(f"loopspy exited with {lrc} ({' '.join(largv)}): {err}")
            m = None
            for line in err.splitlines():
                m = SUMMARY_RE.search(line) or m
            if not m:
                raise BenchError(f"no summary line in loopspy's stderr: {err}")
            s = {k: float(v) if k in ("sym", "elapsed") else int(v) for k, v in m.groupdict().items()}
            if s["samples"] == 0 or s["threads"] == 0:
                raise BenchError(f"loopspy recorded nothing: {m.group(0)}")
            out["summary"] = s
            out["summary_line"] = m.group(0)
            total_cpu = lru.ru_utime + lru.ru_stime
            out["loopspy_cpu_s"] = total_cpu
            out["loopspy_cpu_per_s"] = (total_cpu - out["loopspy_cpu_at_attach_s"]) / s["elapsed"]
            out["loopspy_maxrss_kib"] = lru.ru_maxrss
            at_attach = out["target_cpu_ns_at_attach"]
            start_cpu = at_attach / 1e9 if at_attach is not None else res["thread_time_at_go"]
            recorded_cpu = res["thread_time_at_exit"] - start_cpu
            out["expected_samples"] = rate * recorded_cpu
        # Other CPU consumers from go to the workload's exit: all busy time minus the workload,
        # loopspy and this script (10 ms resolution).
        foreign = (busy1 - busy0) - (wru.ru_utime + wru.ru_stime - wcpu0) - (self1 - self0)
        if lp and lcpu1 is not None:
            foreign -= lcpu1 - lcpu0
        out["foreign_cores"] = max(0.0, foreign) / (t1 - t0)
        out["target_cpu_share"] = res["window_thread_cpu_s"] / res["window_s"]
        return out
    finally:
        w_err.close()
        if l_err:
            l_err.close()
        for p in (wp, lp):
            if p is not None and p.pid in _children:
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                try:
                    os.waitpid(p.pid, 0)
                except ChildProcessError:
                    pass
                _children.discard(p.pid)


def foreign_samplers():
    """Other processes holding perf events or BPF links (another profiler's hooks tax every
    task on the machine, including the target, without showing up as their own CPU time)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in _children or int(entry) == os.getpid():
            continue
        try:
            for fd in os.listdir(f"/proc/{entry}/fd"):
                link = os.readlink(f"/proc/{entry}/fd/{fd}")
                if link in ("anon_inode:[perf_event]", "anon_inode:bpf_link"):
                    with open(f"/proc/{entry}/comm") as f:
                        found.append(f"{f.read().strip()}[{entry}]")
                    break
        except OSError:
            continue
    return found


def busy_cores_over(seconds):
    b0, s0, t0 = system_busy_s(), self_cpu_s(), time.monotonic()
    time.sleep(seconds)
    return ((system_busy_s() - b0) - (self_cpu_s() - s0)) / (time.monotonic() - t0)


class QuietGate:
    """Keeps other processes' CPU use out of the measurements, within a time budget: before a run
    it waits (up to max_wait s) for the machine to be idle, and a run during which other
    processes used more than `threshold` cores is repeated (up to `retries` times)."""

    def __init__(self, threshold, max_wait, retries, budget_s):
        self.threshold, self.max_wait, self.retries = threshold, max_wait, retries
        self.budget_s = budget_s
        self.spent_s = 0.0  # waiting, and runs that were thrown away
        self.waited_s = 0.0
        self.repeated = 0
        self.kept_noisy = 0

    def quiet(self):
        return not foreign_samplers() and busy_cores_over(0.25) <= self.threshold

    def wait(self):
        t0 = time.monotonic()
        end = t0 + min(self.max_wait, max(0.0, self.budget_s - self.spent_s))
        while time.monotonic() < end and not self.quiet():
            pass
        self.waited_s += time.monotonic() - t0
        self.spent_s += time.monotonic() - t0

    def disturbed(self, r):
        return r["foreign_cores"] > self.threshold or r["foreign_samplers"]

    def run(self, fn):
        for attempt in range(self.retries + 1):
            self.wait()
            t0 = time.monotonic()
            r = fn()
            if not self.disturbed(r):
                return r
            if attempt == self.retries or self.spent_s >= self.budget_s:
                break
            self.repeated += 1
            self.spent_s += time.monotonic() - t0
        self.kept_noisy += 1
        r["disturbed"] = True
        return r


def median_range(values, fmt):
    if not values:
        raise BenchError("no values for a table cell")
    return f"{fmt(statistics.median(values))} [{fmt(min(values))}–{fmt(max(values))}]"


def machine_facts():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return model


def git_facts():
    def git(*args):
        try:
            return subprocess.run(["git", "-C", REPO, *args], capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = [l for l in git("status", "--porcelain", "--untracked-files=no").splitlines() if l.strip()]
    return head + (f" + uncommitted changes in {len(dirty)} tracked files" if dirty else " (clean)")


def build_report(cfg, runs, started, finished, binary_facts, gate):
    ncpu = os.cpu_count()
    lines = []
    lines.append("# loopspy sampling overhead")
    lines.append("")
    lines.append(f"- command: `{' '.join([sys.executable] + sys.argv)}`")
    lines.append(f"- date: {started.isoformat(timespec='seconds')} to {finished.isoformat(timespec='seconds')}")
    lines.append(f"- kernel: {platform.release()}; CPU: {machine_facts()}, {ncpu} online CPUs")
    lines.append(f"- loopspy: {binary_facts}")
    lines.append(f"- target: `{cfg.python}`; window {cfg.window} s after {cfg.warmup} s warm-up; profiled runs "
                 f"wait {cfg.settle} s after loopspy's perf events appear before the window starts")
    lines.append(f"- {cfg.rounds} interleaved rounds: every profiled run is divided by the mean of the two "
                 f"baseline runs around it (B P B P … B), profiled configurations shuffled per round")
    lines.append(f"- nothing is pinned; with {ncpu} CPUs the single-threaded target and loopspy's user-space "
                 f"half share the machine (and with anything else running on it)")
    foreign = [r["foreign_cores"] for r in runs]
    samplers = sorted({x for r in runs for x in r["foreign_samplers"]})
    lines.append(f"- CPU used by other processes during the windows (cores): median {statistics.median(foreign):.2f}, "
                 f"max {max(foreign):.2f}; waited {gate.waited_s:.0f} s for quiet, repeated {gate.repeated} "
                 f"disturbed runs; **{gate.kept_noisy} of {len(runs)} runs kept although disturbed** (more than "
                 f"{cfg.quiet} cores of other load, or another process holding perf events/BPF links"
                 + (f": {', '.join(samplers[:6])}" if samplers else "") + ")")
    if cfg.rounds < 5:
        lines.append(f"- **quick run: {cfg.rounds} pairs per configuration, too few to trust small differences**")
    lines.append("")

    base = {w: [r for r in runs if r["workload"] == w and r["profile"] is None] for w in WORKLOADS}
    lines.append("Baselines (no profiler): " + "; ".join(
        f"{w} {median_range([r['ops_per_s'] for r in base[w]], lambda v: f'{v:,.0f}')} ops/s, "
        f"on-CPU {statistics.median([r['target_cpu_share'] for r in base[w]]):.0%} of the window"
        for w in WORKLOADS))
    lines.append("")
    lines.append("| workload | rate | mode | throughput profiled/baseline, median [min–max] | target on-CPU share "
                 "| loopspy CPU s per s | loopspy peak RSS MiB | samples/s | lost | fully symbolized "
                 "| samples / expected | attach s |")
    lines.append("|---|---:|---|---|---:|---|---:|---:|---:|---:|---|---:|")
    for w in WORKLOADS:
        for rate in cfg.rates:
            for mode in MODES:
                rs = [r for r in runs if r["workload"] == w and r["profile"] == (rate, mode)]
                if len(rs) != cfg.rounds:
                    raise BenchError(f"{w} {rate} Hz {mode}: {len(rs)} runs, expected {cfg.rounds}")
                ratios = [r["ratio"] for r in rs]
                cpu = [r["loopspy_cpu_per_s"] for r in rs]
                rss = [r["loopspy_maxrss_kib"] / 1024 for r in rs]
                sps = [r["summary"]["samples"] / r["summary"]["elapsed"] for r in rs]
                lost = [r["summary"]["lost"] / (r["summary"]["samples"] + r["summary"]["lost"]) for r in rs]
                sym = [r["summary"]["sym"] for r in rs]
                exp = [r["summary"]["samples"] / r["expected_samples"] for r in rs]
                share = [r["target_cpu_share"] for r in rs]
                att = [r["attach_s"] for r in rs]
                lines.append(
                    f"| {w} | {rate:,} Hz | {mode} | {median_range(ratios, lambda v: f'{v:.3f}')} "
                    f"| {statistics.median(share):.0%} "
                    f"| {median_range(cpu, lambda v: f'{v:.3f}')} | {max(rss):.1f} "
                    f"| {statistics.median(sps):,.0f} "
                    f"| {statistics.median(lost):.2%} (max {max(lost):.2%}) "
                    f"| {statistics.median(sym):.1f}% (min {min(sym):.1f}%) "
                    f"| {median_range(exp, lambda v: f'{v:.2f}')} | {statistics.median(att):.2f} |")
    lines.append("")
    lines.append("Columns: *throughput* is the workload's own ops/s over the window (cpu_ops: fib(12) calls; "
                 "sleep0: task iterations); *target on-CPU share* is the loop thread's CPU time / wall time in "
                 "the window (below 100% means it waited for a CPU); *loopspy CPU s per s* is loopspy's "
                 "utime+stime after its perf events appeared, per second of recording (the BPF program's own "
                 "cost runs in the sampled thread's context and shows up in the throughput, not here); *peak "
                 "RSS* is the largest ru_maxrss over the runs; *lost* is lost / (samples + lost) from loopspy's "
                 "summary line; *samples / expected* is samples / (rate × the target thread's CPU time while "
                 "loopspy was attached), so 1.00 is one sample per period of on-CPU time.")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="about a minute: 2 rounds, 0.5 s windows")
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "results", "sampling_overhead.md"))
    ap.add_argument("--loopspy", default=os.path.join(REPO, "build", "loopspy"))
    ap.add_argument("--python", default=DEFAULT_PYTHON, help="the target interpreter")
    ap.add_argument("--rounds", type=int, help="pairs per configuration (default 5, quick 2)")
    ap.add_argument("--window", type=float, help="measurement window in seconds (default 1.5, quick 0.5)")
    ap.add_argument("--rates", default="100,1000,10000")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quiet", type=float, default=0.25,
                    help="a run during which other processes used more cores than this, or another process "
                         "held perf events or BPF links, is repeated")
    ap.add_argument("--quiet-budget", type=float,
                    help="seconds the suite may spend waiting for a quiet machine and repeating disturbed runs "
                         "(default 60, quick 10); the default keeps the suite within ~6 minutes")
    cfg = ap.parse_args()
    cfg.rounds = cfg.rounds or (2 if cfg.quick else 5)
    cfg.window = cfg.window or (0.5 if cfg.quick else 1.5)
    cfg.warmup = 0.2 if cfg.quick else 0.3
    cfg.settle = 0.1 if cfg.quick else 0.2
    cfg.rates = [int(x) for x in cfg.rates.split(",")]
    if cfg.quiet_budget is None:
        cfg.quiet_budget = 10.0 if cfg.quick else 60.0
    if os.geteuid() != 0:
        raise BenchError("loopspy needs root")
    for path in [cfg.python] + list(WORKLOADS.values()):
        if not os.path.exists(path):
            raise BenchError(f"missing {path}")
    if not os.access(cfg.loopspy, os.X_OK):
        raise BenchError(f"no loopspy binary at {cfg.loopspy} (run scripts/build.sh)")

    tmp = tempfile.mkdtemp(prefix="loopspy-bench-")
    try:
        # Benchmark one fixed binary even if build/ is rebuilt meanwhile.
        snapshot = os.path.join(tmp, "loopspy")
        shutil.copy2(cfg.loopspy, snapshot)
        with open(snapshot, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()[:16]
        version = subprocess.run([snapshot, "-V"], capture_output=True, text=True, timeout=10)
        if version.returncode != 0:
            raise BenchError(f"{cfg.loopspy} -V failed: {version.stderr.strip()}")
        mtime = datetime.datetime.fromtimestamp(os.stat(cfg.loopspy).st_mtime).isoformat(timespec="seconds")
        binary_facts = (f"{version.stdout.strip()}, `{cfg.loopspy}` built {mtime}, sha256 {digest}…, "
                        f"source {git_facts()}")
        cfg.loopspy = snapshot

        started = datetime.datetime.now().astimezone()
        rng = random.Random(cfg.seed)
        configs = [(rate, mode) for rate in cfg.rates for mode in MODES]
        runs, index = [], 0
        # Other sessions may share the machine: wait for quiet, repeat disturbed runs, within a
        # budget (60 s extra, quick 15 s) so the suite still ends by itself.
        gate = QuietGate(threshold=cfg.quiet, max_wait=5.0, retries=2, budget_s=cfg.quiet_budget)
        total = cfg.rounds * len(WORKLOADS) * (2 * len(configs) + 1)
        for rnd in range(cfg.rounds):
            order = list(WORKLOADS) if rnd % 2 == 0 else list(reversed(WORKLOADS))
            for w in order:
                shuffled = configs[:]
                rng.shuffle(shuffled)
                seq = [None]
                for c in shuffled:
                    seq += [c, None]
                done = []
                for prof in seq:
                    index += 1
                    r = gate.run(lambda: run_once(cfg, w, prof, tmp))
                    done.append(r)
                    print(f"[{index}/{total}] round {rnd + 1} {w} "
                          + (f"{prof[0]} Hz {prof[1]}" if prof else "baseline")
                          + f": {r['ops_per_s']:,.0f} ops/s"
                          + (f", {r['summary']['samples']} samples, loopspy {r['loopspy_cpu_per_s']:.3f} CPU s/s"
                             if prof else ""), file=sys.stderr, flush=True)
                for i, r in enumerate(done):
                    if r["profile"] is not None:
                        r["ratio"] = r["ops_per_s"] / ((done[i - 1]["ops_per_s"] + done[i + 1]["ops_per_s"]) / 2)
                runs += done
        finished = datetime.datetime.now().astimezone()
        report = build_report(cfg, runs, started, finished, binary_facts, gate)
    finally:
        kill_children()
        shutil.rmtree(tmp, ignore_errors=True)
    sys.stdout.write(report)
    os.makedirs(os.path.dirname(os.path.abspath(cfg.out)), exist_ok=True)
    with open(cfg.out, "w") as f:
        f.write(report)
    raw = os.path.splitext(cfg.out)[0] + ".json"
    with open(raw, "w") as f:
        json.dump(runs, f, indent=1, default=str)
    print(f"wrote {cfg.out} and {raw}", file=sys.stderr)


if __name__ == "__main__":
    try:
        main()
    except BenchError as e:
        kill_children()
        print(f"sampling_overhead: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        kill_children()
        print("sampling_overhead: interrupted", file=sys.stderr)
        sys.exit(130)
