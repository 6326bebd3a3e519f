"""Running a bench/workloads/*.py program through its ready/go/result protocol (_window.py)."""
import json
import os
import time

from . import procs

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKLOADS = {name: os.path.join(REPO, "bench", "workloads", name + ".py")
             for name in ("cpu_ops", "sleep0", "cpu_shares")}


class WorkloadRun:
    """start(): the workload runs and warms up; wait_ready(); go() opens its timed window;
    finish() reaps it and returns its result dict (plus "rusage")."""

    def __init__(self, python, name, tmp, tag, seconds, warmup=0.3, env=None, go_file=True):
        self.name, self.tmp, self.seconds = name, tmp, seconds
        self.ready_path = os.path.join(tmp, tag + ".ready")
        self.go_path = os.path.join(tmp, tag + ".go") if go_file else None
        self.result_path = os.path.join(tmp, tag + ".json")
        self.err_path = os.path.join(tmp, tag + ".workload.err")
        argv = [python, WORKLOADS[name], "--seconds", seconds, "--warmup", warmup, "--ready", self.ready_path,
                "--result", self.result_path, "--max-wait", 60]
        if self.go_path:
            argv += ["--go", self.go_path]
        full_env = None
        if env:
            full_env = dict(os.environ)
            full_env.update(env)
        self._err = open(self.err_path, "w")
        self.deadline = time.monotonic() + seconds + warmup + 90
        self.proc = procs.spawn(argv, stderr=self._err, env=full_env)
        self.pid = self.proc.pid

    def wait_ready(self):
        procs.wait_for(lambda: os.path.exists(self.ready_path) or self.proc.poll() is not None, self.deadline,
                       f"{self.name} readiness")
        if not os.path.exists(self.ready_path):
            raise procs.BenchError(f"{self.name} exited before it was ready: {procs.tail(self.err_path)}")

    def go(self):
        with open(self.go_path, "w"):
            pass

    def finish(self, on_poll=None):
        """Reaps the workload (its window ends by itself); returns its result."""
        try:
            rc, ru = procs.reap(self.proc, self.deadline, self.name, on_poll)
        finally:
            self._err.close()
        if rc != 0:
            raise procs.BenchError(f"{self.name} exited with {rc}: {procs.tail(self.err_path)}")
        try:
            with open(self.result_path) as f:
                res = json.loads(f.read())
        except (OSError, ValueError) as e:
            raise procs.BenchError(f"{self.name}: no result ({e})")
        res["rusage_cpu_s"] = ru.ru_utime + ru.ru_stime
        return res

    def kill(self):
        procs.kill(self.proc)
        if not self._err.closed:
            self._err.close()
