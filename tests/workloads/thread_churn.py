"""Threads that live a few milliseconds each, about a thousand a second, each burning CPU.

usage: thread_churn.py --seconds S
Prints the CPU time all the short threads burned (JSON, {"burned_s": ...}) at exit.
"""
import argparse
import json
import threading
import time

burned = []


def burn():
    t = time.thread_time()
    while time.thread_time() - t < 0.002:
        pass
    burned.append(time.thread_time() - t)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=2.0)
    args = p.parse_args()
    end = time.monotonic() + args.seconds
    while time.monotonic() < end:
        threads = [threading.Thread(target=burn) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    print(json.dumps({"burned_s": sum(burned)}))


if __name__ == "__main__":
    main()
