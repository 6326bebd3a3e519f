"""A task tree to profile: a root task gathers three named workers, each of which awaits a chain
of coroutines 40 deep whose leaf burns CPU in short steps. Beside them, a task group with two
children that sleep (before 3.11, which has no TaskGroup, two children it gathers), and a task
awaited by two tasks at once.

usage: task_tree.py [--ready FILE] [--seconds S] [--depth N] [--start-after S] [--loop stdlib|uvloop]

Truth written to stdout at exit (JSON): per worker, the CPU time its leaf burned (thread_time)
and how long it lived (workers_lived); per long-lived waiting task (the task group's children, the shared task
and its waiters), how long it lived (monotonic), all of it suspended; per task, every await chain
it was seen suspended in (the coroutines' qualified names, outermost first, followed through
cr_await / gi_yieldfrom), looked at every 3 ms from a callback, when every task is suspended.
"""
import argparse
import asyncio
import inspect
import json
import os
import sys
import time

burned = {}
lived = {}
workers_lived = {}
chains = {}


def qualname(code):
    # Before 3.11 a code object has no qualified name: profilers name frames by co_name.
    return getattr(code, "co_qualname", code.co_name)


def await_chain(task):
    names, c = [], task.get_coro()
    while c is not None:
        if hasattr(c, "cr_code"):  # a coroutine
            names.append(qualname(c.cr_code))
            c = c.cr_await
        elif hasattr(c, "gi_code"):  # a generator-based one (asyncio's __sleep0)
            names.append(qualname(c.gi_code))
            c = c.gi_yieldfrom
        else:  # what it awaits: a future, a task
            break
    return tuple(names)


def look_at_chains(loop):
    for t in asyncio.all_tasks(loop):
        if inspect.getcoroutinestate(t.get_coro()) != inspect.CORO_SUSPENDED:
            continue  # not started yet, or done
        chains.setdefault(t.get_name(), set()).add(await_chain(t))
    loop.call_later(0.003, look_at_chains, loop)


def spin(seconds):
    end = time.thread_time() + seconds
    x = 0
    while time.thread_time() < end:
        x += 1
    return x


async def hot_leaf(name, stop_at):
    # worker-N burns in steps of 2(N+1) ms: the workers' CPU shares are 1/6, 2/6 and 3/6.
    step = 0.002 * (int(name.rsplit("-", 1)[1]) + 1)
    while time.monotonic() < stop_at:
        t0 = time.thread_time()
        spin(step)
        burned[name] = burned.get(name, 0.0) + time.thread_time() - t0
        await asyncio.sleep(0)


async def chain(depth, name, stop_at):
    if depth == 0:
        await hot_leaf(name, stop_at)
    else:
        await chain(depth - 1, name, stop_at)


async def worker(depth, stop_at):
    born = time.monotonic()
    await chain(depth, asyncio.current_task().get_name(), stop_at)
    workers_lived[asyncio.current_task().get_name()] = time.monotonic() - born


async def sleeper(seconds):
    await asyncio.sleep(seconds)


async def shared_wait(seconds):
    await asyncio.sleep(seconds)


async def waiter(shared):
    await shared


async def group_parent(seconds):
    if not hasattr(asyncio, "TaskGroup"):
        # Before 3.11: the same two children, gathered.
        children = [asyncio.create_task(sleeper(seconds), name=f"tg-child-{i}") for i in range(2)]
        try:
            await asyncio.gather(*children)
        finally:
            for c in children:
                c.cancel()
        return
    async with asyncio.TaskGroup() as tg:
        tg.create_task(sleeper(seconds), name="tg-child-0")
        tg.create_task(sleeper(seconds), name="tg-child-1")


async def orchestrate(args, ready):
    # A profiler that launched this program attaches while it waits here.
    await asyncio.sleep(args.start_after)
    asyncio.get_running_loop().call_soon(look_at_chains, asyncio.get_running_loop())
    stop_at = time.monotonic() + args.seconds
    created = time.monotonic()
    group = asyncio.create_task(group_parent(args.seconds + 1), name="tg-parent")
    shared = asyncio.create_task(shared_wait(args.seconds + 1), name="shared")
    waiters = [asyncio.create_task(waiter(shared), name=f"waiter-{i}") for i in range(2)]
    workers = [asyncio.create_task(worker(args.depth, stop_at), name=f"worker-{i}") for i in range(3)]
    if ready:
        asyncio.get_running_loop().call_later(0.3, lambda: open(ready, "w").write("ready"))
    await asyncio.gather(*workers)
    for t in [group, shared, *waiters]:
        t.cancel()
    await asyncio.gather(group, shared, *waiters, return_exceptions=True)
    # Until they are done: a cancelled task lives on while it handles its cancellation (a task
    # group cancels its children and waits for them).
    waiting = ["tg-parent", "tg-child-0", "tg-child-1", "shared", "waiter-0", "waiter-1"]
    lived.update({name: time.monotonic() - created for name in waiting})


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ready")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--depth", type=int, default=40)
    p.add_argument("--start-after", type=float, default=0.0, help="seconds to wait before making the tasks")
    p.add_argument("--loop", choices=["stdlib", "uvloop"], default="stdlib")
    args = p.parse_args()

    async def root():
        asyncio.current_task().set_name("root")
        await orchestrate(args, args.ready)

    if args.loop == "uvloop":
        import uvloop
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(root())
    else:
        asyncio.run(root())
    json.dump({"burned": burned, "lived": lived, "workers_lived": workers_lived, "pid": os.getpid(),
               "chains": {name: sorted(c) for name, c in chains.items()}}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
