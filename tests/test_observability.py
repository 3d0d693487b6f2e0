"""/health, /metrics and `hambastegi status`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from node.core.settings import Settings
from node.federation.runtime import Node
from node.groups import operations
from tests.conftest import (
    DatabaseFactory,
    LiveNode,
    NodeFactory,
    NodeProcess,
    start_live_node,
    stop_live_node,
)

METRICS_TOKEN = "t" * 32
SCRAPE = {"Authorization": f"Bearer {METRICS_TOKEN}"}


@pytest.fixture
async def metrics_node(tmp_path: Path, database_url: str) -> AsyncIterator[LiveNode]:
    live = await start_live_node(tmp_path, database_url,
                                 {"HAMBASTEGI_METRICS_TOKEN": METRICS_TOKEN})
    yield live
    await stop_live_node(live)


async def test_health_and_metrics_report_queues_and_refusals(metrics_node: LiveNode) -> None:
    live_node = metrics_node
    await operations.create_group(live_node.node, "koeln", display_name="Köln", language="de")
    async with httpx.AsyncClient() as client:
        health = await client.get(live_node.url("/health"))
        unsigned = await client.post(live_node.url("/inbox"), json={"type": "Follow"})
        await client.get(live_node.url("/groups/koeln"),
                         headers={"Accept": "application/activity+json"})
        metrics = await client.get(live_node.url("/metrics"), headers=SCRAPE)
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert unsigned.status_code == 401
    text = metrics.text
    assert metrics.headers["content-type"].startswith("text/plain")
    assert 'hambastegi_inbox_requests_total{outcome="missing_signature"}' in text
    assert 'hambastegi_request_seconds_count{route="/groups/{username}"}' in text
    assert "# TYPE hambastegi_request_seconds histogram" in text
    # No URL with ids, no addresses: labels are route templates only.
    assert "127.0.0.1" not in text


async def test_metrics_show_the_delivery_queue(metrics_node: LiveNode) -> None:
    live_node = metrics_node
    from node.federation import publishing
    from node.federation.local_actors import get_group

    await operations.create_group(live_node.node, "koeln", display_name="Köln", language="de")
    async with live_node.node.db.write() as session:
        actor = await get_group(session, "koeln")
        assert actor is not None
        # An inbox on a port nothing listens on: its host gets a lane.
        await publishing.record_activity(
            session, actor, live_node.node.urls, activity_type="Create",
            obj={"id": "x", "type": "Note"}, to=[],
            inboxes=["http://127.0.0.1:9/inbox"])
    async with httpx.AsyncClient() as client:
        text = (await client.get(live_node.url("/metrics"), headers=SCRAPE)).text
    assert 'hambastegi_delivery_lanes{state="all"} 1.0' in text
    assert 'hambastegi_delivery_lanes{state="behind"}' in text
    assert "hambastegi_delivery_queue " in text


def status_of(env: dict[str, str]) -> str:
    result = subprocess.run([sys.executable, "-m", "node.cli.main", "status"], env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
async def cli_env(tmp_path: Path, databases: DatabaseFactory) -> dict[str, str]:
    return {**os.environ, "HAMBASTEGI_DATA_DIR": str(tmp_path / "data"),
            "HAMBASTEGI_DATABASE_URL": await databases.new(),
            "HAMBASTEGI_BASE_URL": "https://node.example"}


async def test_status_of_an_empty_node_says_none(cli_env: dict[str, str]) -> None:
    out = status_of(cli_env)
    assert "deliveries queued: none" in out
    assert "deliveries failed all time: 0" in out
    assert "inbox queued: none" in out
    assert "delivery lanes sending that no walk renews (should be 0): 0" in out
    assert "deliveries ended for no remote reason (should be 0): 0" in out
    assert "failing hosts: none" in out
    assert not [line for line in out.splitlines() if line.rstrip().endswith(":")]


async def test_status_separates_queue_recent_and_history_and_counts_failing_hosts(
        cli_env: dict[str, str]) -> None:
    from node.federation import publishing
    from node.federation.local_actors import get_group
    from node.storage.db import Database, utcnow
    from node.storage.models import DeliveryFailure, Fanout, HostState

    settings = Settings.load(environ=cli_env)
    node = Node(settings)
    await node.start()
    try:
        await operations.create_group(node, "koeln", display_name="Köln", language="de")
        async with node.db.write() as session:
            actor = await get_group(session, "koeln")
            assert actor is not None
            activity = await publishing.record_activity(
                session, actor, node.urls, activity_type="Create",
                obj={"id": "x", "type": "Note"}, to=[],
                inboxes=[f"https://h{i}.example/inbox" for i in range(30)])
    finally:
        await node.close()
    db = Database(settings.database_url)
    now = utcnow()
    async with db.write() as session:
        [fanout] = (await session.exec(select(Fanout))).all()
        lanes = {s.host: s for s in (await session.exec(select(HostState))).all()}
        # 25 hosts failing (h24 the most), 3 caught up, 2 still behind.
        for i in range(25):
            lanes[f"h{i}.example"].attempts = lanes[f"h{i}.example"].consecutive_failures = i + 1
        for i in range(25, 28):
            lanes[f"h{i}.example"].cursor = fanout.id or 0
        # Behind: one walked (its lease renewed just now), one whose lease nobody
        # renewed for most of it (a walk that ended without releasing it).
        for i, left in ((28, timedelta(seconds=9)), (29, timedelta(seconds=1))):
            lanes[f"h{i}.example"].state = "sending"
            lanes[f"h{i}.example"].worker_id = "w"
            lanes[f"h{i}.example"].lease_until = now + left
        session.add_all(lanes.values())
        # 4 failed in the last hour, 6 yesterday, 15 long ago.
        ages = [timedelta(minutes=5)] * 4 + [timedelta(hours=5)] * 6 + [timedelta(days=3)] * 15
        for i, age in enumerate(ages):
            session.add(DeliveryFailure(fanout_id=fanout.id or 0, activity_id=activity.id or 0,
                                        host=f"x{i}.example", inbox_url="https://x/inbox",
                                        status=410, error="http_410", at=now - age))
        # Dropped by the node itself: the activity exists, the worker "lost" it.
        session.add(DeliveryFailure(fanout_id=fanout.id or 0, activity_id=activity.id or 0,
                                    host="y.example", inbox_url="https://y/inbox",
                                    error="activity_gone", at=now - timedelta(days=2)))
    await db.dispose()
    out = status_of(cli_env)
    assert ("deliveries queued: behind=2, retrying=25, sending=2 (hosts); "
            "log positions behind, summed over hosts: 27") in out
    assert "delivery lanes (hosts): 30" in out
    assert "deliveries failed in the last hour: 4" in out
    assert "deliveries failed in the last day: 10" in out
    assert "deliveries failed all time: 26" in out
    assert "delivery lanes sending that no walk renews (should be 0): 1" in out
    assert "deliveries ended for no remote reason (should be 0): 1" in out
    assert "failing hosts: 25 (the 20 with most failures below)" in out
    listed = [line for line in out.splitlines() if line.startswith("  h")]
    assert len(listed) == 20 and listed[0].startswith("  h24.example")


def sample(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


async def test_metrics_add_up_every_process_of_the_node(nodes: NodeFactory) -> None:
    env = {"HAMBASTEGI_METRICS_TOKEN": METRICS_TOKEN}
    first = await nodes.create("web1", extra_env=env)
    second = NodeProcess("web2", first.data_dir, first.database_url,
                         public_port=first.port, extra_env=env)
    nodes.nodes.append(second)
    await asyncio.to_thread(second.start, "--no-worker")
    series = 'hambastegi_inbox_requests_total{outcome="missing_signature"}'
    async with httpx.AsyncClient() as client:
        for node, times in ((first, 3), (second, 2)):
            for _ in range(times):
                response = await client.post(f"http://127.0.0.1:{node.port}/inbox",
                                             json={"type": "Follow"})
                assert response.status_code == 401
        scraped = [(await client.get(f"http://127.0.0.1:{node.port}/metrics",
                                     headers=SCRAPE)).text for node in (first, second)]
    assert [sample(text, series) for text in scraped] == [5.0, 5.0]
    assert "hambastegi_request_seconds_bucket" in scraped[0]
    assert list((first.data_dir / "metrics").glob("*.db"))  # the shared directory

    # A process that is gone leaves no files behind once another one starts.
    gone = second.proc.pid if second.proc else 0
    await asyncio.to_thread(second.stop)
    third = NodeProcess("web3", first.data_dir, first.database_url,
                        public_port=first.port, extra_env=env)
    nodes.nodes.append(third)
    await asyncio.to_thread(third.start, "--no-worker")
    left = [p.name for p in (first.data_dir / "metrics").glob("*.db")]
    assert not [name for name in left if name.endswith(f"-{gone}.db")]
