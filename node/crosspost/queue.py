"""The crosspost queue (docs/ARCHITECTURE.md §2c): claim due rows, one per connection
at a time (each channel gets its posts in order), and settle what an attempt came to.

Rows are written by the publishing transaction (federation/crosspost_log.py); the
decisions are pacing.py's pure functions; no transaction is held over a request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, update
from sqlmodel import col, select

from node.crosspost.pacing import Outcome, gives_up, remember, retry_delay
from node.storage.db import Database
from node.storage.models import CrosspostAccount, CrosspostItem
from node.storage.states import CrosspostAccountState, CrosspostState

SCAN = 200


@dataclass(frozen=True)
class Claimed:
    item: CrosspostItem
    account: CrosspostAccount


def _due(now: datetime) -> Any:
    return or_(
        (col(CrosspostItem.state) == CrosspostState.PENDING)
        & (col(CrosspostItem.next_attempt_at) <= now),
        (col(CrosspostItem.state) == CrosspostState.SENDING)
        & (col(CrosspostItem.lease_until) < now))


async def claim(db: Database, worker_id: str, now: datetime, *, limit: int,
                lease: timedelta) -> list[Claimed]:
    """Lease the oldest due row of each active connection that may send now."""
    async with db.write() as session:
        busy = set((await session.exec(select(CrosspostItem.account_id).where(
            CrosspostItem.state == CrosspostState.SENDING,
            col(CrosspostItem.lease_until) >= now))).all())
        accounts = {a.id: a for a in (await session.exec(select(CrosspostAccount).where(
            CrosspostAccount.state == CrosspostAccountState.ACTIVE,
            col(CrosspostAccount.next_send_at) <= now))).all() if a.id not in busy}
        if not accounts:
            return []
        query = (select(CrosspostItem)
                 .where(_due(now), col(CrosspostItem.account_id).in_(list(accounts)))
                 .order_by(col(CrosspostItem.id)).limit(SCAN))
        if not db.is_sqlite:
            query = query.with_for_update(skip_locked=True)
        chosen: dict[int, CrosspostItem] = {}
        for item in (await session.exec(query)).all():
            if item.account_id not in chosen and len(chosen) < limit:
                chosen[item.account_id] = item
        if not chosen:
            return []
        until = now + lease
        await session.exec(update(CrosspostItem)
                           .where(col(CrosspostItem.id).in_([i.id for i in chosen.values()]))
                           .values(state=CrosspostState.SENDING, worker_id=worker_id,
                                   lease_until=until))
        claimed = []
        for item in chosen.values():
            account = accounts[item.account_id]
            session.expunge(item)
            item.state, item.worker_id, item.lease_until = CrosspostState.SENDING, worker_id, until
            claimed.append(Claimed(item, account))
        for account in accounts.values():
            session.expunge(account)
    return claimed


def settled(row: CrosspostItem, outcome: Outcome, remote: dict[str, Any], now: datetime,
            claimed_version: int) -> None:
    """The row after an attempt (pure but for mutating ``row``)."""
    row.remote = remote
    row.lease_until, row.worker_id = None, None
    posted = bool(remote.get("parts") or remote.get("records"))
    if row.version != claimed_version:
        # The post changed on the node while we sent: do what the change asks next.
        row.state = CrosspostState.PENDING
        row.next_attempt_at = now
        if not row.document:
            if posted:
                row.action = "delete"
            else:
                row.state = CrosspostState.SKIPPED
        else:
            row.action = "update" if posted else "create"
        return
    if outcome.kind == "done":
        row.state, row.sent_at, row.attempts, row.last_error = (
            CrosspostState.SENT, now, 0, None)
        return
    row.last_error = outcome.reason[:500]
    if outcome.kind == "fail":
        row.state = CrosspostState.FAILED
        return
    row.state = CrosspostState.PENDING
    if outcome.kind == "pause":
        row.next_attempt_at = now
        return
    if outcome.paced:
        row.next_attempt_at = now + outcome.delay
        return
    row.attempts += 1
    if gives_up(row.attempts):
        row.state = CrosspostState.FAILED
        return
    row.next_attempt_at = now + max(retry_delay(row.attempts), outcome.delay)


async def settle(db: Database, claimed: Claimed, outcome: Outcome, remote: dict[str, Any],
                 now: datetime, *, sent_at: list[datetime]) -> None:
    """Record the attempt, only while this worker still holds the row; the connection's
    pacing (recent sends, a 429's wait) and a pause are recorded with it."""
    async with db.write() as session:
        row = await session.get(CrosspostItem, claimed.item.id)
        if (row is None or row.worker_id != claimed.item.worker_id
                or row.state != CrosspostState.SENDING):
            return
        settled(row, outcome, remote, now, claimed.item.version)
        session.add(row)
        account = await session.get(CrosspostAccount, claimed.account.id)
        if account is None:
            return
        recent = [datetime.fromisoformat(s) for s in account.recent]
        account.recent = [s.isoformat() for s in remember(recent, sent_at, now)]
        if outcome.paced:
            account.next_send_at = max(account.next_send_at, now + outcome.delay)
        if outcome.kind == "pause":
            account.state = CrosspostAccountState.PAUSED
            account.paused_reason = outcome.reason[:500]
        session.add(account)


async def postpone(db: Database, claimed: Claimed, until: datetime, reason: str) -> None:
    """Give a claimed row back untouched, due at ``until`` (pacing)."""
    async with db.write() as session:
        await session.exec(update(CrosspostItem).where(
            col(CrosspostItem.id) == claimed.item.id,
            col(CrosspostItem.worker_id) == claimed.item.worker_id,
            col(CrosspostItem.state) == CrosspostState.SENDING,
        ).values(state=CrosspostState.PENDING, worker_id=None, lease_until=None,
                 next_attempt_at=until, last_error=reason))
        account = await session.get(CrosspostAccount, claimed.account.id)
        if account is not None and account.next_send_at < until:
            account.next_send_at = until
            session.add(account)
