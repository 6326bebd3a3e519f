"""Runs `python -m profiling.sampling ARGS...` unchanged, except that it writes READY_FILE (the
CLOCK_MONOTONIC time in ns) as the sampling loop starts, right before the first sample, so the
harness knows when profiling.sampling is really sampling (its imports alone can take longer than
a short measurement window).

usage: python sampling_launcher.py READY_FILE attach [options] PID
"""
import os
import runpy
import sys
import time

ready = sys.argv.pop(1)

from profiling.sampling import sample as _sample  # noqa: E402

_original = _sample.SampleProfiler.sample


def _signal_then_sample(self, *args, **kwargs):
    tmp = ready + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{time.monotonic_ns()}\n")
    os.replace(tmp, ready)
    return _original(self, *args, **kwargs)


_sample.SampleProfiler.sample = _signal_then_sample
runpy.run_module("profiling.sampling", run_name="__main__", alter_sys=True)
