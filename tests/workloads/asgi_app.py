"""An ASGI app for gunicorn with uvicorn workers. GET /slow?ms=N blocks the worker's event loop
in time.sleep for N ms (a sync driver in async code). The truth, timed with time.monotonic_ns()
(the kernel's clock) from the request's arrival in the app to its response sent, is kept in
memory and written when the worker shuts down (lifespan shutdown: gunicorn's SIGTERM), to
$LOOPSPY_TRUTH_DIR/PID.jsonl: one line {"pid", "start_ns", "end_ns"} per stall; a file write
inside the handler would be part of the stall. Every response's body is the worker's pid."""
import json
import os
import time
from urllib.parse import parse_qs

TRUTH_DIR = os.environ.get("LOOPSPY_TRUTH_DIR", "")


stalls = []


def slow_handler(ms):
    time.sleep(ms / 1000)


def write_truth():
    if TRUTH_DIR and stalls:
        with open(os.path.join(TRUTH_DIR, f"{os.getpid()}.jsonl"), "a") as f:
            for t0, t1 in stalls:
                f.write(json.dumps({"pid": os.getpid(), "start_ns": t0, "end_ns": t1}) + "\n")
        stalls.clear()


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                write_truth()
                await send({"type": "lifespan.shutdown.complete"})
                return
    t0 = time.monotonic_ns()
    slow = scope["path"] == "/slow"
    if slow:
        ms = int(parse_qs(scope["query_string"].decode()).get("ms", ["120"])[0])
        slow_handler(ms)
    body = str(os.getpid()).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
    if slow:
        stalls.append((t0, time.monotonic_ns()))
