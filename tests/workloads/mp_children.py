"""A parent that starts asyncio worker processes with multiprocessing after a pause (so a
profiler attached to it sees them start). Each child stalls its event loop in time.sleep three
times and writes its truth, timed with time.monotonic_ns(), to DIR/PID.json:
{"pid", "stalls": [{"start_ns", "end_ns"}]}.

usage: mp_children.py --truth-dir DIR --ready FILE [--start fork|spawn|forkserver] [--children N]
"""
import argparse
import asyncio
import json
import multiprocessing
import os
import time


def stall(ms):
    t0 = time.monotonic_ns()
    time.sleep(ms / 1000)  # blocks this child's loop
    return {"start_ns": t0, "end_ns": time.monotonic_ns()}


async def child_main(n):
    stalls = []
    await asyncio.sleep(0.3)
    for k in range(3):
        stalls.append(stall(110 + 20 * n + 5 * k))
        await asyncio.sleep(0.1)
    return stalls


def child(n, truth_dir):
    stalls = asyncio.run(child_main(n))
    with open(os.path.join(truth_dir, f"{os.getpid()}.json"), "w") as f:
        json.dump({"pid": os.getpid(), "stalls": stalls}, f)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--truth-dir", required=True)
    p.add_argument("--ready", required=True)
    p.add_argument("--start", default="fork")
    p.add_argument("--children", type=int, default=2)
    p.add_argument("--pause", type=float, default=1.0)
    a = p.parse_args()
    multiprocessing.set_start_method(a.start)
    with open(a.ready, "w") as f:
        f.write("ready\n")
    time.sleep(a.pause)
    procs = [multiprocessing.Process(target=child, args=(i, a.truth_dir)) for i in range(a.children)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
