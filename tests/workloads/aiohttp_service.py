"""A small aiohttp service with one handler that makes a synchronous sqlite3 query that takes
a while (a sync DB driver in async code) and one that calls time.sleep. Serves on 127.0.0.1 on
a free port, writes {"port", "query_ms"} (the query's duration as calibrated at start) to --ready
as JSON, and exits after --seconds."""
import argparse
import asyncio
import json
import sqlite3
import time

from aiohttp import web

db = sqlite3.connect(":memory:")
db.execute("create table orders(id integer primary key, total real)")
db.executemany("insert into orders(total) values (?)", [(i * 1.5,) for i in range(20_000)])


async def fast(request):
    return web.Response(text="ok")


QUERY = ("select count(*) from orders o1, orders o2 where o1.id < ? and o2.id < ? "
         "and cast(o1.total + o2.total as integer) % 3 = 0")


def query(n):
    return db.execute(QUERY, (n, n)).fetchone()[0]


def calibrate(target_s=0.15):
    """The self-join's size whose query takes about target_s on this machine (its cost grows
    with the square of the size), measured with this process's own clock."""
    n = 500
    t0 = time.monotonic()
    query(n)
    took = max(time.monotonic() - t0, 1e-4)
    n = min(19_000, int(n * (target_s / took) ** 0.5))
    t0 = time.monotonic()
    query(n)
    return n, time.monotonic() - t0


SIZE, QUERY_S = calibrate()


async def report_handler(request):
    # A slow synchronous query (~150 ms, calibrated at start): every other request waits for it.
    return web.json_response({"count": query(SIZE)})


async def legacy_handler(request):
    time.sleep(0.12)
    return web.Response(text="legacy")


async def main(args):
    app = web.Application()
    app.add_routes([web.get("/fast", fast), web.get("/report", report_handler), web.get("/legacy", legacy_handler)])
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    with open(args.ready, "w") as f:
        json.dump({"port": port, "query_ms": QUERY_S * 1000}, f)
    await asyncio.sleep(args.seconds)
    await runner.cleanup()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--ready", required=True)
    p.add_argument("--seconds", type=float, default=8)
    asyncio.run(main(p.parse_args()))
