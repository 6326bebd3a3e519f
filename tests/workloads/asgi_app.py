"""An ASGI app for gunicorn with uvicorn workers. GET /slow?ms=N blocks the worker's event loop
in time.sleep for N ms (a sync driver in async code) and appends the truth, timed with
time.monotonic_ns() (the kernel's clock), to $LOOPSPY_TRUTH_DIR/PID.jsonl: one line
{"pid", "start_ns", "end_ns"} per stall. Every response's body is the worker's pid."""
import json
import os
import time
from urllib.parse import parse_qs

TRUTH_DIR = os.environ.get("LOOPSPY_TRUTH_DIR", "")


def slow_handler(ms):
    t0 = time.monotonic_ns()
    time.sleep(ms / 1000)
    t1 = time.monotonic_ns()
    if TRUTH_DIR:
        with open(os.path.join(TRUTH_DIR, f"{os.getpid()}.jsonl"), "a") as f:
            f.write(json.dumps({"pid": os.getpid(), "start_ns": t0, "end_ns": t1}) + "\n")


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] == "/slow":
        ms = int(parse_qs(scope["query_string"].decode()).get("ms", ["120"])[0])
        slow_handler(ms)
    body = str(os.getpid()).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
