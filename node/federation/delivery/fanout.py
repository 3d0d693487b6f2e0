"""The publishing side of the delivery queue: the fan-out log and lane creation.

One ``fanout`` row per published activity that goes anywhere, written in the
publishing transaction: "every accepted follower of this actor"
(``followers_of``) and/or a short explicit list of inboxes. No per-inbox rows
are written, so a post to a million followers costs one row. Each host's lane
(``host_state``) walks the log from its cursor (``lanes.py``, ``worker.py``;
docs/ARCHITECTURE.md §2).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select, text
from sqlmodel.ext.asyncio.session import AsyncSession

from node.federation.delivery.targets import deliver_to, inbox_host
from node.storage.db import dialect_insert, utcnow
from node.storage.models import Fanout, Follower, HostState
from node.storage.states import FollowerState

log = logging.getLogger("hambastegi.delivery")

FANOUT = Fanout.metadata.tables["fanout"]
HOST_STATE = HostState.metadata.tables["host_state"]
# The key of the PostgreSQL advisory lock that orders the fan-out log.
FANOUT_LOG_LOCK = 0x48424C47  # "HBLG"
# An explicit list is for a handful of recipients (an Accept, mentions, a
# co-signer); audiences of thousands are ``followers_of``.
MAX_EXPLICIT_INBOXES = 10_000


def _postgres(session: AsyncSession) -> bool:
    return str(session.get_bind().dialect.name) == "postgresql"


async def lock_log(session: AsyncSession) -> None:
    """Serialise writers of the log until the end of the transaction.

    Lanes read the log in id order and remember only the last id they handled,
    so a fan-out id must never become visible after a higher one: on PostgreSQL
    two transactions could take ids 11 and 12 and commit 12 first, and a lane
    that read 12 would skip 11 forever. Taking one advisory lock before the
    INSERT makes ids commit in id order. SQLite has one writer at a time
    (BEGIN IMMEDIATE) and needs nothing.
    """
    if _postgres(session):
        await session.exec(text("SELECT pg_advisory_xact_lock(:key)").bindparams(  # type: ignore[call-overload]
            key=FANOUT_LOG_LOCK))


async def log_head(session: AsyncSession) -> int:
    """The last position of the log (0 when empty)."""
    conn = await session.connection()
    return int((await conn.execute(select(func.coalesce(func.max(FANOUT.c.id), 0))))
               .scalar_one())


async def _open_lanes(session: AsyncSession, hosts: Iterable[str], cursor: int) -> None:
    rows = [{"host": h, "cursor": cursor, "consecutive_failures": 0, "state": "idle",
             "attempts": 0, "next_attempt_at": utcnow()} for h in sorted(set(hosts))]
    if not rows:
        return
    insert: Any = dialect_insert(not _postgres(session))
    conn = await session.connection()
    await conn.execute(insert(HOST_STATE).values(rows)
                       .on_conflict_do_nothing(index_elements=["host"]))


async def fan_out(session: AsyncSession, activity_id: int, *, followers_of: int | None = None,
                  inboxes: Iterable[str] = ()) -> int | None:
    """Append the activity to the log, in the caller's transaction: to every
    accepted follower of ``followers_of`` and to ``inboxes``. Returns the
    fan-out's id, or None if it goes nowhere. URLs that cannot be delivered to
    (not http(s), too long, with credentials) are left out and counted in a log
    line. Hosts of explicit inboxes get a lane starting just before this
    fan-out if they have none."""
    clean: dict[str, str] = {}
    skipped = 0
    for url in inboxes:
        if url in clean:
            continue
        host = inbox_host(url)
        if host is None:
            skipped += 1
            continue
        clean[url] = host
    if skipped:
        log.warning("inboxes not queued", extra={"activity_id": activity_id,
                                                   "skipped": skipped})
    if len(clean) > MAX_EXPLICIT_INBOXES:
        raise ValueError("an explicit audience is at most "
                         f"{MAX_EXPLICIT_INBOXES} inboxes; use followers_of")
    if followers_of is None and not clean:
        return None
    await lock_log(session)
    conn = await session.connection()
    result = await conn.execute(FANOUT.insert().values(
        activity_id=activity_id, followers_of=followers_of,
        inboxes=sorted(clean) or None, created_at=utcnow()))
    key = result.inserted_primary_key
    assert key is not None
    fanout_id = int(key[0])
    await _open_lanes(session, clean.values(), fanout_id - 1)
    return fanout_id


async def prepare_follower(session: AsyncSession, follower: Follower) -> None:
    """Set where the follower is delivered to (``deliver_to``, ``host``) and, if
    accepted, make sure its host has a lane. A new lane starts at the end of
    the log: a new follower does not get older posts."""
    follower.deliver_to = deliver_to(follower.actor_uri, follower.inbox, follower.shared_inbox)
    follower.host = inbox_host(follower.deliver_to)
    session.add(follower)
    if follower.state != FollowerState.ACCEPTED or follower.host is None:
        return
    # Under the log's lock, so the head read is exactly the last committed fan-out.
    await lock_log(session)
    await _open_lanes(session, [follower.host], await log_head(session))
