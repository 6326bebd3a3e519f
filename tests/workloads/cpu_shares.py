"""An asyncio program whose loop thread spends known shares of its CPU time in three functions.

It measures its own truth with time.thread_time() around each call and writes it as JSON when
it exits, so a profile of it can be checked against what really happened.

usage: cpu_shares.py --seconds S --truth FILE [--ready FILE] [--start-after S]
--start-after S: wait S seconds (off-CPU) before the calls begin, so a profiler that launched the
program is attached for all of them; the shares count the thread's CPU time from then on.
"""
import argparse
import asyncio
import json
import random
import time

WEIGHTS = {"burn_alpha": 5, "burn_beta": 3, "burn_gamma": 2}


def spin(iterations):
    x = 0
    for i in range(iterations):
        x += i * i % 7
    return x


def burn_alpha(n):
    return spin(n)


def burn_beta(n):
    return spin(n)


def burn_gamma(n):
    return spin(n)


FUNCS = {"burn_alpha": burn_alpha, "burn_beta": burn_beta, "burn_gamma": burn_gamma}


def timed_call(rng, spent):
    """One call of a function picked by WEIGHTS, of irregular length (no aliasing with a periodic
    sampler), its thread CPU time added to spent[name]. bench/workloads/cpu_shares.py runs the
    same calls."""
    name = rng.choices(list(WEIGHTS), list(WEIGHTS.values()))[0]
    n = rng.randint(2000, 20000)
    t0 = time.thread_time()
    FUNCS[name](n)
    spent[name] += time.thread_time() - t0


async def worker(deadline, spent, rng):
    while time.monotonic() < deadline:
        timed_call(rng, spent)
        await asyncio.sleep(0)


async def main(args):
    spent = {n: 0.0 for n in WEIGHTS}
    rng = random.Random(42)
    await asyncio.sleep(args.start_after)
    begin_cpu = time.thread_time()  # the shares' denominator starts here
    start_cpu = time.thread_time()
    if args.ready:
        with open(args.ready, "w") as f:
            f.write("ready\n")
    deadline = time.monotonic() + args.seconds
    await asyncio.gather(*(worker(deadline, spent, rng) for _ in range(4)))
    total = time.thread_time()
    truth = {
        "thread_cpu_s": total,
        "thread_cpu_after_ready_s": total - start_cpu,
        "spent_s": spent,
        "share": {n: spent[n] / (total - begin_cpu) for n in spent},
        # Among the three functions alone: what a profile shows whatever else its window holds.
        "share_of_calls": {n: spent[n] / sum(spent.values()) for n in spent},
        "share_after_ready": {n: spent[n] / (total - start_cpu) for n in spent},
    }
    with open(args.truth, "w") as f:
        json.dump(truth, f)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--truth", required=True)
    p.add_argument("--start-after", type=float, default=0.0)
    p.add_argument("--ready")
    asyncio.run(main(p.parse_args()))
