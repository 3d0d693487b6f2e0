"""Which of our posts go to outside services (issue 27): one ``crosspost_item`` row per
(post, connected Telegram channel or Bluesky account), written by ``record_activity`` in
the publishing transaction, as the fan-out row is (docs/ARCHITECTURE.md §2c).

Only public top-level posts qualify: Public in ``to``, no ``inReplyTo``, and no
campaign that is not fully public (``consent``: a ``name_withheld`` campaign never
leaves for these services, nor its timeline Notes, nor ``network_only``, which has no
public object).
Drafts are never activities; a closed meeting's link is never in a public object
(calls/private_links.py), so the snapshot cannot carry it. An Update that makes a post
no longer qualify deletes its copies.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from node.storage.db import utcnow
from node.storage.models import CrosspostAccount, CrosspostItem, LocalObject
from node.storage.states import CrosspostState

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
POST_TYPES = frozenset({"Note", "Article", "Event", "Page"})
ACTIVITY_TYPES = frozenset({"Create", "Update", "Delete"})


def qualifies(doc: dict[str, Any], to: list[str]) -> bool:
    """A public top-level post of a kind the services show (pure)."""
    if doc.get("type") not in POST_TYPES or PUBLIC not in to:
        return False
    if doc.get("inReplyTo"):
        return False
    consent = doc.get("consent")
    return consent is None or consent == "public"


async def record(session: AsyncSession, actor_id: int, activity_type: str,
                 doc: dict[str, Any], to: list[str]) -> None:
    """Queue what ``activity_type`` of ``doc`` means for each connection of the actor.
    One SELECT when the actor has no connection (the usual case)."""
    if activity_type not in ACTIVITY_TYPES:
        return
    uri = doc.get("id")
    if not isinstance(uri, str) or doc.get("type") not in (*POST_TYPES, "Tombstone"):
        return  # a profile Update, an Accept …: no query
    found = (await session.exec(select(CrosspostAccount.id, CrosspostAccount.service).where(
        CrosspostAccount.local_actor_id == actor_id))).all()
    # A bridge (Bridgy Fed) gets only calls, as their companion Note (FEDERATION.md).
    accounts = [ident for ident, service in found
                if service != "bridgy" or doc.get("type") in ("Event", "Tombstone")]
    if not accounts:
        return
    now = utcnow()
    rows = {row.account_id: row for row in (await session.exec(select(CrosspostItem).where(
        col(CrosspostItem.account_id).in_(accounts),
        CrosspostItem.object_uri == uri))).all()}
    wanted = (activity_type != "Delete" and qualifies(doc, to)
              and await _context_allows(session, doc))
    for account_id in accounts:
        row = rows.get(account_id or 0)
        if row is None:
            if activity_type == "Create" and wanted:
                session.add(CrosspostItem(account_id=account_id or 0, object_uri=uri,
                                          document=doc, next_attempt_at=now))
            continue  # an edit or delete of a post from before the connection
        _change(row, doc if wanted else None, now)
        session.add(row)


async def _context_allows(session: AsyncSession, doc: dict[str, Any]) -> bool:
    """A Note in the ``context`` of one of our posts (a campaign's timeline update, a
    call's status note) goes only where that post may go: never for a campaign whose
    consent is not ``public``, nor when the post is not there (deleted, members only)."""
    context = doc.get("context")
    if not isinstance(context, str):
        return True
    uuid = context.rsplit("/objects/", 1)[-1] if "/objects/" in context else None
    if not uuid or "/" in uuid:
        return True  # not one of our posts (a conversation id): nothing more to ask
    row = (await session.exec(select(LocalObject.extra, LocalObject.deleted_at).where(
        LocalObject.uuid == uuid))).first()
    if row is None or row[1] is not None:
        return False
    consent = row[0].get("consent") if isinstance(row[0], dict) else None
    return consent is None or consent == "public"


def _change(row: CrosspostItem, doc: dict[str, Any] | None, now: Any) -> None:
    """The row after the post changed on the node; ``doc`` None: it is gone (deleted,
    or no longer public)."""
    row.version += 1
    row.attempts = 0
    row.next_attempt_at = now
    row.last_error = None
    posted = bool(row.remote)
    if doc is None:
        row.document = {}
        if posted:
            row.action, row.state = "delete", CrosspostState.PENDING
        else:  # never reached the service: nothing to take back
            row.state = CrosspostState.SKIPPED
        return
    row.document = doc
    if row.state == CrosspostState.SKIPPED:
        return  # deleted on the node before: an Update does not bring it back
    row.action = "update" if posted else "create"
    row.state = CrosspostState.PENDING
