"""Inbox ingest: pre-signed Creates from many remote actors (keys served by the
sink process) posted at high concurrency to a node on SQLite. Counts what was
verified and durably stored before the 202. Baseline: a bare Starlette endpoint
that only reads the body, under the same uvicorn.

    .venv/bin/python bench/ingest.py [--requests 3000] [--actors 50] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import start_bare, start_node, start_sinks, table
from node.federation import keys, signatures


async def register_actors(port: int, count: int) -> list[tuple[str, keys.PrivateKey]]:
    actors = []
    async with aiohttp.ClientSession() as session:
        for i in range(count):
            key = keys.generate_rsa()
            actor_id = f"http://127.0.0.1:{port}/users/a{i}"
            doc = {"@context": "https://www.w3.org/ns/activitystreams", "id": actor_id,
                   "type": "Person", "preferredUsername": f"a{i}", "inbox": actor_id + "/inbox",
                   "publicKey": {"id": actor_id + "#main-key", "owner": actor_id,
                                 "publicKeyPem": keys.public_to_pem(key.public_key())}}
            async with session.post(f"http://127.0.0.1:{port}/_actor",
                                    json={"name": f"a{i}", "doc": doc}):
                pass
            actors.append((actor_id, key))
    return actors


def presign(target: str, actors: list[tuple[str, keys.PrivateKey]], count: int,
            tag: str) -> list[tuple[bytes, dict[str, str]]]:
    requests = []
    for n in range(count):
        actor_id, key = actors[n % len(actors)]
        activity = {"@context": "https://www.w3.org/ns/activitystreams",
                    "id": f"{actor_id}/activities/{tag}{n}", "type": "Create",
                    "actor": actor_id, "to": ["https://www.w3.org/ns/activitystreams#Public"],
                    "object": {"id": f"{actor_id}/notes/{tag}{n}", "type": "Note",
                               "attributedTo": actor_id, "content": "<p>Strike!</p>" * 20}}
        body = json.dumps(activity).encode()
        assert isinstance(key, keys.RSAPrivateKey)
        headers = signatures.sign_cavage(method="POST", url=target, body=body,
                                         key_id=actor_id + "#main-key", private_key=key)
        headers["Content-Type"] = "application/activity+json"
        requests.append((body, headers))
    return requests


async def fire(url: str, requests: list[tuple[bytes, dict[str, str]]],
               concurrency: int) -> tuple[float, int, dict[int, int]]:
    statuses: dict[int, int] = {}
    semaphore = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def one(body: bytes, headers: dict[str, str]) -> None:
            async with semaphore, session.post(url, data=body, headers=headers) as response:
                await response.read()
                statuses[response.status] = statuses.get(response.status, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(one(b, h) for b, h in requests))
        elapsed = time.perf_counter() - started
    return elapsed, statuses.get(202, 0), statuses


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--actors", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    sinks, ports = start_sinks(1)
    bare = start_bare()
    with tempfile.TemporaryDirectory() as tmp:
        node = start_node(tmp)
        try:
            actors = await register_actors(ports[0], args.actors)
            target = f"{node.base}/inbox"
            warm = presign(target, actors, len(actors), "warm")
            await fire(target, warm, 8)  # key fetches happen here, not in the timing
            requests = presign(target, actors, args.requests, "run")
            idle_rss = node.rss()
            elapsed, accepted, statuses = await fire(target, requests, args.concurrency)
            busy_rss = node.rss()
            bare_requests = [(b, {"Content-Type": "application/activity+json"})
                             for b, _ in requests]
            bare_elapsed, bare_ok, _ = await fire(f"{bare.base}/inbox", bare_requests,
                                                  args.concurrency)
            db = sqlite3.connect(f"{tmp}/hambastegi.sqlite3")
            stored = db.execute("select count(*) from inbox_item where activity_id like "
                                "'%/activities/run%'").fetchone()[0]
            db.close()
        finally:
            node.stop()
            bare.stop()
            sinks.terminate()
    rate, bare_rate = accepted / elapsed, bare_ok / bare_elapsed
    print(table("Inbox ingest (SQLite, verified and stored before 202)",
                ["endpoint", "requests", "accepted", "errors", "seconds", "accepted/s",
                 "ratio to bare"],
                [["hambastegi /inbox", args.requests, accepted, args.requests - accepted,
                  elapsed, rate, f"{rate / bare_rate:.0%}"],
                 ["bare Starlette (reads body)", args.requests, bare_ok,
                  args.requests - bare_ok, bare_elapsed, bare_rate, "100%"]]))
    print(f"\nstatuses {statuses}; rows stored {stored}; node RSS idle {idle_rss:.1f} MB, "
          f"after load {busy_rss:.1f} MB")


if __name__ == "__main__":
    asyncio.run(main())
