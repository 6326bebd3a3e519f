"""A program that has made many threads (more than the kernel side's per-thread maps hold at
once) before it starts an event loop, in a new thread, that stalls once.

usage: many_threads.py --threads N --truth FILE [--made FILE] [--go FILE]
--go FILE: wait until FILE exists before making threads (a profiler attaches meanwhile).
--made FILE is written once all the short threads have come and gone; the program then waits
2 s before its loop starts.
Truth (JSON): {"loop_thread": TID, "stalls_ms": [the stalls by the loop thread's own clock],
"cpu_s": the process's CPU time (every thread's, those ended included) from go to the end}.
"""
import argparse
import asyncio
import json
import os
import resource
import threading
import time

truth = {}


def nothing():
    time.sleep(0)  # switches out once, so the kernel side has seen the thread


async def stall(ms):
    t0 = time.monotonic_ns()
    time.sleep(ms / 1000)
    truth.setdefault("stalls_ms", []).append((time.monotonic_ns() - t0) / 1e6)


async def loop_main():
    truth["loop_thread"] = threading.get_native_id()
    await asyncio.sleep(0.3)
    for ms in (200, 150, 120):
        await asyncio.create_task(stall(ms))
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.2)


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=17000)
    p.add_argument("--truth", required=True)
    p.add_argument("--made")
    p.add_argument("--go")
    args = p.parse_args()
    if args.go:
        while not os.path.exists(args.go):
            time.sleep(0.01)
    cpu_at_go = cpu_seconds()
    made = 0
    while made < args.threads:
        batch = [threading.Thread(target=nothing) for _ in range(min(64, args.threads - made))]
        for t in batch:
            t.start()
        for t in batch:
            t.join()
        made += len(batch)
    if args.made:
        with open(args.made, "w") as f:
            f.write(str(made))
        time.sleep(2)
    loop = threading.Thread(target=asyncio.run, args=(loop_main(),), name="late-loop")
    loop.start()
    loop.join()
    truth["threads_made"] = made
    truth["cpu_s"] = cpu_seconds() - cpu_at_go
    with open(args.truth, "w") as f:
        json.dump(truth, f)


if __name__ == "__main__":
    main()
