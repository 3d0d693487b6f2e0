"""The inbox queue: leases with owners, retries with the backoff policy, crash
recovery, and handlers that send nothing twice when an item is retried."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, update
from sqlmodel import col, select

from node.core.settings import Settings
from node.federation import inbox_queue
from node.federation.dispatch import Inbound
from node.federation.runtime import Node
from node.groups import operations
from node.inbound import INBOUND
from node.storage.db import utcnow
from node.storage.models import Activity, Fanout, Follower, InboxItem, Invitation
from node.storage.states import InboxState, InvitationState
from tests.conftest import wait_for

AUTHOR = "https://author.example/groups/a"
EVENT = "https://author.example/objects/e1"


@pytest.fixture
async def node(tmp_path: Path, database_url: str) -> AsyncIterator[Node]:
    node = Node(Settings.load(environ={
        "HAMBASTEGI_BASE_URL": "http://127.0.0.1:9", "HAMBASTEGI_DATA_DIR": str(tmp_path),
        "HAMBASTEGI_DATABASE_URL": database_url}), inbound=INBOUND)
    await node.start()
    yield node
    await node.close()


async def add_item(node: Node, activity_type: str, obj: Any, n: int = 1,
                   actor: str = AUTHOR) -> str:
    activity_id = f"{actor}/activities/{activity_type.lower()}-{n}"
    async with node.db.write() as session:
        session.add(InboxItem(activity_id=activity_id, activity_type=activity_type,
                              actor_uri=actor, body={"id": activity_id, "type": activity_type,
                                                     "actor": actor, "object": obj}))
    return activity_id


async def make_due(node: Node) -> None:
    """Skip the backoff wait (the policy itself is tested in test_retry.py)."""
    async with node.db.write() as session:
        await session.exec(update(InboxItem).values(next_attempt_at=utcnow()))


async def item(node: Node, activity_id: str) -> InboxItem:
    async with node.db.read() as session:
        return (await session.exec(
            select(InboxItem).where(InboxItem.activity_id == activity_id))).one()


async def count(node: Node, model: Any, *where: Any) -> int:
    async with node.db.read() as session:
        query = select(func.count()).select_from(model)
        for cond in where:
            query = query.where(cond)
        return int((await session.exec(query)).one())


# --- idempotent handlers -----------------------------------------------------------------


async def test_a_cosigner_relay_retried_after_its_emission_announces_once(node: Node) -> None:
    group = await operations.create_group(node, "koeln", display_name="Köln", language="de")
    async with node.db.write() as session:
        session.add(Invitation(local_actor_id=group.id or 0, inviter_uri=AUTHOR, event_uri=EVENT,
                               invite_activity_id=AUTHOR + "/invites/1",
                               state=InvitationState.ACCEPTED))
    update_id = await add_item(node, "Update", {
        "id": EVENT, "type": "Event", "attributedTo": AUTHOR, "name": "Kundgebung",
        "startTime": "2030-06-08T12:00:00Z"})
    calls: list[int] = []

    def changed_then_crash() -> None:
        calls.append(1)
        if len(calls) == 1:  # the Announce is committed; then the handler fails
            raise RuntimeError("crash after the emission")

    node.changed = changed_then_crash  # type: ignore[method-assign]
    await node.inbox_worker().run_once()
    first = await item(node, update_id)
    assert (first.state, first.attempts) == (InboxState.PENDING, 1)
    assert first.last_error and "crash after the emission" in first.last_error
    await make_due(node)
    await node.inbox_worker().run_once()
    assert (await item(node, update_id)).state == InboxState.DONE
    async with node.db.read() as session:
        announces = (await session.exec(
            select(Activity.uuid).where(Activity.activity_type == "Announce"))).all()
    assert len(announces) == 1  # the retry re-used the id it had sent


async def test_a_follow_retried_after_its_accept_sends_one_accept(node: Node) -> None:
    await operations.create_group(node, "koeln", display_name="Köln", language="de")
    group_uri = node.urls.actor("koeln")
    follower = "https://remote.example/users/alice"
    async with node.db.write() as session:
        from node.storage.models import RemoteActor
        session.add(RemoteActor(uri=follower, domain="remote.example",
                                inbox=follower + "/inbox", fetched_at=utcnow()))
    follow_id = await add_item(node, "Follow", group_uri, actor=follower)
    failing = {"left": 1}

    async def fails_once(node: Node, item: InboxItem) -> None:
        if failing["left"]:
            failing["left"] -= 1
            raise RuntimeError("a second handler fails")

    node.inbound = Inbound(handlers={**INBOUND.handlers, ("Follow", "Group"): fails_once})
    await node.inbox_worker().run_once()
    await make_due(node)
    await node.inbox_worker().run_once()
    assert (await item(node, follow_id)).state == InboxState.DONE
    assert await count(node, Activity, Activity.activity_type == "Accept") == 1
    assert await count(node, Fanout) == 1  # one Accept queued, not two
    assert await count(node, Follower) == 1


# --- leases ----------------------------------------------------------------------------


async def test_an_outcome_counts_only_while_the_lease_is_ours(node: Node) -> None:
    activity_id = await add_item(node, "Dance", "x")
    lease = timedelta(minutes=2)
    [mine] = await inbox_queue.claim(node.db, "worker-a", 10, lease)
    # Worker A stalls past its lease; worker B takes the item over.
    later = utcnow() + lease + timedelta(seconds=1)
    [theirs] = await inbox_queue.claim(node.db, "worker-b", 10, lease, now=later)
    assert theirs.id == mine.id
    assert await inbox_queue.renew(node.db, "worker-a", [mine.id or 0], lease) == set()
    late = await inbox_queue.complete(
        node.db, "worker-a", [inbox_queue.Outcome(mine.id or 0, mine.attempts, "boom")])
    assert late == {}  # A's late failure changes nothing
    stored = await item(node, activity_id)
    assert (stored.state, stored.worker_id, stored.attempts) == ("processing", "worker-b", 0)
    done = await inbox_queue.complete(
        node.db, "worker-b", [inbox_queue.Outcome(theirs.id or 0, theirs.attempts)])
    assert done == {theirs.id: InboxState.DONE}


async def test_a_crashed_workers_items_come_back_when_the_lease_expires(node: Node) -> None:
    activity_id = await add_item(node, "Dance", "x")
    lease = timedelta(minutes=2)
    assert len(await inbox_queue.claim(node.db, "crashed", 10, lease)) == 1
    # While the lease runs, nobody else takes the item.
    assert await inbox_queue.claim(node.db, "other", 10, lease) == []
    assert await node.inbox_worker().run_once() == 0
    async with node.db.write() as session:
        await session.exec(update(InboxItem).values(lease_until=utcnow() - timedelta(seconds=1)))
    assert await node.inbox_worker().run_once() == 1
    assert (await item(node, activity_id)).state == InboxState.DONE


async def test_a_handler_runs_after_the_commit_requests_wait_for(node: Node) -> None:
    await add_item(node, "Dance", "x")
    committed: list[int] = []

    async def dance(node_: Node, item_: InboxItem) -> None:
        committed.append(await count(node, InboxItem,
                                     col(InboxItem.activity_id) == f"{AUTHOR}/activities/r"))

    node.inbound = Inbound(handlers={("Dance", None): dance})
    activity = {"id": f"{AUTHOR}/activities/r", "type": "Create", "actor": AUTHOR,
                "object": "x"}
    # A request is waiting for its group commit when the worker is about to run
    # the item: the request's commit (and its 202) goes first.
    request = asyncio.ensure_future(node.inbox_writer.add(inbox_queue.new_item(
        activity, activity["id"], "Create", AUTHOR, None)))
    await node.inbox_worker().run_once()  # the Dance, and the request's Create when stored
    assert await request is True
    assert committed == [1]


async def test_quick_handlers_yield_to_waiting_commits_once_per_share_of_work(
        node: Node) -> None:
    # Under a sustained volley of inbox POSTs a request always waits for a commit.
    # Yielding before every item capped handlers at 1 / YIELD_SECONDS items a
    # second (Accepts at 24/s behind Follows answered at 225/s); now they yield once
    # per YIELD_SECONDS of their own work, so quick handlers keep at least half the time.
    for n in range(20):
        await add_item(node, "Dance", "x", n=n)
    handled: list[str] = []

    async def dance(node_: Node, item_: InboxItem) -> None:
        handled.append(item_.activity_id)

    yields: list[float] = []

    async def always_busy(at_most: float) -> None:
        yields.append(at_most)

    node.inbound = Inbound(handlers={("Dance", None): dance})
    worker = inbox_queue.InboxWorker(node.db, node.handle, yield_to=always_busy)
    await worker.run_once()
    assert len(handled) == 20
    # 20 items of well under YIELD_SECONDS in all: only the first item yielded.
    assert yields == [inbox_queue.YIELD_SECONDS]


async def test_a_long_handler_keeps_its_lease(node: Node, monkeypatch: Any) -> None:
    activity_id = await add_item(node, "Dance", "x")
    seen: list[Any] = []

    async def slow(node_: Node, item_: InboxItem) -> None:
        first = (await item(node, activity_id)).lease_until

        async def renewed() -> bool:
            now = (await item(node, activity_id)).lease_until
            return first is not None and now is not None and now > first

        # Several renewal periods may pass while the handler runs.
        await wait_for(renewed, timeout=2, interval=0.01, what="a renewed lease")
        seen.append((await item(node, activity_id)).lease_until)

    node.inbound = Inbound(handlers={("Dance", None): slow})
    worker = node.inbox_worker()
    worker.lease = timedelta(seconds=0.3)
    await worker.run_once()
    assert seen, "the lease was never renewed while the handler ran"
    assert (await item(node, activity_id)).state == InboxState.DONE


async def test_failures_back_off_then_fail_for_good(node: Node) -> None:
    activity_id = await add_item(node, "Dance", "x")

    async def broken(node_: Node, item_: InboxItem) -> None:
        raise ValueError("always")

    node.inbound = Inbound(handlers={("Dance", None): broken})
    from node.federation.retry import MAX_ATTEMPTS
    for attempt in range(1, MAX_ATTEMPTS + 1):
        before = utcnow()
        await node.inbox_worker().run_once()
        stored = await item(node, activity_id)
        assert stored.attempts == attempt
        if attempt < MAX_ATTEMPTS:
            assert stored.state == InboxState.PENDING
            assert stored.next_attempt_at >= before + timedelta(seconds=29)
            assert await node.inbox_worker().run_once() == 0  # not due yet
            await make_due(node)
    assert stored.state == InboxState.FAILED
    assert stored.last_error == "ValueError: always"


# --- the handler table -----------------------------------------------------------------


def test_the_table_runs_typed_and_untyped_entries() -> None:
    def names(activity_type: str, obj: Any) -> set[str]:
        return {h.__name__ for h in INBOUND.handlers_for(activity_type, {"object": obj})}

    assert names("Accept", {"type": "Follow", "id": "f"}) == {"on_accept_follow"}
    invite = "cosign.on_accept_invite + coowners.on_accept_invite"  # calls and campaigns
    assert names("Accept", {"type": "Invite", "id": "i"}) == {invite}
    assert names("Accept", "https://x/activities/1") == {
        "on_accept_follow", invite, "on_accept_join"}
    # a network relays members' edits; members keep what is addressed to them alone
    update = "processing.on_update + relay.on_update + members_only.on_update"
    assert names("Update", {"type": "Event"}) == {update, "on_update_cosigned"}
    assert names("Update", {"type": "Person"}) == {update}
    # A Join given by id may be of an event or of a network: both handlers look.
    assert len(INBOUND.handlers_for("Join", {"object": "https://x/groups/mena"})) == 2
    # a co-signer withdraws, a campaign's co-owner leaves: both handlers look
    assert names("Undo", {"type": "Accept"}) == {
        "on_undo", "cosign.on_undo_accept + coowners.on_undo_accept"}
    assert names("Dance", {"type": "Note"}) == set()


async def test_states_outside_the_enum_are_refused_by_the_database(node: Node) -> None:
    from sqlalchemy.exc import IntegrityError

    await add_item(node, "Dance", "x")
    with pytest.raises(IntegrityError):
        async with node.db.write() as session:
            await session.exec(update(InboxItem).values(state="bogus"))
    assert await count(node, InboxItem, col(InboxItem.state) == "bogus") == 0
