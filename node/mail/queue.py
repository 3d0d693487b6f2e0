"""The mail queue: one ``mail_queue`` row per (mail, recipient), the twin of the
inbox queue (federation/inbox_queue.py; states in storage/states.MailState)::

    enqueue ──▶ pending ──claim──▶ sending ──complete──▶ sent | bounced | failed
                   ▲                  │
                   └──── retry ───────┘  (4xx, server down: next_attempt_at = backoff)

- ``enqueue_bulletin`` runs inside the bulletin's own transaction (handed to
  news/bulletin.publish as ``on_published``): the bulletin and its mails commit
  together. The message is unique per (group, kind, ref) and each row per
  (message, subscriber), so enqueueing twice queues nobody twice.
- ``claim`` leases rows to one worker until ``lease_until`` (``FOR UPDATE SKIP
  LOCKED`` on PostgreSQL; SQLite's writer is exclusive). A killed worker's rows
  come back when the lease runs out: what was in flight may be sent again, and
  only that (outcomes are written every ``FLUSH_ROWS`` mails or ``FLUSH_SECONDS``).
- ``complete`` records outcomes only for rows the worker still holds.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, case, func, or_, update
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from node.core.settings import Settings
from node.mail import compose, policy, subscriptions
from node.news.bulletin import OnPublished
from node.storage.db import Database, dialect_insert, utcnow
from node.storage.models import (
    LocalActor,
    MailMessage,
    MailQueueItem,
    MailSubscriber,
    MailSubscription,
)
from node.storage.states import MailState, SubscriberState

QUEUE = MailQueueItem.metadata.tables["mail_queue"]


async def _insert_message(session: AsyncSession, group_id: int, kind: str, ref: str,
                          versions: dict[str, Any]) -> tuple[int, bool]:
    """(message id, new?): the existing message when (group, kind, ref) is taken."""
    conn = await session.connection()
    insert = dialect_insert(conn.dialect.name == "sqlite")
    result = await conn.execute(
        insert(MailMessage).values(group_id=group_id, kind=kind, ref=ref, versions=versions,
                                   created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["group_id", "kind", "ref"])
        .returning(col(MailMessage.id)))
    row = result.first()
    if row is not None:
        return int(row[0]), True
    found = (await session.exec(select(MailMessage.id).where(
        MailMessage.group_id == group_id, MailMessage.kind == kind,
        MailMessage.ref == ref))).one()
    return int(found or 0), False


async def enqueue(session: AsyncSession, group: LocalActor, kind: str, ref: str,
                  versions: dict[str, Any], *, flag: str = "bulletins") -> int:
    """Queue a message to the confirmed subscribers of each of its languages who
    want this kind (``flag``), one row each in the first of their languages it
    has (their own language first). Returns how many rows were queued."""
    message_id, _ = await _insert_message(session, group.id or 0, kind, ref, versions)
    wanted = col(MailSubscriber.bulletins) if flag == "bulletins" else col(MailSubscriber.calls)
    rows = (await session.exec(
        select(MailSubscriber.id, MailSubscriber.language, MailSubscription.language)
        .join(MailSubscription, col(MailSubscription.subscriber_id) == col(MailSubscriber.id))
        .where(MailSubscriber.group_id == group.id,
               MailSubscriber.state == SubscriberState.CONFIRMED, wanted,
               col(MailSubscription.language).in_(list(versions))))).all()
    order = {lang: i for i, lang in enumerate(versions)}
    chosen: dict[int, str] = {}
    for sid, own, lang in rows:
        if sid is None:
            continue
        best = chosen.get(sid)
        if best is None or lang == own or (best != own and order[lang] < order[best]):
            chosen[sid] = lang
    if not chosen:
        return 0
    now = utcnow()
    conn = await session.connection()
    insert = dialect_insert(conn.dialect.name == "sqlite")
    stmt = insert(MailQueueItem).on_conflict_do_nothing(
        index_elements=["message_id", "subscriber_id"])
    values = [{"message_id": message_id, "subscriber_id": sid, "language": lang,
               "state": MailState.PENDING.value, "attempts": 0, "next_attempt_at": now}
              for sid, lang in sorted(chosen.items())]
    for start in range(0, len(values), 1000):
        await conn.execute(stmt, values[start:start + 1000])
    return len(values)


async def on_bulletin(session: AsyncSession, group: LocalActor, number: int,
                      versions: dict[str, Any], url: str) -> int:
    """news/bulletin.publish's ``on_published``: queue bulletin N to its languages' lists."""
    return await enqueue(session, group, "bulletin", str(number),
                         compose.bulletin_versions(versions, url))


def bulletin_hook(settings: Settings) -> OnPublished | None:
    """What bulletin.publish is given by the CLI, the API and the workspace: mails
    are queued only on a node that sends mail (HAMBASTEGI_SMTP_URL and _MAIL_FROM)."""
    return on_bulletin if settings.mail_enabled else None


# --- claim, renew, complete ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    message_id: int
    subscriber_id: int
    language: str
    attempts: int


async def claim(db: Database, worker_id: str, limit: int, lease: timedelta, *,
                now: datetime | None = None) -> list[Claimed]:
    """Lease up to ``limit`` due rows, oldest first: pending and due, or sending
    with an expired lease (a crashed worker's)."""
    now = now or utcnow()
    c = QUEUE.c
    query = (sa_select(c.id, c.message_id, c.subscriber_id, c.language, c.attempts)
             .where(or_(
                 (col(MailQueueItem.state) == MailState.PENDING)
                 & (col(MailQueueItem.next_attempt_at) <= now),
                 (col(MailQueueItem.state) == MailState.SENDING)
                 & (col(MailQueueItem.lease_until) < now)))
             .order_by(col(MailQueueItem.id)).limit(limit))
    if not db.is_sqlite:
        query = query.with_for_update(skip_locked=True)
    async with db.write() as session:
        rows = [Claimed(int(i), int(m), int(s), str(lang), int(a))
                for i, m, s, lang, a in (await (await session.connection()).execute(query)).all()]
        if rows:
            await session.exec(
                update(MailQueueItem).where(col(MailQueueItem.id).in_([r.id for r in rows]))
                .values(state=MailState.SENDING, worker_id=worker_id, lease_until=now + lease))
    return rows


async def due(db: Database, now: datetime | None = None) -> bool:
    """Anything to claim? (a read: an idle worker looks before it writes)."""
    now = now or utcnow()
    async with db.read() as session:
        found = (await session.exec(select(MailQueueItem.id).where(or_(
            (col(MailQueueItem.state) == MailState.PENDING)
            & (col(MailQueueItem.next_attempt_at) <= now),
            (col(MailQueueItem.state) == MailState.SENDING)
            & (col(MailQueueItem.lease_until) < now))).limit(1))).first()
    return found is not None


async def renew(db: Database, worker_id: str, ids: Sequence[int], lease: timedelta) -> set[int]:
    if not ids:
        return set()
    c = QUEUE.c
    async with db.write() as session:
        conn = await session.connection()
        result = await conn.execute(
            update(QUEUE).where(c.id.in_(list(ids)), c.worker_id == worker_id,
                                c.state == MailState.SENDING)
            .values(lease_until=utcnow() + lease).returning(c.id))
        return {row[0] for row in result}


@dataclass(frozen=True, slots=True)
class Outcome:
    item_id: int
    attempts: int  # made before this one
    verdict: str  # sent | retry | bounce | gone
    status: int | None = None
    error: str | None = None


_FINISH = (
    update(QUEUE)
    .where(QUEUE.c.id == bindparam("iid"), QUEUE.c.worker_id == bindparam("wid"),
           QUEUE.c.state == MailState.SENDING)
    .values(state=bindparam("new_state"), attempts=bindparam("new_attempts"),
            last_status=bindparam("status"), last_error=bindparam("error"),
            sent_at=bindparam("finished"), lease_until=None)
)
_RETRY = (
    update(QUEUE)
    .where(QUEUE.c.id == bindparam("iid"), QUEUE.c.worker_id == bindparam("wid"),
           QUEUE.c.state == MailState.SENDING)
    .values(state=MailState.PENDING, attempts=bindparam("new_attempts"),
            last_status=bindparam("status"), last_error=bindparam("error"),
            next_attempt_at=bindparam("next_at"), lease_until=None)
)


async def complete(db: Database, worker_id: str, outcomes: Sequence[Outcome],
                   rng: random.Random, key: bytes, now: datetime | None = None
                   ) -> tuple[dict[int, MailState], list[int]]:
    """Record outcomes (only for rows still held); returns the new states and the
    subscriber ids that bounced, whose addresses are suppressed in the same
    transaction (``key``: the node's mail key, for the keyed hash)."""
    if not outcomes:
        return {}, []
    now = now or utcnow()
    by_id = {o.item_id: o for o in outcomes}
    owned_q = (select(MailQueueItem.id)
               .where(col(MailQueueItem.id).in_(sorted(by_id)),
                      col(MailQueueItem.worker_id) == worker_id,
                      col(MailQueueItem.state) == MailState.SENDING)
               .order_by(col(MailQueueItem.id)))
    if not db.is_sqlite:
        owned_q = owned_q.with_for_update()
    recorded: dict[int, MailState] = {}
    bounced: list[int] = []
    async with db.write() as session:
        owned = [by_id[i] for i in (await session.exec(owned_q)).all() if i is not None]
        finished: list[dict[str, Any]] = []
        retried: list[dict[str, Any]] = []
        for outcome in owned:
            attempts = outcome.attempts + 1
            values: dict[str, Any] = {"iid": outcome.item_id, "wid": worker_id,
                                      "new_attempts": attempts, "status": outcome.status,
                                      "error": (outcome.error or "")[:200] or None}
            state: MailState
            if outcome.verdict == "retry":
                when = policy.retry_at(attempts, now, rng)
                if when is not None:
                    retried.append({**values, "next_at": when})
                    recorded[outcome.item_id] = MailState.PENDING
                    continue
                state = MailState.FAILED
            elif outcome.verdict == "sent":
                state = MailState.SENT
            elif outcome.verdict == "bounce":
                state = MailState.BOUNCED
                bounced.append(outcome.item_id)
            else:
                state = MailState.FAILED
            finished.append({**values, "new_state": state, "finished": now})
            recorded[outcome.item_id] = state
        conn = await session.connection()
        if finished:
            await conn.execute(_FINISH, finished)
        if retried:
            await conn.execute(_RETRY, retried)
        gone: list[int] = []
        if bounced:
            sids = (await session.exec(select(MailQueueItem.subscriber_id).where(
                col(MailQueueItem.id).in_(bounced)))).all()
            for sid in sorted(set(sids)):
                row = await session.get(MailSubscriber, sid)
                if row is not None:
                    await subscriptions.suppress(session, key, row, "bounced")
                    gone.append(sid)
    return recorded, gone


# --- status --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Progress:
    message_id: int
    group: str
    kind: str
    ref: str
    queued: int  # pending, never tried, or being sent
    sent: int
    deferred: int  # pending after a failed attempt
    bounced: int
    failed: int

    @property
    def total(self) -> int:
        return self.queued + self.sent + self.deferred + self.bounced + self.failed

    @property
    def done(self) -> bool:
        return self.queued == 0 and self.deferred == 0


async def progress(db: Database, *, group_id: int | None = None,
                   message_ids: Sequence[int] | None = None,
                   kinds: Sequence[str] = ("bulletin", "call"),
                   limit: int = 20) -> list[Progress]:
    """Per message (newest first): queued, sent, deferred, bounced, failed."""
    async with db.read() as session:
        query = (select(MailMessage.id, LocalActor.username, MailMessage.kind, MailMessage.ref)
                 .join(LocalActor, col(LocalActor.id) == col(MailMessage.group_id))
                 .where(col(MailMessage.kind).in_(list(kinds)))
                 .order_by(col(MailMessage.id).desc()).limit(limit))
        if group_id is not None:
            query = query.where(MailMessage.group_id == group_id)
        if message_ids is not None:
            query = query.where(col(MailMessage.id).in_(list(message_ids)))
        messages = (await session.exec(query)).all()
        ids = [m[0] for m in messages]
        counts: dict[int, dict[str, int]] = {}
        if ids:
            deferred = (col(MailQueueItem.state) == MailState.PENDING) \
                & (col(MailQueueItem.attempts) > 0)
            rows = (await session.exec(
                select(MailQueueItem.message_id, MailQueueItem.state,
                       func.sum(case((deferred, 1), else_=0)), func.count())
                .where(col(MailQueueItem.message_id).in_(ids))
                .group_by(col(MailQueueItem.message_id), col(MailQueueItem.state)))).all()
            for row_mid, state, n_deferred, n in rows:
                slot = counts.setdefault(row_mid, {})
                slot[state] = slot.get(state, 0) + int(n) - int(n_deferred or 0)
                slot["deferred"] = slot.get("deferred", 0) + int(n_deferred or 0)
    out: list[Progress] = []
    for mid, username, kind, ref in messages:
        c = counts.get(int(mid or 0), {})
        out.append(Progress(int(mid or 0), username, kind, ref,
                            queued=c.get("pending", 0) + c.get("sending", 0),
                            sent=c.get("sent", 0), deferred=c.get("deferred", 0),
                            bounced=c.get("bounced", 0), failed=c.get("failed", 0)))
    return out


async def message_id_of(db: Database, group_id: int, kind: str, ref: str) -> int | None:
    async with db.read() as session:
        found = (await session.exec(select(MailMessage.id).where(
            MailMessage.group_id == group_id, MailMessage.kind == kind,
            MailMessage.ref == ref))).first()
    return found
