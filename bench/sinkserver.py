"""Inbox sinks for the benchmarks, run as their own process (the node under
test keeps its core): N loopback ports, each a distinct "host". Counts what
arrives per (inbox, activity), verifies a sample of signatures against keys it
fetches from the node, and serves actor documents for the ingest benchmark.

Prints one JSON line with its ports, then serves until killed.
Control on the first port: GET /_stats, POST /_reset, /_key, /_actor, and
/_fail ({"ports": [...], "seconds": s}: those hosts answer 503 for a while).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import ClientSession, web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from node.federation import keys, signatures

received: Counter[tuple[str, str]] = Counter()
# last_post_at: when the last accepted POST of any host arrived (time.time()).
stats: dict[str, float] = {"posts": 0, "verified": 0, "bad": 0, "actor_gets": 0,
                           "last_post_at": 0.0}
# Hosts ("127.0.0.1:port") answering 503 until a moment (time.time()): flaky hosts.
failing_until: dict[str, float] = {}
# Per host: when its last accepted POST arrived (time.time()).
last_at: dict[str, float] = {}
public_keys: dict[str, keys.PublicKey] = {}
actor_docs: dict[str, bytes] = {}
# First-contact benchmark: actors made up on request, ``/users/f<n>`` on any port,
# signing with pre-generated key n mod len(pool) (RSA keys take long to make).
key_pool: list[str] = []
actor_gets: Counter[str] = Counter()


async def key_for(key_id: str, session: ClientSession) -> keys.PublicKey:
    if key_id not in public_keys:
        async with session.get(key_id.split("#")[0],
                               headers={"Accept": "application/activity+json"}) as r:
            doc = await r.json(content_type=None)
        public_keys[key_id] = keys.load_public_pem(doc["publicKey"]["publicKeyPem"])
    return public_keys[key_id]


def made_up_actor(host: str, name: str, pem: str) -> bytes:
    actor_id = f"http://{host}/users/{name}"
    return json.dumps({
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
        "id": actor_id, "type": "Person", "preferredUsername": name, "name": name,
        "inbox": actor_id + "/inbox", "endpoints": {"sharedInbox": f"http://{host}/inbox"},
        "publicKey": {"id": actor_id + "#main-key", "owner": actor_id, "publicKeyPem": pem},
    }).encode()


def make_app(verify_every: int, session_holder: list[ClientSession]) -> web.Application:
    async def inbox(request: web.Request) -> web.Response:
        body = await request.read()
        stats["posts"] += 1
        if failing_until.get(request.host, 0.0) > time.time():
            return web.Response(status=503)
        last_at[request.host] = time.time()
        try:
            activity_id = json.loads(body).get("id", "")
        except ValueError:
            activity_id = ""
        received[(request.host + request.path, activity_id)] += 1
        stats["last_post_at"] = time.time()  # wall clock: bench/e2e.py compares it across processes
        if verify_every and stats["posts"] % verify_every == 0:
            try:
                parsed = signatures.parse_request_signature(
                    method="POST", target_uri=f"http://{request.host}{request.path_qs}",
                    headers=request.headers, now=datetime.now(UTC), require_digest=True)
                signatures.verify_body_digest(request.headers, body)
                signatures.verify_signature(parsed, await key_for(parsed.key_id,
                                                                  session_holder[0]))
                stats["verified"] += 1
            except Exception:
                stats["bad"] += 1
        return web.Response(status=202)

    async def stats_view(request: web.Request) -> web.Response:
        duplicates = sum(n - 1 for n in received.values() if n > 1)
        hosts = {host for host, _ in received}
        refetched = sum(n - 1 for n in actor_gets.values() if n > 1)
        return web.json_response({**stats, "distinct": len(received),
                                  "duplicates": duplicates, "last_at": last_at,
                                  "hosts": len(hosts), "actors_fetched": len(actor_gets),
                                  "actor_refetches": refetched})

    async def fail(request: web.Request) -> web.Response:
        data = await request.json()
        until = time.time() + float(data["seconds"])
        failing_until.update({f"127.0.0.1:{port}": until for port in data["ports"]})
        return web.json_response({"ok": True})

    async def reset(request: web.Request) -> web.Response:
        received.clear()
        last_at.clear()
        failing_until.clear()
        stats.update(posts=0, verified=0, bad=0, actor_gets=0, last_post_at=0.0)
        actor_gets.clear()
        return web.json_response({"ok": True})

    async def register_key(request: web.Request) -> web.Response:
        data = await request.json()
        public_keys[data["key_id"]] = keys.load_public_pem(data["pem"])
        return web.json_response({"ok": True})

    async def register_actor(request: web.Request) -> web.Response:
        data = await request.json()
        actor_docs[data["name"]] = json.dumps(data["doc"]).encode()
        return web.json_response({"ok": True})

    async def actor(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        stats["actor_gets"] += 1
        actor_gets[request.host + name] += 1
        doc = actor_docs.get(name)
        if doc is None and key_pool and name[:1] == "f" and name[1:].isdigit():
            doc = made_up_actor(request.host, name,
                                key_pool[int(name[1:]) % len(key_pool)])
        if doc is None:
            return web.Response(status=404)
        return web.Response(body=doc, content_type="application/activity+json")

    app = web.Application(client_max_size=2 * 1024 * 1024)
    app.router.add_get("/_stats", stats_view)
    app.router.add_post("/_reset", reset)
    app.router.add_post("/_fail", fail)
    app.router.add_post("/_key", register_key)
    app.router.add_post("/_actor", register_actor)
    app.router.add_get("/users/{name}", actor)
    app.router.add_post("/{tail:.*}", inbox)
    return app


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ports", type=int, default=10)
    parser.add_argument("--verify-every", type=int, default=0)
    parser.add_argument("--actor-keys", help="JSON list of public PEMs for /users/f<n>")
    args = parser.parse_args()
    if args.actor_keys:  # before serving: nothing waits on the loop yet
        key_pool.extend(json.loads(Path(args.actor_keys).read_text()))  # noqa: ASYNC240
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    holder: list[ClientSession] = [ClientSession()]
    app = make_app(args.verify_every, holder)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    ports = []
    for _ in range(args.ports):
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=2048)
        await site.start()
        ports.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
    print(json.dumps({"ports": ports}), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
