"""Co-signing only with consent: forged, unsolicited and late answers change nothing."""

from __future__ import annotations

from typing import Any

import httpx

from node.calls import cosign
from node.calls import operations as calls
from node.groups import operations
from tests.conftest import LiveNode, wait_for
from tests.fediverse import FakeActor, FakeRemote, signed_post
from tests.test_events import geneva_call

AS = {"Accept": "application/activity+json"}


async def organizers(event_id: str) -> list[str]:
    async with httpx.AsyncClient() as client:
        doc = (await client.get(event_id + "/organizers", headers=AS)).json()
    return list(doc["orderedItems"])


async def states(live: LiveNode, event_id: str) -> dict[str, str]:
    return {c.actor_uri: c.state for c in await cosign.cosigners(live.node, event_id)}


async def setup(live: LiveNode, remote: FakeRemote) -> tuple[str, FakeActor, str]:
    await operations.create_group(live.node, "kampagne", display_name="Kampagne",
                                  language="fa")
    event_id = await calls.create_call(live.node, "kampagne", geneva_call())
    bob = remote.add_actor("bob")
    invite_id = await cosign.invite(live.node, event_id, f"bob@127.0.0.1:{remote.port}")

    async def invited() -> list[Any]:
        return remote.received_of_type("Invite")

    (received,) = await wait_for(invited, what="Invite at the fake remote")
    assert received.body["id"] == invite_id
    assert received.body["target"] == bob.id and received.body["context"] == event_id
    return event_id, bob, invite_id


def accept(remote: FakeRemote, actor: FakeActor, invite_id: str) -> dict[str, Any]:
    return remote.activity(actor, "Accept", {"id": invite_id, "type": "Invite"})


async def settled(live: LiveNode) -> None:
    """Wait until every received activity has been processed."""
    from sqlalchemy import func
    from sqlmodel import col, select

    from node.storage.models import InboxItem

    async def idle() -> bool:
        async with live.node.db.read() as session:
            open_items = (await session.exec(select(func.count()).select_from(InboxItem).where(
                col(InboxItem.state).in_(["pending", "processing"])))).one()
        return open_items == 0

    await wait_for(idle, what="inbox processed")


async def test_only_the_invited_group_can_accept(live_node: LiveNode,
                                                 remote: FakeRemote) -> None:
    event_id, bob, invite_id = await setup(live_node, remote)
    author = live_node.node.urls.actor("kampagne")
    mallory = remote.add_actor("mallory")

    # An Accept from a group that was not invited: stored, changes nothing.
    response = await signed_post(f"{live_node.base_url}/inbox",
                                 accept(remote, mallory, invite_id), mallory)
    assert response.status_code == 202
    # An Accept claiming to be Bob but signed by Mallory: refused outright.
    forged = accept(remote, bob, invite_id)
    response = await signed_post(f"{live_node.base_url}/inbox", forged, mallory)
    assert response.status_code == 401
    # Bob accepting an invitation that was never sent.
    response = await signed_post(f"{live_node.base_url}/inbox",
                                 accept(remote, bob, author + "/activities/never"), bob)
    assert response.status_code == 202
    await settled(live_node)
    assert await states(live_node, event_id) == {bob.id: "invited"}
    assert await organizers(event_id) == [author]

    # Bob accepts for real: organizers grow, an Update goes out.
    real = accept(remote, bob, invite_id)
    assert (await signed_post(f"{live_node.base_url}/inbox", real, bob)).status_code == 202

    async def accepted() -> bool:
        return await states(live_node, event_id) == {bob.id: "accepted"}

    await wait_for(accepted, what="accepted")
    assert await organizers(event_id) == [author, bob.id]

    async def updated() -> list[Any]:
        return [r for r in remote.received_of_type("Update")
                if bob.id in r.body["object"]["contacts"]]

    await wait_for(updated, what="Update to the co-signer")

    # Bob withdraws: removed again.
    undo = remote.activity(bob, "Undo", {"id": real["id"], "type": "Accept"})
    assert (await signed_post(f"{live_node.base_url}/inbox", undo, bob)).status_code == 202

    async def withdrawn() -> bool:
        return await states(live_node, event_id) == {bob.id: "withdrawn"}

    await wait_for(withdrawn, what="withdrawn")
    assert await organizers(event_id) == [author]

    # An Accept after withdrawal changes nothing.
    late = accept(remote, bob, invite_id)
    assert (await signed_post(f"{live_node.base_url}/inbox", late, bob)).status_code == 202
    await settled(live_node)
    assert await states(live_node, event_id) == {bob.id: "withdrawn"}
    assert await organizers(event_id) == [author]


async def test_reject_marks_declined_and_keeps_organizers(live_node: LiveNode,
                                                          remote: FakeRemote) -> None:
    event_id, bob, invite_id = await setup(live_node, remote)
    reject = remote.activity(bob, "Reject", {"id": invite_id, "type": "Invite"})
    assert (await signed_post(f"{live_node.base_url}/inbox", reject, bob)).status_code == 202

    async def declined() -> bool:
        return await states(live_node, event_id) == {bob.id: "declined"}

    await wait_for(declined, what="declined")
    assert await organizers(event_id) == [live_node.node.urls.actor("kampagne")]


async def test_invite_from_someone_not_the_author_is_ignored(live_node: LiveNode,
                                                             remote: FakeRemote) -> None:
    await operations.create_group(live_node.node, "koeln", display_name="Köln", language="de")
    mallory = remote.add_actor("mallory")
    # Mallory invites us to co-sign an event she does not author (it is ours to check).
    invite = remote.activity(mallory, "Invite", remote.base + "/events/1/organizers",
                             target=live_node.node.urls.actor("koeln"),
                             context=remote.base + "/events/1")
    assert (await signed_post(f"{live_node.base_url}/inbox", invite, mallory)
            ).status_code == 202
    await settled(live_node)
    assert await cosign.invitations(live_node.node, "koeln") == []


async def test_join_follows_the_join_mode(live_node: LiveNode, remote: FakeRemote) -> None:
    await operations.create_group(live_node.node, "netzwerk", display_name="Netzwerk",
                                  language="en")
    meeting = await calls.create_call(live_node.node, "netzwerk", geneva_call(
        language="en", kind="meeting", join_mode="free",
        title={"en": "Monthly meeting"}))
    restricted = await calls.create_call(live_node.node, "netzwerk", geneva_call(
        language="en", kind="conference", join_mode="restricted",
        title={"en": "Annual conference"}))
    action = await calls.create_call(live_node.node, "netzwerk", geneva_call(
        language="en", title={"en": "Protest"}))
    alice = remote.add_actor("alice")
    for event_id in (meeting, restricted, action):
        join = remote.activity(alice, "Join", event_id)
        assert (await signed_post(f"{live_node.base_url}/inbox", join, alice)
                ).status_code == 202
    await settled(live_node)

    async def answers() -> dict[str, str]:
        return {r.body["object"]["object"]: r.body["type"] for r in remote.received
                if r.body["type"] in ("Accept", "Reject")}

    async def two_answers() -> dict[str, str]:
        found = await answers()
        return found if len(found) == 2 else {}

    found = await wait_for(two_answers, what="Join answers")
    assert found == {meeting: "Accept", action: "Reject"}
    async with httpx.AsyncClient() as client:
        doc = (await client.get(meeting, headers=AS)).json()
    assert doc["participantCount"] == 1
    assert "alice" not in str(doc)  # attendees stay private
    from node.calls import participation

    ((request, event),) = await participation.pending(live_node.node, "netzwerk")
    assert event == restricted and request.actor_uri == alice.id
    await participation.decide(live_node.node, "netzwerk", request.id or 0, accept=True)

    async def three() -> bool:
        return len(await answers()) == 3

    await wait_for(three, what="approved join")
    leave = remote.activity(alice, "Leave", meeting)
    assert (await signed_post(f"{live_node.base_url}/inbox", leave, alice)).status_code == 202
    await settled(live_node)
    async with httpx.AsyncClient() as client:
        doc = (await client.get(meeting, headers=AS)).json()
    assert doc["participantCount"] == 0
