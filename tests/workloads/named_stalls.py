"""Named tasks that stall the loop, each once, and the truth of which task stalled when.

Tasks "stall-sleep" (time.sleep, off-CPU) and "stall-burn" (a CPU loop) each stall the loop for
0.15 s, at different times; "ticker" runs tiny callbacks all along. The truth (JSON on --truth):
per stall, the task's name, its start and end (time.monotonic_ns()).

usage: named_stalls.py --truth FILE [--ready FILE] [--loop stdlib|uvloop]
"""
import argparse
import asyncio
import json
import time

truth = []


async def stall(kind, seconds, delay):
    await asyncio.sleep(delay)
    t0 = time.monotonic_ns()
    if kind == "sleep":
        time.sleep(seconds)
    else:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pass
    truth.append({"task": asyncio.current_task().get_name(), "start_ns": t0, "end_ns": time.monotonic_ns()})


async def ticker(stop):
    while not stop.is_set():
        await asyncio.sleep(0.002)


async def main(args):
    stop = asyncio.Event()
    tick = asyncio.create_task(ticker(stop), name="ticker")
    if args.ready:
        open(args.ready, "w").write("ready")
    await asyncio.sleep(0.5)
    await asyncio.gather(
        asyncio.create_task(stall("sleep", 0.15, 0.2), name="stall-sleep"),
        asyncio.create_task(stall("burn", 0.15, 0.6), name="stall-burn"),
    )
    await asyncio.sleep(0.3)
    stop.set()
    await tick


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--truth", required=True)
    p.add_argument("--ready")
    p.add_argument("--loop", choices=["stdlib", "uvloop"], default="stdlib")
    a = p.parse_args()
    if a.loop == "uvloop":
        import uvloop
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main(a))
    else:
        asyncio.run(main(a))
    with open(a.truth, "w") as f:
        json.dump(truth, f)
