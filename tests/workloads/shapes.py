"""Programs of awkward shapes for the profiler, each burning CPU in a known leaf function.

usage: shapes.py deep|threads|names --seconds S [--ready FILE]
  deep     a stack 200 Python frames deep (recurse, then burn in `deep_leaf`)
  threads  50 threads, each burning CPU in `thread_worker` (plus the main thread waiting)
  names    functions whose qualnames and file name contain ; < > & quotes and non-ASCII
"""
import argparse
import sys
import threading
import time


def spin(seconds):
    end = time.monotonic() + seconds
    x = 0
    while time.monotonic() < end:
        for i in range(1000):
            x += i
    return x


def deep_leaf(seconds):
    return spin(seconds)


def recurse(depth, seconds):
    if depth <= 1:
        return deep_leaf(seconds)
    return recurse(depth - 1, seconds)


def run_deep(args):
    # recurse() frames + deep_leaf + spin + run_deep + <module> = 200 frames of Python.
    recurse(196, args.seconds)


def thread_worker(seconds):
    spin(seconds)


def run_threads(args):
    threads = [threading.Thread(target=thread_worker, args=(args.seconds,), name=f"worker-{i}") for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


WEIRD_QUALNAME = 'weird;name<script>alert(1)</script>&"quoted"\'s-Ωμέγα-😀'
WEIRD_FILE = 'we;ird<&>"\'ü.py'


def run_names(args):
    src = "def burn(seconds, spin):\n    return spin(seconds)\n"
    namespace = {}
    exec(compile(src, WEIRD_FILE, "exec"), namespace)
    burn = namespace["burn"]
    if sys.version_info >= (3, 11):
        burn.__code__ = burn.__code__.replace(co_qualname=WEIRD_QUALNAME, co_name="weird")
    else:  # no co_qualname: the frame is named by co_name
        burn.__code__ = burn.__code__.replace(co_name=WEIRD_QUALNAME)
    burn(args.seconds, spin)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("shape", choices=["deep", "threads", "names"])
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--ready")
    a = p.parse_args()
    if a.ready:
        with open(a.ready, "w") as f:
            f.write("ready\n")
    {"deep": run_deep, "threads": run_threads, "names": run_names}[a.shape](a)
