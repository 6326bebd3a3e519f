"""A long-lived service that churns: about 2,000 new asyncio tasks a second (each a short
"request" that awaits twice and finishes), 20 new threads a second (asyncio.to_thread calls,
each in a thread of its own that ends), and a 60 ms stall of the loop every 5 s. Runs for
--seconds, then prints {"tasks": N, "threads": M, "stalls": K}.

usage: churn_service.py --seconds S [--tasks-per-s N] [--threads-per-s N] [--ready FILE]
"""
import argparse
import asyncio
import json
import threading
import time


async def request(i):
    await asyncio.sleep(0)
    await asyncio.sleep(0.001 * (i % 5))


def in_a_thread():
    time.sleep(0.002)


async def main(args):
    loop = asyncio.get_running_loop()
    end = time.monotonic() + args.seconds
    made = threads = stalls = 0
    next_stall = time.monotonic() + 5
    pending = set()
    if args.ready:
        open(args.ready, "w").write("ready")
    tick = 0.01
    while time.monotonic() < end:
        t0 = time.monotonic()
        for _ in range(int(args.tasks_per_s * tick)):
            task = asyncio.create_task(request(made), name=f"request-{made}")
            pending.add(task)
            task.add_done_callback(pending.discard)
            made += 1
        if int(t0 / tick) % max(1, int(1 / (args.threads_per_s * tick))) == 0:
            t = threading.Thread(target=in_a_thread, name=f"worker-{threads}")
            t.start()
            threads += 1
        if t0 >= next_stall:
            time.sleep(0.06)  # a blocking call on the loop
            stalls += 1
            next_stall += 5
        await asyncio.sleep(max(0.0, tick - (time.monotonic() - t0)))
    await asyncio.gather(*pending, return_exceptions=True)
    print(json.dumps({"tasks": made, "threads": threads, "stalls": stalls}))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--tasks-per-s", type=float, default=2000)
    p.add_argument("--threads-per-s", type=float, default=20)
    p.add_argument("--ready")
    asyncio.run(main(p.parse_args()))
