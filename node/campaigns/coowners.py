"""Co-owners: groups on other nodes that maintain one campaign (issue 16, point 4).

The invitation is the one of action calls (node/calls/cosign.py, FEDERATION.md
"Co-signing"), with the campaign in place of the event:
1. the owning group sends ``Invite{object: <campaign>/organizers, target, context:
   <campaign>}``; the invited node keeps it as an ``invitation`` row
   (``cosign.on_invite``, which takes a campaign ``Article`` through
   ``campaign_snapshot``), and its editors answer with ``hambastegi invitation
   accept`` like any co-signing invitation: ``Accept`` and an ``Announce`` of the
   campaign to their followers;
2. the owner records the Accept (``on_accept_invite``): the group is a co-owner;
3. a co-owner's editors add a timeline update with ``hambastegi campaign update
   <campaign URL>``: their node sends ``Create{Note}`` with ``context`` = the
   campaign, addressed to the owning group only (``send_update``);
4. the owner checks that the sender is a current co-owner (``on_create_update``)
   and publishes the entry as its own: timeline, Note to its followers, Update;
5. a co-owner leaves (``leave``: co-signing's withdrawal, ``Undo{Accept}`` and
   ``Undo{Announce}``), recorded by the owner in ``on_undo_accept``; the owner
   removes a co-owner (``remove_owner``: ``Remove{object: group, target:
   <campaign>/organizers}``), which ends the invitation on its node
   (``on_removed``). Either way that group's Notes are ignored from then on.
Anyone else's Note is ignored; a remote ``Update`` of a campaign never changes
it (our objects' ids are on our origin, and the inbox refuses an actor speaking
for another origin's ids, docs/ARCHITECTURE.md §3).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from node.campaigns import operations
from node.campaigns.dossier import CampaignError
from node.core.jsonsafe import as_id
from node.core.text import html_to_plain
from node.federation import publishing
from node.federation.remote_actors import RemoteError, get_actor, same_origin
from node.federation.runtime import Node
from node.groups.operations import OperationError, find_remote_group, object_uuid_from
from node.storage.models import (
    Campaign,
    CampaignOwner,
    InboxItem,
    Invitation,
    LocalActor,
    LocalObject,
)
from node.storage.states import InvitationState

log = logging.getLogger("hambastegi.campaigns")


# --- owning side -------------------------------------------------------------------


async def invite(node: Node, campaign_id: str, target: str, *,
                 allowed_actor: int | None = None) -> str:
    """Invite a group (handle or URL) to co-own; returns the Invite's id."""
    async with node.db.read() as session:
        _, campaign = await operations.load(session, node, campaign_id, allowed_actor)
    if campaign.visibility == "network_only":
        raise OperationError("a network_only campaign cannot have co-owners outside its "
                             "network yet")
    remote = await find_remote_group(node, target)
    async with node.db.write() as session:
        actor, campaign = await operations.load(session, node, campaign_id, allowed_actor)
        url = operations.campaign_url(node, campaign)
        existing = (await session.exec(select(CampaignOwner).where(
            CampaignOwner.campaign_id == campaign.id,
            CampaignOwner.actor_uri == remote.uri))).first()
        if existing is not None and existing.state in ("invited", "accepted"):
            return existing.invite_activity_id
        activity = await publishing.record_activity(
            session, actor, node.urls, activity_type="Invite", obj=url + "/organizers",
            to=[remote.uri], inboxes=[remote.inbox], in_outbox=False, object_uri=url,
            extra={"target": remote.uri, "context": url})
        invite_id = node.urls.activity(activity.uuid)
        if existing is None:
            existing = CampaignOwner(campaign_id=campaign.id or 0, actor_uri=remote.uri,
                                     inbox=remote.inbox, invite_activity_id=invite_id)
        existing.invite_activity_id = invite_id
        existing.state = "invited"
        session.add(existing)
    node.changed()
    return invite_id


async def on_accept_invite(node: Node, item: InboxItem) -> None:
    """The invited group accepted: it is a co-owner from now on."""
    await _answer(node, item, "accepted")


async def on_reject_invite(node: Node, item: InboxItem) -> None:
    await _answer(node, item, "rejected")


async def _answer(node: Node, item: InboxItem, state: str) -> None:
    invite_id = as_id(item.body.get("object"))
    if invite_id is None:
        return
    async with node.db.write() as session:
        owner = (await session.exec(select(CampaignOwner).where(
            CampaignOwner.invite_activity_id == invite_id))).first()
        # Only the invited actor, only while the invitation is open.
        if owner is None or owner.actor_uri != item.actor_uri or owner.state != "invited":
            return
        owner.state = state
        if state == "accepted":
            owner.response_activity_id = item.activity_id
        session.add(owner)
    node.changed()


async def on_undo_accept(node: Node, item: InboxItem) -> None:
    """A co-owner leaves: ``Undo{Accept}`` of the Accept that made it one.

    The Accept is found by the id ``campaign_owner.response_activity_id`` recorded
    (as ``cosigner`` does for co-signers); a row accepted before that column
    existed (migration 0016) is found through the stored ``inbox_item`` of an
    Accept by the very actor who undoes it, naming the co-owner's invitation. An
    Undo by anyone else, of an Accept we never got, or a replay after the row left
    ``accepted`` changes nothing."""
    inner = item.body.get("object")
    accept_id = as_id(inner)
    if accept_id is None or (isinstance(inner, dict) and inner.get("type") not in (None,
                                                                                  "Accept")):
        return
    async with node.db.write() as session:
        owner = (await session.exec(select(CampaignOwner).where(
            CampaignOwner.response_activity_id == accept_id))).first()
        if owner is None:
            owner = await _owner_by_stored_accept(session, accept_id, item.actor_uri)
        if owner is None or owner.actor_uri != item.actor_uri or owner.state != "accepted":
            return
        owner.state = "withdrawn"
        session.add(owner)
    log.info("co-owner left a campaign", extra={"actor": item.actor_uri[:200]})
    node.changed()


async def _owner_by_stored_accept(session: AsyncSession, accept_id: str,
                                  actor_uri: str) -> CampaignOwner | None:
    """Rows accepted before migration 0016: the Accept as the inbox stored it."""
    accept = (await session.exec(select(InboxItem).where(
        InboxItem.activity_id == accept_id))).first()
    if accept is None or accept.activity_type != "Accept" or accept.actor_uri != actor_uri:
        return None
    invite_id = as_id(accept.body.get("object"))
    if invite_id is None:
        return None
    return (await session.exec(select(CampaignOwner).where(
        CampaignOwner.invite_activity_id == invite_id,
        col(CampaignOwner.response_activity_id).is_(None)))).first()


async def remove_owner(node: Node, campaign_id: str, target: str, *,
                       allowed_actor: int | None = None) -> str:
    """The owning group ends a co-ownership (or an open invitation); the removed
    group's node is told with ``Remove{object: group, target: <campaign>/organizers}``
    (the collection the Invite offered). Returns the Remove's id."""
    async with node.db.read() as session:
        await operations.load(session, node, campaign_id, allowed_actor)
    uri = target if target.startswith(("https://", "http://")) \
        else (await find_remote_group(node, target)).uri
    async with node.db.write() as session:
        actor, campaign = await operations.load(session, node, campaign_id, allowed_actor)
        owner = (await session.exec(select(CampaignOwner).where(
            CampaignOwner.campaign_id == campaign.id, CampaignOwner.actor_uri == uri))).first()
        if owner is None or owner.state not in ("invited", "accepted"):
            raise OperationError(f"{target} is not a co-owner of this campaign", status=404)
        url = operations.campaign_url(node, campaign)
        activity = await publishing.record_activity(
            session, actor, node.urls, activity_type="Remove", obj=owner.actor_uri,
            to=[owner.actor_uri], inboxes=[owner.inbox], in_outbox=False, object_uri=url,
            extra={"target": url + "/organizers", "context": url})
        owner.state = "removed"
        session.add(owner)
    node.changed()
    return node.urls.activity(activity.uuid)


async def organizers(session: AsyncSession, node: Node, obj: LocalObject,
                     actor: LocalActor) -> list[str] | None:
    """``<campaign>/organizers`` (what the Invite offers, what a Remove takes one
    from): the owning group, then the current co-owners; None when ``obj`` is no
    campaign the public may see."""
    campaign = (await session.exec(select(Campaign).where(
        Campaign.object_id == obj.id))).first()
    if campaign is None or campaign.withdrawn_at is not None \
            or await operations.hidden_object(session, obj):
        return None
    rows = (await session.exec(select(CampaignOwner.actor_uri).where(
        CampaignOwner.campaign_id == campaign.id, CampaignOwner.state == "accepted")
        .order_by(CampaignOwner.id))).all()  # type: ignore[arg-type]
    return [node.urls.actor(actor.username), *rows]


async def co_owners(node: Node, campaign: Campaign) -> list[str]:
    async with node.db.read() as session:
        return [o.actor_uri for o in (await session.exec(select(CampaignOwner).where(
            CampaignOwner.campaign_id == campaign.id,
            CampaignOwner.state == "accepted"))).all()]


async def on_create_update(node: Node, item: InboxItem) -> None:
    """A co-owner's timeline update: ``Create{Note}`` with ``context`` = our campaign."""
    obj = item.body.get("object")
    if not isinstance(obj, dict) or obj.get("type") != "Note":
        return
    context = as_id(obj.get("context"))
    if context is None or node.urls.local_object_uuid(context) is None \
            or as_id(obj.get("attributedTo")) != item.actor_uri:
        return
    async with node.db.read() as session:
        try:
            _, campaign = await operations.load(session, node, context, None)
        except OperationError:
            return
        owner = (await session.exec(select(CampaignOwner).where(
            CampaignOwner.campaign_id == campaign.id, CampaignOwner.actor_uri == item.actor_uri,
            CampaignOwner.state == "accepted"))).first()
    if owner is None:
        log.info("campaign update from a non-owner ignored",
                 extra={"actor": item.actor_uri[:200]})
        return
    body = {"versions": _texts(obj), "sources": [u for u in (obj.get("sources") or [])
                                                 if isinstance(u, str)][:10]}
    if isinstance(obj.get("published"), str):
        body["date"] = obj["published"][:10]
    try:
        await operations.add_update(node, context, body, by=item.actor_uri)
    except (OperationError, CampaignError) as exc:
        log.info("campaign update refused", extra={"reason": str(exc)[:200]})


def _texts(obj: dict[str, Any]) -> dict[str, str]:
    """Plain text per language from contentMap (or content), nothing else."""
    raw = obj.get("contentMap")
    if not isinstance(raw, dict) or not raw:
        raw = {"und": obj.get("content")}
    out: dict[str, str] = {}
    for lang, value in list(raw.items())[:20]:
        if isinstance(lang, str) and isinstance(value, str):
            text = " ".join(html_to_plain(value[:20_000]).split())
            if text:
                out["en" if lang == "und" else lang] = text[:5000]
    return out


# --- co-owner side -------------------------------------------------------------------


def campaign_snapshot(raw: dict[str, Any]) -> dict[str, Any]:
    """What an invited group's editors read of a campaign they are asked to co-own:
    known fields only, as plain text (the invitation list shows it)."""
    snapshot: dict[str, Any] = {"id": as_id(raw.get("id")), "type": "Article",
                                "campaignStatus": str(raw.get("campaignStatus"))[:20]}
    for key in ("name", "summary"):
        if isinstance(raw.get(key), str):
            snapshot[key] = html_to_plain(raw[key][:2000])
    if snapshot["id"] is None:
        raise CampaignError("the campaign has no id")
    return snapshot


def is_campaign(raw: Any) -> bool:
    return isinstance(raw, dict) and raw.get("type") == "Article" and "campaignStatus" in raw


async def send_update(node: Node, campaign_url: str, body: Any, *,
                      group_id: int | None = None) -> str:
    """A timeline update for a campaign our group co-owns, sent to its owner.
    ``group_id``: only as that group (the API's token); else whichever of our groups
    co-owns it (the CLI)."""
    async with node.db.read() as session:
        query = select(Invitation).where(Invitation.event_uri == campaign_url,
                                         Invitation.state == "accepted")
        if group_id is not None:
            query = query.where(Invitation.local_actor_id == group_id)
        invitation = (await session.exec(query)).first()
        group = await session.get(LocalActor, invitation.local_actor_id) \
            if invitation is not None else None
    if invitation is None or group is None:
        raise OperationError("no such campaign here, and none our groups co-own", status=404)
    from node.campaigns.timeline import parse_entry

    try:
        entry = parse_entry(body, group.language, today=operations.today())
    except CampaignError as exc:
        raise OperationError(str(exc)) from exc
    try:
        owner = await get_actor(node, invitation.inviter_uri)
    except RemoteError as exc:
        raise OperationError(f"cannot reach the campaign's owner: {exc}", status=502) from exc
    if not same_origin(campaign_url, owner.uri):
        raise OperationError("the campaign is not on its owner's node", status=409)
    async with node.db.write() as session:
        note_uuid = publishing.new_uuid()
        note = {"id": node.urls.object(note_uuid), "type": "Note",
                "attributedTo": node.urls.actor(group.username), "context": campaign_url,
                "to": [owner.uri], "published": f"{entry['date']}T00:00:00Z",
                "content": next(iter(entry["versions"].values())),
                "contentMap": entry["versions"]}
        if entry["sources"]:
            note["sources"] = entry["sources"]
        activity = await publishing.record_activity(
            session, group, node.urls, activity_type="Create", obj=note, to=[owner.uri],
            inboxes=[owner.inbox], in_outbox=False, object_uri=note["id"])
    node.changed()
    return node.urls.activity(activity.uuid)


async def leave(node: Node, campaign_url: str, username: str) -> str:
    """Our group stops co-owning a campaign: the co-signing withdrawal, unchanged
    (``Undo{Accept}`` to the owner, ``Undo{Announce}`` to our followers)."""
    from node.calls import cosign  # cosign imports this module (its invitations)
    from node.groups.operations import require_group

    group = await require_group(node, username)
    async with node.db.read() as session:
        invitation = (await session.exec(select(Invitation).where(
            Invitation.local_actor_id == group.id, Invitation.event_uri == campaign_url,
            Invitation.state == InvitationState.ACCEPTED))).first()
    if invitation is None or invitation.id is None:
        raise OperationError(f"{username} does not co-own {campaign_url}", status=404)
    try:
        await cosign.withdraw(node, username, invitation.id)
    except RemoteError as exc:  # the owner's inbox is looked up first
        raise OperationError(f"cannot reach the campaign's owner: {exc}", status=502) from exc
    return campaign_url


async def on_removed(node: Node, item: InboxItem) -> None:
    """The owner removed our group: ``Remove{object: <our group>, target:
    <campaign>/organizers}``. Only the inviter of that campaign can; our
    invitation ends (``withdrawn``: the state an invitation ends in), so a later
    ``campaign update`` is refused here rather than ignored there. Our Announce
    of the campaign stays: it is a boost of a public campaign, ours to undo."""
    username = node.urls.local_username(as_id(item.body.get("object")))
    target = as_id(item.body.get("target"))
    if username is None or target is None or not target.endswith("/organizers"):
        return
    campaign_url = target.removesuffix("/organizers")
    async with node.db.write() as session:
        group = (await session.exec(select(LocalActor).where(
            LocalActor.username == username))).first()
        if group is None:
            return
        # Every open one: an invitation asked again is a row of its own.
        ended = [invitation for invitation in (await session.exec(select(Invitation).where(
            Invitation.local_actor_id == group.id, Invitation.event_uri == campaign_url,
            Invitation.inviter_uri == item.actor_uri))).all()
            if is_campaign(invitation.event) and invitation.state in (
                InvitationState.PENDING, InvitationState.ACCEPTED)]
        for invitation in ended:
            invitation.state = InvitationState.WITHDRAWN
            session.add(invitation)
    if ended:
        node.changed()


async def update_any(node: Node, campaign_id: str, body: Any, *,
                     allowed_actor: int | None = None) -> str:
    """``campaign update``: ours → a timeline entry; one we co-own → sent to its owner."""
    key = object_uuid_from(node, campaign_id)
    async with node.db.read() as session:
        ours = (await session.exec(select(Campaign.id).where(Campaign.uuid == key))).first()
    if ours is not None or not campaign_id.startswith(("https://", "http://")) \
            or node.urls.is_local(campaign_id):
        return await operations.add_update(node, campaign_id, body,
                                           allowed_actor=allowed_actor)
    return await send_update(node, campaign_id, body)
