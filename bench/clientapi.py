"""The Mastodon client API under load: reads through it under wrk against the bare
Starlette endpoint on the same stack (the goal: at least 50 %), and the first page
of a home timeline of 10,000 stored posts (5,000 of the group's own, 5,000 of an
actor it follows; the goal: under 50 ms) on SQLite and, with --postgres URL, on
PostgreSQL. One run, one machine: ratios are against baselines of the same run.

    .venv/bin/python bench/clientapi.py [--seconds 5] [--connections 32]
        [--postgres postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import cli, node_env, start_node, table
from bench.readpath import NODE_STACK, bare_rate, wrk

PASSWORD = "correct horse battery"
REDIRECT = "org.hambastegi.bench:/callback"
POSTS = 10_000
FOLLOWED = "https://remote.example/users/ali"


def login(base: str) -> str:
    """A token through the node's own authorize page, as an app gets one."""
    with httpx.Client(base_url=base) as client:
        app = client.post("/api/v1/apps", data={"client_name": "bench", "scopes": "read write",
                                                "redirect_uris": REDIRECT}).json()
        query = {"response_type": "code", "client_id": app["client_id"],
                 "redirect_uri": REDIRECT, "scope": "read write"}
        page = client.get("/oauth/authorize", params=query)
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        assert csrf is not None
        answer = client.post("/oauth/authorize", data={
            **query, "csrf": csrf.group(1), "username": "bench", "password": PASSWORD})
        code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
        return str(client.post("/oauth/token", data={
            "grant_type": "authorization_code", "code": code, "client_id": app["client_id"],
            "client_secret": app["client_secret"], "redirect_uri": REDIRECT,
        }).json()["access_token"])


async def seed(database_url: str) -> None:
    """5,000 posts of the group and 5,000 stored posts of an actor it follows."""
    from sqlmodel import select

    from node.core.settings import normalise_database_url
    from node.storage.db import Database
    from node.storage.models import Following, LocalActor, LocalObject, RemoteActor, RemoteObject

    db = Database(normalise_database_url(database_url))
    start = datetime.now(UTC) - timedelta(days=400)
    try:
        async with db.write() as session:
            group = (await session.exec(select(LocalActor).where(
                LocalActor.username == "bench"))).one()
            session.add(Following(local_actor_id=group.id or 0, target_uri=FOLLOWED,
                                  follow_activity_id=f"{FOLLOWED}#f", state="accepted"))
            session.add(RemoteActor(uri=FOLLOWED, username="ali", domain="remote.example",
                                    inbox=f"{FOLLOWED}/inbox",
                                    raw={"id": FOLLOWED, "type": "Person", "name": "Ali"}))
        for batch in range(0, POSTS // 2, 500):
            async with db.write() as session:
                for i in range(batch, batch + 500):
                    at = start + timedelta(minutes=2 * i)
                    session.add(LocalObject(uuid=uuid.uuid4().hex, local_actor_id=group.id or 0,
                                            language="fa", contents={"fa": f"<p>پیام {i}</p>"},
                                            published=at))
                    uri = f"{FOLLOWED}/statuses/{i}"
                    session.add(RemoteObject(
                        uri=uri, actor_uri=FOLLOWED, object_type="Note",
                        data={"id": uri, "type": "Note", "attributedTo": FOLLOWED,
                              "content": f"<p>remote {i}</p>",
                              "published": (at + timedelta(minutes=1)).isoformat(),
                              "to": ["https://www.w3.org/ns/activitystreams#Public"]},
                        moderation_state="approved", published_at=at + timedelta(minutes=1),
                        received_at=at + timedelta(minutes=1)))
    finally:
        await db.dispose()


def latency(url: str, token: str, runs: int = 40) -> tuple[float, float]:
    """Median and 95th percentile of sequential GETs, in ms (after two warm-ups)."""
    times = []
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}) as client:
        for index in range(runs + 2):
            begin = time.perf_counter()
            answer = client.get(url)
            elapsed = (time.perf_counter() - begin) * 1000
            assert answer.status_code == 200 and len(answer.json()) == 20, answer.text[:200]
            if index >= 2:
                times.append(elapsed)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


def run_database(label: str, database_url: str | None, seconds: int, conns: int,
                 loads: bool) -> tuple[list[list[Any]], list[tuple[str, float]]]:
    with tempfile.TemporaryDirectory() as tmp:
        extra: dict[str, Any] = {"HAMBASTEGI_DATABASE_URL": database_url} if database_url else {}
        node = start_node(tmp, spy=True, **extra)
        env = node_env(tmp, node.port, **extra)
        try:
            cli(env, "group", "create", "bench", "--display-name", "Bench", "--language", "fa")
            import subprocess

            subprocess.run([sys.executable, "-m", "node.cli.main", "user", "create", "bench",
                            "--group", "bench", "--password-stdin"], env=env,
                           input=PASSWORD + "\n", text=True, check=True, capture_output=True)
            url = database_url or f"sqlite:///{Path(tmp).resolve()}/hambastegi.sqlite3"
            asyncio.run(seed(url))
            token = login(node.base)
            median, p95 = latency(f"{node.base}/api/v1/timelines/home", token)
            rows: list[list[Any]] = [[label, f"{median:.1f}", f"{p95:.1f}"]]
            rates: list[tuple[str, float]] = []
            if loads:
                header = f"Authorization: Bearer {token}"
                for name, path in (("instance (v2)", "/api/v2/instance"),
                                   ("verify_credentials", "/api/v1/accounts/verify_credentials"),
                                   ("home timeline, first page",
                                    "/api/v1/timelines/home")):
                    rates.append((name, wrk(f"{node.base}{path}", seconds, conns, header)))
            return rows, rates
        finally:
            node.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--postgres", help="a database URL the bench may fill (a fresh one)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    before = bare_rate(NODE_STACK, args.seconds, args.connections)
    rows, rates = run_database("SQLite", None, args.seconds, args.connections, loads=True)
    if args.postgres:
        more, _ = run_database("PostgreSQL", args.postgres, args.seconds, args.connections,
                               loads=False)
        rows += more
    after = bare_rate(NODE_STACK, args.seconds, args.connections)
    assert before is not None and after is not None
    baseline = (before + after) / 2
    print(table(f"Home timeline, first page of {POSTS:,} stored posts (sequential GETs, ms)",
                ["database", "median", "p95"], rows))
    print(table(f"Client API reads (wrk, {args.connections} connections, {args.seconds} s "
                f"each; SQLite; node on {NODE_STACK})", ["endpoint", "requests/s",
                                                         "ratio to bare"],
                [[f"bare Starlette JSON on {NODE_STACK} (baseline)", baseline, "100%"],
                 *[[name, rate, f"{rate / baseline:.0%}"] for name, rate in rates]]))
    print(f"\nbaseline runs: {before:,.0f} before the node, {after:,.0f} after")


if __name__ == "__main__":
    main()
