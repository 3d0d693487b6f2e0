"""/health, /metrics and `hambastegi status`."""

from __future__ import annotations

import httpx

from node.groups import operations
from tests.conftest import LiveNode


async def test_health_and_metrics_report_queues_and_refusals(live_node: LiveNode) -> None:
    await operations.create_group(live_node.node, "koeln", display_name="Köln", language="de")
    async with httpx.AsyncClient() as client:
        health = await client.get(live_node.url("/health"))
        unsigned = await client.post(live_node.url("/inbox"), json={"type": "Follow"})
        await client.get(live_node.url("/groups/koeln"),
                         headers={"Accept": "application/activity+json"})
        metrics = await client.get(live_node.url("/metrics"))
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert unsigned.status_code == 401
    text = metrics.text
    assert metrics.headers["content-type"].startswith("text/plain")
    assert 'hambastegi_inbox_requests_total{outcome="missing_signature"}' in text
    assert 'hambastegi_request_seconds_count{route="/groups/{username}"}' in text
    assert "# TYPE hambastegi_request_seconds histogram" in text
    # No URL with ids, no addresses: labels are route templates only.
    assert "127.0.0.1" not in text


async def test_metrics_show_the_delivery_queue(live_node: LiveNode) -> None:
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
        text = (await client.get(live_node.url("/metrics"))).text
    assert 'hambastegi_delivery_queue{state="' in text
