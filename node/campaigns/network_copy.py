"""A ``network_only`` campaign's document: for the member nodes of one network only
(issue 16, point 2; docs/ARCHITECTURE.md "Campaigns", FEDERATION.md "Campaigns").

Every public surface of the node (outbox, feeds, pages, calendars, search, the
campaign list) lists ``local_object`` rows, so this document has none: it is
rendered from the ``campaign`` row on demand (render.document_fields) under its
own id, ``campaign.network_uuid`` — a fresh one each time the campaign becomes
``network_only``, so an id its members saw Deleted never comes back. Its
activities go only to the member nodes' inboxes and the network's
(``roster.Roster.inboxes``), addressed to the network's ``members`` collection,
never ``as:Public`` nor the group's followers, and stay out of the outbox.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import orjson
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from node.campaigns import consent, render
from node.federation import publishing
from node.federation.runtime import Node
from node.federation.vocabulary import iso, object_document
from node.networks import roster as rosters
from node.networks.roster import Roster
from node.storage.db import utcnow
from node.storage.models import Activity, Campaign, LocalActor, LocalObject


def url_of(node: Node, campaign: Campaign) -> str | None:
    return node.urls.object(campaign.network_uuid) if campaign.network_uuid else None


def document(node: Node, campaign: Campaign, actor: LocalActor, members_url: str, *,
             today: date, with_context: bool = True) -> dict[str, Any]:
    """The Article as the members read it, addressed to the members alone."""
    assert campaign.network_uuid is not None
    url = node.urls.object(campaign.network_uuid)
    fields = render.document_fields(campaign, node.urls, url, today=today)
    # A LocalObject never stored: object_document's shape without a public row.
    obj = LocalObject(uuid=campaign.network_uuid, local_actor_id=actor.id or 0,
                      object_type="Article", language=campaign.language,
                      published=campaign.created_at, updated=campaign.updated_at,
                      names=fields["names"], summaries=fields["summaries"],
                      contents=fields["contents"], extra=fields["extra"])
    doc = object_document(obj, actor, node.urls, with_context=with_context)
    doc["to"], doc["cc"] = [members_url], []
    return doc


def _tombstone(url: str) -> dict[str, Any]:
    return {"id": url, "type": "Tombstone", "formerType": "Article", "deleted": iso(utcnow())}


async def send(session: AsyncSession, node: Node, actor: LocalActor, campaign: Campaign,
               roster: Roster, activity_type: str, *, today: date) -> None:
    """Create, Update or Delete of the members' document, to the members only."""
    url = url_of(node, campaign)
    assert url is not None
    if activity_type == "Delete":
        # Like a deleted public object (operations.scrub_history): no stored byte,
        # nor a queued delivery, keeps what is gone.
        await scrub(session, node, campaign)
    obj = _tombstone(url) if activity_type == "Delete" else document(
        node, campaign, actor, roster.members_url, today=today, with_context=False)
    await publishing.record_activity(
        session, actor, node.urls, activity_type=activity_type, obj=obj,
        to=[roster.members_url], inboxes=roster.inboxes(node.settings.host),
        in_outbox=False, object_uri=url)


async def scrub(session: AsyncSession, node: Node, campaign: Campaign) -> None:
    """The members' document deleted (consent withdrawn or widened): its stored
    activities keep only its Tombstone (what a queued delivery would send; issue 16)."""
    url = url_of(node, campaign)
    if url is None:
        return
    for row in (await session.exec(select(Activity).where(Activity.object_uri == url))).all():
        doc = orjson.loads(row.body)
        if isinstance(doc.get("object"), dict):
            doc["object"] = _tombstone(url)
            row.body = orjson.dumps(doc)
            session.add(row)


async def campaign_of(node: Node, uuid: str) -> Campaign | None:
    """The campaign whose members' document is ``uuid`` (any state: a withdrawn or
    widened one is 404 like an unknown id, decided by ``readable``)."""
    async with node.db.read() as session:
        return (await session.exec(select(Campaign).where(
            Campaign.network_uuid == uuid))).first()


async def readable(node: Node, campaign: Campaign, requester: str | None, *,
                   today: date) -> dict[str, Any] | None:
    """The document for ``requester`` (the actor its signed GET verified as), or
    None: not network_only now, withdrawn, or not on a member node. The stored
    roster decides; one older than ``roster.FRESH_FOR`` is fetched again first (a
    member accepted or removed since), so reads cost at most one walk per network
    and interval, whoever asks."""
    if requester is None or campaign.visibility != "network_only" or campaign.network is None \
            or campaign.withdrawn_at is not None:
        return None
    try:
        roster = await rosters.current(node, campaign.network)
    except rosters.RosterError:
        return None
    if not consent.may_see(campaign, requester, member_hosts=roster.hosts()):
        return None
    async with node.db.read() as session:
        actor = await session.get(LocalActor, campaign.group_id)
    if actor is None:
        return None
    return document(node, campaign, actor, roster.members_url, today=today)
