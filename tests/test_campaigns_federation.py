"""Campaigns across three real nodes (issue 16): a campaign on A in Persian and
English, co-owned by a group on B that adds a timeline update; a follower on C
receives the Note and the Update, and sees the status change."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import jsonschema

from node.storage.models import CampaignOwner, InboxItem, Invitation
from tests.conftest import NodeFactory, wait_for
from tests.test_campaigns import SCHEMA, dossier
from tests.test_federation import received, rows
from tests.test_news_federation import follow

UPDATE_EN = "Transferred to Ghezel Hesar prison; his family could not visit."


async def test_co_owned_campaign_reaches_a_follower_with_notes_updates_and_status(
        nodes: NodeFactory, tmp_path: Path) -> None:
    a = await nodes.create("a")
    b = await nodes.create("b")
    c = await nodes.create("c")
    a.cli("group", "create", "vahed", "--language", "fa")
    b.cli("group", "create", "solidarity", "--language", "en")
    c.cli("group", "create", "watch", "--language", "de")
    await follow(c, "watch", a, "vahed")

    path = tmp_path / "campaign.json"
    path.write_text(json.dumps(dossier(status="sentenced")), encoding="utf-8")
    campaign_id = (await asyncio.to_thread(
        a.cli, "publish", "campaign", "vahed", "--json", str(path))).stdout.strip()

    # A invites B's group to co-own; B's editors accept on their own node.
    await asyncio.to_thread(a.cli, "campaign", "invite", campaign_id, f"solidarity@{b.host}")

    async def invitation() -> list[Invitation]:
        return await rows(b, Invitation, Invitation.event_uri == campaign_id)

    (invited,) = await wait_for(invitation, what="the invitation on B")
    assert invited.event["campaignStatus"] == "sentenced"
    await asyncio.to_thread(b.cli, "invitation", "accept", "solidarity", str(invited.id))

    async def co_owner() -> list[CampaignOwner]:
        return await rows(a, CampaignOwner, CampaignOwner.state == "accepted")

    (owner,) = await wait_for(co_owner, what="B's group a co-owner on A")
    assert owner.actor_uri == b.actor_url("solidarity")

    # B's editors add a timeline update; A verifies and publishes it.
    update = tmp_path / "update.json"
    update.write_text(json.dumps({"text": UPDATE_EN, "language": "en",
                                  "sources": ["https://news.example/transfer"]}),
                      encoding="utf-8")
    await asyncio.to_thread(b.cli, "campaign", "update", campaign_id, "--json", str(update))

    async def note_on_c() -> list[InboxItem]:
        items = await rows(c, InboxItem, InboxItem.activity_type == "Create",
                           InboxItem.actor_uri == a.actor_url("vahed"))
        return [i for i in items if i.body["object"].get("type") == "Note"
                and UPDATE_EN in json.dumps(i.body["object"])]

    (note,) = await wait_for(note_on_c, what="the co-owner's update as A's Note on C")
    jsonschema.validate(note.body["object"], SCHEMA)
    assert note.body["object"]["context"] == campaign_id

    async def article_update_with(text: str) -> list[InboxItem]:
        found = await received(c, "Update", campaign_id)
        return [i for i in found if text in json.dumps(i.body["object"])]

    (article,) = await wait_for(lambda: article_update_with(UPDATE_EN),
                                what="the Update carrying the new timeline entry")
    doc: dict[str, Any] = article.body["object"]
    jsonschema.validate(doc, SCHEMA)
    assert list(doc["contentMap"]) == ["fa", "en"]

    # The status change: an Update (and a Note) that shows on C.
    await asyncio.to_thread(a.cli, "campaign", "status", campaign_id, "--status", "released",
                            "--note", "Freed after 400 days")

    async def released() -> list[InboxItem]:
        found = await received(c, "Update", campaign_id)
        return [i for i in found if i.body["object"].get("campaignStatus") == "released"]

    (status,) = await wait_for(released, what="the status change on C")
    jsonschema.validate(status.body["object"], SCHEMA)
    assert status.body["object"]["summaryMap"]["en"].startswith("Released — ")
    assert "Freed after 400 days" in json.dumps(status.body["object"])
