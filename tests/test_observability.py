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
from sqlmodel import col, select

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
        # An inbox on a port nothing listens on: the row stays queued for retry.
        await publishing.record_activity(
            session, actor, live_node.node.urls, activity_type="Create",
            obj={"id": "x", "type": "Note"}, to=[],
            inboxes=["http://127.0.0.1:9/inbox"])
    async with httpx.AsyncClient() as client:
        text = (await client.get(live_node.url("/metrics"), headers=SCRAPE)).text
    assert 'hambastegi_delivery_queue{state="' in text


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
    assert "inbox queued: none" in out
    assert "failing hosts: none" in out
    assert not [line for line in out.splitlines() if line.rstrip().endswith(":")]


async def test_status_separates_queue_recent_and_history_and_counts_failing_hosts(
        cli_env: dict[str, str]) -> None:
    from node.federation import publishing
    from node.federation.local_actors import get_group
    from node.storage.db import Database, utcnow
    from node.storage.models import Delivery, HostState

    settings = Settings.load(environ=cli_env)
    node = Node(settings)
    await node.start()
    try:
        await operations.create_group(node, "koeln", display_name="Köln", language="de")
        async with node.db.write() as session:
            actor = await get_group(session, "koeln")
            assert actor is not None
            await publishing.record_activity(
                session, actor, node.urls, activity_type="Create",
                obj={"id": "x", "type": "Note"}, to=[],
                inboxes=[f"https://h{i}.example/inbox" for i in range(30)])
    finally:
        await node.close()
    db = Database(settings.database_url)
    now = utcnow()
    async with db.write() as session:
        rows = (await session.exec(select(Delivery).order_by(col(Delivery.id)))).all()
        # 5 still queued, 4 sent in the last hour, 6 sent yesterday, 15 sent long ago.
        for row in rows[5:9]:
            row.state, row.finished_at = "sent", now - timedelta(minutes=5)
        for row in rows[9:15]:
            row.state, row.finished_at = "sent", now - timedelta(hours=5)
        for row in rows[15:]:
            row.state, row.finished_at = "failed", now - timedelta(days=3)
        session.add_all(rows)
        for i in range(25):
            session.add(HostState(host=f"h{i}.example", consecutive_failures=i + 1))
    await db.dispose()
    out = status_of(cli_env)
    assert "deliveries queued: pending=5" in out
    assert "deliveries finished in the last hour: sent=4" in out
    assert "deliveries finished in the last day: sent=10" in out
    assert "deliveries all time: failed=15, pending=5, sent=10 (total 30)" in out
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
