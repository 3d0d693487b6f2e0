"""Fan-out: one post from a group to N followers on M hosts, delivered to sink
servers (another process) that count duplicates and verify a sample of
signatures. Baselines measured in the same run: RSA-2048 signatures/s on one
core, and plain aiohttp POSTs/s to the same sinks.

Then three runs of one size in the same process, the healthy hosts' last
delivery compared with the all-healthy run's:
- all healthy;
- slow host: one more host accepts connections and never answers;
- flaky hosts: 30% of the hosts answer 503 for a while.

The worker's peak RSS is sampled during each run: it should not grow with
the number of followers (compare 10k and 100k).

    .venv/bin/python bench/fanout.py      # 1k/100, 10k/1k, 100k/10k; faults at 5k/500
    .venv/bin/python bench/fanout.py --sizes 10000:1000 --no-shared-inbox --faults 2000:200
    .venv/bin/python bench/fanout.py --sizes '' --faults '' --burst 1000:1000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    HangingServer,
    PeakRss,
    raw_post_rate,
    rsa_sign_rate,
    sink_fail,
    sink_key,
    sink_reset,
    sink_stats,
    spy_on,
    start_sinks,
    stop_spy,
    table,
)
from node.core.settings import Settings
from node.federation import delivery, publishing
from node.federation.runtime import Node
from node.groups import operations
from node.storage import migrate
from node.storage.db import utcnow
from node.storage.models import Follower, HostState, LocalActor


@contextlib.asynccontextmanager
async def fresh_node(database_url: str | None, concurrency: int,
                     env_out: dict[str, str] | None = None) -> AsyncIterator[Node]:
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite:///{tmp}/bench.sqlite3"
        env = {"HAMBASTEGI_DATA_DIR": tmp, "HAMBASTEGI_DATABASE_URL": url,
               "HAMBASTEGI_BASE_URL": "http://127.0.0.1:1",
               "HAMBASTEGI_ALLOW_PRIVATE_NETWORKS": "1",
               "HAMBASTEGI_DELIVERY_CONCURRENCY": str(concurrency)}
        if env_out is not None:
            env_out.update(env)
        settings = Settings.load(environ=env)
        await asyncio.to_thread(migrate.upgrade, settings.database_url)
        node = Node(settings)
        await node.start()
        try:
            yield node
        finally:
            await node.close()


async def add_followers(node: Node, actor: LocalActor, ports: list[int], followers: int,
                        shared: bool) -> None:
    """Accepted followers spread over the ports (hosts), with their lanes, as
    following would have left them; written in chunks (the bench process's
    own memory stays small)."""
    hosts: set[str] = set()
    async with node.db.write() as session:
        for start in range(0, followers, 5000):
            rows = []
            for i in range(start, min(start + 5000, followers)):
                port = ports[i % len(ports)]
                actor_uri = f"http://127.0.0.1:{port}/users/{i}"
                inbox = f"{actor_uri}/inbox"
                shared_inbox = f"http://127.0.0.1:{port}/inbox" if shared else None
                target = delivery.deliver_to(actor_uri, inbox, shared_inbox)
                host = delivery.inbox_host(target)
                if host is not None:
                    hosts.add(host)
                rows.append({"local_actor_id": actor.id, "actor_uri": actor_uri, "inbox": inbox,
                             "shared_inbox": shared_inbox, "deliver_to": target, "host": host,
                             "follow_activity_id": f"http://127.0.0.1:{port}/follows/{i}",
                             "state": "accepted"})
            await session.exec(Follower.__table__.insert(), params=rows)  # type: ignore[attr-defined]
        lanes = [{"host": h, "cursor": 0, "state": "idle", "attempts": 0,
                  "consecutive_failures": 0, "next_attempt_at": utcnow()} for h in sorted(hosts)]
        for start in range(0, len(lanes), 5000):
            await session.exec(HostState.__table__.insert(), params=lanes[start:start + 5000])  # type: ignore[attr-defined]


async def publish(node: Node, actor: LocalActor) -> None:
    async with node.db.write() as session:
        group = await session.get(LocalActor, actor.id)
        assert group is not None
        await publishing.publish_note(session, group, node.urls,
                                      text="Solidarity with the striking workers")


async def run_size(followers: int, hosts: int, ports: list[int], shared: bool,
                   database_url: str | None, concurrency: int,
                   spy_path: str | None = None, lookahead: int | None = None
                   ) -> dict[str, Any]:
    async with fresh_node(database_url, concurrency) as node:
        actor = await operations.create_group(node, "koeln", display_name="Köln",
                                              language="de")
        await sink_key(ports[0], node.urls.key_id("koeln"), actor.rsa_public_pem)
        await add_followers(node, actor, ports[:hosts], followers, shared)
        worker = node.delivery_worker()
        if lookahead is not None:
            worker.lookahead = lookahead
        # py-spy samples this process (the worker) while it sends.
        spy = spy_on(os.getpid(), spy_path) if spy_path else None
        with PeakRss() as rss:
            cpu = time.process_time()
            started = time.perf_counter()
            await publish(node, actor)
            published = time.perf_counter() - started
            sent = await worker.run_once()
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu
        if spy is not None:
            stop_spy(spy)
        worker.close()
    stats = await sink_stats(ports[0])
    return {"followers": followers, "hosts": hosts, "deliveries": sent,
            "publish_s": published, "seconds": elapsed, "per_s": sent / elapsed,
            "received": stats["distinct"], "duplicates": stats["duplicates"],
            "verified": stats["verified"], "bad_sig": stats["bad"], "rss_start": rss.start,
            "rss_peak": rss.peak, "cpu_ms": cpu * 1000 / max(1, sent),
            "mode": "in process" + ("" if lookahead is None else f", lookahead {lookahead}")}


async def run_burst(activities: int, hosts: int, ports: list[int], database_url: str | None,
                    concurrency: int) -> dict[str, Any]:
    """Many small activities to many hosts (an Accept, a reply, a relay's Announce
    each: one explicit inbox), queued, then sent by the worker; and, same run,
    the sending alone: the same bodies signed and POSTed by the worker's Sender
    to the same inboxes, as many at once, with no queue and no database."""
    from node.federation.delivery.sending import Sender
    from node.federation.runtime import actor_signer

    async with fresh_node(database_url, concurrency) as node:
        actor = await operations.create_group(node, "koeln", display_name="Köln",
                                              language="de")
        await sink_key(ports[0], node.urls.key_id("koeln"), actor.rsa_public_pem)
        inboxes = [f"http://127.0.0.1:{ports[i % hosts]}/users/b{i}/inbox"
                   for i in range(activities)]
        bodies: list[bytes] = []
        started = time.perf_counter()
        for n, inbox in enumerate(inboxes):
            async with node.db.write() as session:
                group = await session.get(LocalActor, actor.id)
                assert group is not None
                activity = await publishing.record_activity(
                    session, group, node.urls, activity_type="Create",
                    obj={"id": node.urls.object(f"burst-{n}"), "type": "Note",
                         "content": f"reply {n}"},
                    to=[inbox.removesuffix("/inbox")], inboxes=[inbox], in_outbox=False)
                bodies.append(activity.body)
        published = time.perf_counter() - started
        worker = node.delivery_worker()
        started = time.perf_counter()
        sent = await worker.run_once()
        queued_s = time.perf_counter() - started
        invariants = await worker.check_invariants()
        worker.close()
        stats = await sink_stats(ports[0])
        await sink_reset(ports[0])
        # The sending alone: sign + POST the same bodies to the same inboxes.
        signer = actor_signer(actor, node.urls)
        sender = Sender(node.client, pool=node.signing_threads)
        gate = asyncio.Semaphore(concurrency)

        async def one(inbox: str, body: bytes) -> None:
            async with gate:
                await sender.send(inbox, body, signer, "cavage")

        started = time.perf_counter()
        await asyncio.gather(*(one(i, b) for i, b in zip(inboxes, bodies, strict=True)))
        alone_s = time.perf_counter() - started
        alone = await sink_stats(ports[0])
    return {"activities": activities, "hosts": hosts, "sent": sent, "publish_s": published,
            "seconds": queued_s, "alone_s": alone_s, "received": stats["distinct"],
            "duplicates": stats["duplicates"], "alone_received": alone["distinct"],
            "invariants": "ok" if invariants.ok else str(invariants)}


def start_workers(processes: int, env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    """``processes`` `hambastegi worker` processes over the node's database."""
    env = {**os.environ, **env, "HAMBASTEGI_LOG_LEVEL": "WARNING"}
    return [subprocess.Popen([sys.executable, "-m", "node.cli.main", "worker"], env=env,
                             cwd=Path(__file__).resolve().parent.parent,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(processes)]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_size_workers(followers: int, hosts: int, ports: list[int], shared: bool,
                           database_url: str | None, concurrency: int,
                           processes: int) -> dict[str, Any]:
    """The same fan-out sent by ``processes`` `hambastegi worker` processes sharing
    the lanes (leases split the hosts between them). The post is published
    here; the workers learn of it through the database (the SQLite change probe,
    or LISTEN/NOTIFY), as from the CLI or a web process. Time: publish call →
    the last delivery's arrival at the sinks."""
    env: dict[str, str] = {}
    async with fresh_node(database_url, concurrency, env) as node:
        actor = await operations.create_group(node, "koeln", display_name="Köln",
                                              language="de")
        await sink_key(ports[0], node.urls.key_id("koeln"), actor.rsa_public_pem)
        await add_followers(node, actor, ports[:hosts], followers, shared)
        # This process only publishes: its worker does not take lanes.
        procs = start_workers(processes, env)
        try:
            # Started and idle (imports done, first look at the queue taken): their
            # CPU time stops moving.
            last = -1.0
            while True:
                await asyncio.sleep(0.5)  # sampling the workers' CPU, not synchronisation
                now = sum(cpu_seconds(p.pid) for p in procs)
                if now == last and now > 0:
                    break
                last = now
            cpu = sum(cpu_seconds(p.pid) for p in procs)
            started = time.time()
            await publish(node, actor)
            expected = hosts if shared else followers
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                stats = await sink_stats(ports[0])
                if stats["distinct"] >= expected:
                    break
                await asyncio.sleep(0.05)  # polling the sinks, not synchronisation
            cpu = sum(cpu_seconds(p.pid) for p in procs) - cpu
            elapsed = max(stats["last_at"].values()) - started
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGINT)
            for proc in procs:
                proc.wait(timeout=60)
    sent = stats["distinct"]
    return {"followers": followers, "hosts": hosts, "deliveries": sent, "publish_s": 0.0,
            "seconds": elapsed, "per_s": sent / elapsed, "received": stats["distinct"],
            "duplicates": stats["duplicates"], "verified": stats["verified"],
            "bad_sig": stats["bad"], "rss_start": 0.0, "rss_peak": 0.0,
            "cpu_ms": cpu * 1000 / max(1, sent),
            "mode": f"{processes} worker process{'es' if processes > 1 else ''}"}


async def run_scenario(kind: str, followers: int, hosts: int, ports: list[int], shared: bool,
                       database_url: str | None, concurrency: int) -> dict[str, Any]:
    """The healthy hosts' last delivery, seconds after the publish call."""
    await sink_reset(ports[0])
    healthy_ports = ports[:hosts]
    hang = HangingServer()
    await hang.start()
    flaky: list[int] = []
    if kind == "flaky":
        flaky = random.Random(7).sample(healthy_ports, k=round(0.3 * hosts))
        healthy_ports = [p for p in healthy_ports if p not in set(flaky)]
        await sink_fail(ports[0], flaky, seconds=600)
    per_host = followers // hosts
    expected = len(healthy_ports) * (1 if shared else per_host)
    try:
        async with fresh_node(database_url, concurrency) as node:
            actor = await operations.create_group(node, "koeln", display_name="Köln",
                                                  language="de")
            await sink_key(ports[0], node.urls.key_id("koeln"), actor.rsa_public_pem)
            await add_followers(node, actor, ports[:hosts], followers, shared)
            if kind == "slow host":
                await add_followers(node, actor, [hang.port], 1, shared)
            worker = node.delivery_worker()
            stop = asyncio.Event()
            task = asyncio.create_task(worker.run(stop))
            with PeakRss() as rss:
                started = time.time()
                await publish(node, actor)
                worker.wake()
                deadline = time.monotonic() + 600
                while time.monotonic() < deadline:
                    stats = await sink_stats(ports[0])
                    if stats["distinct"] >= expected:
                        break
                    await asyncio.sleep(0.2)  # polling the sinks, not synchronisation
            healthy = {f"127.0.0.1:{p}" for p in healthy_ports}
            last = max(at for host, at in stats["last_at"].items() if host in healthy)
            stop.set()
            await asyncio.wait_for(task, timeout=60)
    finally:
        await hang.stop()
        await sink_reset(ports[0])
    return {"kind": kind, "healthy_hosts": len(healthy_ports), "received": stats["distinct"],
            "expected": expected, "last_s": last - started, "hang_requests": hang.requests,
            "flaky_hosts": len(flaky), "duplicates": stats["duplicates"], "rss_peak": rss.peak}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000:100,10000:1000,100000:10000")
    parser.add_argument("--faults", default="5000:500",
                        help="followers:hosts of the healthy/slow/flaky runs ('' to skip)")
    parser.add_argument("--no-shared-inbox", action="store_true")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--lookahead", default="",
                        help="also send each size in process with these lookaheads "
                             "(DeliveryWorker.lookahead; 0 = no lanes claimed ahead of "
                             "slots, as before), e.g. 0")
    parser.add_argument("--workers", default="",
                        help="also send each size with these numbers of `hambastegi worker` "
                             "processes, e.g. 1,2")
    parser.add_argument("--burst", default="",
                        help="activities:hosts of a burst of small activities, one inbox "
                             "each (e.g. 1000:1000), against the sending alone")
    parser.add_argument("--database-url", help="default: a fresh SQLite file per run")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop",
                        help="the event loop (serve and worker run uvloop)")
    args = parser.parse_args()
    sizes = [tuple(int(x) for x in s.split(":")) for s in args.sizes.split(",") if s]
    faults = tuple(int(x) for x in args.faults.split(":")) if args.faults else None
    burst = tuple(int(x) for x in args.burst.split(":")) if args.burst else None
    max_hosts = max([h for _, h in sizes] + ([faults[1]] if faults else [])
                    + ([burst[1]] if burst else []))
    shared = not args.no_shared_inbox
    sinks, ports = start_sinks(max_hosts, verify_every=50)
    scenarios: list[dict[str, Any]] = []
    try:
        sign_rate = rsa_sign_rate()
        # Same shape as the fan-out: one POST to each of 1,000 hosts, new connections.
        baseline_urls = [f"http://127.0.0.1:{p}/inbox" for p in ports[:min(max_hosts, 1000)]]
        body = b'{"id":"http://x/1","type":"Create"}' + b" " * 900
        post_rate = await raw_post_rate(baseline_urls, body, args.concurrency)
        floor = min(sign_rate, post_rate)
        results = []
        # BENCH_PYSPY=file.txt: py-spy samples the first size's in-process sending
        # (summarise with bench/spysummary.py).
        spy_path = os.environ.get("BENCH_PYSPY")
        for followers, hosts in sizes:
            await sink_reset(ports[0])
            results.append(await run_size(followers, hosts, ports, shared,
                                          args.database_url, args.concurrency, spy_path))
            spy_path = None
            for lookahead in [int(x) for x in args.lookahead.split(",") if x]:
                await sink_reset(ports[0])
                results.append(await run_size(followers, hosts, ports, shared,
                                              args.database_url, args.concurrency,
                                              lookahead=lookahead))
            for n in [int(x) for x in args.workers.split(",") if x]:
                await sink_reset(ports[0])
                results.append(await run_size_workers(followers, hosts, ports, shared,
                                                      args.database_url, args.concurrency, n))
        bursts = []
        if burst is not None:
            await sink_reset(ports[0])
            bursts.append(await run_burst(burst[0], burst[1], ports, args.database_url,
                                          args.concurrency))
        if faults is not None:
            for kind in ("all healthy", "slow host", "flaky"):
                scenarios.append(await run_scenario(kind, faults[0], faults[1], ports, shared,
                                                    args.database_url, args.concurrency))
    finally:
        sinks.terminate()
    print(table("Baselines (same run, same machine)", ["baseline", "per second"], [
        ["RSA-2048 signatures, one core", sign_rate],
        [f"plain aiohttp POSTs to the sinks (concurrency {args.concurrency})", post_rate],
    ]))
    print(table(
        "Fan-out" + (" (shared inboxes)" if shared else " (no shared inboxes)"),
        ["followers", "hosts", "sent by", "deliveries", "publish s", "to last delivery s",
         "deliveries/s", "ratio to floor", "sender CPU ms/delivery", "received", "duplicates",
         "sigs verified/bad", "RSS at publish MB", "peak RSS while sending MB"],
        [[r["followers"], r["hosts"], r["mode"], r["deliveries"], r["publish_s"], r["seconds"],
          r["per_s"], f"{r['per_s'] / floor:.0%}", r["cpu_ms"], r["received"], r["duplicates"],
          f"{r['verified']}/{r['bad_sig']}", r["rss_start"], r["rss_peak"]]
         for r in results]))
    if bursts:
        print(table(
            "Burst: small activities, one inbox each, to many hosts (queued, then sent by "
            "the worker) vs the sending alone (same bodies, same inboxes, signed and POSTed "
            "with no queue; target <= 2x)",
            ["activities", "hosts", "published in s", "worker to last delivery s",
             "sending alone s", "ratio", "received", "duplicates", "invariants"],
            [[b["activities"], b["hosts"], b["publish_s"], b["seconds"], b["alone_s"],
              f"{b['seconds'] / b['alone_s']:.2f}x", f"{b['received']}/{b['sent']}",
              b["duplicates"], b["invariants"]] for b in bursts]))
    if scenarios and faults is not None:
        base = scenarios[0]["last_s"]
        print(table(
            f"Faults: {faults[0]:,} followers on {faults[1]:,} hosts (healthy hosts' last "
            "delivery vs the all-healthy run; target <= 1.2x)",
            ["run", "healthy hosts", "received/expected", "last healthy delivery s",
             "ratio", "hanging host requests", "flaky hosts", "duplicates",
             "worker peak RSS MB"],
            [[s["kind"], s["healthy_hosts"], f"{s['received']}/{s['expected']}", s["last_s"],
              f"{s['last_s'] / base:.2f}x", s["hang_requests"], s["flaky_hosts"],
              s["duplicates"], s["rss_peak"]] for s in scenarios]))
    print(f"\nfloor = min(signing, plain POST) = {floor:,.0f}/s; pid {os.getpid()}")


if __name__ == "__main__":
    # The event loop serve and the worker process run (node/core/server.py).
    if "--loop=asyncio" in sys.argv or " ".join(sys.argv).count("--loop asyncio"):
        asyncio.run(main())
    else:
        import uvloop

        uvloop.run(main())
