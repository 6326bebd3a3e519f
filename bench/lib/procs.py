"""Child processes with deadlines, and the /proc readers the measurements use.

Every process the suite starts goes through spawn(), so a failure (or Ctrl-C) ends exactly those
processes and no other.
"""
import os
import signal
import subprocess
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A run failed or produced no data: the suite stops rather than print an empty row."""


_children = set()


def spawn(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=None):
    p = subprocess.Popen([str(a) for a in argv], stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL,
                         close_fds=True, env=env)
    _children.add(p.pid)
    return p


def kill(p):
    """SIGKILL and reap one child of ours (no-op when already reaped)."""
    if p is None or p.pid not in _children:
        return
    try:
        os.kill(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(p.pid, 0)
    except ChildProcessError:
        pass
    _children.discard(p.pid)


def kill_children():
    for pid in list(_children):
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        _children.discard(pid)


def vm_hwm_kib(pid):
    """The process's own peak RSS (VmHWM in /proc/PID/status), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reap(p, deadline, what, on_poll=None):
    """Waits (polling, so there is a deadline) for p; returns (exit code, rusage). on_poll() is
    called on every poll (every 5 ms) while p runs."""
    while True:
        if on_poll:
            on_poll()
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid == p.pid:
            _children.discard(p.pid)
            p.returncode = os.waitstatus_to_exitcode(status)
            return p.returncode, ru
        if time.monotonic() > deadline:
            raise BenchError(f"{what} (pid {p.pid}) did not finish in time")
        time.sleep(0.005)


def run_timed(argv, timeout, what, stdout=subprocess.DEVNULL, stderr_path=None, env=None):
    """Runs argv to completion; returns (wall seconds, rusage, stderr text), the rusage's
    ru_maxrss replaced by the process's own peak RSS (VmHWM, polled while it runs; a child's
    ru_maxrss keeps the high-water mark of the harness it was forked from). Fails on a non-zero exit."""
    err = open(stderr_path, "w") if stderr_path else subprocess.DEVNULL
    hwm = [0]
    try:
        t0 = time.monotonic()
        p = spawn(argv, stdout=stdout, stderr=err, env=env)
        rc, ru = reap(p, t0 + timeout, what, lambda: hwm.__setitem__(0, max(hwm[0], vm_hwm_kib(p.pid) or 0)))
        wall = time.monotonic() - t0
    finally:
        if stderr_path:
            err.close()
    text = tail(stderr_path, 20000) if stderr_path else ""
    if rc != 0:
        raise BenchError(f"{what} exited with {rc}: {' '.join(map(str, argv))}\n{text}")
    return wall, _Usage(ru.ru_utime, ru.ru_stime, hwm[0]), text


class _Usage:
    def __init__(self, utime, stime, maxrss_kib):
        self.ru_utime, self.ru_stime, self.ru_maxrss = utime, stime, maxrss_kib


def wait_for(cond, deadline, what, interval=0.002):
    while not cond():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out waiting for {what}")
        time.sleep(interval)


def tail(path, n=2000):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-n:]
    except (OSError, TypeError):
        return ""


def proc_cpu_s(pid):
    """utime+stime of a live process from /proc/PID/stat (10 ms resolution), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def thread_cpu_ns(pid, tid=None):
    """On-CPU time of one thread (schedstat sum_exec_runtime, ns), or None where schedstat is missing."""
    try:
        with open(f"/proc/{pid}/task/{tid or pid}/schedstat") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def process_cpu_ns(pid):
    """On-CPU time of all live threads of a process (ns, from schedstat), or None if it is gone."""
    total, seen = 0, False
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tids:
        v = thread_cpu_ns(pid, tid)
        if v is not None:
            total, seen = total + v, True
    return total if seen else None


def rss_kib(pid):
    """VmRSS of a live process in KiB, or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
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


class CpuPoller:
    """Reads a live process's CPU time (all threads, schedstat, ns) every `interval` seconds, so its
    CPU over an interval can be taken from readings inside it, even once the process is gone."""

    def __init__(self, pid, interval=0.02):
        self.pid, self.interval = pid, interval
        self.readings = []  # (monotonic ns, cpu ns)
        self._next = 0.0

    def poll(self, force=False):
        t = time.monotonic()
        if not force and t < self._next:
            return
        self._next = t + self.interval
        cpu = process_cpu_ns(self.pid)
        if cpu is not None:
            self.readings.append((time.monotonic_ns(), cpu))

    def last(self):
        return self.readings[-1][1] if self.readings else None

    def rate(self, start_ns, end_ns):
        """CPU seconds per second between the first reading at or after start_ns and the last at or
        before end_ns, or None if there are not two such readings."""
        inside = [r for r in self.readings if start_ns <= r[0] <= end_ns]
        if len(inside) < 2 or inside[-1][0] == inside[0][0]:
            return None
        return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])
