"""loopspy's demo: a small asyncio "shop" service whose event loop stalls now and then.

Requests are simulated in-process (no network): most handlers await quickly, but
`render_invoice` burns CPU and `lookup_legacy_price` makes a blocking call, and both hold up
every other task while they run. Profile it with:

    build/loopspy record --flamegraph demo.svg -- python3 demo/shop.py --seconds 5
"""
import argparse
import asyncio
import hashlib
import time


def checksum(payload: bytes) -> str:
    digest = payload
    for _ in range(200):
        digest = hashlib.sha256(digest).digest()
    return digest.hex()


def render_invoice(order_id: int) -> str:
    lines = []
    for i in range(3000):
        lines.append(f"{order_id:06d}-{i:04d}-{(i * 7919) % 1000:03d}")
    return checksum("\n".join(lines).encode())


def lookup_legacy_price(sku: str) -> float:
    time.sleep(0.02)  # a synchronous client call: blocks the whole loop
    return len(sku) * 1.5


async def fetch_stock(sku: str) -> int:
    await asyncio.sleep(0.001)
    return hash(sku) % 100


async def handle_order(order_id: int) -> None:
    sku = f"sku-{order_id % 17}"
    stock = await fetch_stock(sku)
    if order_id % 5 == 0:
        render_invoice(order_id)
    if order_id % 11 == 0:
        lookup_legacy_price(sku)
    if stock < 0:
        raise RuntimeError("impossible")


async def serve(seconds: float) -> int:
    deadline = time.monotonic() + seconds
    order_id = 0
    while time.monotonic() < deadline:
        batch = [handle_order(order_id + i) for i in range(10)]
        order_id += len(batch)
        await asyncio.gather(*batch)
    return order_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    orders = asyncio.run(serve(args.seconds))
    print(f"served {orders} orders")


if __name__ == "__main__":
    main()
