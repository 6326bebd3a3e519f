"""A small aiohttp service with one handler that makes a synchronous sqlite3 query that takes
a while (a sync DB driver in async code) and one that calls time.sleep. Serves on 127.0.0.1 on
a free port, writes the port to --ready, and exits after --seconds."""
import argparse
import asyncio
import sqlite3
import time

from aiohttp import web

db = sqlite3.connect(":memory:")
db.execute("create table orders(id integer primary key, total real)")
db.executemany("insert into orders(total) values (?)", [(i * 1.5,) for i in range(20_000)])


async def fast(request):
    return web.Response(text="ok")


async def report_handler(request):
    # A slow synchronous query: every other request waits for it.
    # (~150 ms: a 1500 x 1500 self-join)
    row = db.execute("select count(*) from orders o1, orders o2 where o1.id < 1500 and o2.id < 1500 "
                     "and cast(o1.total + o2.total as integer) % 3 = 0").fetchone()
    return web.json_response({"count": row[0]})


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
        f.write(str(port))
    await asyncio.sleep(args.seconds)
    await runner.cleanup()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--ready", required=True)
    p.add_argument("--seconds", type=float, default=8)
    asyncio.run(main(p.parse_args()))
