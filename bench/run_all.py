#!/usr/bin/python3
"""Runs every part of the benchmark suite, one after the other, against one copy of the loopspy
binary, then writes the results document.

  startup    time from `loopspy record -p PID` to the first sample            (issue item 6)
  accuracy   CPU shares and slow-callback durations against the truth          (item 4)
  rate_loss  samples kept as the rate rises, loopspy and profiling.sampling    (item 3)
  overhead   target throughput and the profilers' own CPU and RSS, interleaved (items 1, 2)
  recording  bytes per sample, recorder RSS over a long recording, replay speed (item 5)
  bystander  bystanders' syscalls and context switches, timer interrupts     (issue 11)

Full run (about 30 minutes on a quiet 2-core machine): results in bench/results/PART.json and
BENCHMARKS.md. --quick (about 2 minutes, a smoke test of every part): bench/results/quick/ and
bench/results/quick/BENCHMARKS.md, leaving the full results alone. Every part is bounded in time
(a part that overruns is killed) and any part that fails, or any peer that could not run, fails
the whole suite with a non-zero status and no results document.

usage: run_all.py [--quick] [--loopspy PATH] [--python PATH] [--parts a,b] [--results DIR]
                  [--benchmarks FILE] [--duration S (the long recording)]
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import env, procs  # noqa: E402
import report  # noqa: E402

BENCH = os.path.dirname(os.path.abspath(__file__))
PARTS = ("startup", "accuracy", "rate_loss", "overhead", "recording", "bystander")
# Seconds a part may take before it is killed: (full, quick). The recording's grows with --duration.
LIMITS = {"startup": (240, 120), "accuracy": (420, 180), "rate_loss": (600, 180), "overhead": (1800, 300),
          "recording": (300, 120), "bystander": (900, 240)}


def run_part(cmd, limit):
    """Runs one part in a process group of its own; returns its exit status, or None if it ran over
    its limit (it is then asked to stop, SIGTERM: it ends what it started; then its group is killed)."""
    p = subprocess.Popen(cmd, start_new_session=True)
    try:
        return p.wait(timeout=limit)
    except (subprocess.TimeoutExpired, KeyboardInterrupt) as e:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
        if isinstance(e, KeyboardInterrupt):
            raise
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--loopspy", default=os.path.join(env.REPO, "build", "loopspy"))
    ap.add_argument("--python", default=env.SID_315)
    ap.add_argument("--parts", default=",".join(PARTS))
    ap.add_argument("--results", help="directory for PART.json (default bench/results, quick bench/results/quick)")
    ap.add_argument("--benchmarks", help="the results document (default BENCHMARKS.md, quick RESULTS/BENCHMARKS.md)")
    ap.add_argument("--duration", type=float, help="length of the long recording (default 600 s, quick 20 s)")
    a = ap.parse_args()
    results = a.results or os.path.join(env.RESULTS, "quick" if a.quick else "")
    doc = a.benchmarks or (os.path.join(results, "BENCHMARKS.md") if a.quick else os.path.join(env.REPO, "BENCHMARKS.md"))
    parts = [p for p in a.parts.split(",") if p]
    for p in parts:
        if p not in PARTS:
            sys.exit(f"run_all: unknown part {p} (known: {', '.join(PARTS)})")
    if os.geteuid() != 0:
        sys.exit("run_all: FAILED: loopspy needs root")
    tmp = tempfile.mkdtemp(prefix="loopspy-bench-")
    started, t0 = env.now(), time.monotonic()
    try:
        try:
            binary, facts = env.snapshot_loopspy(a.loopspy, tmp)
            env.python_facts(a.python, need_sampling=True)
        except procs.BenchError as e:
            sys.exit(f"run_all: FAILED: {e}")
        if set(parts) != set(PARTS) and not (a.results and a.benchmarks):
            sys.exit("run_all: --parts runs a subset: give --results DIR and --benchmarks FILE too; the results "
                     "document is one run of every part, by one binary")
        # Every part's results carry this run's id; the document is written only from one run's.
        run_id = f"{started}/{facts['sha256']}"
        os.environ["LOOPSPY_BENCH_RUN"] = run_id
        os.makedirs(results, exist_ok=True)
        for stale in parts:
            if os.path.exists(os.path.join(results, stale + ".json")):
                os.remove(os.path.join(results, stale + ".json"))
        for p in parts:
            limit = LIMITS[p][1 if a.quick else 0]
            cmd = [sys.executable, os.path.join(BENCH, p + ".py"), "--loopspy", binary, "--python", a.python,
                   "--out", os.path.join(results, p + ".json")] + (["--quick"] if a.quick else [])
            if p == "overhead":
                cmd += ["--sampling", "per-cpu,per-thread"]  # both modes side by side (issue 11)
            if p == "recording":
                duration = a.duration or (20 if a.quick else 600)
                cmd += ["--duration", str(duration)]
                limit += duration
            env.progress("run_all", f"{p} (at most {limit / 60:.0f} min; {(time.monotonic() - t0) / 60:.1f} min so far)")
            rc = run_part(cmd, limit)
            if rc is None:
                sys.exit(f"run_all: FAILED: {p} ran over its {limit} s limit and was stopped")
            if rc != 0:
                sys.exit(f"run_all: FAILED: {p} exited with {rc}; no results document written")
        command = os.environ.get("LOOPSPY_BENCH_COMMAND") or " ".join(["bench/run_all.py"] + sys.argv[1:])
        run = {"command": command, "run_id": run_id, "started": started, "finished": env.now(),
               "minutes": round((time.monotonic() - t0) / 60, 1), "loopspy": facts, "parts": parts}
        report.write(results, doc, run)
        env.progress("run_all", f"done in {run['minutes']} min: {doc}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
