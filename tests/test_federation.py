"""Two and more real nodes (separate processes and databases) federating over
signed HTTP on loopback ports, driven through the CLI as an admin would."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import func
from sqlmodel import select

from node.storage.models import Follower, Following, InboxItem
from tests.conftest import NodeFactory, NodeProcess, free_port, wait_for
from tests.delivery_helpers import lanes_behind, object_states, positions_behind
from tests.fediverse import LoopbackServer, Request

AS = {"Accept": "application/activity+json"}


async def rows(node: NodeProcess, model: Any, *where: Any) -> list[Any]:
    async with node.db().read() as session:
        query = select(model)
        for cond in where:
            query = query.where(cond)
        return list((await session.exec(query)).all())


async def count(node: NodeProcess, model: Any, *where: Any) -> int:
    async with node.db().read() as session:
        query = select(func.count()).select_from(model)
        for cond in where:
            query = query.where(cond)
        return int((await session.exec(query)).one())


async def received(node: NodeProcess, activity_type: str, object_id: str) -> list[InboxItem]:
    items = await rows(node, InboxItem, InboxItem.activity_type == activity_type)
    return [i for i in items if _object_id(i.body) == object_id]


def _object_id(body: dict[str, Any]) -> Any:
    obj = body.get("object")
    return obj.get("id") if isinstance(obj, dict) else obj


async def follow_and_wait(follower: NodeProcess, group: str, target: NodeProcess,
                          target_group: str) -> None:
    await asyncio.to_thread(follower.cli, "follow", group, f"{target_group}@{target.host}")

    async def accepted() -> bool:
        return await count(follower, Following, Following.state == "accepted") > 0

    await wait_for(accepted, what="Accept of the follow")


async def test_follow_publish_edit_delete_and_undo_between_two_nodes(nodes: NodeFactory) -> None:
    a = await nodes.create("a")
    b = await nodes.create("b")
    a.cli("group", "create", "koeln", "--display-name", "Köln", "--language", "de")
    b.cli("group", "create", "hamburg", "--display-name", "Hamburg", "--language", "de")

    # B's group follows A's group by handle (WebFinger → actor → signed Follow).
    await follow_and_wait(b, "hamburg", a, "koeln")
    followers = await rows(a, Follower)
    assert [f.actor_uri for f in followers] == [b.actor_url("hamburg")]
    assert followers[0].state == "accepted"

    # A publishes: B receives a Create it verified (stored only after verification).
    note_id = (await asyncio.to_thread(
        a.cli, "publish", "note", "koeln", "--text", "Solidarität mit den Streikenden",
        "--lang", "de")).stdout.strip()
    creates = await wait_for(lambda: received(b, "Create", note_id), what="Create on B")
    assert creates[0].body["object"]["contentMap"]["de"].startswith("<p>Solidarität")
    assert creates[0].actor_uri == a.actor_url("koeln")

    # Edit → Update; delete → Delete, and the object URL answers 410.
    await asyncio.to_thread(a.cli, "edit", "note", note_id, "--text", "Neu: Solidarität")
    updates = await wait_for(lambda: received(b, "Update", note_id), what="Update on B")
    assert "Neu" in updates[0].body["object"]["content"]
    await asyncio.to_thread(a.cli, "delete", note_id)
    await wait_for(lambda: received(b, "Delete", note_id), what="Delete on B")
    async with httpx.AsyncClient() as client:
        gone = await client.get(note_id, headers=AS)
    assert gone.status_code == 410 and gone.json()["type"] == "Tombstone"

    # Undo: B unfollows; A drops the follower and no longer delivers to B.
    await asyncio.to_thread(b.cli, "unfollow", "hamburg", a.actor_url("koeln"))

    async def dropped() -> bool:
        return await count(a, Follower) == 0

    await wait_for(dropped, what="follower removed on A")
    later = (await asyncio.to_thread(a.cli, "publish", "note", "koeln", "--text", "later")
             ).stdout.strip()
    # The post goes to no host: no follower is left.
    assert await object_states(a.db(), later) == []


async def test_deliveries_queued_while_stopped_arrive_after_restart_once_each(
        nodes: NodeFactory) -> None:
    a = await nodes.create("a")
    b = await nodes.create("b")
    a.cli("group", "create", "paris", "--language", "fr")
    b.cli("group", "create", "sydney", "--language", "en")
    await follow_and_wait(b, "sydney", a, "paris")

    # A runs web-only: posts are queued, nothing is sent. Then A stops.
    await asyncio.to_thread(a.stop)
    await asyncio.to_thread(a.start, "--no-worker")
    ids = [(await asyncio.to_thread(a.cli, "publish", "note", "paris", "--text", f"appel {i}")
            ).stdout.strip() for i in range(5)]
    assert [await object_states(a.db(), i) for i in ids] == [["waiting"]] * 5
    assert await positions_behind(a.db()) == 5
    await asyncio.to_thread(a.stop)

    # Restarted with its worker, A delivers everything; B stores each once.
    await asyncio.to_thread(a.start)

    async def all_arrived() -> bool:
        found = [await received(b, "Create", i) for i in ids]
        return all(len(f) == 1 for f in found)

    await wait_for(all_arrived, what="queued deliveries after restart")

    # B has them; A records the outcomes just after the answers arrive.
    async def all_recorded() -> bool:
        return await lanes_behind(a.db()) == 0

    # The five Creates and the earlier Accept: all sent, nothing left over.
    await wait_for(all_recorded, what="outcomes recorded as sent")
    assert [await object_states(a.db(), i) for i in ids] == [["delivered"]] * 5


def is_inbox_post(request: Request) -> bool:
    return request.method == "POST" and request.path.endswith("inbox")


def creates_answered(proxy: LoopbackServer) -> int:
    return sum(1 for r in proxy.requests
               if r.method == "POST" and b'"type":"Create"' in r.body and r.status is not None)


async def test_worker_killed_mid_send_loses_nothing_and_inbox_stores_once(
        nodes: NodeFactory) -> None:
    # A reverse proxy in front of node B (as Caddy would be) that can hold inbox
    # POSTs, so the test can kill the sending worker mid-request.
    b_port = free_port()
    proxy = LoopbackServer()
    proxy.proxy_to(f"http://127.0.0.1:{b_port}")
    async with proxy:
        a = await nodes.create("a", extra_env={"HAMBASTEGI_DELIVERY_LEASE_SECONDS": "2"})
        b = await nodes.create("b", port=b_port, public_port=proxy.port)
        a.cli("group", "create", "hanover", "--language", "de")
        b.cli("group", "create", "frankfurt", "--language", "de")
        await follow_and_wait(b, "frankfurt", a, "hanover")

        # A's deliveries go to a separate worker process we can kill.
        await asyncio.to_thread(a.stop)
        await asyncio.to_thread(a.start, "--no-worker")
        note_id = (await asyncio.to_thread(a.cli, "publish", "note", "hanover", "--text",
                                           "Aufruf")).stdout.strip()
        hold = proxy.hold(is_inbox_post)
        worker = await asyncio.create_subprocess_exec(
            *worker_command(), env=a.env, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL)
        await asyncio.wait_for(hold.held.wait(), timeout=30)
        worker.kill()  # SIGKILL mid-send: no chance to record anything
        await worker.wait()
        # Nothing recorded: the lane is still leased to the dead worker.
        assert await object_states(a.db(), note_id) == ["waiting"]
        hold.release()  # the held request reaches B after all

        replacement = await asyncio.create_subprocess_exec(
            *worker_command(), env=a.env, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL)
        try:
            async def sent() -> bool:
                return await object_states(a.db(), note_id) == ["delivered"]

            await wait_for(sent, timeout=30, what="redelivery after the lease expired")
        finally:
            replacement.terminate()
            await replacement.wait()
        # On the wire the Create went twice (at-least-once); B stored it once.
        async def both_answered() -> bool:
            return creates_answered(proxy) >= 2

        await wait_for(both_answered, what="both copies answered by B")
        assert len(await received(b, "Create", note_id)) == 1


def worker_command() -> list[str]:
    import sys

    return [sys.executable, "-m", "node.cli.main", "worker"]
