"""The durable delivery queue: one ``delivery`` row per activity and inbox.

This module holds the queue's transactions (enqueue, claim, renew, complete,
and the per-host state they keep); ``worker.py`` is the loop that sends.

States::

    pending ──claim──▶ sending ──complete──▶ sent
       ▲                  │  └─────────────▶ failed   (permanent answer, or attempts used up)
       └──── retry ───────┘                           (next_attempt_at = backoff / Retry-After)

- ``pending``: waits for ``next_attempt_at``.
- ``sending``: leased to one worker (``worker_id``) until ``lease_until``. Claims
  use ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several workers never take
  the same row; on SQLite the write transaction (BEGIN IMMEDIATE) is already
  exclusive. No transaction is ever held across a network request: claim,
  send, then record the outcomes in short batched transactions.
- ``sent`` / ``failed``: finished (``finished_at``); kept for ``hambastegi status``.

The crash story: a worker killed mid-send leaves its rows in ``sending``. When
the lease runs out they are due again and another worker sends them; a worker
that is merely slow keeps its lease by renewing it while requests are in
flight. If the killed worker's request had already reached the inbox, the
inbox receives the activity twice: delivery is at-least-once on the wire, and
the receiver storing each activity once per id (as ours does) makes it
effectively once. A late ``complete`` from a worker whose lease was taken over
changes nothing: only the lease holder may record an outcome.

Per host (``host_state``): a circuit breaker, so a dead host does not hold
workers — while it is open, the host's due rows are postponed to the end of
the open period without counting an attempt — and the signature scheme the
host accepted (draft-cavage, or RFC 9421 after a "double knock").

The pure policy (backoff, status meaning, Retry-After, breaker) is in
``node.federation.retry``.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

from sqlalchemy import Integer, Text, bindparam, func, literal, select, true, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col
from sqlmodel import select as sm_select
from sqlmodel.ext.asyncio.session import AsyncSession

from node.federation.retry import circuit_open_until, next_attempt_at
from node.storage.db import Database, utcnow
from node.storage.models import Delivery, HostState

log = logging.getLogger("hambastegi.delivery")

Scheme = Literal["cavage", "rfc9421"]
Kind = Literal["sent", "retry", "permanent"]

# The Core tables, executed on the session's connection: an UPDATE with a list
# of parameter sets is then a plain executemany with our own WHERE (the lease
# check), not the ORM's "bulk UPDATE by primary key" mode.
DELIVERY = Delivery.metadata.tables["delivery"]
HOST_STATE = HostState.metadata.tables["host_state"]

# Inboxes per INSERT statement (a ~1 MB parameter at most).
ENQUEUE_CHUNK = 10_000
MAX_INBOX_URL = 2048  # the column's length; PostgreSQL would refuse longer
MAX_HOST = 256


def inbox_host(url: str) -> str | None:
    """The queue's ``host`` of an inbox URL (its lowercased netloc), or None
    for URLs that can never be delivered to and must not be queued."""
    if len(url) > MAX_INBOX_URL:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return None
    host = parts.netloc.lower()
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in host:
        return None
    return host if len(host) <= MAX_HOST else None


def log_host(host: str) -> str:
    """A host as it may appear in logs: names yes, IP addresses never."""
    try:
        name = urlsplit("//" + host).hostname or ""
        ipaddress.ip_address(name)
    except ValueError:
        return host
    return "ip-literal"


def _dialect(session: AsyncSession) -> str:
    return str(session.get_bind().dialect.name)


def _insert(session: AsyncSession) -> Any:
    """The dialect's INSERT, the one that has ``on_conflict_do_nothing``."""
    return pg_insert if _dialect(session) == "postgresql" else sqlite_insert


# --- enqueue --------------------------------------------------------------------------------


async def enqueue(session: AsyncSession, activity_id: int, inbox_urls: Iterable[str]) -> int:
    """Queue one row per distinct inbox of the activity, in the caller's
    transaction; rows already queued for (activity, inbox) are skipped (the
    unique constraint, via INSERT … ON CONFLICT DO NOTHING). Returns the number
    of rows inserted. URLs that cannot be delivered to (not http(s), too long)
    are left out and counted in a log line."""
    hosts: dict[str, str] = {}
    skipped = 0
    for url in inbox_urls:
        if url in hosts:
            continue
        host = inbox_host(url)
        if host is None:
            skipped += 1
            continue
        hosts[url] = host
    if skipped:
        log.warning("inboxes not queued", extra={"activity_id": activity_id,
                                                   "skipped": skipped})
    if not hosts:
        return 0
    # Sorted: neighbouring rows land in neighbouring index pages.
    pairs = sorted(hosts.items())
    postgres = _dialect(session) == "postgresql"
    insert = pg_insert if postgres else sqlite_insert
    d = DELIVERY.c
    now = utcnow()
    conn = await session.connection()
    inserted = 0
    for start in range(0, len(pairs), ENQUEUE_CHUNK):
        chunk = pairs[start:start + ENQUEUE_CHUNK]
        # INSERT … SELECT from one array parameter, not a row of parameters per
        # inbox: the database unpacks the list, and Python does no per-row work
        # (100,000 inboxes: ~1 s on SQLite, bound by index upkeep on PostgreSQL).
        source: Any
        if postgres:
            source = func.unnest(
                bindparam("urls", [url for url, _ in chunk], type_=ARRAY(Text)),
                bindparam("hosts", [host for _, host in chunk], type_=ARRAY(Text)),
            ).table_valued("url", "host").render_derived()
            url_col, host_col = source.c.url, source.c.host
        else:
            source = func.json_each(bindparam("pairs", json.dumps(chunk), type_=Text)
                                    ).table_valued("value")
            url_col = func.json_extract(source.c.value, "$[0]")
            host_col = func.json_extract(source.c.value, "$[1]")
        rows = select(
            literal(activity_id, Integer), url_col, host_col, literal("pending"),
            literal(0, Integer), literal(now, d.next_attempt_at.type),
            literal(now, d.created_at.type),
        ).select_from(source)
        if not postgres:
            # SQLite reads "SELECT … ON CONFLICT" ambiguously without a WHERE.
            rows = rows.where(true())
        stmt = insert(DELIVERY).from_select(
            [d.activity_id, d.inbox_url, d.host, d.state, d.attempts, d.next_attempt_at,
             d.created_at], rows,
        ).on_conflict_do_nothing(index_elements=["activity_id", "inbox_url"])
        result = await conn.execute(stmt)
        # One statement: both drivers report the rows it really added.
        inserted += max(result.rowcount or 0, 0)
    return inserted


# --- claim ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claimed:
    """A row leased to a worker: what it needs to send it."""

    id: int
    activity_id: int
    inbox_url: str
    host: str
    attempts: int  # made before this one
    scheme: Scheme = "cavage"  # the host's known scheme, tried first


@dataclass(frozen=True, slots=True)
class ClaimResult:
    claimed: list[Claimed]
    scanned: int  # due rows looked at: when it reaches the limit, more may be due
    postponed: int  # of those, rows of hosts with an open circuit


async def claim(db: Database, worker_id: str, limit: int, lease: timedelta) -> list[Claimed]:
    """Lease up to ``limit`` due rows to ``worker_id`` until now + ``lease``.

    Due: pending with ``next_attempt_at`` reached, or sending with an expired
    lease (a crashed worker's rows). Rows of hosts whose circuit is open are
    postponed to its end instead, without counting an attempt.
    """
    return (await claim_due(db, worker_id, limit, lease)).claimed


async def claim_due(db: Database, worker_id: str, limit: int, lease: timedelta, *,
                    now: datetime | None = None) -> ClaimResult:
    """``claim`` with the counts a worker loop needs."""
    now = now or utcnow()
    d = DELIVERY.c
    columns = (d.id, d.activity_id, d.inbox_url, d.host, d.attempts)
    # Two queries rather than one OR: each is a range scan of ix_delivery_due
    # in due order, so a queue of 100,000 rows costs no sort.
    expired_q = (select(*columns)
                 .where(d.state == "sending", d.lease_until < now)
                 .order_by(d.next_attempt_at).limit(limit))
    pending_q = (select(*columns)
                 .where(d.state == "pending", d.next_attempt_at <= now)
                 .order_by(d.next_attempt_at))
    if not db.is_sqlite:
        # Rows another worker is claiming right now are simply not ours.
        expired_q = expired_q.with_for_update(skip_locked=True)
        pending_q = pending_q.with_for_update(skip_locked=True)
    async with db.write() as session:
        conn = await session.connection()
        rows: list[tuple[int, int, str, str, int]] = [
            (r[0], r[1], r[2], r[3], r[4]) for r in await conn.execute(expired_q)]
        if len(rows) < limit:
            rows += [(r[0], r[1], r[2], r[3], r[4])
                     for r in await conn.execute(pending_q.limit(limit - len(rows)))]
        if not rows:
            return ClaimResult([], 0, 0)
        hosts = {row[3] for row in rows}
        states: dict[str, tuple[datetime | None, str | None]] = {
            host: (until, scheme) for host, until, scheme in (await session.exec(
                sm_select(col(HostState.host), col(HostState.circuit_open_until),
                          col(HostState.signature_scheme))
                .where(col(HostState.host).in_(sorted(hosts))))).all()
        }
        postponed: dict[datetime, list[int]] = {}
        taken: list[Claimed] = []
        for row_id, activity_id, inbox_url, host, attempts in rows:
            until, known = states.get(host, (None, None))
            if until is not None and until > now:
                postponed.setdefault(until, []).append(row_id)
                continue
            scheme: Scheme = "rfc9421" if known == "rfc9421" else "cavage"
            taken.append(Claimed(row_id, activity_id, inbox_url, host, attempts, scheme))
        for until, ids in postponed.items():
            await conn.execute(update(DELIVERY).where(d.id.in_(ids)).values(
                state="pending", next_attempt_at=until, lease_until=None))
        if taken:
            await conn.execute(update(DELIVERY).where(d.id.in_([c.id for c in taken])).values(
                state="sending", lease_until=now + lease, worker_id=worker_id))
    postponed_count = sum(len(ids) for ids in postponed.values())
    if postponed_count:
        log.info("deliveries postponed: circuit open",
                 extra={"rows": postponed_count, "worker_id": worker_id})
    return ClaimResult(taken, len(rows), postponed_count)


async def renew(db: Database, worker_id: str, ids: Sequence[int], lease: timedelta) -> int:
    """Extend this worker's lease on rows still in flight; returns how many it
    still holds (a row whose lease already went to another worker is lost)."""
    if not ids:
        return 0
    d = DELIVERY.c
    async with db.write() as session:
        conn = await session.connection()
        result = await conn.execute(
            update(DELIVERY)
            .where(d.id.in_(list(ids)), d.worker_id == worker_id, d.state == "sending")
            .values(lease_until=utcnow() + lease))
        return max(result.rowcount or 0, 0)


# --- complete -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one send came to. ``error`` is a short code, never a response body."""

    claimed: Claimed
    kind: Kind
    status: int | None = None
    error: str | None = None
    retry_after: str | None = None
    scheme: Scheme = "cavage"
    # True: the host answered sanely (even a 404); False: it is down or
    # overloaded (network error, 5xx, 408, 429) — fuel for the breaker;
    # None: says nothing about the host (a refused address, a missing key).
    host_ok: bool | None = None


@dataclass(frozen=True, slots=True)
class Recorded:
    """An outcome as written: the row's new state (sent, pending or failed)."""

    outcome: Outcome
    state: Literal["sent", "pending", "failed"]


_FINISH = (
    update(DELIVERY)
    .where(DELIVERY.c.id == bindparam("rid"), DELIVERY.c.worker_id == bindparam("wid"),
           DELIVERY.c.state == "sending")
    .values(state=bindparam("new_state"), attempts=bindparam("new_attempts"),
            last_status=bindparam("status"), last_error=bindparam("error"),
            finished_at=bindparam("finished"), lease_until=None)
)
_RETRY = (
    update(DELIVERY)
    .where(DELIVERY.c.id == bindparam("rid"), DELIVERY.c.worker_id == bindparam("wid"),
           DELIVERY.c.state == "sending")
    .values(state="pending", attempts=bindparam("new_attempts"),
            last_status=bindparam("status"), last_error=bindparam("error"),
            next_attempt_at=bindparam("next_at"), lease_until=None)
)
_RNG = random.Random()


async def complete(db: Database, worker_id: str, outcomes: Sequence[Outcome], *,
                   rng: random.Random | None = None,
                   now: datetime | None = None) -> list[Recorded]:
    """Record a batch of outcomes in one transaction; returns those recorded.

    Only rows this worker still holds (state sending, its worker_id) are
    written: a worker whose lease expired and was taken over by another is
    ignored, so a row is never written twice. sent → ``sent``; retry →
    ``pending`` with attempts + 1 and the later of backoff and Retry-After;
    permanent, or a retry with the attempts used up → ``failed``. Updates the
    hosts' breaker and signature scheme.
    """
    if not outcomes:
        return []
    rng = rng or _RNG
    now = now or utcnow()
    by_id = {o.claimed.id: o for o in outcomes}
    owned_q = (sm_select(col(Delivery.id))
               .where(col(Delivery.id).in_(sorted(by_id)), col(Delivery.worker_id) == worker_id,
                      col(Delivery.state) == "sending")
               .order_by(col(Delivery.id)))
    if not db.is_sqlite:
        # Hold the rows so an expiring lease can't be claimed under our feet.
        owned_q = owned_q.with_for_update()
    async with db.write() as session:
        owned = [by_id[row_id] for row_id in (await session.exec(owned_q)).all()
                 if row_id is not None]
        finished: list[dict[str, Any]] = []
        retried: list[dict[str, Any]] = []
        recorded: list[Recorded] = []
        for outcome in owned:
            attempts = outcome.claimed.attempts + 1
            values: dict[str, Any] = {
                "rid": outcome.claimed.id, "wid": worker_id, "new_attempts": attempts,
                "status": outcome.status, "error": (outcome.error or "")[:200] or None}
            when = (next_attempt_at(attempts, now, rng, outcome.retry_after)
                    if outcome.kind == "retry" else None)
            if when is not None:
                retried.append({**values, "next_at": when})
                recorded.append(Recorded(outcome, "pending"))
            else:
                new_state: Literal["sent", "failed"] = (
                    "sent" if outcome.kind == "sent" else "failed")
                finished.append({**values, "new_state": new_state, "finished": now})
                recorded.append(Recorded(outcome, new_state))
        conn = await session.connection()
        if finished:
            await conn.execute(_FINISH, finished)
        if retried:
            await conn.execute(_RETRY, retried)
        await _update_hosts(session, owned, now)
    if len(owned) < len(outcomes):
        mine = {o.claimed.id for o in owned}
        for outcome in outcomes:
            if outcome.claimed.id not in mine:
                log.info("late outcome ignored: the lease went to another worker",
                         extra={"delivery_id": outcome.claimed.id, "worker_id": worker_id})
    return recorded


async def _update_hosts(session: AsyncSession, outcomes: Sequence[Outcome],
                        now: datetime) -> None:
    """Per host: any sane answer closes the breaker, else any failure is one
    more failed observation. One flush's failures at a host count once: its
    requests ran side by side and share one fate, and counting each of a
    fan-out's hundred rows would open the circuit for hours after one blip.

    A healthy host that speaks cavage needs no row at all, and a row that
    would not change is not written, so the common fan-out writes nothing
    here (and two workers don't queue on the same host rows). The price:
    ``last_success_at`` is the last success that changed something (a
    recovery, a learnt scheme), not every success."""
    alive: set[str] = set()
    failing: set[str] = set()
    schemes: dict[str, Scheme] = {}
    for outcome in outcomes:
        host = outcome.claimed.host
        if outcome.host_ok:
            alive.add(host)
        elif outcome.host_ok is False:
            failing.add(host)
        if outcome.kind == "sent":
            schemes[host] = outcome.scheme
    failing -= alive
    candidates = sorted(alive | failing)
    if not candidates:
        return
    states = await _lock_hosts(session, candidates)
    missing = [h for h in candidates if h not in states
               and (h in failing or schemes.get(h, "cavage") != "cavage")]
    if missing:
        conn = await session.connection()
        await conn.execute(_insert(session)(HOST_STATE).values(
            [{"host": h, "consecutive_failures": 0} for h in missing]
        ).on_conflict_do_nothing(index_elements=["host"]))
        states.update(await _lock_hosts(session, missing))
    for host in candidates:
        state = states.get(host)
        if state is None:
            continue  # healthy, cavage, never failed: nothing to remember
        if host in alive:
            scheme = schemes.get(host)
            if state.consecutive_failures == 0 and state.circuit_open_until is None \
                    and (scheme is None or state.signature_scheme == scheme):
                continue
            if state.circuit_open_until is not None:
                log.info("circuit closed", extra={"host": log_host(host)})
            state.consecutive_failures = 0
            state.circuit_open_until = None
            if scheme is not None:
                state.last_success_at = now
                state.signature_scheme = scheme
        else:
            state.consecutive_failures += 1
            state.last_failure_at = now
            until = circuit_open_until(state.consecutive_failures, now)
            if until is not None:
                log.warning("circuit open", extra={
                    "host": log_host(host), "failures": state.consecutive_failures,
                    "open_until": until.isoformat()})
            state.circuit_open_until = until
        session.add(state)


async def _lock_hosts(session: AsyncSession, hosts: Sequence[str]) -> dict[str, HostState]:
    # In host order, so two workers lock shared hosts in the same order.
    query = (sm_select(HostState).where(col(HostState.host).in_(hosts))
             .order_by(col(HostState.host)).with_for_update())
    return {state.host: state for state in (await session.exec(query)).all()}
