"""10,000 live tasks (by default) beside the callback-heavy load: $LOOPSPY_BENCH_IDLE_TASKS tasks wait on an
event (suspended, as a server's idle connections), while 100 tasks loop `await
asyncio.sleep(0)`; one "op" is one iteration of one of those. Prints {"ops_per_s": ...} at exit
(see _window.py).

usage: many_tasks.py --seconds S [--ready FILE] [--go FILE] [--warmup S] [--result FILE]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _window  # noqa: E402
from sleep0 import worker  # noqa: E402  (the same callback-heavy load)

IDLE_TASKS = int(os.environ.get("LOOPSPY_BENCH_IDLE_TASKS", "10000"))


async def idle(stop):
    await stop.wait()


def main():
    args = _window.parse_args(__doc__.splitlines()[0])

    def tasks(counter, stop):
        return [worker(counter, stop) for _ in range(100)] + [idle(stop) for _ in range(IDLE_TASKS)]

    _window.run(args, tasks)


if __name__ == "__main__":
    main()
