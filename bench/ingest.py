"""Inbox ingest: pre-signed Creates from many remote actors (keys served by the
sink process, fetched before the timing) posted at high concurrency, from
client processes, to a node on SQLite started as `hambastegi serve` does.
Counts what was verified and durably stored before the 202.

Three endpoints, same requests, same run:
- the shared inbox (``/inbox``): public Notes, addressed to no one here;
- a group's own inbox (``/groups/koeln/inbox``): replies to the group's post,
  addressed to the group, which the node keeps for moderation after the 202;
- the baseline: a bare Starlette route that reads the body and answers 202,
  on the same server stack.

    .venv/bin/python bench/ingest.py [--requests 6000] [--actors 50] [--concurrency 128]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from bench.common import (
    Fired,
    Signed,
    cli,
    fire_from_processes,
    node_env,
    start_bare,
    start_node,
    start_sinks,
    table,
)
from node.federation import keys, signatures

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


async def register_actors(port: int, count: int) -> list[tuple[str, keys.PrivateKey]]:
    actors: list[tuple[str, keys.PrivateKey]] = []
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
            tag: str, *, reply_to: str | None = None,
            group: str | None = None) -> list[Signed]:
    """Creates of Notes: public, or replies addressed to ``group``."""
    requests = []
    for n in range(count):
        actor_id, key = actors[n % len(actors)]
        note = {"id": f"{actor_id}/notes/{tag}{n}", "type": "Note", "attributedTo": actor_id,
                "content": "<p>Strike!</p>" * 20, "to": [PUBLIC]}
        if reply_to is not None and group is not None:
            note.update(inReplyTo=reply_to, to=[group], cc=[PUBLIC])
        activity = {"@context": "https://www.w3.org/ns/activitystreams",
                    "id": f"{actor_id}/activities/{tag}{n}", "type": "Create",
                    "actor": actor_id, "to": note["to"], "object": note}
        body = json.dumps(activity).encode()
        assert isinstance(key, RSAPrivateKey)
        headers = signatures.sign_cavage(method="POST", url=target, body=body,
                                         key_id=actor_id + "#main-key", private_key=key)
        headers["Content-Type"] = "application/activity+json"
        requests.append((body, headers))
    return requests


async def warm(url: str, requests: list[Signed]) -> None:
    """Key fetches happen here, not in the timing."""
    async with aiohttp.ClientSession() as session:
        for body, headers in requests:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()


def row(name: str, fired: Fired, requests: int, base: Fired,
        cpu: float | None = None) -> list[object]:
    return [name, requests, fired.accepted, requests - fired.accepted, fired.seconds,
            fired.rate, fired.percentile(0.5), fired.percentile(0.99),
            "-" if cpu is None else cpu * 1000 / max(1, fired.accepted),
            f"{fired.rate / base.rate:.0%}" if base.rate else "-"]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--actors", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    args = parser.parse_args()
    sinks, ports = start_sinks(1)
    bare = start_bare()
    with tempfile.TemporaryDirectory() as tmp:
        node = start_node(tmp, spy=False)
        try:
            env = node_env(tmp, node.port)
            cli(env, "group", "create", "koeln", "--display-name", "Köln")
            post_id = cli(env, "publish", "note", "koeln", "--text", "Strike!").splitlines()[-1]
            group = f"{node.base}/groups/koeln"
            actors = await register_actors(ports[0], args.actors)
            shared, own = f"{node.base}/inbox", f"{group}/inbox"
            await warm(shared, presign(shared, actors, len(actors), "warm"))
            idle_rss = node.rss()
            # Same bodies for the shared inbox and the bare route; the group's
            # inbox gets replies addressed to it (kept for moderation).
            to_shared = presign(shared, actors, args.requests, "shared")
            to_group = presign(own, actors, args.requests, "group", reply_to=post_id,
                               group=group)
            bare_requests = [(b, {"Content-Type": "application/activity+json"})
                             for b, _ in to_shared]
            bare_fired = await fire_from_processes(f"{bare.base}/inbox", bare_requests,
                                                   concurrency=args.concurrency,
                                                   processes=args.clients)
            # BENCH_PYSPY=file: py-spy samples the node during each volley only
            # (file.shared, file.group).
            spy = os.environ.get("BENCH_PYSPY")
            if spy:
                node.profile(spy + ".shared")
            cpu = node.cpu_seconds()
            shared_fired = await fire_from_processes(shared, to_shared,
                                                     concurrency=args.concurrency,
                                                     processes=args.clients)
            shared_cpu, cpu = node.cpu_seconds() - cpu, node.cpu_seconds()
            if spy:
                node.stop_profile()
                node.profile(spy + ".group")
                cpu = node.cpu_seconds()
            group_fired = await fire_from_processes(own, to_group,
                                                    concurrency=args.concurrency,
                                                    processes=args.clients)
            group_cpu = node.cpu_seconds() - cpu
            node.stop_profile()
            busy_rss = node.rss()
            db = sqlite3.connect(f"{tmp}/hambastegi.sqlite3")
            stored = db.execute("select count(*) from inbox_item where activity_id like "
                                "'%/activities/shared%' or activity_id like "
                                "'%/activities/group%'").fetchone()[0]
            # The replies are kept by the inbox worker after the 202s: wait for them.
            volley_end = time.monotonic()
            deadline = volley_end + 300
            while time.monotonic() < deadline:
                kept = db.execute("select count(*) from remote_object").fetchone()[0]
                if kept >= group_fired.accepted:
                    break
                await asyncio.sleep(0.2)
            drained = time.monotonic() - volley_end
            db.close()
        finally:
            node.stop()
            bare.stop()
            sinks.terminate()
    print(table("Inbox ingest (SQLite, verified and stored before 202)",
                ["endpoint", "requests", "accepted", "errors", "seconds", "accepted/s",
                 "p50 ms", "p99 ms", "node CPU ms/req", "ratio to bare"],
                [row("hambastegi /inbox (shared)", shared_fired, args.requests, bare_fired,
                     shared_cpu),
                 row("hambastegi /groups/koeln/inbox (replies)", group_fired, args.requests,
                     bare_fired, group_cpu),
                 row("bare Starlette route (reads body)", bare_fired, args.requests,
                     bare_fired)]))
    print(f"\nshared {shared_fired.statuses}, group {group_fired.statuses}; rows stored {stored}; "
          f"replies kept for moderation {kept} ({drained:.1f} s after the volley); "
          f"node RSS idle {idle_rss:.1f} MB, after load {busy_rss:.1f} MB; "
          f"concurrency {args.concurrency} from {args.clients} client processes")
    print("node CPU: the serving process's user+system time during the volley, per accepted "
          "request (its workers included); steadier than accepted/s on a shared machine")


if __name__ == "__main__":
    asyncio.run(main())
