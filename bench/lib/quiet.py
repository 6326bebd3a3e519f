"""Keeping other processes' load out of the measurements, within a time budget.

Before a run the gate waits (bounded) until other processes use at most `threshold` cores and no
other process holds perf events or BPF links (another profiler's hooks tax every task on the
machine, the target included, without showing up as CPU time of their own). Each run measures
the CPU other processes used during it; a disturbed run is repeated (bounded), and a run kept
although disturbed is counted, so the report can say how noisy the machine was.
"""
import os
import resource
import time

from . import procs


def system_busy_s():
    """CPU time all CPUs spent not idle (user..steal, no idle/iowait), in seconds."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / procs.CLK_TCK


def self_cpu_s():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def foreign_samplers():
    """Processes other than ours holding perf events or BPF links."""
    found = []
    ours = procs._children | {os.getpid()}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in ours:
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


class LoadMeter:
    """CPU used by processes other than `pids` (and this script) between start() and stop(), in cores."""

    def start(self, pids):
        self.pids = [p for p in pids if p]
        self.busy0, self.self0, self.t0 = system_busy_s(), self_cpu_s(), time.monotonic()
        self.cpu0 = {p: procs.process_cpu_ns(p) or 0 for p in self.pids}
        self.samplers = set(foreign_samplers())

    def add(self, pid):
        """A process of ours started after start() (the profiler under test): all its CPU time
        counts as ours, not as other load."""
        self.pids.append(pid)
        self.cpu0[pid] = 0

    def stop(self, final_cpu_ns=None):
        """final_cpu_ns: {pid: ns}, the CPU time of processes that may have exited meanwhile (used
        when they are gone)."""
        busy, own = system_busy_s() - self.busy0, self_cpu_s() - self.self0
        wall = time.monotonic() - self.t0
        final_cpu_ns = final_cpu_ns or {}
        ours = 0.0
        for p in self.pids:
            now = procs.process_cpu_ns(p)
            if now is None:
                now = final_cpu_ns.get(p)
            if now is not None:
                ours += (now - self.cpu0[p]) / 1e9
        self.samplers.update(foreign_samplers())
        return {"foreign_cores": max(0.0, busy - own - ours) / wall if wall > 0 else 0.0,
                "foreign_samplers": sorted(self.samplers)}


class QuietGate:
    def __init__(self, threshold=0.25, max_wait=5.0, retries=2, budget_s=60.0):
        self.threshold, self.max_wait, self.retries, self.budget_s = threshold, max_wait, retries, budget_s
        self.spent_s = 0.0  # waiting, and runs thrown away
        self.waited_s = 0.0
        self.repeated = 0
        self.kept_noisy = 0
        self.runs = 0
        self.foreign = []  # foreign cores of every kept run
        self.samplers = set()

    def quiet(self):
        return not foreign_samplers() and busy_cores_over(0.2) <= self.threshold

    def wait(self):
        t0 = time.monotonic()
        end = t0 + min(self.max_wait, max(0.0, self.budget_s - self.spent_s))
        while time.monotonic() < end and not self.quiet():
            pass
        self.waited_s += time.monotonic() - t0
        self.spent_s += time.monotonic() - t0

    def disturbed(self, r):
        return r.get("foreign_cores", 0.0) > self.threshold or bool(r.get("foreign_samplers"))

    def run(self, fn):
        """fn() -> dict with foreign_cores and foreign_samplers (see LoadMeter)."""
        for attempt in range(self.retries + 1):
            self.wait()
            t0 = time.monotonic()
            r = fn()
            if not self.disturbed(r):
                break
            if attempt == self.retries or self.spent_s >= self.budget_s:
                self.kept_noisy += 1
                r["disturbed"] = True
                break
            self.repeated += 1
            self.spent_s += time.monotonic() - t0
        self.runs += 1
        self.foreign.append(r.get("foreign_cores", 0.0))
        self.samplers.update(r.get("foreign_samplers", []))
        return r

    def facts(self):
        return {"threshold_cores": self.threshold, "waited_s": round(self.waited_s, 1), "repeated": self.repeated,
                "kept_disturbed": self.kept_noisy, "runs": self.runs,
                "foreign_cores_median": sorted(self.foreign)[len(self.foreign) // 2] if self.foreign else 0.0,
                "foreign_cores_max": max(self.foreign, default=0.0), "foreign_samplers": sorted(self.samplers)[:8]}
