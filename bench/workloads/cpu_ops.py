"""CPU-bound asyncio workload: 4 tasks each run a small recursive pure-Python function (one
"op" = fib(12), ~465 calls, a stack ~20 frames deep under the asyncio frames) and yield to the
loop after every 4 ops. Prints {"ops_per_s": ...} (see _window.py) at exit.

usage: cpu_ops.py --seconds S [--ready FILE] [--go FILE] [--warmup S] [--result FILE]
"""
import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _window  # noqa: E402


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


async def worker(counter, stop):
    while not stop.is_set():
        for _ in range(4):
            fib(12)
        counter.n += 4
        await asyncio.sleep(0)


def main():
    args = _window.parse_args(__doc__.splitlines()[0])
    _window.run(args, lambda counter, stop: [worker(counter, stop) for _ in range(4)])


if __name__ == "__main__":
    main()
