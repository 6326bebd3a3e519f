"""Tasks created and finished thousands of times a second beside two long-lived hot tasks.

Short tasks ("short-N", coroutine short_job) each do a little work and return; the freed task
and coroutine memory is reused at once by the next ones. Two tasks "hot-0" and "hot-1"
(coroutine hot_work) burn CPU in steps. A profiler must never put a sample of one kind under a
task of the other.

usage: task_churn.py [--seconds S] [--ready FILE]
Prints the number of short tasks run (JSON) at exit.
"""
import argparse
import asyncio
import json
import time


def busy(n):
    x = 0
    for i in range(n):
        x += i
    return x


async def short_job(n):
    busy(n)


async def hot_work(stop_at):
    while time.monotonic() < stop_at:
        busy(3000)
        await asyncio.sleep(0)


async def main(args):
    stop_at = time.monotonic() + args.seconds
    hot = [asyncio.create_task(hot_work(stop_at), name=f"hot-{i}") for i in range(2)]
    if args.ready:
        open(args.ready, "w").write("ready")
    n = 0
    while time.monotonic() < stop_at:
        batch = [asyncio.create_task(short_job(200), name=f"short-{n + i}") for i in range(20)]
        n += len(batch)
        await asyncio.gather(*batch)
    await asyncio.gather(*hot)
    print(json.dumps({"short_tasks": n}))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--ready")
    asyncio.run(main(p.parse_args()))
