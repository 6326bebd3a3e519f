"""Callback-heavy asyncio workload: 100 tasks each looping `await asyncio.sleep(0)`; one "op"
is one iteration of one task. Prints {"ops_per_s": ...} (iterations/s, see _window.py) at exit.

usage: sleep0.py --seconds S [--ready FILE] [--go FILE] [--warmup S] [--result FILE]
"""
import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _window  # noqa: E402


async def worker(counter, stop):
    while not stop.is_set():
        await asyncio.sleep(0)
        counter.n += 1


def main():
    args = _window.parse_args(__doc__.splitlines()[0])
    _window.run(args, lambda counter, stop: [worker(counter, stop) for _ in range(100)])


if __name__ == "__main__":
    main()
