"""End to end: publish → last delivery, as a user runs the node.

The node is `hambastegi serve` (web + in-process workers) in its own process; the sinks
(bench/sinkserver.py) are another. A post is published either by a `hambastegi publish
note` subprocess (another process: the worker learns of it through the database's
wake-up, node/storage/wakeup.py) or by a POST to the running node's API with a bearer
token. The clock runs from just before the publish to the last POST the sinks received.

Only public surfaces are used (CLI, API, the actor document, the sinks), so this keeps
working whatever the delivery queue looks like inside — except the followers: they are
loaded straight into the ``follower`` table (a real signed Follow per follower would
take minutes at 10k), with a shared inbox per host as Mastodon has.

Baselines of the same run: RSA-2048 signs/s on one core, plain aiohttp POSTs/s to the
same sinks, and the CLI's own start (`hambastegi --help`).

    .venv/bin/python bench/e2e.py                   # 1k/100 hosts and 10k/1k hosts
    .venv/bin/python bench/e2e.py --sizes 1000:100 --rounds 5
    .venv/bin/python bench/e2e.py --database-url postgresql://postgres@127.0.0.1/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    PYTHON,
    ROOT,
    Server,
    cli,
    free_port,
    node_env,
    raw_post_rate,
    rsa_sign_rate,
    sink_key,
    sink_reset,
    start_sinks,
    table,
)

GROUP = "koeln"


async def load_followers(database_url: str, followers: int, hosts_n: int,
                         ports: list[int]) -> None:
    """Straight into the table (see the module docstring): the one non-public step."""
    from node.core.settings import normalise_database_url
    from node.federation import delivery
    from node.federation.delivery.fanout import log_head
    from node.federation.local_actors import get_group
    from node.storage.db import Database, utcnow
    from node.storage.models import Follower, HostState

    db = Database(normalise_database_url(database_url))
    try:
        async with db.write() as session:
            actor = await get_group(session, GROUP)
            assert actor is not None
            rows: list[dict[str, Any]] = []
            hosts: set[str] = set()
            host_count = hosts_n
            for i in range(followers):
                base = f"http://127.0.0.1:{ports[i % host_count]}"
                rows.append({"local_actor_id": actor.id, "actor_uri": f"{base}/users/{i}",
                             "inbox": f"{base}/users/{i}/inbox", "shared_inbox": f"{base}/inbox",
                             "follow_activity_id": f"{base}/follows/{i}", "state": "accepted"})
            for row in rows:
                # What accepting a Follow records (delivery.prepare_follower), in bulk.
                row["deliver_to"] = delivery.deliver_to(row["actor_uri"], row["inbox"],
                                                        row["shared_inbox"])
                row["host"] = delivery.inbox_host(row["deliver_to"])
                hosts.add(row["host"])
            for start in range(0, len(rows), 5000):
                await session.exec(Follower.__table__.insert(),  # type: ignore[attr-defined]
                                   params=rows[start:start + 5000])
            head = await log_head(session)
            lanes = [{"host": h, "cursor": head, "state": "idle", "attempts": 0,
                      "consecutive_failures": 0, "next_attempt_at": utcnow()}
                     for h in sorted(hosts)]
            await session.exec(HostState.__table__.insert(), params=lanes)  # type: ignore[attr-defined]
    finally:
        await db.dispose()


async def wait_delivered(session: aiohttp.ClientSession, port: int, expected: int,
                         within: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        async with session.get(f"http://127.0.0.1:{port}/_stats") as response:
            stats: dict[str, Any] = await response.json()
        if stats["distinct"] >= expected or time.monotonic() > deadline:
            return stats
        # Polling the sinks seldom: the figure is their own clock (last_post_at), and
        # a busy poll would take CPU from the node under test.
        await asyncio.sleep(0.05)


async def fresh_postgres(server_url: str) -> tuple[str, str]:
    """A new database on the server of ``server_url``: (its URL, its name)."""
    import secrets
    from urllib.parse import urlsplit, urlunsplit

    import asyncpg  # type: ignore[import-untyped]

    name = f"e2e_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    parts = urlsplit(server_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, "")), name


async def drop_postgres(server_url: str, name: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def run_size(followers: int, hosts: int, ports: list[int], rounds: int,
                   database_url: str | None) -> list[dict[str, Any]]:
    if database_url is None:
        return await _run_size(followers, hosts, ports, rounds, None)
    url, name = await fresh_postgres(database_url)
    try:
        return await _run_size(followers, hosts, ports, rounds, url)
    finally:
        await drop_postgres(database_url, name)


async def _run_size(followers: int, hosts: int, ports: list[int], rounds: int,
                    database_url: str | None) -> list[dict[str, Any]]:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite:///{tmp}/bench.sqlite3"
        port = free_port()
        env = node_env(tmp, port, HAMBASTEGI_DATABASE_URL=url)
        cli(env, "group", "create", GROUP)
        token = cli(env, "token", "create", "--label", "bench", "--group", GROUP)
        await load_followers(url, followers, hosts, ports)
        server = await asyncio.to_thread(
            Server, [PYTHON, "-m", "node.cli.main", "serve", "--port", str(port)], env, port)
        base = server.base
        try:
            async with aiohttp.ClientSession() as session:
                async with session.get(f"{base}/groups/{GROUP}",
                                       headers={"Accept": "application/activity+json"}) as r:
                    actor = json.loads(await r.read())
                await sink_key(ports[0], actor["publicKey"]["id"],
                               actor["publicKey"]["publicKeyPem"])
                for n in range(rounds):
                    for how in ("api", "cli"):
                        results.append(await publish_once(
                            how, n, session, base, token, env, ports[0], hosts))
        finally:
            await asyncio.to_thread(server.stop)
    return [{"followers": followers, "hosts": hosts, **r} for r in results]


async def publish_once(how: str, n: int, session: aiohttp.ClientSession, base: str,
                       token: str, env: dict[str, str], sink_port: int,
                       expected: int) -> dict[str, Any]:
    await sink_reset(sink_port)
    text = f"Solidarity with the striking workers ({how} {n})"
    started = time.time()
    if how == "api":
        async with session.post(f"{base}/api/v1/groups/{GROUP}/notes", json={"text": text},
                                headers={"Authorization": f"Bearer {token}"}) as response:
            assert response.status in (200, 201), await response.text()
    else:
        await asyncio.to_thread(cli, env, "publish", "note", GROUP, "--text", text)
    returned = time.time() - started
    stats = await wait_delivered(session, sink_port, expected)
    return {"how": how, "returned_s": returned, "last_s": stats["last_post_at"] - started,
            "received": stats["distinct"], "duplicates": stats["duplicates"],
            "verified": stats["verified"], "bad": stats["bad"]}


def cli_start_seconds(runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([PYTHON, "-m", "node.cli.main", "--help"], capture_output=True,
                       check=True, cwd=ROOT)
        times.append(time.perf_counter() - started)
    return min(times)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000:100,10000:1000",
                        help="followers:hosts,… (one delivery per host: shared inboxes)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url",
                        help="a PostgreSQL server (a fresh database is made on it per size; "
                             "default: a fresh SQLite file per size)")
    args = parser.parse_args()
    sizes = [tuple(int(x) for x in s.split(":")) for s in args.sizes.split(",")]
    max_hosts = max(h for _, h in sizes)
    sinks, ports = start_sinks(max_hosts, verify_every=10)
    try:
        sign_rate = rsa_sign_rate()
        body = b'{"id":"http://x/1","type":"Create"}' + b" " * 900
        post_rate = await raw_post_rate([f"http://127.0.0.1:{p}/inbox" for p in ports],
                                        body, 64)
        cli_start = cli_start_seconds()
        results = []
        for followers, hosts in sizes:
            results += await run_size(followers, hosts, ports, args.rounds, args.database_url)
    finally:
        sinks.terminate()
    print(table("Baselines (same run, same machine)", ["baseline", "figure"], [
        ["RSA-2048 signatures/s, one core", sign_rate],
        [f"plain aiohttp POSTs/s to the sinks ({len(ports)} hosts, concurrency 64)", post_rate],
        ["`hambastegi --help` s (best of 5)", cli_start],
    ]))
    rows = []
    for (followers, hosts) in sizes:
        for how in ("api", "cli"):
            runs = [r for r in results if r["followers"] == followers and r["how"] == how]
            last = [r["last_s"] for r in runs]
            floor = hosts / min(sign_rate, post_rate)
            rows.append([followers, hosts, how, statistics.median(r["returned_s"] for r in runs),
                         statistics.median(last), min(last), floor,
                         f"{floor / statistics.median(last):.0%}",
                         f"{sum(r['received'] for r in runs)}/{hosts * len(runs)}",
                         sum(r["duplicates"] for r in runs),
                         f"{sum(r['verified'] for r in runs)}/{sum(r['bad'] for r in runs)}"])
    print(table(f"Publish → last delivery ({args.rounds} rounds each; median, best)",
                ["followers", "hosts", "from", "publish returned s", "last delivery s (median)",
                 "best s", "floor s", "floor/median", "received", "duplicates",
                 "sigs verified/bad"], rows))
    print("\nfloor = deliveries / min(signs/s, plain POSTs/s): sending alone, no queue, "
          "no publish. Followers loaded directly into the database.")


if __name__ == "__main__":
    asyncio.run(main())
