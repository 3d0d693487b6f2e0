"""What one consent to co-sign lets the inviter make us say: the accepted event and
its real changes, sanitised, until we withdraw; never a stream of Notes or Updates."""

from __future__ import annotations

import json
from typing import Any

from node.calls import cosign
from node.groups import operations
from tests.conftest import LiveNode, wait_for
from tests.fediverse import FakeActor, FakeRemote, signed_post
from tests.test_cosign import settled

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


def event_doc(server: FakeRemote, author: FakeActor, **changes: Any) -> dict[str, Any]:
    doc = {"@context": "https://www.w3.org/ns/activitystreams",
           "id": server.base + "/events/1", "type": "Event", "attributedTo": author.id,
           "name": "Kundgebung", "content": "<p>Kommt alle</p>",
           "startTime": "2027-06-08T12:00:00+02:00", "timezone": "Europe/Zurich",
           "status": "CONFIRMED", "to": [PUBLIC]}
    doc.update(changes)
    server.document("/events/1", doc)
    return doc


async def test_one_consent_relays_the_event_and_its_real_changes_only(
        live_node: LiveNode, remote: FakeRemote) -> None:
    await _scenario(live_node, remote)


async def _post(live: LiveNode, actor: FakeActor, activity: dict[str, Any]) -> None:
    response = await signed_post(f"{live.base_url}/inbox", activity, actor)
    assert response.status_code == 202, response.text


async def _scenario(live: LiveNode, server: FakeRemote) -> None:
    await operations.create_group(live.node, "koeln", display_name="Köln", language="de")
    koeln = live.node.urls.actor("koeln")
    org, fan = server.add_actor("org"), server.add_actor("fan")
    await _post(live, fan, server.activity(fan, "Follow", koeln))
    await settled(live)
    event = event_doc(server, org)
    event_uri = event["id"]
    await _post(live, org, server.activity(org, "Invite", event_uri + "/organizers",
                                           target=koeln, context=event_uri))

    async def invited() -> list[Any]:
        return await cosign.invitations(live.node, "koeln")

    (invitation,) = await wait_for(invited, what="the invitation")
    await cosign.respond(live.node, "koeln", invitation.id or 0, accept=True)

    def announces() -> list[Any]:
        return [r.body["object"] for r in server.received
                if r.body["type"] == "Announce" and r.body["actor"] == koeln]

    async def announced_event() -> list[Any]:
        return [o for o in announces() if o == event_uri]

    await wait_for(announced_event, what="Announce of the accepted event")

    def note(n: int) -> dict[str, Any]:
        return server.activity(org, "Create", {
            "id": f"{org.id}/notes/{n}", "type": "Note", "attributedTo": org.id,
            "content": f"<p>Spam {n}</p>", "context": event_uri, "to": [PUBLIC]})

    def update(doc: dict[str, Any]) -> dict[str, Any]:
        return server.activity(org, "Update", doc, to=[PUBLIC])

    # Five Notes about an unchanged event, and a hostile edit sent three times.
    for n in range(5):
        await _post(live, org, note(n))
    hostile = event_doc(server, org, content='<p>Neu<script>alert(1)</script>'
                                             '<iframe src="https://evil.example"></iframe></p>',
                        summary="<img src=x onerror=alert(1)>Zeit")
    for _ in range(3):
        await _post(live, org, update(hostile))
    # Something else the inviter authored: not covered by the consent.
    await _post(live, org, update({**hostile, "id": server.base + "/events/2"}))
    await settled(live)

    async def one_update() -> list[Any]:
        return [o for o in announces() if isinstance(o, dict) and o.get("type") == "Update"]

    (relayed,) = await wait_for(one_update, what="the relayed Update")
    text = json.dumps(relayed)
    assert "<script" not in text and "<iframe" not in text and "onerror" not in text
    assert relayed["object"]["id"] == event_uri and "Neu" in relayed["object"]["content"]
    assert [o for o in announces() if isinstance(o, str) and "/notes/" in o] == []

    # A real postponement: the Update and exactly one of its Notes are relayed.
    postponed = event_doc(server, org, startTime="2027-06-15T18:30:00+02:00")
    await _post(live, org, update(postponed))
    for n in range(5, 8):
        await _post(live, org, note(n))
    await settled(live)

    async def two_updates() -> list[Any]:
        found = await one_update()
        return found if len(found) == 2 else []

    await wait_for(two_updates, what="the postponement relayed")

    async def one_note() -> list[Any]:
        return [o for o in announces() if isinstance(o, str) and "/notes/" in o]

    assert len(await wait_for(one_note, what="the status Note relayed")) == 1

    # The co-signer withdraws: from then on nothing is relayed.
    await cosign.withdraw(live.node, "koeln", invitation.id or 0)
    count = len(announces())
    cancelled = event_doc(server, org, status="CANCELLED")
    await _post(live, org, update(cancelled))
    await _post(live, org, note(9))
    await settled(live)

    async def undone() -> list[Any]:
        return [r for r in server.received if r.body["type"] == "Undo"
                and r.body["object"].get("type") == "Announce"]

    await wait_for(undone, what="Undo{Announce} to the follower")
    assert len(announces()) == count
    assert len([o for o in announces() if isinstance(o, str) and "/notes/" in o]) == 1
