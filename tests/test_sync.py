"""Peer sync between real nodes (issue 15 point 3): a new follow brings the
followed group's history; a node that was down catches up from the outbox."""

from __future__ import annotations

import asyncio

from sqlmodel import col, select

from node.storage.models import RemoteObject, SyncState
from tests.conftest import NodeFactory, NodeProcess, wait_for
from tests.test_federation import follow_and_wait


async def stored(node: NodeProcess, actor_uri: str) -> dict[str, RemoteObject]:
    async with node.db().read() as session:
        rows = (await session.exec(
            select(RemoteObject).where(col(RemoteObject.actor_uri) == actor_uri))).all()
    return {row.uri: row for row in rows}


async def publish(node: NodeProcess, group: str, text: str) -> str:
    result = await asyncio.to_thread(node.cli, "publish", "note", group, "--text", text)
    return result.stdout.strip()


async def test_a_new_follow_brings_the_followed_groups_history(nodes: NodeFactory) -> None:
    a = await nodes.create("a")
    b = await nodes.create("b")
    a.cli("group", "create", "koeln", "--language", "de")
    b.cli("group", "create", "hamburg", "--language", "de")
    history = [await publish(a, "koeln", f"Aufruf {i}") for i in range(3)]
    deleted = await publish(a, "koeln", "zurückgezogen")
    await asyncio.to_thread(a.cli, "delete", deleted)

    await follow_and_wait(b, "hamburg", a, "koeln")
    actor = a.actor_url("koeln")

    async def backfilled() -> dict[str, RemoteObject] | None:
        rows = await stored(b, actor)
        return rows if set(history) <= rows.keys() else None

    rows = await wait_for(backfilled, what="A's history on B")
    for uri in history:
        assert rows[uri].source == "backfill"
        assert rows[uri].moderation_state == "approved"
        assert rows[uri].in_reply_to is None
        assert rows[uri].published_at is not None
        assert "Aufruf" in rows[uri].data["content"]
    # What its author deleted before we followed is not brought back.
    assert deleted not in rows or rows[deleted].deleted

    async def walked() -> SyncState | None:
        async with b.db().read() as session:
            state = await session.get(SyncState, actor)
        return state if state is not None and state.backfilled_at is not None else None

    state = await wait_for(walked, what="the walk recorded")
    assert state.failures == 0 and state.first_page is not None


async def test_posts_published_while_down_arrive_within_one_sync_cycle_once_each(
        nodes: NodeFactory) -> None:
    a = await nodes.create("a")
    b = await nodes.create("b", extra_env={"HAMBASTEGI_SYNC_SECONDS": "3"})
    a.cli("group", "create", "paris", "--language", "fr")
    b.cli("group", "create", "lyon", "--language", "fr")
    first = await publish(a, "paris", "avant")
    await follow_and_wait(b, "lyon", a, "paris")
    actor = a.actor_url("paris")

    async def backfilled() -> bool:
        async with b.db().read() as session:
            state = await session.get(SyncState, actor)
        return state is not None and state.backfilled_at is not None

    await wait_for(backfilled, what="first walk")
    assert first in await stored(b, actor)

    # B is down while A publishes three items: A's deliveries fail and back off.
    await asyncio.to_thread(b.stop)
    missed = [await publish(a, "paris", f"pendant {i}") for i in range(3)]

    await asyncio.to_thread(b.start)

    async def caught_up() -> dict[str, RemoteObject] | None:
        rows = await stored(b, actor)
        return rows if set(missed) <= rows.keys() else None

    # One cycle (3 s) and a margin; A's redelivery waits at least 30 s (retry.MIN_DELAY),
    # so what arrives now came from B's catch-up walk.
    rows = await wait_for(caught_up, timeout=10, what="catch-up after restart")
    assert [rows[uri].source for uri in missed] == ["sync"] * 3
    assert len(rows) == 4  # the earlier post and the three, each once

    # Nothing new: the next walks change nothing and store nothing twice.
    async def walked_again() -> bool:
        async with b.db().read() as session:
            state = await session.get(SyncState, actor)
        return state is not None and state.first_item_id is not None and \
            state.last_synced_at is not None and state.failures == 0

    await wait_for(walked_again, what="a clean walk recorded")
    assert len(await stored(b, actor)) == 4
