"""An idle asyncio service: its loop waits in epoll, waking once a second (standard library only).
Writes --ready FILE once its loop runs; runs until killed."""
import argparse
import asyncio


async def main(ready):
    with open(ready, "w") as f:
        f.write("ready\n")
    while True:
        await asyncio.sleep(1.0)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--ready", required=True)
    asyncio.run(main(p.parse_args().ready))
