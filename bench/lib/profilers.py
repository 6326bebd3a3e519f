"""Running a profiler against a process: loopspy, and Python 3.15's profiling.sampling.

A spec (LoopspySpec, SamplingSpec) says what to run; start(pid, ...) returns a ProfilerRun:
wait_attached() returns once the profiler is sampling (loopspy: its perf events exist;
profiling.sampling: its sampling loop has started), cpu_ns() is its CPU time so far (all threads, schedstat, ns),
and finish() reaps it and returns what it printed, parsed, plus its CPU time (rusage) and its
own peak RSS (VmHWM, read from /proc while it runs: a child's ru_maxrss keeps the high-water mark
of the harness it was forked from). A profiler that fails,
prints no summary or records nothing raises BenchError: no empty row.

profiling.sampling runs through lib/sampling_launcher.py, which runs it unchanged but writes a
file with the time as its sampling loop starts: that is when it has attached.
"""
import json
import math
import os
import re
import time

from . import procs

SAMPLING_LAUNCHER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sampling_launcher.py")

LOOPSPY_SUMMARY_RE = re.compile(
    r"loopspy: (?P<samples>\d+) samples \((?P<sym>[\d.]+)% fully symbolized\), (?P<lost>\d+) lost "
    r"\((?P<ringbuf>\d+) ring buffer full, (?P<unreadable>\d+) unreadable, (?P<unknown>\d+) before the thread "
    r"was known(?:, (?P<undelivered>\d+) never delivered)?\), (?P<off_cpu>\d+) off-CPU intervals \((?P<off_cpu_lost>\d+) lost\), (?P<waits>\d+) selector waits, "
    r"(?P<threads>\d+) Python threads seen, (?P<elapsed>[\d.]+) s")
LOOPSPY_WROTE_RE = re.compile(r"loopspy: wrote recording to (?P<path>.+) \((?P<bytes>\d+) bytes\)")

SAMPLING_CAPTURED_RE = re.compile(r"Captured (?P<samples>[\d,.]+) samples? in (?P<seconds>[\d,.]+) seconds")
SAMPLING_RATE_RE = re.compile(r"Sample rate: (?P<rate>[\d,.]+) samples/sec")
SAMPLING_ERROR_RE = re.compile(r"Error rate: (?P<error>[\d,.]+)")


def _num(text):
    return float(text.replace(",", ""))


class LoopspySpec:
    kind = "loopspy"

    def __init__(self, binary, rate, sampling="per-cpu", extra=()):
        self.binary, self.rate, self.sampling, self.extra = binary, rate, sampling, list(extra)

    @property
    def label(self):
        return f"loopspy {self.rate:,} Hz" + ("" if self.sampling == "per-cpu" else f" ({self.sampling})")

    def start(self, pid, tmp, tag, duration):
        return LoopspyRun(self, pid, tmp, tag, duration)


class SamplingSpec:
    """python -m profiling.sampling attach (the target must run the same Python version)."""
    kind = "profiling.sampling"

    def __init__(self, python, rate, async_aware=False, mode="wall", extra=()):
        self.python, self.rate, self.async_aware, self.mode, self.extra = python, rate, async_aware, mode, list(extra)

    @property
    def label(self):
        how = "--async-aware" if self.async_aware else f"{self.mode} mode"
        return f"profiling.sampling {how} {self.rate:,} Hz"

    def start(self, pid, tmp, tag, duration):
        return SamplingRun(self, pid, tmp, tag, duration)


class _Run:
    def __init__(self, argv, tmp, tag, what, stdout_path=None, env=None):
        self.argv, self.what = [str(a) for a in argv], what
        self.err_path = os.path.join(tmp, tag + ".profiler.err")
        self.out_path = stdout_path or os.path.join(tmp, tag + ".profiler.out")
        self._err, self._out = open(self.err_path, "w"), open(self.out_path, "w")
        self.t_spawn_ns = time.monotonic_ns()
        self.proc = procs.spawn(self.argv, stdout=self._out, stderr=self._err, env=env)
        self.pid = self.proc.pid
        self.attach_s = None
        self.hwm_kib = None

    def _check_alive(self):
        if self.proc.poll() is not None:
            raise procs.BenchError(f"{self.what} exited ({self.proc.returncode}) before it attached: "
                                   f"{' '.join(self.argv)}\n{procs.tail(self.err_path)}{procs.tail(self.out_path)}")

    def wait_attached(self, deadline):
        def ok():
            self._check_alive()
            return self.attached()
        procs.wait_for(ok, deadline, f"{self.what} to attach")
        self.attach_s = (time.monotonic_ns() - self.t_spawn_ns) / 1e9
        # A first reading at once: a profiler whose run is short may be gone (a zombie has no
        # VmHWM) before the next poll reads it.
        self.peak_rss()

    def cpu_ns(self):
        self.peak_rss()
        return procs.process_cpu_ns(self.pid)

    def peak_rss(self):
        """Reads the profiler's VmHWM; the last reading before it exits is its peak RSS."""
        kib = procs.vm_hwm_kib(self.pid)
        if kib is not None:
            self.hwm_kib = max(self.hwm_kib or 0, kib)

    def finish(self, deadline, on_poll=None):
        def poll():
            self.peak_rss()
            if on_poll:
                on_poll()
        try:
            rc, ru = procs.reap(self.proc, deadline, self.what, poll)
        finally:
            self._err.close()
            self._out.close()
        text = procs.tail(self.err_path, 50000) + "\n" + procs.tail(self.out_path, 50000)
        if rc != 0:
            raise procs.BenchError(f"{self.what} exited with {rc} ({' '.join(self.argv)}):\n{text[-3000:]}")
        if not self.hwm_kib:
            raise procs.BenchError(f"{self.what}: its peak RSS (VmHWM) was never read")
        out = {"cpu_s": ru.ru_utime + ru.ru_stime, "maxrss_kib": self.hwm_kib, "attach_s": self.attach_s}
        out.update(self.parse(text))
        return out

    def kill(self):
        procs.kill(self.proc)
        for f in (self._err, self._out):
            if not f.closed:
                f.close()


class LoopspyRun(_Run):
    def __init__(self, spec, pid, tmp, tag, duration):
        self.spec = spec
        self.recording = os.path.join(tmp, tag + ".lspy")
        argv = [spec.binary, "record", "-p", pid, "-d", duration, "-r", spec.rate, "--sampling", spec.sampling,
                "-o", self.recording, "--no-status"] + spec.extra
        super().__init__(argv, tmp, tag, "loopspy")

    def attached(self):
        want = os.cpu_count() if self.spec.sampling == "per-cpu" else 1
        return procs.perf_event_fds(self.pid) >= want

    def parse(self, text):
        m = None
        for line in text.splitlines():
            m = LOOPSPY_SUMMARY_RE.search(line) or m
        if not m:
            raise procs.BenchError(f"no summary line in loopspy's output ({' '.join(self.argv)}):\n{text[-3000:]}")
        s = {k: float(v) if k in ("sym", "elapsed") else int(v or 0) for k, v in m.groupdict().items()}
        if s["samples"] == 0 or s["threads"] == 0:
            raise procs.BenchError(f"loopspy recorded nothing: {m.group(0)}")
        w = LOOPSPY_WROTE_RE.search(text)
        return {"summary": s, "summary_line": m.group(0), "recording": self.recording,
                "recording_bytes": int(w.group("bytes")) if w else os.path.getsize(self.recording)}


def gecko_samples(path, tid, on_cpu_only=False):
    """[(CLOCK_MONOTONIC ns, [function names, outermost first])] of thread `tid` in a Gecko
    profile written by profiling.sampling (--gecko): meta.startTime is CLOCK_MONOTONIC in ms, and
    each sample's time is ms after it, so its samples can be cut to the same window as loopspy's.
    on_cpu_only keeps the samples inside the thread's "OnCPU" markers (what --mode cpu keeps;
    profiling.sampling refuses --mode with --gecko)."""
    with open(path) as f:
        d = json.load(f)
    start_ms = d["meta"]["startTime"]
    names = d["shared"]["stringArray"]
    out = []
    for t in d["threads"]:
        if t["tid"] != tid:
            continue
        m = t["markers"]
        on_cpu = sorted((a, b) for data, a, b in zip(m["data"], m["startTime"], m["endTime"])
                        if isinstance(data, dict) and data.get("type") == "OnCPU")
        stacks, frames, funcs = t["stackTable"], t["frameTable"], t["funcTable"]
        memo = {}

        def chain(stack):
            if stack is None:
                return []
            if stack not in memo:
                func = frames["func"][stacks["frame"][stack]]
                memo[stack] = chain(stacks["prefix"][stack]) + [names[funcs["name"][func]]]
            return memo[stack]

        samples = t["samples"]
        for stack, ms in zip(samples["stack"], samples["time"]):
            if on_cpu_only and not any(a <= ms <= b for a, b in on_cpu):
                continue
            out.append((int((start_ms + ms) * 1e6), chain(stack)))
    return out


class SamplingRun(_Run):
    def __init__(self, spec, pid, tmp, tag, duration):
        self.spec = spec
        # Gecko, not collapsed: its samples carry times, so they are counted over the same window
        # as loopspy's (collapsed stacks would cover the peer's whole run, settling included).
        self.gecko = os.path.join(tmp, tag + ".gecko.json")
        self.ready = os.path.join(tmp, tag + ".sampling")
        argv = [spec.python, SAMPLING_LAUNCHER, self.ready, "attach", "-r", spec.rate, "-d", math.ceil(duration)]
        # --mode cannot go with --gecko: wall is its default, and cpu is read from its OnCPU markers.
        argv += ["--async-aware"] if spec.async_aware else []
        argv += spec.extra + ["--gecko", "-o", self.gecko, pid]
        env = dict(os.environ, LC_ALL="C", PYTHONUNBUFFERED="1")
        super().__init__(argv, tmp, tag, "profiling.sampling", env=env)

    def attached(self):
        return os.path.exists(self.ready)

    def sampling_started_ns(self):
        with open(self.ready) as f:
            return int(f.read())

    def parse(self, text):
        c, r, e = SAMPLING_CAPTURED_RE.search(text), SAMPLING_RATE_RE.search(text), SAMPLING_ERROR_RE.search(text)
        if not (c and r and e):
            raise procs.BenchError(f"profiling.sampling printed no statistics ({' '.join(self.argv)}):\n{text[-3000:]}")
        n, secs, err = _num(c.group("samples")), _num(c.group("seconds")), _num(e.group("error"))
        if n == 0:
            raise procs.BenchError(f"profiling.sampling captured no sample: {c.group(0)}")
        good = n * (1 - err / 100)
        return {"summary": {"samples": int(n), "seconds": secs, "rate": _num(r.group("rate")), "error_pct": err,
                            "good_samples": good, "requested": self.spec.rate * secs},
                "summary_line": f"{c.group(0)}; {r.group(0)}; {e.group(0)}", "gecko": self.gecko}
