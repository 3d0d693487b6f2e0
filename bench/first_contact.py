"""First contact: signed Follows from many actors the node has never seen, so
each request needs a key fetch. The actors' documents are served by a fake
remote in its own process (bench/sinkserver.py, --actor-keys), spread over
many loopback ports: each port is a host with its own fetch budget
(HostBuckets), as followers come from many instances. The requests are signed
beforehand in other processes and posted from other processes.

What followers see, not only what the inbox answered: a follow is complete
when its Accept has reached the follower's host, so the run waits until the
sinks have every Accept (or ``--accept-timeout``) and prints completed
follows/s, Accepts missing and duplicated (counted at the sinks), and the
followers collection's total. Also accepted/s, p50/p99 latency of the 202s, how
many actor documents were fetched (single-flight: once per actor).

``--kill-worker``: the node serves without its in-process worker and a
``hambastegi worker`` process delivers; it is killed with SIGKILL when half the
Accepts have arrived and started again: every Accept must still arrive,
duplicates at most what was in flight.

    .venv/bin/python bench/first_contact.py [--actors 10000] [--hosts 1000]
        [--concurrency 128] [--keys 16] [--kill-worker]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from bench.common import (
    PYTHON,
    ROOT,
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


async def followers_total(base: str) -> int | str:
    """The followers collection's totalItems, as a remote server reads it."""
    async with aiohttp.ClientSession() as session, session.get(
            f"{base}/groups/koeln/followers",
            headers={"Accept": "application/activity+json"}) as response:
        if response.status != 200:
            return f"HTTP {response.status}"
        return int((await response.json(content_type=None))["totalItems"])


def start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([PYTHON, "-m", "node.cli.main", "worker"], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def wait_accepts(port: int, expected: int, within: float, on_half: Any = None,
                       progress: Any = None) -> dict[str, Any]:
    """Poll the sinks (seldom: the figure is their own clock) until ``expected``
    distinct Accepts arrived or ``within`` seconds passed."""
    deadline = time.monotonic() + within
    halfway_done = False
    shown = 0.0
    while True:
        stats = await sink_stats(port)
        if progress is not None and time.monotonic() - shown >= 5:
            shown = time.monotonic()
            print(f"  {time.strftime('%H:%M:%S')} Accepts at hosts {stats['distinct']}, "
                  f"{progress()}", file=sys.stderr)
        if on_half is not None and not halfway_done and stats["distinct"] * 2 >= expected:
            halfway_done = True
            await on_half()
        if stats["distinct"] >= expected or time.monotonic() > deadline:
            return stats
        await asyncio.sleep(0.2)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--actors", type=int, default=10_000)
    parser.add_argument("--hosts", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--keys", type=int, default=16, help="pre-generated RSA keys, shared")
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="open loop: offer this many Follows/s (latency then is service "
                             "time, not the queue of a closed loop: with --concurrency 128 "
                             "the mean latency is 128 / (accepted/s) by Little's law)")
    parser.add_argument("--accept-timeout", type=float, default=600.0,
                        help="seconds to wait for the last Accept after the volley")
    parser.add_argument("--kill-worker", action="store_true",
                        help="deliver from a `hambastegi worker` process, SIGKILLed halfway")
    parser.add_argument("--database-url", help="a PostgreSQL server (a fresh database is "
                        "made on it); default SQLite")
    args = parser.parse_args()
    pairs = [p for p in await in_processes(make_key, [(i,) for i in range(args.keys)])]
    private_pems = [p[0] for p in pairs]  # type: ignore[index]
    pg: tuple[str, str] | None = None
    if args.database_url:
        from bench.e2e import fresh_postgres

        pg = await fresh_postgres(args.database_url)
    kills = 0
    with tempfile.TemporaryDirectory() as tmp:
        pool_file = Path(tmp) / "keys.json"
        pool_file.write_text(json.dumps([p[1] for p in pairs]))  # type: ignore[index]
        sinks, ports = start_sinks(args.hosts, actor_keys=str(pool_file))
        data = Path(tmp) / "node"
        data.mkdir()
        extra = {"HAMBASTEGI_DATABASE_URL": pg[0]} if pg else {}
        try:
            node = start_node(str(data), spy=False, worker=not args.kill_worker, **extra)
        except BaseException:
            sinks.terminate()
            raise
        env = node_env(str(data), node.port, **extra)
        worker = start_worker(env) if args.kill_worker else None
        try:
            cli(env, "group", "create", "koeln", "--display-name", "Köln")
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

            async def kill_and_restart() -> None:
                nonlocal worker, kills
                assert worker is not None
                os.kill(worker.pid, signal.SIGKILL)
                worker.wait()
                kills += 1
                worker = start_worker(env)

            cpu = node.cpu_seconds()
            def inbox_queue() -> str:
                """What the node's inbox queue holds (SQLite: read beside the node)."""
                if pg:
                    return ""
                db = sqlite3.connect(data / "hambastegi.sqlite3")
                try:
                    return "inbox items " + str(dict(db.execute(
                        "select state, count(*) from inbox_item group by state").fetchall()))
                finally:
                    db.close()

            watcher = asyncio.create_task(wait_accepts(
                ports[0], args.actors, 3600, kill_and_restart if args.kill_worker else None,
                inbox_queue if os.environ.get("BENCH_PROGRESS") else None))
            fired = await fire_from_processes(target, signed, concurrency=args.concurrency,
                                              processes=args.clients, rate=args.rate)
            cpu = node.cpu_seconds() - cpu
            node.stop_profile()
            remote = await asyncio.wait_for(asyncio.shield(watcher), args.accept_timeout) \
                if fired.accepted else await sink_stats(ports[0])
            watcher.cancel()
            total = await followers_total(node.base)
        finally:
            if worker is not None:
                worker.send_signal(signal.SIGINT)
                worker.wait(timeout=30)
            node.stop()
            sinks.terminate()
            if pg:
                from bench.e2e import drop_postgres

                await drop_postgres(args.database_url, pg[1])
    accepts = int(remote["distinct"])
    last = float(remote["last_post_at"]) - fired.started
    database = "PostgreSQL" if pg else "SQLite"
    killed = f", the worker process SIGKILLed {kills} time(s) halfway" if args.kill_worker else ""
    print(table(f"First contact: Follows from {args.actors:,} new actors on {args.hosts:,} "
                f"hosts ({database}, key fetched before the 202{killed})",
                ["requests", "accepted", "seconds", "accepted/s", "p50 ms", "p99 ms",
                 "Accepts at hosts", "missing", "duplicates", "last Accept s",
                 "completed follows/s", "followers total", "node CPU ms/req", "actor GETs"],
                [[args.actors, fired.accepted, fired.seconds, fired.rate,
                  fired.percentile(0.5), fired.percentile(0.99), accepts,
                  fired.accepted - accepts, remote["duplicates"], last,
                  accepts / last if last > 0 else 0.0, total,
                  cpu * 1000 / max(1, fired.accepted), remote["actor_gets"]]]))
    print("\nA follow is complete when its Accept reached the follower's host (counted at "
          "the sinks); the clock runs from the first Follow sent to the last Accept received.")
    print("node CPU: the serving process's user+system time during the volley (all its "
          "threads; with --kill-worker the worker process is not included)")
    load = (f"open loop at {args.rate:,.0f} offered/s (latency from each request's due time)"
            if args.rate else "closed loop")
    print(f"statuses {fired.statuses}; {load}; concurrency {args.concurrency} from "
          f"{args.clients} client processes; {args.keys} RSA keys shared by the actors")


if __name__ == "__main__":
    asyncio.run(main())
