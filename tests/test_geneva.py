"""The seed call, end to end on three real nodes: written in Persian with German
and English versions, co-signed across nodes, announced, postponed."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import icalendar
import jsonschema
from sqlmodel import select

from node.storage.models import InboxItem
from tests.conftest import NodeFactory, NodeProcess, wait_for
from tests.test_events import geneva_call, schema
from tests.test_federation import follow_and_wait

AS = {"Accept": "application/activity+json"}


async def items(node: NodeProcess, activity_type: str) -> list[InboxItem]:
    async with node.db().read() as session:
        return list((await session.exec(
            select(InboxItem).where(InboxItem.activity_type == activity_type))).all())


def object_id(body: dict[str, Any]) -> Any:
    obj = body.get("object")
    return obj.get("id") if isinstance(obj, dict) else obj


async def cli(node: NodeProcess, *args: str) -> str:
    return (await asyncio.to_thread(node.cli, *args)).stdout.strip()


async def test_geneva_call_cosigned_announced_and_postponed(nodes: NodeFactory,
                                                            tmp_path: Path) -> None:
    n1, n2, n3 = (await nodes.create("n1"), await nodes.create("n2"), await nodes.create("n3"))
    await cli(n1, "group", "create", "kampagne", "--display-name", "کارزار فعالین کارگری",
              "--language", "fa")
    await cli(n2, "group", "create", "koeln", "--display-name", "Solidaritätszentrum Köln",
              "--language", "de")
    await cli(n2, "group", "create", "hamburg", "--display-name", "Komitee Hamburg",
              "--language", "de")
    await cli(n3, "group", "create", "paris", "--display-name", "Comité de Paris",
              "--language", "fr")
    await cli(n3, "group", "create", "sydney", "--display-name", "Committee Sydney",
              "--language", "en")
    await follow_and_wait(n2, "hamburg", n1, "kampagne")  # a follower of A (node 2)
    await follow_and_wait(n3, "sydney", n2, "koeln")  # a follower of B (node 3)

    call_file = tmp_path / "call.json"
    call_file.write_text(json.dumps(geneva_call()))
    event_id = await cli(n1, "publish", "call", "kampagne", "--json", str(call_file))
    assert event_id.startswith(n1.base_url + "/objects/")

    # A invites B (node 2) and C (node 3).
    await cli(n1, "invite", event_id, f"koeln@{n2.host}")
    await cli(n1, "invite", event_id, f"paris@{n3.host}")

    async def invitation_on(node: NodeProcess, group: str) -> str:
        async def listed() -> str:
            return (await asyncio.to_thread(node.cli, "invitations", group)).stdout.strip()

        line = await wait_for(listed, what=f"invitation for {group}")
        fields = line.split("\t")
        assert fields[1] == "pending" and fields[3] == event_id
        assert fields[4] == geneva_call()["title"]["fa"]
        return fields[0]

    invite_b = await invitation_on(n2, "koeln")
    invite_c = await invitation_on(n3, "paris")
    for invite in await items(n2, "Invite") + await items(n3, "Invite"):
        jsonschema.validate(invite.body, schema("invite.schema.json"))

    # B accepts, C declines.
    await cli(n2, "invitation", "accept", "koeln", invite_b)
    await cli(n3, "invitation", "decline", "paris", invite_c)

    async def answers() -> bool:
        lines = (await asyncio.to_thread(n1.cli, "cosigners", event_id)).stdout.splitlines()
        states = dict(line.split("\t") for line in lines)
        return states == {n2.actor_url("koeln"): "accepted", n3.actor_url("paris"): "declined"}

    await wait_for(answers, what="co-signing answers on A")
    for answer in await items(n1, "Accept") + await items(n1, "Reject"):
        if answer.body["object"].get("type") == "Invite":
            jsonschema.validate(answer.body, schema("accept-invite.schema.json"))
    async with httpx.AsyncClient() as client:
        doc = (await client.get(event_id, headers=AS)).json()
        organizers = (await client.get(doc["organizers"], headers=AS)).json()
    assert organizers["orderedItems"] == [n1.actor_url("kampagne"), n2.actor_url("koeln")]
    assert doc["contacts"] == organizers["orderedItems"]
    assert "Solidaritätszentrum Köln" in doc["summary"]
    assert "Comité de Paris" not in doc["summary"]
    jsonschema.validate(doc, schema("event.schema.json"))

    # The Accept is B's public proof of consent, fetchable at its id.
    accept = next(a for a in await items(n1, "Accept")
                  if a.body["object"].get("type") == "Invite")
    async with httpx.AsyncClient() as client:
        proof = await client.get(accept.activity_id, headers=AS)
    assert proof.status_code == 200 and proof.json()["actor"] == n2.actor_url("koeln")

    # B's follower on node 3 gets B's boost of the call.
    async def boosted() -> list[InboxItem]:
        return [i for i in await items(n3, "Announce")
                if i.body["object"] == event_id and i.actor_uri == n2.actor_url("koeln")]

    await wait_for(boosted, what="B's Announce on node 3")

    # A postpones the call: followers of A and of B get the Update and the Note.
    await cli(n1, "postpone", event_id, "--start", "2027-06-15T18:30")

    async def update_on_node2() -> list[InboxItem]:
        return [i for i in await items(n2, "Update")
                if object_id(i.body) == event_id
                and i.body["object"]["startTime"] == "2027-06-15T18:30:00+02:00"]

    (update,) = await wait_for(update_on_node2, what="Update at A's follower")
    jsonschema.validate(update.body["object"], schema("event.schema.json"))
    notes = await wait_for(lambda: _notes(n2, event_id), what="Note at A's follower")
    assert notes[0].actor_uri == n1.actor_url("kampagne")

    async def relayed_on_node3() -> bool:
        announces = [i.body["object"] for i in await items(n3, "Announce")
                     if i.actor_uri == n2.actor_url("koeln")]
        updates = [o for o in announces if isinstance(o, dict) and o.get("type") == "Update"
                   and o["object"]["startTime"] == "2027-06-15T18:30:00+02:00"]
        relayed_notes = [o for o in announces if o == notes[0].body["object"]["id"]]
        return bool(updates) and bool(relayed_notes)

    await wait_for(relayed_on_node3, what="Update and Note relayed to B's follower")

    # The calendar shows the new time in Geneva's timezone.
    async with httpx.AsyncClient() as client:
        ics = await client.get(event_id + "/calendar.ics")
    (vevent,) = icalendar.Calendar.from_ical(ics.content).walk("VEVENT")
    assert vevent.decoded("dtstart") == datetime(2027, 6, 15, 18, 30,
                                                 tzinfo=ZoneInfo("Europe/Zurich"))


async def _notes(node: NodeProcess, event_id: str) -> list[InboxItem]:
    return [i for i in await items(node, "Create")
            if isinstance(i.body.get("object"), dict)
            and i.body["object"].get("type") == "Note"
            and i.body["object"].get("context") == event_id]
