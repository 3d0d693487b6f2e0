"""Co-signing a call across nodes, with consent (DESIGN.md, "Co-signing").

1. The author group sends ``Invite{object: <event>/organizers, target: <group>,
   context: <event>}`` to the invited group.
2. The invited group's editors accept or decline on their own node; it answers
   ``Accept`` (kept in its outbox, fetchable: the proof) or ``Reject``.
3. On Accept the author adds the group to ``organizers``/``contacts`` and sends
   ``Update{Event}`` to its followers and to every co-signer.
4. The co-signer ``Announce``s the event to its own followers, and relays the
   author's later Updates (``Announce{Update}``, FEP-1b12 style) and status
   Notes (``Announce{Note}``) to them.
5. Withdrawal: ``Undo{Accept}`` → removed, ``Update`` again; the co-signer
   sends ``Undo{Announce}`` to its followers.
Only the invited actor can accept, only an invitation that was sent and is
still open; anything else changes nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlmodel import select

from node.calls.events import EventError, check_remote_event
from node.calls.operations import _load, send_event
from node.campaigns import coowners
from node.core import languages
from node.core.jsonsafe import as_id
from node.core.text import html_to_plain, sanitise_html
from node.federation import publishing
from node.federation.dispatch import emission_uuid
from node.federation.remote_actors import RemoteError, fetch_document, same_origin
from node.federation.runtime import Node
from node.federation.vocabulary import PUBLIC
from node.groups.operations import OperationError, find_remote_group, require_group
from node.storage.db import utcnow
from node.storage.models import Cosigner, InboxItem, Invitation, LocalActor
from node.storage.states import (
    COSIGN_INVITATION,
    COSIGN_INVITE,
    AlreadyDecided,
    CosignerState,
    InvitationState,
    decide,
    withdraw_cosigning,
    withdraw_invitation,
)

log = logging.getLogger("hambastegi.cosign")


# --- author side ------------------------------------------------------------------------


async def invite(node: Node, object_id: str, target: str, *,
                 allowed_actor: int | None = None) -> str:
    """Invite a group (handle or URL) to co-sign; returns the Invite's id."""
    # Permission first: a token of another group must not make us fetch anything.
    async with node.db.read() as session:
        await _load(node, session, object_id, allowed_actor)
    remote = await find_remote_group(node, target)
    async with node.db.write() as session:
        actor, obj, event = await _load(node, session, object_id, allowed_actor)
        event_uri = node.urls.object(obj.uuid)
        existing = (await session.exec(select(Cosigner).where(
            Cosigner.event_id == event.id, Cosigner.actor_uri == remote.uri))).first()
        if existing is not None and existing.state in (CosignerState.INVITED,
                                                       CosignerState.ACCEPTED):
            return existing.invite_activity_id
        activity = await publishing.record_activity(
            session, actor, node.urls, activity_type="Invite", obj=event_uri + "/organizers",
            to=[remote.uri], inboxes=[remote.inbox], in_outbox=False,
            object_uri=event_uri, extra={"target": remote.uri, "context": event_uri},
        )
        invite_id = node.urls.activity(activity.uuid)
        if existing is None:
            existing = Cosigner(event_id=event.id or 0, actor_uri=remote.uri, inbox=remote.inbox,
                                invite_activity_id=invite_id)
        existing.invite_activity_id = invite_id
        existing.display_name = remote.display_name or remote.username
        existing.state = CosignerState.INVITED  # a declined or withdrawn group, asked again
        existing.updated_at = utcnow()
        session.add(existing)
    node.changed()
    return invite_id


async def cosigners(node: Node, object_id: str, *,
                    allowed_actor: int | None = None) -> list[Cosigner]:
    """The negotiation so far; invitations not yet answered are the group's business only."""
    async with node.db.read() as session:
        _, _, event = await _load(node, session, object_id, allowed_actor)
        return list((await session.exec(
            select(Cosigner).where(Cosigner.event_id == event.id))).all())


async def _answer_to_invite(node: Node, item: InboxItem, *, accept: bool) -> None:
    invite_id = as_id(item.body.get("object"))
    if invite_id is None:
        return
    async with node.db.write() as session:
        cosigner = (await session.exec(select(Cosigner).where(
            Cosigner.invite_activity_id == invite_id))).first()
        # Only the invited actor, only while the invitation is open.
        if cosigner is None or cosigner.actor_uri != item.actor_uri:
            return
        try:
            cosigner.state = decide(COSIGN_INVITE, cosigner.state, accept=accept)
        except AlreadyDecided:
            return
        cosigner.response_activity_id = item.activity_id
        cosigner.updated_at = utcnow()
        session.add(cosigner)
        await session.flush()
        # In the same transaction as the state change: a retry finds the
        # invitation decided and sends nothing again.
        if accept:
            await _send_update(node, session, cosigner.event_id)


async def _send_update(node: Node, session: Any, event_id: int) -> None:
    from node.storage.models import Event, LocalObject

    event = await session.get(Event, event_id)
    obj = await session.get(LocalObject, event.object_id)
    actor = await session.get(LocalActor, obj.local_actor_id)
    obj.updated = utcnow()
    event.sequence += 1
    session.add_all([obj, event])
    await session.flush()
    await send_event(session, node.urls, actor, obj, "Update")
    node.changed()


async def on_accept_invite(node: Node, item: InboxItem) -> None:
    await _answer_to_invite(node, item, accept=True)


async def on_reject_invite(node: Node, item: InboxItem) -> None:
    await _answer_to_invite(node, item, accept=False)


async def on_undo_accept(node: Node, item: InboxItem) -> None:
    """A co-signer withdraws (Undo{Accept}): removed from organizers, Update."""
    inner = item.body.get("object")
    inner_id = as_id(inner)
    if inner_id is None or (isinstance(inner, dict) and inner.get("type") not in (None,
                                                                                  "Accept")):
        return
    async with node.db.write() as session:
        cosigner = (await session.exec(select(Cosigner).where(
            Cosigner.response_activity_id == inner_id))).first()
        if cosigner is None or cosigner.actor_uri != item.actor_uri:
            return
        try:
            cosigner.state = withdraw_cosigning(cosigner.state)
        except AlreadyDecided:
            return
        cosigner.updated_at = utcnow()
        session.add(cosigner)
        await session.flush()
        await _send_update(node, session, cosigner.event_id)


# --- invited side ------------------------------------------------------------------------


async def on_invite(node: Node, item: InboxItem) -> None:
    body = item.body
    target = as_id(body.get("target"))
    event_uri = as_id(body.get("context"))
    organizers = as_id(body.get("object"))
    if target is None or event_uri is None or organizers != event_uri + "/organizers":
        return
    async with node.db.read() as session:
        group = await _local_group(node, session, target)
    if group is None or not same_origin(event_uri, item.actor_uri):
        return
    try:
        raw = await fetch_document(node, event_uri)
        if coowners.is_campaign(raw):
            # A campaign to co-own (node/campaigns/coowners.py): the same invitation.
            event = coowners.campaign_snapshot(raw)
            event["attributedTo"] = as_id(raw.get("attributedTo"))
        else:
            event = check_remote_event(raw)
            event[RELAY] = {"state": _state_key(raw, event)}
    except (RemoteError, EventError, ValueError) as exc:
        log.info("invite with unusable event", extra={"reason": str(exc)[:100]})
        return
    if event.get("id") != event_uri or event.get("attributedTo") != item.actor_uri:
        return  # only the event's author may invite co-signers
    async with node.db.write() as session:
        exists = (await session.exec(select(Invitation).where(
            Invitation.invite_activity_id == item.activity_id))).first()
        if exists is None:
            session.add(Invitation(local_actor_id=group.id or 0, inviter_uri=item.actor_uri,
                                   event_uri=event_uri, invite_activity_id=item.activity_id,
                                   event=event))


async def _local_group(node: Node, session: Any, uri: str) -> LocalActor | None:
    username = node.urls.local_username(uri)
    if username is None:
        return None
    actor = (await session.exec(select(LocalActor).where(LocalActor.username == username))).first()
    return actor if actor is not None and actor.actor_type == "Group" else None


async def invitations(node: Node, username: str) -> list[Invitation]:
    group = await require_group(node, username)
    async with node.db.read() as session:
        return list((await session.exec(select(Invitation).where(
            Invitation.local_actor_id == group.id).order_by(
            Invitation.received_at.desc()))).all())  # type: ignore[attr-defined]


async def _invitation(session: Any, group: LocalActor, invitation_id: int) -> Invitation:
    invitation = await session.get(Invitation, invitation_id)
    if invitation is None or invitation.local_actor_id != group.id:
        raise OperationError("no such invitation", status=404)
    return invitation  # type: ignore[no-any-return]


async def respond(node: Node, username: str, invitation_id: int, *, accept: bool) -> str:
    """Accept (and announce) or decline an invitation; returns the answer's id."""
    group = await require_group(node, username)
    inviter_inbox = None
    async with node.db.read() as session:
        invitation = await _invitation(session, group, invitation_id)
    try:
        decide(COSIGN_INVITATION, invitation.state, accept=accept)
    except AlreadyDecided as exc:
        raise OperationError(str(exc).replace("request", "invitation"), status=409) from None
    from node.federation.remote_actors import get_actor

    inviter_inbox = (await get_actor(node, invitation.inviter_uri)).inbox
    async with node.db.write() as session:
        invitation = await _invitation(session, group, invitation_id)
        try:  # again, inside the transaction: two editors may answer at once
            decided = decide(COSIGN_INVITATION, invitation.state, accept=accept)
        except AlreadyDecided as exc:
            raise OperationError(str(exc).replace("request", "invitation"), status=409) from None
        embedded = {"id": invitation.invite_activity_id, "type": "Invite",
                    "actor": invitation.inviter_uri,
                    "object": invitation.event_uri + "/organizers",
                    "target": node.urls.actor(group.username)}
        answer = await publishing.record_activity(
            session, group, node.urls, activity_type="Accept" if accept else "Reject",
            obj=embedded, to=[invitation.inviter_uri], inboxes=[inviter_inbox],
            # An Accept is the public proof of consent; a Reject stays private.
            in_outbox=accept, object_uri=invitation.invite_activity_id,
        )
        invitation.response_activity_id = node.urls.activity(answer.uuid)
        invitation.state = decided
        if accept:
            announce = await publishing.record_activity(
                session, group, node.urls, activity_type="Announce", obj=invitation.event_uri,
                to=[PUBLIC], cc=[node.urls.followers(group.username), invitation.inviter_uri],
                to_followers=True,
            )
            invitation.announce_activity_id = node.urls.activity(announce.uuid)
        session.add(invitation)
    node.changed()
    return invitation.response_activity_id or ""


async def withdraw(node: Node, username: str, invitation_id: int) -> None:
    group = await require_group(node, username)
    async with node.db.read() as session:
        invitation = await _invitation(session, group, invitation_id)
    try:
        withdraw_invitation(invitation.state)
    except AlreadyDecided:
        raise OperationError("only an accepted invitation can be withdrawn", status=409) from None
    from node.federation.remote_actors import get_actor

    inviter_inbox = (await get_actor(node, invitation.inviter_uri)).inbox
    async with node.db.write() as session:
        invitation = await _invitation(session, group, invitation_id)
        await publishing.record_activity(
            session, group, node.urls, activity_type="Undo",
            obj={"id": invitation.response_activity_id, "type": "Accept",
                 "actor": node.urls.actor(group.username),
                 "object": invitation.invite_activity_id},
            to=[invitation.inviter_uri], inboxes=[inviter_inbox], in_outbox=False,
        )
        if invitation.announce_activity_id:
            await publishing.record_activity(
                session, group, node.urls, activity_type="Undo",
                obj={"id": invitation.announce_activity_id, "type": "Announce",
                     "actor": node.urls.actor(group.username), "object": invitation.event_uri},
                to=[PUBLIC], cc=[node.urls.followers(group.username)],
                to_followers=True,
            )
        invitation.state = withdraw_invitation(invitation.state)
        session.add(invitation)
    node.changed()


async def _accepted_invitations(node: Node, event_uri: str, author: str) -> list[Invitation]:
    async with node.db.read() as session:
        return list((await session.exec(select(Invitation).where(
            Invitation.event_uri == event_uri, Invitation.inviter_uri == author,
            Invitation.state == InvitationState.ACCEPTED))).all())


async def _relay(node: Node, item: InboxItem, invitation: Invitation, obj: Any, *,
                 purpose: str = "relay") -> None:
    """Announce ``obj`` to the co-signer's followers, once per inbox item: the
    Announce's id is derived from the item, so a retried item re-uses it."""
    async with node.db.write() as session:
        group = await session.get(LocalActor, invitation.local_actor_id)
        if group is None:
            return
        await publishing.record_activity(
            session, group, node.urls, activity_type="Announce", obj=obj, to=[PUBLIC],
            cc=[node.urls.followers(group.username)],
            to_followers=True,
            activity_uuid=emission_uuid(item, f"{purpose}:{invitation.id}"),
        )
    node.changed()


# Bookkeeping kept beside the snapshot (see on_create_status_note):
# {"state": the event's last time and status, "credit": a status Note may be
# relayed, "pending": a Note waiting for a change to go with}.
RELAY = "_relay"


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)][:50] if isinstance(value, list) else []


def relay_copy(obj: dict[str, Any]) -> dict[str, Any]:
    """What a co-signer repeats of the author's Event: known fields only, texts
    sanitised (the author may send anything, and the relay speaks in our name)."""
    snapshot = check_remote_event(obj)  # raises EventError on anything unusable
    copy: dict[str, Any] = {"id": snapshot["id"], "type": "Event",
                            "attributedTo": snapshot["attributedTo"], "name": snapshot["name"]}
    for key in ("startTime", "endTime", "timezone", "published", "updated", "status",
                "eventStatus", "joinMode", "inLanguage", "url", "organizers"):
        if isinstance(obj.get(key), str) and len(obj[key]) <= 2048:
            copy[key] = obj[key]
    for key in ("isOnline",):
        if isinstance(obj.get(key), bool):
            copy[key] = obj[key]
    if isinstance(obj.get("participantCount"), int) and not isinstance(
            obj.get("participantCount"), bool):
        copy["participantCount"] = obj["participantCount"]
    copy["contacts"] = _strings(obj.get("contacts"))
    if "content" in snapshot:
        copy["content"] = snapshot["content"]
        copy["mediaType"] = "text/html"
    for key, clean in (("nameMap", html_to_plain), ("summaryMap", sanitise_html),
                       ("contentMap", sanitise_html)):
        value = obj.get(key)
        if isinstance(value, dict):
            copy[key] = {lang: clean(text)[:50_000] for lang, text in list(value.items())[:20]
                         if isinstance(text, str) and _valid_language(lang)}
    if isinstance(obj.get("summary"), str):
        copy["summary"] = sanitise_html(obj["summary"])[:2000]
    if "location" in snapshot:
        copy["location"] = snapshot["location"]
    return copy


def _valid_language(tag: str) -> bool:
    try:
        languages.validate(tag)
    except languages.LanguageError:
        return False
    return True


def _state_key(obj: dict[str, Any], snapshot: dict[str, Any]) -> str:
    """Time and status: what a status Note is about."""
    status = [obj.get(k) if isinstance(obj.get(k), str) else None
              for k in ("status", "eventStatus")]
    return f"{snapshot.get('startTime')}|{snapshot.get('endTime')}|{status}"


async def on_update_cosigned(node: Node, item: InboxItem) -> None:
    """The author changed a call we co-sign: keep our copy, tell our followers.

    Consent covers the accepted event and its updates, nothing else: only an
    Update of that very Event, from its author, while our acceptance stands, and
    only when it changes something; what we repeat is a sanitised copy."""
    obj = item.body.get("object")
    if not isinstance(obj, dict) or obj.get("type") != "Event":
        return
    event_uri = as_id(obj)
    if event_uri is None:
        return
    try:
        copy = relay_copy(obj)
        snapshot = check_remote_event(obj)
    except EventError:
        return
    if copy["attributedTo"] != item.actor_uri:
        return
    for invitation in await _accepted_invitations(node, event_uri, item.actor_uri):
        pending_note = None
        async with node.db.write() as session:
            stored = await session.get(Invitation, invitation.id)
            if stored is None or stored.state != "accepted":
                continue
            previous = {k: v for k, v in stored.event.items() if k != RELAY}
            if previous == snapshot:
                continue  # nothing changed: nothing to repeat
            relay = dict(stored.event.get(RELAY) or {})
            state = _state_key(obj, snapshot)
            if relay.setdefault("state", state) != state:
                relay["state"] = state
                # A change of time or status earns one status Note: the one
                # that already arrived, or the next one.
                pending_note = relay.pop("pending", None)
                relay["credit"] = pending_note is None
            stored.event = {**snapshot, RELAY: relay}
            session.add(stored)
        embedded = {"id": item.activity_id, "type": "Update", "actor": item.actor_uri,
                    "object": copy, "to": _strings(item.body.get("to")),
                    "cc": _strings(item.body.get("cc"))}
        await _relay(node, item, invitation, embedded)
        if pending_note is not None:
            await _relay(node, item, invitation, pending_note, purpose="relay-note")


async def on_create_status_note(node: Node, item: InboxItem) -> None:
    """The author's public Note about a call we co-sign (postponed, cancelled).

    At most one Note is relayed per change of the event's time or status (the
    summary line carries the status), whichever order the Update and the Note
    arrive in: a Note with no change to go with waits, replaced by any later
    one, so an author cannot make us repeat a stream of Notes."""
    obj = item.body.get("object")
    if not isinstance(obj, dict) or obj.get("type") != "Note":
        return
    context = as_id(obj.get("context"))
    note_id = as_id(obj)
    if context is None or note_id is None or PUBLIC not in (obj.get("to") or []) \
            or as_id(obj.get("attributedTo")) != item.actor_uri \
            or not same_origin(note_id, item.actor_uri):
        return
    for invitation in await _accepted_invitations(node, context, item.actor_uri):
        async with node.db.write() as session:
            stored = await session.get(Invitation, invitation.id)
            if stored is None or stored.state != "accepted":
                continue
            relay = dict(stored.event.get(RELAY) or {})
            credit = bool(relay.get("credit"))
            relay["credit"] = False
            if not credit:
                relay["pending"] = note_id
            stored.event = {**stored.event, RELAY: relay}
            session.add(stored)
        if credit:
            await _relay(node, item, invitation, note_id)

