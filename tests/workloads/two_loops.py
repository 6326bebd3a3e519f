"""Two event loops, each in its own thread, each stalling itself in its own way.

Thread "loop-a" runs a loop whose handler `a_stall` calls time.sleep(0.15) twice; thread
"loop-b" runs another whose handler `b_stall` calls time.sleep(0.25) twice. Between stalls
both loops only idle. The stalls are timed with time.monotonic_ns() (the kernel's clock).

usage: two_loops.py --truth FILE [--ready FILE]
Truth (JSON, at exit): {"threads": {"loop-a": TID, "loop-b": TID},
                        "stalls": [{"thread", "handler", "start_ns", "end_ns"}]}
"""
import argparse
import asyncio
import json
import threading
import time

STALL_S = {"loop-a": 0.15, "loop-b": 0.25}
truth = {"threads": {}, "stalls": []}
lock = threading.Lock()


def timed_sleep(thread_name, handler):
    t0 = time.monotonic_ns()
    time.sleep(STALL_S[thread_name])
    with lock:
        truth["stalls"].append({"thread": thread_name, "handler": handler, "start_ns": t0,
                                "end_ns": time.monotonic_ns()})


async def a_stall():
    timed_sleep("loop-a", "a_stall")


async def b_stall():
    timed_sleep("loop-b", "b_stall")


async def loop_main(thread_name, started):
    truth["threads"][thread_name] = threading.get_native_id()
    started.release()
    stall = a_stall if thread_name == "loop-a" else b_stall
    await asyncio.sleep(0.4)
    for _ in range(2):
        await asyncio.create_task(stall())
        await asyncio.sleep(0.3)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--truth", required=True)
    p.add_argument("--ready")
    args = p.parse_args()
    started = threading.Semaphore(0)
    threads = [threading.Thread(target=asyncio.run, args=(loop_main(n, started),), name=n) for n in STALL_S]
    for t in threads:
        t.start()
    for _ in threads:
        started.acquire()
    if args.ready:
        with open(args.ready, "w") as f:
            f.write("ready\n")
    for t in threads:
        t.join()
    with open(args.truth, "w") as f:
        json.dump(truth, f)


if __name__ == "__main__":
    main()
