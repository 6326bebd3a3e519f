"""CPU-bound asyncio workload whose loop thread spends known shares of its CPU time in three
functions (weights 5:3:2, calls of irregular length), timed with time.thread_time() around each
call: the truth a profile is checked against (as tests/workloads/cpu_shares.py, plus the
window protocol of _window.py). One "op" is one call.

Besides the _window.py fields, the result has "timeline": every ~10 ms, [time.monotonic_ns(),
time.thread_time(), {function: CPU seconds spent in it so far}], so the truth can be taken over
any interval (a profiler's own recording window).

usage: cpu_shares.py --seconds S [--ready FILE] [--go FILE] [--warmup S] [--result FILE]
"""
import asyncio
import importlib.util
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _window  # noqa: E402

# The functions and calls the tests profile, from the tests' own workload (same name as this file,
# so loaded by path).
_spec = importlib.util.spec_from_file_location(
    "tests_cpu_shares", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "workloads",
                                     "cpu_shares.py"))
_tests = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_tests)
WEIGHTS, timed_call = _tests.WEIGHTS, _tests.timed_call

spent = {n: 0.0 for n in WEIGHTS}
timeline = []


async def worker(counter, stop, rng):
    while not stop.is_set():
        timed_call(rng, spent)
        counter.n += 1
        await asyncio.sleep(0)


async def recorder(stop):
    while not stop.is_set():
        timeline.append([time.monotonic_ns(), time.thread_time(), dict(spent)])
        await asyncio.sleep(0.01)
    timeline.append([time.monotonic_ns(), time.thread_time(), dict(spent)])


def main():
    args = _window.parse_args(__doc__.splitlines()[0])
    rng = random.Random(42)
    _window.run(args, lambda counter, stop: [worker(counter, stop, rng) for _ in range(4)] + [recorder(stop)],
                extra=lambda: {"timeline": timeline})


if __name__ == "__main__":
    main()
