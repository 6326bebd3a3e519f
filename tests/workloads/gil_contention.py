"""An asyncio loop that shares the GIL with CPU-bound Python threads, and measures its own waits.

Two threads count in pure Python (holding the GIL, giving it up every switch interval). The loop
runs a task that, every 20 ms, calls probe(): 10 short sleeps of 200 us, each of which gives up
the GIL and must take it back from a counting thread. probe() times each call with
time.monotonic_ns() (the kernel's clock): what a call took beyond its sleep is the time this
thread spent without the GIL wanting it, by its own measure. Written to --truth as JSON at exit:
gil_wait_ns (the sum), calls, and the switch interval.

usage: gil_contention.py --truth FILE [--seconds S] [--ready FILE]
"""
import argparse
import asyncio
import json
import sys
import threading
import time

SLEEP_NS = 200_000
waited = {"ns": 0, "calls": 0}


def count(stop):
    x = 0
    while not stop.is_set():
        x += 1
    return x


def probe():
    for _ in range(10):
        t0 = time.monotonic_ns()
        time.sleep(SLEEP_NS / 1e9)  # gives up the GIL, then waits to take it back
        t1 = time.monotonic_ns()
        waited["ns"] += max(0, t1 - t0 - SLEEP_NS)
        waited["calls"] += 1


async def prober(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        probe()
        await asyncio.sleep(0.02)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--truth", required=True)
    ap.add_argument("--seconds", type=float, default=4)
    ap.add_argument("--ready")
    args = ap.parse_args()
    stop = threading.Event()
    threads = [threading.Thread(target=count, args=(stop,), name=f"counter-{i}") for i in range(2)]
    for t in threads:
        t.start()
    if args.ready:
        with open(args.ready, "w") as f:
            f.write("ready\n")
    asyncio.run(prober(args.seconds))
    stop.set()
    for t in threads:
        t.join()
    with open(args.truth, "w") as f:
        json.dump({"gil_wait_ns": waited["ns"], "calls": waited["calls"],
                   "switch_interval_s": sys.getswitchinterval()}, f)


if __name__ == "__main__":
    main()
