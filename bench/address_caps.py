"""The per-address caps' cost, against the same code without them in the same run.

    .venv/bin/python bench/address_caps.py [--requests 100000] [--rounds 5]

Two places pay: the one middleware layer, per request, when the node sits behind a
proxy (requests in flight counted per client-address header); and the guarded
protocol, per connection (``AddressCounts.take`` and ``give_back``). The baseline of
the first is the same middleware with no header configured, around the same no-op
app; of the second, a connection's open and close without the count.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import table
from node.core.middleware import NodeMiddleware
from node.core.server import AddressCounts

SCOPE: dict[str, Any] = {
    "type": "http", "method": "GET", "path": "/groups/koeln", "query_string": b"",
    "client": ("127.0.0.1", 40000),
    "headers": [(b"host", b"node.example"), (b"accept", b"application/activity+json"),
                (b"user-agent", b"Mastodon/4.3"), (b"x-real-ip", b"203.0.113.7")],
}


async def app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def per_request(middleware: NodeMiddleware, requests: int) -> float:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        return None

    started = time.perf_counter()
    for _ in range(requests):
        await middleware(dict(SCOPE), receive, send)
    return (time.perf_counter() - started) / requests * 1e6


def per_connection(counts: AddressCounts | None, connections: int) -> float:
    addresses = [f"198.51.100.{i % 250}" for i in range(1000)]
    started = time.perf_counter()
    for i in range(connections):
        address = addresses[i % 1000]
        if counts is not None and counts.take(address):
            counts.give_back(address)
    return (time.perf_counter() - started) / connections * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    plain = NodeMiddleware(app, body_timeout=30)
    counted = NodeMiddleware(app, body_timeout=30, client_header="X-Real-IP",
                             max_per_address=256)
    # Rounds alternate and the fastest of each counts: the machine is shared, and
    # noise only ever adds time.
    base = capped = loop_only = counting = float("inf")
    for _ in range(args.rounds):
        base = min(base, asyncio.run(per_request(plain, args.requests)))
        capped = min(capped, asyncio.run(per_request(counted, args.requests)))
        loop_only = min(loop_only, per_connection(None, args.requests))
        counting = min(counting, per_connection(AddressCounts(256), args.requests))
    print(table("per-address caps (µs per request or connection, same run)",
                ["what", "baseline µs", "with cap µs", "added µs", "ratio"], [
                    ["middleware, per request (behind a proxy)", base, capped,
                     capped - base, capped / base],
                    ["protocol, per connection (direct)", loop_only, counting,
                     counting - loop_only, counting / loop_only if loop_only else 0.0],
                ]))


if __name__ == "__main__":
    main()
