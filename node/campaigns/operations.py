"""Campaign operations shared by CLI, API and the inbox: create, add an update, change
status or visibility, withdraw (docs/ARCHITECTURE.md#1-layers, "Campaigns").

Every change is one write transaction: the ``campaign`` row, its public object
re-rendered from it (render.py), and the activities to the group's followers
through the fan-out log (``news.operations.send_to_followers``). Who receives
anything is decided by ``consent.is_public`` and ``consent.members_network``
alone; the public object exists only while ``consent.is_public``. A
``network_only`` campaign goes to its network's members instead
(network_copy.py); their roster is fetched before the write transaction
(docs/ARCHITECTURE.md §1).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import orjson
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from node.campaigns import consent, detention, network_copy, render, timeline
from node.campaigns.dossier import CampaignError, Dossier, day, parse_dossier, visibility
from node.federation import publishing
from node.federation.runtime import Node
from node.federation.vocabulary import object_document
from node.groups.operations import OperationError, object_uuid_from, require_group, usable_media
from node.networks import roster as rosters
from node.networks.roster import Roster
from node.news.operations import send_to_followers
from node.storage.db import utcnow
from node.storage.models import Activity, Campaign, LocalActor, LocalObject


def today() -> date:
    return utcnow().date()


def _error(exc: CampaignError) -> OperationError:
    return OperationError(str(exc))


def campaign_url(node: Node, campaign: Campaign) -> str:
    """The campaign's id: the URL of its first public object, stable for CLI and API."""
    return node.urls.object(campaign.uuid)


async def _photo(session: AsyncSession, spec: dict[str, Any] | None,
                 actor: LocalActor) -> dict[str, Any] | None:
    if spec is None:
        return None
    media = await usable_media(session, spec["media"], actor)  # the group's own uploads only
    return {"media": media.name, "path": f"uploads/{media.name}",
            "media_type": media.media_type, "width": media.width, "height": media.height,
            "blurhash": media.blurhash, "alt": dict(spec["alt"])}


async def network_roster(node: Node, actor: LocalActor, level: str,
                         network: str | None) -> Roster | None:
    """The members a ``network_only`` campaign goes to (None for other levels),
    fetched now: before the write transaction. Only a member group may choose it."""
    if level != "network_only" or network is None:
        return None
    if not await rosters.group_is_member(node, actor, network):
        raise OperationError(
            f"network_only: the group {actor.username} is not a member of the network "
            f"{network} (join it first with `hambastegi network join`, or choose "
            "public or name_withheld)")
    try:
        return await rosters.current(node, network, max_age=rosters.RETRY_AFTER)
    except rosters.RosterError as exc:
        raise OperationError(str(exc), status=502) from exc


async def _roster_of(node: Node, actor: LocalActor, campaign: Campaign) -> Roster | None:
    if campaign.withdrawn_at is not None:
        return None
    return await network_roster(node, actor, campaign.visibility, campaign.network)


async def _former_roster(node: Node, network: str) -> Roster | None:
    """Where the Delete of a members' document goes when the campaign leaves the
    network: never refused (withdrawing consent must always work); the stored
    roster if no fresh one can be had, nobody if there is none (logged)."""
    try:
        return await rosters.current(node, network, max_age=rosters.RETRY_AFTER)
    except rosters.RosterError:
        return await rosters.stored(node, network)


async def create_campaign(node: Node, username: str, body: Any) -> str:
    """A new campaign of a group; returns its id (URL)."""
    actor = await require_group(node, username)
    try:
        dossier = parse_dossier(body, actor.language, today=today())
    except CampaignError as exc:
        raise _error(exc) from exc
    roster = await network_roster(node, actor, dossier.visibility, dossier.network)
    async with node.db.write() as session:
        campaign = Campaign(uuid=publishing.new_uuid(), group_id=actor.id or 0,
                            language=dossier.language, country=dossier.country,
                            status=dossier.status, visibility=dossier.visibility,
                            network=dossier.network,
                            detentions=detention.first_record(dossier.arrested_on,
                                                              dossier.released_on))
        await _fill(session, campaign, dossier, actor)
        session.add(campaign)
        await session.flush()
        await _publish(session, node, actor, campaign, roster)
    node.changed()
    return campaign_url(node, campaign)


async def _fill(session: AsyncSession, campaign: Campaign, dossier: Dossier,
                actor: LocalActor) -> None:
    data = dossier.as_data()
    data["photo"] = await _photo(session, dossier.photo, actor)
    campaign.data = data


async def load(session: AsyncSession, node: Node, campaign_id: str,
               allowed_actor: int | None) -> tuple[LocalActor, Campaign]:
    """By the campaign's id (URL or uuid), or by the id of its current public object
    or members' document."""
    key = object_uuid_from(node, campaign_id)
    campaign = (await session.exec(select(Campaign).where(
        (col(Campaign.uuid) == key) | (col(Campaign.network_uuid) == key)))).first()
    if campaign is None:
        obj = await publishing.get_object(session, key)
        if obj is not None:
            campaign = (await session.exec(
                select(Campaign).where(Campaign.object_id == obj.id))).first()
    if campaign is None or campaign.withdrawn_at is not None:
        raise OperationError("no such campaign", status=404)
    actor = await session.get(LocalActor, campaign.group_id)
    if actor is None or (allowed_actor is not None and actor.id != allowed_actor):
        raise OperationError("no such campaign", status=404)
    return actor, campaign


async def public_object(session: AsyncSession, campaign: Campaign) -> LocalObject | None:
    if campaign.object_id is None:
        return None
    return await session.get(LocalObject, campaign.object_id)


def _render(node: Node, campaign: Campaign, obj: LocalObject) -> None:
    fields = render.document_fields(campaign, node.urls, node.urls.object(obj.uuid),
                                    today=today())
    obj.object_type = "Article"
    obj.language = campaign.language
    obj.names = fields["names"]
    obj.summaries = fields["summaries"]
    obj.contents = fields["contents"]
    obj.extra = fields["extra"]


async def _publish(session: AsyncSession, node: Node, actor: LocalActor,
                   campaign: Campaign, roster: Roster | None) -> None:
    """Bring the public object in line with the campaign and its consent:
    Create where it became visible, Update where it changed, Delete where it
    may no longer be seen (and every trace of it out of the stored activities).
    ``network_only``: the members' document instead (``roster``: its members)."""
    obj = await public_object(session, campaign)
    if not consent.is_public(campaign):
        if obj is not None and obj.deleted_at is None:
            await _delete(session, node, actor, obj)
            for note in await _notes(session, node, campaign):
                await _delete(session, node, actor, note)
        if consent.members_network(campaign) is not None and roster is not None:
            kind = "Update" if campaign.network_uuid is not None else "Create"
            if campaign.network_uuid is None:
                campaign.network_uuid = publishing.new_uuid()
                session.add(campaign)
                await session.flush()
            await network_copy.send(session, node, actor, campaign, roster, kind,
                                    today=today())
        return
    if obj is None or obj.deleted_at is not None:
        # A tombstone's id never comes back (Mastodon keeps tombstones): a
        # campaign public again gets a new object; its own id stays the same.
        uuid = campaign.uuid if obj is None else publishing.new_uuid()
        obj = LocalObject(uuid=uuid, local_actor_id=actor.id or 0, language=campaign.language)
        _render(node, campaign, obj)
        session.add(obj)
        await session.flush()
        campaign.object_id = obj.id
        session.add(campaign)
        await send_to_followers(session, node.urls, actor, "Create", obj)
        return
    _render(node, campaign, obj)
    obj.updated = utcnow()
    session.add(obj)
    await session.flush()
    await send_to_followers(session, node.urls, actor, "Update", obj)


async def _delete(session: AsyncSession, node: Node, actor: LocalActor,
                  obj: LocalObject) -> None:
    obj.deleted_at = utcnow()
    obj.pinned_at = None
    obj.names, obj.summaries, obj.contents, obj.extra = {}, {}, {}, {}
    session.add(obj)
    await session.flush()
    await send_to_followers(session, node.urls, actor, "Delete", obj)
    await scrub_history(session, node, obj, actor)


async def scrub_history(session: AsyncSession, node: Node, obj: LocalObject,
                        actor: LocalActor) -> None:
    """Rewrite the stored activities of ``obj`` to embed it as it is now.

    Pages and the outbox already show objects as they are now (web/current.py),
    but the stored bodies are also what queued deliveries send and what a later
    reader of the table finds: after consent is lowered, no stored byte may still
    hold what was withdrawn (issue 16). A deleted object's activities leave the
    outbox."""
    url = node.urls.object(obj.uuid)
    current = object_document(obj, actor, node.urls, with_context=False)
    rows = (await session.exec(select(Activity).where(Activity.object_uri == url))).all()
    for row in rows:
        doc = orjson.loads(row.body)
        if isinstance(doc.get("object"), dict):
            doc["object"] = current
            row.body = orjson.dumps(doc)
        if obj.deleted_at is not None:
            row.in_outbox = False
        session.add(row)


async def _notes(session: AsyncSession, node: Node, campaign: Campaign) -> list[LocalObject]:
    uuids = [u for entry in campaign.timeline
             if (u := node.urls.local_object_uuid(entry.get("note"))) is not None]
    if not uuids:
        return []
    return list((await session.exec(
        select(LocalObject).where(col(LocalObject.uuid).in_(uuids)))).all())


async def _send_note(session: AsyncSession, node: Node, actor: LocalActor,
                     campaign: Campaign, entry: dict[str, Any],
                     status_line: str | None = None) -> None:
    """The entry as a short Note from the group, only while the campaign is public:
    a ``network_only`` campaign's members get the Update of its document alone."""
    if not consent.is_public(campaign):
        return
    url = node.urls.object((await public_object(session, campaign) or campaign).uuid)
    fields = render.note_fields(campaign, entry, url, status_line=status_line)
    note = LocalObject(uuid=publishing.new_uuid(), local_actor_id=actor.id or 0,
                       object_type="Note", language=campaign.language,
                       contents=_primary_first(fields["contents"], campaign.language),
                       extra=fields["extra"])
    session.add(note)
    await session.flush()
    entry["note"] = node.urls.object(note.uuid)
    await send_to_followers(session, node.urls, actor, "Create", note)


def _primary_first(mapping: dict[str, str], primary: str) -> dict[str, str]:
    if primary not in mapping:
        return mapping
    return {primary: mapping[primary], **{k: v for k, v in mapping.items() if k != primary}}


async def add_update(node: Node, campaign_id: str, body: Any, *,
                     allowed_actor: int | None = None, by: str | None = None) -> str:
    """A timeline entry: a Note from the group, and an Update of the campaign."""
    async with node.db.read() as session:
        actor, campaign = await load(session, node, campaign_id, allowed_actor)
    try:
        entry = timeline.parse_entry(body, campaign.language, today=today())
    except CampaignError as exc:
        raise _error(exc) from exc
    roster = await _roster_of(node, actor, campaign)
    async with node.db.write() as session:
        actor, campaign = await load(session, node, campaign_id, allowed_actor)
        if len(campaign.timeline) >= timeline.MAX_TIMELINE:
            raise OperationError(f"a campaign keeps at most {timeline.MAX_TIMELINE} updates")
        entry["by"] = by or node.urls.actor(actor.username)
        await _send_note(session, node, actor, campaign, entry)
        campaign.timeline = [*campaign.timeline, entry]
        await _changed(session, node, actor, campaign, roster)
    node.changed()
    return entry.get("note") or campaign_url(node, campaign)


async def _changed(session: AsyncSession, node: Node, actor: LocalActor,
                   campaign: Campaign, roster: Roster | None) -> None:
    campaign.updated_at = utcnow()
    session.add(campaign)
    await session.flush()
    await _publish(session, node, actor, campaign, roster)


async def set_status(node: Node, campaign_id: str, new_status: Any, *,
                     when: Any = None, note: str | None = None,
                     allowed_actor: int | None = None) -> str:
    """A change of status: the detention record follows; Update plus a Note."""
    try:
        on = today() if when is None else day(when, "date", today=today())
    except CampaignError as exc:
        raise _error(exc) from exc
    async with node.db.read() as session:
        actor, campaign = await load(session, node, campaign_id, allowed_actor)
    roster = await _roster_of(node, actor, campaign)
    async with node.db.write() as session:
        actor, campaign = await load(session, node, campaign_id, allowed_actor)
        try:
            record = detention.change(campaign.status, new_status, campaign.detentions, on,
                                      today=today(),
                                      after=detention.last_change(campaign.timeline))
            entry = timeline.status_entry(note, campaign.language, on) or {
                "date": on.isoformat(), "versions": {campaign.language: ""}, "sources": []}
        except CampaignError as exc:
            raise _error(exc) from exc
        campaign.status = str(new_status)
        campaign.detentions = record
        entry["by"] = node.urls.actor(actor.username)
        entry["status"] = campaign.status
        line: str | None = render.status_label(campaign.status, campaign.language)
        if not any(entry["versions"].values()):
            entry["versions"] = {campaign.language: line}
            line = None
        entry["line"] = line
        await _send_note(session, node, actor, campaign, entry, status_line=line)
        campaign.timeline = [*campaign.timeline, entry]
        await _changed(session, node, actor, campaign, roster)
    node.changed()
    return campaign_url(node, campaign)


async def set_visibility(node: Node, campaign_id: str, level: Any, *,
                         network: Any = None, allowed_actor: int | None = None) -> str:
    """Raise or lower consent. Lowering to ``name_withheld`` sends Updates of the
    campaign and of every timeline Note with the name taken out (and scrubs the
    stored activities); ``network_only`` Deletes them from the open fediverse and
    sends a Create to the network's members; leaving ``network_only`` (or moving
    to another network) sends them a Delete first."""
    try:
        level, net = visibility(level, network)
    except CampaignError as exc:
        raise _error(exc) from exc
    async with node.db.read() as session:
        actor, campaign = await load(session, node, campaign_id, allowed_actor)
    roster = await network_roster(node, actor, level, net)
    leaving = campaign.network if campaign.network_uuid is not None and \
        campaign.visibility == "network_only" and net != campaign.network else None
    former = await _former_roster(node, leaving) if leaving is not None else None
    async with node.db.write() as session:
        actor, campaign = await load(session, node, campaign_id, allowed_actor)
        if campaign.network_uuid is not None and campaign.network != net:
            if former is not None and campaign.network == leaving:
                await network_copy.send(session, node, actor, campaign, former, "Delete",
                                        today=today())
            else:
                await network_copy.scrub(session, node, campaign)
            campaign.network_uuid = None
        campaign.visibility, campaign.network = level, net
        await _changed(session, node, actor, campaign, roster)
        obj = await public_object(session, campaign)
        if consent.is_public(campaign) and obj is not None:
            await scrub_history(session, node, obj, actor)
            await _rerender_notes(session, node, actor, campaign)
        session.add(campaign)
    node.changed()
    # Public again after network_only: a new object (the old id is a tombstone);
    # both ids keep working for the CLI and API (``load``).
    if obj is not None and obj.deleted_at is None:
        return node.urls.object(obj.uuid)
    return network_copy.url_of(node, campaign) or campaign_url(node, campaign)


async def edit_campaign(node: Node, campaign_id: str, body: Any, *,
                        allowed_actor: int | None = None) -> str:
    """The dossier anew (a correction, consent to a photo given): texts, names, photo,
    ``public_fields``, "what you can do". Status, dates and consent level have their
    own commands and must match here; the stored activities and Notes follow."""
    async with node.db.read() as session:
        actor, campaign = await load(session, node, campaign_id, allowed_actor)
    if isinstance(body, dict):
        first = campaign.detentions[0] if campaign.detentions else {}
        body = {"arrested_on": first.get("arrested"), "status": campaign.status,
                "released_on": campaign.detentions[-1].get("released")
                if campaign.detentions else None,
                "visibility": campaign.visibility, "network": campaign.network, **body}
    try:
        dossier = parse_dossier(body, actor.language, today=today())
    except CampaignError as exc:
        raise _error(exc) from exc
    if dossier.status != campaign.status or dossier.visibility != campaign.visibility:
        raise OperationError("change status with `campaign status` and consent with "
                             "`campaign visibility`; an edit keeps both")
    roster = await _roster_of(node, actor, campaign)
    async with node.db.write() as session:
        actor, campaign = await load(session, node, campaign_id, allowed_actor)
        await _fill(session, campaign, dossier, actor)
        campaign.language, campaign.country = dossier.language, dossier.country
        await _changed(session, node, actor, campaign, roster)
        obj = await public_object(session, campaign)
        if consent.is_public(campaign) and obj is not None:
            await scrub_history(session, node, obj, actor)
            await _rerender_notes(session, node, actor, campaign)
    node.changed()
    return campaign_url(node, campaign)


async def _rerender_notes(session: AsyncSession, node: Node, actor: LocalActor,
                          campaign: Campaign) -> None:
    """Timeline Notes name the person too: re-rendered under the new consent."""
    notes = {node.urls.object(n.uuid): n for n in await _notes(session, node, campaign)}
    obj = await public_object(session, campaign)
    url = node.urls.object(obj.uuid) if obj is not None else campaign_url(node, campaign)
    for entry in campaign.timeline:
        note = notes.get(entry.get("note", ""))
        if note is None or note.deleted_at is not None:
            continue
        fields = render.note_fields(campaign, entry, url, status_line=entry.get("line"))
        contents = _primary_first(fields["contents"], campaign.language)
        if contents == note.contents:
            continue
        note.contents = contents
        note.extra = fields["extra"]
        note.updated = utcnow()
        session.add(note)
        await session.flush()
        await send_to_followers(session, node.urls, actor, "Update", note)
        await scrub_history(session, node, note, actor)


async def withdraw(node: Node, campaign_id: str, *, allowed_actor: int | None = None) -> str:
    """Consent withdrawn: Delete the campaign and its Notes everywhere, keep nothing
    of the person (the row stays, emptied, so its id is never given again). A
    ``network_only`` campaign's members get the Delete of their document."""
    async with node.db.read() as session:
        _, campaign = await load(session, node, campaign_id, allowed_actor)
    members = campaign.network if campaign.visibility == "network_only" \
        and campaign.network_uuid is not None else None
    roster = await _former_roster(node, members) if members is not None else None
    async with node.db.write() as session:
        actor, campaign = await load(session, node, campaign_id, allowed_actor)
        obj = await public_object(session, campaign)
        for note in await _notes(session, node, campaign):
            if note.deleted_at is None:
                await _delete(session, node, actor, note)
        if obj is not None and obj.deleted_at is None:
            await _delete(session, node, actor, obj)
        if campaign.network_uuid is not None and campaign.visibility == "network_only":
            if roster is not None and campaign.network == members:
                await network_copy.send(session, node, actor, campaign, roster, "Delete",
                                        today=today())
            else:
                await network_copy.scrub(session, node, campaign)
        campaign.withdrawn_at = utcnow()
        campaign.data, campaign.timeline = {}, []
        session.add(campaign)
    node.changed()
    return campaign_url(node, campaign)


async def hidden_object(session: AsyncSession, obj: LocalObject) -> bool:
    """Whether one of our objects belongs to a campaign the public may not see: then
    it is 404, not a Tombstone (consent.may_see: a network_only campaign's public
    object is not known to exist; its members read another id, network_copy.py)."""
    campaign = (await session.exec(select(Campaign).where(
        Campaign.object_id == obj.id))).first()
    if campaign is None:
        campaign = (await session.exec(select(Campaign).where(
            Campaign.uuid == obj.uuid))).first()
    return campaign is not None and not consent.may_see(campaign, None)
