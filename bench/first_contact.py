"""First contact: signed Follows from many actors the node has never seen, so
each request needs a key fetch. The actors' documents are served by a fake
remote in its own process (bench/sinkserver.py, --actor-keys), spread over
many loopback ports: each port is a host with its own fetch budget
(HostBuckets), as followers come from many instances. The requests are signed
beforehand in other processes and posted from other processes.

Prints accepted/s, p50/p99 latency of the 202s, how many actor documents were
fetched (single-flight: once per actor), and how many actors were stored.

    .venv/bin/python bench/first_contact.py [--actors 10000] [--hosts 100]
        [--concurrency 128] [--keys 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sqlite3
import sys
import tempfile
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from bench.common import (
    Signed,
    cli,
    fire_from_processes,
    node_env,
    sink_stats,
    start_node,
    start_sinks,
    table,
)
from node.federation import keys, signatures


def make_key(_: int) -> tuple[str, str]:
    key = keys.generate_rsa()
    return keys.private_to_pem(key), keys.public_to_pem(key.public_key())


def sign_follows(target: str, group_uri: str, ports: list[int], private_pems: list[str],
                 numbers: list[int], tag: str) -> list[Signed]:
    """Follow requests of actors f<n> (runs in a spawned process)."""
    loaded = [keys.load_private_pem(pem) for pem in private_pems]
    signed = []
    for n in numbers:
        actor_id = f"http://127.0.0.1:{ports[n % len(ports)]}/users/f{n}"
        body = json.dumps({"@context": "https://www.w3.org/ns/activitystreams",
                           "id": f"{actor_id}/follows/{tag}", "type": "Follow",
                           "actor": actor_id, "object": group_uri}).encode()
        key = loaded[n % len(loaded)]
        assert isinstance(key, RSAPrivateKey)
        headers = signatures.sign_cavage(method="POST", url=target, body=body,
                                         key_id=actor_id + "#main-key", private_key=key)
        headers["Content-Type"] = "application/activity+json"
        signed.append((body, headers))
    return signed


async def in_processes(fn: object, jobs: list[tuple[object, ...]]) -> list[object]:
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(await asyncio.gather(*(loop.run_in_executor(pool, fn, *job)  # type: ignore[arg-type]
                                           for job in jobs)))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--actors", type=int, default=10_000)
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--keys", type=int, default=16, help="pre-generated RSA keys, shared")
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="open loop: offer this many Follows/s (latency then is service "
                             "time, not the queue of a closed loop: with --concurrency 128 "
                             "the mean latency is 128 / (accepted/s) by Little's law)")
    args = parser.parse_args()
    pairs = [p for p in await in_processes(make_key, [(i,) for i in range(args.keys)])]
    private_pems = [p[0] for p in pairs]  # type: ignore[index]
    with tempfile.TemporaryDirectory() as tmp:
        pool_file = Path(tmp) / "keys.json"
        pool_file.write_text(json.dumps([p[1] for p in pairs]))  # type: ignore[index]
        sinks, ports = start_sinks(args.hosts, actor_keys=str(pool_file))
        data = Path(tmp) / "node"
        data.mkdir()
        node = start_node(str(data), spy=False)
        try:
            cli(node_env(str(data), node.port), "group", "create", "koeln",
                "--display-name", "Köln")
            target = f"{node.base}/groups/koeln/inbox"
            group_uri = f"{node.base}/groups/koeln"
            tag = uuid.uuid4().hex[:8]
            numbers = list(range(args.actors))
            slices = [numbers[i::2] for i in range(2)]
            signed_parts = await in_processes(sign_follows, [
                (target, group_uri, ports, private_pems, part, tag) for part in slices])
            signed: list[Signed] = [r for part in signed_parts for r in part]  # type: ignore[attr-defined]
            # BENCH_PYSPY=file.txt: py-spy samples the node during the volley only.
            if os.environ.get("BENCH_PYSPY"):
                node.profile(os.environ["BENCH_PYSPY"])
            cpu = node.cpu_seconds()
            fired = await fire_from_processes(target, signed, concurrency=args.concurrency,
                                              processes=args.clients, rate=args.rate)
            cpu = node.cpu_seconds() - cpu
            node.stop_profile()
            remote = await sink_stats(ports[0])
            db = sqlite3.connect(data / "hambastegi.sqlite3")
            actors = db.execute("select count(*) from remote_actor").fetchone()[0]
            stored = db.execute("select count(*) from inbox_item").fetchone()[0]
            db.close()
        finally:
            node.stop()
            sinks.terminate()
    print(table(f"First contact: Follows from {args.actors:,} new actors on {args.hosts} hosts "
                f"(SQLite, key fetched before the 202)",
                ["requests", "accepted", "refused", "seconds", "accepted/s", "p50 ms", "p99 ms",
                 "node CPU ms/req", "actor GETs", "refetched", "actors stored", "rows stored"],
                [[args.actors, fired.accepted, args.actors - fired.accepted, fired.seconds,
                  fired.rate, fired.percentile(0.5), fired.percentile(0.99),
                  cpu * 1000 / max(1, fired.accepted),
                  remote["actor_gets"], remote["actor_refetches"], actors, stored]]))
    print("\nnode CPU: the serving process's user+system time during the volley (all its "
          "threads; the workers handling the Follows and sending Accepts included)")
    load = (f"open loop at {args.rate:,.0f} offered/s (latency from each request's due time)"
            if args.rate else "closed loop")
    print(f"statuses {fired.statuses}; {load}; concurrency {args.concurrency} from "
          f"{args.clients} client processes; {args.keys} RSA keys shared by the actors")


if __name__ == "__main__":
    asyncio.run(main())
