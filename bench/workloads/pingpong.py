"""A context-switch-heavy bystander: two processes pass one byte back and forth over pipes
--rounds times (every round trip is two blocking reads, so two context switches at least).
Prints {"seconds": wall time of the exchange} (standard library only)."""
import argparse
import json
import os
import time

p = argparse.ArgumentParser()
p.add_argument("--rounds", type=int, default=50000)
a = p.parse_args()
ping_r, ping_w = os.pipe()
pong_r, pong_w = os.pipe()
child = os.fork()
if child == 0:
    for _ in range(a.rounds):
        os.read(ping_r, 1)
        os.write(pong_w, b"o")
    os._exit(0)
t0 = time.monotonic()
for _ in range(a.rounds):
    os.write(ping_w, b"i")
    os.read(pong_r, 1)
elapsed = time.monotonic() - t0
os.waitpid(child, 0)
print(json.dumps({"seconds": elapsed}))
