"""Fan-out: one post from a group to N followers on M hosts, delivered to sink
servers (another process) that count duplicates and verify a sample of
signatures. Baselines measured in the same run: RSA-2048 signatures/s on one
core, and plain aiohttp POSTs/s to the same sinks.

    .venv/bin/python bench/fanout.py            # 1k/100, 10k/1k, 100k/5k
    .venv/bin/python bench/fanout.py --sizes 10000:1000 --no-shared-inbox
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    raw_post_rate,
    rsa_sign_rate,
    rss_mb,
    sink_key,
    sink_reset,
    sink_stats,
    start_sinks,
    table,
)
from node.core.settings import Settings
from node.federation import publishing
from node.federation.runtime import Node
from node.groups import operations
from node.storage import migrate
from node.storage.models import Follower


async def run_size(followers: int, hosts: int, ports: list[int], shared: bool,
                   database_url: str | None, concurrency: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite:///{tmp}/bench.sqlite3"
        env = {"HAMBASTEGI_DATA_DIR": tmp, "HAMBASTEGI_DATABASE_URL": url,
               "HAMBASTEGI_BASE_URL": "http://127.0.0.1:1",
               "HAMBASTEGI_ALLOW_PRIVATE_NETWORKS": "1",
               "HAMBASTEGI_DELIVERY_CONCURRENCY": str(concurrency)}
        settings = Settings.load(environ=env)
        await asyncio.to_thread(migrate.upgrade, settings.database_url)
        node = Node(settings)
        await node.start()
        try:
            actor = await operations.create_group(node, "koeln", display_name="Köln",
                                                  language="de")
            await sink_key(ports[0], node.urls.key_id("koeln"), actor.rsa_public_pem)
            rows = []
            for i in range(followers):
                port = ports[i % hosts]
                rows.append({"local_actor_id": actor.id,
                             "actor_uri": f"http://127.0.0.1:{port}/users/{i}",
                             "inbox": f"http://127.0.0.1:{port}/users/{i}/inbox",
                             "shared_inbox": f"http://127.0.0.1:{port}/inbox" if shared else None,
                             "follow_activity_id": f"http://127.0.0.1:{port}/follows/{i}",
                             "state": "accepted"})
            async with node.db.write() as session:
                for start in range(0, len(rows), 5000):
                    await session.exec(Follower.__table__.insert(), params=rows[start:start + 5000])  # type: ignore[attr-defined,call-overload]
            rss_before = rss_mb()
            worker = node.delivery_worker()
            started = time.perf_counter()
            async with node.db.write() as session:
                group = await session.get(type(actor), actor.id)
                assert group is not None
                await publishing.publish_note(session, group, node.urls,
                                              text="Solidarity with the striking workers")
            enqueued = time.perf_counter() - started
            sent = await worker.run_once()
            elapsed = time.perf_counter() - started
            rss_after = rss_mb()
        finally:
            await node.close()
    stats = await sink_stats(ports[0])
    return {"followers": followers, "hosts": hosts, "deliveries": sent,
            "enqueue_s": enqueued, "seconds": elapsed, "per_s": sent / elapsed,
            "received": stats["distinct"], "duplicates": stats["duplicates"],
            "verified": stats["verified"], "bad_sig": stats["bad"],
            "rss_before": rss_before, "rss_after": rss_after}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000:100,10000:1000,100000:5000")
    parser.add_argument("--no-shared-inbox", action="store_true")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--database-url", help="default: a fresh SQLite file per size")
    args = parser.parse_args()
    sizes = [tuple(int(x) for x in s.split(":")) for s in args.sizes.split(",")]
    max_hosts = max(h for _, h in sizes)
    sinks, ports = start_sinks(max_hosts, verify_every=50)
    try:
        sign_rate = rsa_sign_rate()
        # Same shape as the fan-out: one POST to each of 1,000 hosts, new connections.
        baseline_urls = [f"http://127.0.0.1:{p}/inbox" for p in ports[:min(max_hosts, 1000)]]
        body = b'{"id":"http://x/1","type":"Create"}' + b" " * 900
        post_rate = await raw_post_rate(baseline_urls, body, args.concurrency)
        floor = min(sign_rate, post_rate)
        results = []
        for followers, hosts in sizes:
            await sink_reset(ports[0])
            results.append(await run_size(followers, hosts, ports, not args.no_shared_inbox,
                                          args.database_url, args.concurrency))
    finally:
        sinks.terminate()
    print(table("Baselines (same run, same machine)", ["baseline", "per second"], [
        ["RSA-2048 signatures, one core", sign_rate],
        [f"plain aiohttp POSTs to the sinks (concurrency {args.concurrency})", post_rate],
    ]))
    print(table(
        "Fan-out" + (" (no shared inboxes)" if args.no_shared_inbox else " (shared inboxes)"),
        ["followers", "hosts", "deliveries", "enqueue s", "to last delivery s",
         "deliveries/s", "ratio to floor", "received", "duplicates", "sigs verified/bad",
         "RSS before MB", "RSS after MB"],
        [[r["followers"], r["hosts"], r["deliveries"], r["enqueue_s"], r["seconds"], r["per_s"],
          f"{r['per_s'] / floor:.0%}", r["received"], r["duplicates"],
          f"{r['verified']}/{r['bad_sig']}", r["rss_before"], r["rss_after"]]
         for r in results]))
    print(f"\nfloor = min(signing, plain POST) = {floor:,.0f}/s; pid {os.getpid()}")


if __name__ == "__main__":
    asyncio.run(main())
