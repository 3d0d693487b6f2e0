"""The link of a restricted or invite-only meeting reaches accepted participants
and nobody else: not the Event, its activities, the outbox, the page, calendars."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from node.calls import operations as calls
from node.calls import participation
from node.groups import operations
from tests.conftest import LiveNode, wait_for
from tests.fediverse import FakeRemote, signed_post
from tests.test_cosign import settled
from tests.test_events import geneva_call

AS = {"Accept": "application/activity+json"}
SECRET = "https://meet.example/room-7f3a9c?pwd=solidarity"
NEW_SECRET = "https://meet.example/room-new-81b2?pwd=changed"


async def public_surfaces(live: LiveNode, event_id: str, group: str) -> dict[str, str]:
    """Everything about the group a stranger can fetch, by name."""
    urls = live.node.urls
    out: dict[str, str] = {}
    async with httpx.AsyncClient() as client:
        out["object"] = (await client.get(event_id, headers=AS)).text
        out["page"] = (await client.get(event_id)).text
        out["event.ics"] = (await client.get(event_id + "/calendar.ics")).text
        out["group.ics"] = (await client.get(urls.actor(group) + "/calendar.ics")).text
        out["organizers"] = (await client.get(event_id + "/organizers", headers=AS)).text
        outbox = (await client.get(urls.outbox(group) + "?page=1", headers=AS)).json()
        out["outbox"] = json.dumps(outbox)
        out["group page"] = (await client.get(urls.actor(group))).text
        for item in outbox["orderedItems"]:
            out[item["id"]] = (await client.get(item["id"], headers=AS)).text
    return out


@pytest.mark.parametrize("join_mode", ["restricted", "invite"])
@pytest.mark.parametrize("place", [None, {"name": "Volkshaus", "city": "Zürich"}])
async def test_closed_meeting_link_stays_off_every_public_surface(
        live_node: LiveNode, remote: FakeRemote, join_mode: str,
        place: dict[str, Any] | None) -> None:
    await operations.create_group(live_node.node, "netzwerk", display_name="Netzwerk",
                                  language="en")
    follower = remote.add_actor("follower")
    follow = remote.activity(follower, "Follow", live_node.node.urls.actor("netzwerk"))
    assert (await signed_post(f"{live_node.base_url}/inbox", follow, follower)
            ).status_code == 202
    await settled(live_node)
    event_id = await calls.create_call(live_node.node, "netzwerk", geneva_call(
        language="en", kind="meeting", join_mode=join_mode, title={"en": "Meeting"},
        text={"en": "Monthly"}, place=place, online_url=SECRET))
    await calls.change_status(live_node.node, event_id, "postponed", start="2027-06-09T12:00")
    surfaces = await public_surfaces(live_node, event_id, "netzwerk")
    assert len(surfaces) >= 10
    for name, text in surfaces.items():
        assert "meet.example" not in text, name
    doc = json.loads(surfaces["object"])
    assert doc["isOnline"] is (place is None) and doc["joinMode"] == join_mode

    async def follower_got_update() -> bool:
        return any(r.body["type"] == "Update" for r in remote.received)

    await wait_for(follower_got_update, what="Update to the follower")
    for received in remote.received:
        assert "meet.example" not in json.dumps(received.body)


async def test_accepted_participant_receives_the_link_privately(live_node: LiveNode,
                                                                remote: FakeRemote) -> None:
    await operations.create_group(live_node.node, "netzwerk", display_name="Netzwerk",
                                  language="en")
    event_id = await calls.create_call(live_node.node, "netzwerk", geneva_call(
        language="en", kind="meeting", join_mode="restricted", title={"en": "Meeting"},
        place=None, online_url=SECRET))
    alice, mallory = remote.add_actor("alice"), remote.add_actor("mallory")
    for who in (alice, mallory):
        join = remote.activity(who, "Join", event_id)
        assert (await signed_post(f"{live_node.base_url}/inbox", join, who)).status_code == 202
    await settled(live_node)
    assert not [r for r in remote.received if "meet.example" in json.dumps(r.body)]
    requests = {r.actor_uri: r for r, _ in await participation.pending(live_node.node,
                                                                         "netzwerk")}
    await participation.decide(live_node.node, "netzwerk", requests[alice.id].id or 0,
                               accept=True)
    await participation.decide(live_node.node, "netzwerk", requests[mallory.id].id or 0,
                               accept=False)

    async def links() -> list[Any]:
        return [r for r in remote.received if "meet.example" in json.dumps(r.body)]

    (received,) = await wait_for(links, what="the link at the participant's server")
    note = received.body["object"]
    assert received.body["type"] == "Create" and note["type"] == "Note"
    assert received.path == "/users/alice/inbox"
    assert received.body["to"] == [alice.id] and note["to"] == [alice.id]
    assert "cc" not in received.body or received.body["cc"] == []
    assert SECRET.replace("&", "&amp;") in note["content"] and note["context"] == event_id
    async with httpx.AsyncClient() as client:
        # Neither the private Note nor its Create can be fetched.
        assert (await client.get(note["id"], headers=AS)).status_code == 404
        assert (await client.get(received.body["id"], headers=AS)).status_code == 404

    # A new link reaches the accepted participant again, and still nobody else.
    body = geneva_call(language="en", kind="meeting", join_mode="restricted",
                       title={"en": "Meeting"}, place=None, online_url=NEW_SECRET)
    await calls.update_call(live_node.node, event_id, body)

    async def new_link() -> list[Any]:
        return [r for r in remote.received if "room-new" in json.dumps(r.body)]

    (again,) = await wait_for(new_link, what="the new link")
    assert again.path == "/users/alice/inbox"
    for name, text in (await public_surfaces(live_node, event_id, "netzwerk")).items():
        assert "meet.example" not in text, name


async def test_free_meeting_link_is_public(live_node: LiveNode) -> None:
    await operations.create_group(live_node.node, "netzwerk", display_name="Netzwerk",
                                  language="en")
    event_id = await calls.create_call(live_node.node, "netzwerk", geneva_call(
        language="en", kind="meeting", join_mode="free", title={"en": "Open meeting"},
        place=None, online_url=SECRET))
    surfaces = await public_surfaces(live_node, event_id, "netzwerk")
    assert json.loads(surfaces["object"])["location"]["url"] == SECRET
    assert "meet.example" in surfaces["event.ics"]
