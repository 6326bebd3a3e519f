"""Shared measurement protocol for the benchmark workloads (standard library only).

The workload runs its load from the start. After --warmup seconds it writes --ready FILE; the
measurement window starts when --go FILE appears (at once if no --go is given) and lasts
--seconds. At exit it prints one JSON line on stdout (and writes it to --result FILE if given):

    {"ops_per_s": ..., "ops": ..., "window_s": ..., "window_thread_cpu_s": ...,
     "thread_time_at_go": ..., "thread_time_at_exit": ..., "mono_ns_at_go": ...,
     "mono_ns_at_end": ..., "pid": ...}

thread times are time.thread_time() of the loop thread (the only thread); mono_ns_* are
time.monotonic_ns() (CLOCK_MONOTONIC, the clock of loopspy's recordings) at the window's ends. A
workload may add fields of its own (run(..., extra=callable)).
"""
import argparse
import asyncio
import json
import os
import sys
import time


def parse_args(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--seconds", type=float, required=True, help="length of the measurement window")
    p.add_argument("--warmup", type=float, default=0.3, help="run this long before signalling readiness")
    p.add_argument("--ready", help="file written when warmed up")
    p.add_argument("--go", help="the window starts when this file exists")
    p.add_argument("--result", help="also write the JSON result here")
    p.add_argument("--max-wait", type=float, default=60.0, help="give up (exit 3) if --go never appears")
    return p.parse_args()


class Counter:
    __slots__ = ("n",)

    def __init__(self):
        self.n = 0


async def controller(args, counter, stop):
    """Waits for warm-up and the go file, then times the window. Returns the result dict."""
    await asyncio.sleep(args.warmup)
    if args.ready:
        tmp = args.ready + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{os.getpid()}\n")
        os.replace(tmp, args.ready)
    if args.go:
        give_up = time.monotonic() + args.max_wait
        while not os.path.exists(args.go):
            if time.monotonic() > give_up:
                print("workload: the go file never appeared", file=sys.stderr)
                sys.exit(3)
            await asyncio.sleep(0.002)
    t_go, m_go = time.thread_time(), time.monotonic_ns()
    n0, w0 = counter.n, time.perf_counter()
    await asyncio.sleep(args.seconds)
    n1, w1 = counter.n, time.perf_counter()
    t_end, m_end = time.thread_time(), time.monotonic_ns()
    stop.set()
    return {
        "ops": n1 - n0,
        "window_s": w1 - w0,
        "ops_per_s": (n1 - n0) / (w1 - w0),
        "window_thread_cpu_s": t_end - t_go,
        "thread_time_at_go": t_go,
        "mono_ns_at_go": m_go,
        "mono_ns_at_end": m_end,
    }


def run(args, make_workers, extra=None):
    """make_workers(counter, stop) -> list of coroutines that run until stop is set; extra() -> a
    dict of more result fields, called once the loop has finished."""

    async def main():
        counter = Counter()
        stop = asyncio.Event()
        workers = [asyncio.ensure_future(c) for c in make_workers(counter, stop)]
        result = await controller(args, counter, stop)
        await asyncio.gather(*workers)
        return result

    result = asyncio.run(main())
    result["pid"] = os.getpid()
    result["thread_time_at_exit"] = time.thread_time()
    if extra:
        result.update(extra())
    line = json.dumps(result)
    if args.result:
        with open(args.result, "w") as f:
            f.write(line + "\n")
    print(line, flush=True)
