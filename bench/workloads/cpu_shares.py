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
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _window  # noqa: E402

WEIGHTS = {"burn_alpha": 5, "burn_beta": 3, "burn_gamma": 2}


def spin(iterations):
    x = 0
    for i in range(iterations):
        x += i * i % 7
    return x


def burn_alpha(n):
    return spin(n)


def burn_beta(n):
    return spin(n)


def burn_gamma(n):
    return spin(n)


FUNCS = {"burn_alpha": burn_alpha, "burn_beta": burn_beta, "burn_gamma": burn_gamma}
spent = {n: 0.0 for n in WEIGHTS}
timeline = []


async def worker(counter, stop, rng):
    names = list(WEIGHTS)
    weights = [WEIGHTS[n] for n in names]
    while not stop.is_set():
        name = rng.choices(names, weights)[0]
        n = rng.randint(2000, 20000)  # irregular lengths: no aliasing with a periodic sampler
        t0 = time.thread_time()
        FUNCS[name](n)
        spent[name] += time.thread_time() - t0
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
