"""An asyncio program that stalls its own event loop on purpose and records the truth.

Each deliberate stall is timed with time.monotonic_ns() (the same clock as the kernel's) and
written to --truth as JSON when the program exits: its kind (sleep: off-CPU in clock_nanosleep;
burn: on-CPU), start and end, and the coroutine that caused it. Many tiny callbacks run in
between, and one task only ever awaits asyncio.sleep (idle, never blocking).

usage: stalls.py --truth FILE [--ready FILE] [--rounds N] [--linger S] [--loop stdlib|uvloop] [--thread]
  --thread  run the loop in a non-main thread while two other threads burn CPU (in C, without the GIL)
"""
import argparse
import asyncio
import json
import threading
import time

STALLS = [("sleep", 0.150), ("burn", 0.200), ("sleep", 0.300), ("burn", 0.120)]
truth = []


def burn_cpu(seconds):
    end = time.monotonic() + seconds
    x = 0
    while time.monotonic() < end:
        x += 1
    return x


async def blocking_handler(seconds):
    t0 = time.monotonic_ns()
    time.sleep(seconds)  # blocks the loop: off-CPU
    truth.append({"kind": "sleep", "start_ns": t0, "end_ns": time.monotonic_ns(), "coroutine": "blocking_handler"})


async def cpu_handler(seconds):
    t0 = time.monotonic_ns()
    burn_cpu(seconds)  # blocks the loop: on-CPU
    truth.append({"kind": "burn", "start_ns": t0, "end_ns": time.monotonic_ns(), "coroutine": "cpu_handler"})


async def tiny_callbacks(stop):
    while not stop.is_set():
        burn_cpu(0.002)  # well under any threshold
        await asyncio.sleep(0.005)


async def idle_waiter(stop):
    while not stop.is_set():
        await asyncio.sleep(0.05)


async def main(args):
    stop = asyncio.Event()
    background = [asyncio.create_task(tiny_callbacks(stop), name="tiny"),
                  asyncio.create_task(idle_waiter(stop), name="idle")]
    if args.ready:
        with open(args.ready, "w") as f:
            f.write("ready\n")
    await asyncio.sleep(args.warmup)
    for _ in range(args.rounds):
        for kind, seconds in STALLS:
            handler = blocking_handler if kind == "sleep" else cpu_handler
            await asyncio.create_task(handler(seconds), name=f"{kind}-{int(seconds * 1000)}ms")
            await asyncio.sleep(0.1)
    stop.set()
    await asyncio.gather(*background)
    await asyncio.sleep(args.linger)


def run(args):
    if args.loop == "uvloop":
        import uvloop
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main(args))
    else:
        asyncio.run(main(args))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--truth", required=True)
    p.add_argument("--ready")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--linger", type=float, default=0.0, help="seconds to stay idle after the last stall")
    p.add_argument("--loop", choices=["stdlib", "uvloop"], default="stdlib")
    p.add_argument("--thread", action="store_true")
    a = p.parse_args()
    if a.thread:
        stop_burners = threading.Event()

        import hashlib
        block = b"x" * (1 << 20)

        def burner():
            # hashlib releases the GIL on large buffers: these threads burn CPU without
            # holding up the loop thread, as a thread pool of C work would.
            while not stop_burners.is_set():
                hashlib.sha256(block).digest()

        burners = [threading.Thread(target=burner, name=f"burner-{i}") for i in range(2)]
        for b in burners:
            b.start()
        loop_thread = threading.Thread(target=run, args=(a,), name="loop-thread")
        loop_thread.start()
        loop_thread.join()
        stop_burners.set()
        for b in burners:
            b.join()
    else:
        run(a)
    with open(a.truth, "w") as f:
        json.dump({"stalls": truth, "loop_thread_native_id": None}, f)
