"""An asyncio program that is busy in pure-Python code up to the instant it ends.

Its one task loops through a few functions for --seconds, then ends the process from inside the
hot loop: with os._exit (no clean-up, the process is gone at once) or with sys.exit through
asyncio.run (the interpreter finalizes first, freeing its code objects). Either way the profiler
still holds the last samples when the target can no longer be read.

With sys.exit, asyncio.run's shut-down code runs after the hot loop and finalization frees it
at once: loopspy may leave that code unnamed, as it cannot tell it from a newer object at the same
address. The hot loop's own code has been confirmed recently, so its samples are always named.

usage: ends_hot.py --seconds S [--end os_exit|sys_exit]
"""
import argparse
import asyncio
import os
import sys
import time


def mix_a(x):
    for i in range(50):
        x = (x * 31 + i) % 1000003
    return x


def mix_b(x):
    for i in range(70):
        x = (x ^ (i * 2654435761)) % 999983
    return x


def mix_c(x):
    x = mix_a(x)
    for i in range(30):
        x = (x + i * i) % 1000033
    return mix_b(x)


async def hot_until(deadline, end):
    x = 1
    while True:
        for _ in range(20):
            x = mix_c(mix_b(mix_a(x)))
        if time.monotonic() >= deadline:
            if end == "os_exit":
                os._exit(0)
            return x
        await asyncio.sleep(0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--end", choices=["os_exit", "sys_exit"], default="os_exit")
    args = ap.parse_args()
    asyncio.run(hot_until(time.monotonic() + args.seconds, args.end))
    sys.exit(0)


if __name__ == "__main__":
    main()
