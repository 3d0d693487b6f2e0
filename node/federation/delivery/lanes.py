"""The worker's side of the delivery queue: per-host lanes over the fan-out log.

States of a lane (``host_state``, ``LaneState``)::

    idle ──claim (cursor < head, due)──▶ sending ──flush(release)──▶ idle
      ▲                                   │  lease expired (worker crashed):
      └───────────────────────────────────┘  claimable again

- ``claim_lanes`` leases due lanes (behind the log's head, ``next_attempt_at``
  reached, idle or with an expired lease) to one worker for a short lease;
  ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, SQLite's write transaction is
  exclusive already. The worker renews the leases of the lanes in hand
  (``renew_lanes``), so a crashed worker's lanes come back in seconds.
- ``flush`` writes lane progress (cursor, the head's ``done`` inboxes,
  attempts, backoff, scheme) and ``delivery_failure`` rows in one transaction,
  only for lanes this worker still holds. Progress not flushed when a worker
  dies is sent again: at most what was in flight or unflushed goes twice.
- ``fast_forward`` moves caught-up healthy lanes past fan-outs that do not
  concern their host in one UPDATE per fan-out, so an Accept to one follower
  does not make every lane of the node claim, look and release.

Pure decisions (backoff, give-up, status meaning) are in ``federation/retry.py``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import and_, bindparam, case, exists, func, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from node.federation.delivery.fanout import FANOUT, HOST_STATE
from node.federation.delivery.targets import bound_inboxes, inbox_host, log_host
from node.storage.db import Database, utcnow
from node.storage.models import DeliveryFailure, Follower

log = logging.getLogger("hambastegi.delivery")

Scheme = Literal["cavage", "rfc9421"]
FOLLOWER = Follower.metadata.tables["follower"]
FAILURE = DeliveryFailure.metadata.tables["delivery_failure"]
L = HOST_STATE.c
# Fan-outs one fast_forward call looks at (the rest at the next claim).
FAST_FORWARD_STEP = 100


@dataclass(frozen=True, slots=True)
class LaneClaim:
    """A lane leased to a worker: where it stands."""

    host: str
    cursor: int
    attempts: int
    done: frozenset[str]
    scheme: Scheme


@dataclass(frozen=True, slots=True)
class FanoutInfo:
    id: int
    activity_id: int
    followers_of: int | None
    inboxes: tuple[str, ...]


async def fast_forward(session: AsyncSession, after: int) -> int:
    """Move idle, healthy lanes that stand just before a fan-out past it when
    the fan-out has nothing for their host; returns the last fan-out looked at
    (the caller's next ``after``)."""
    conn = await session.connection()
    rows = (await conn.execute(
        select(FANOUT.c.id, FANOUT.c.followers_of, FANOUT.c.inboxes)
        .where(FANOUT.c.id > after).order_by(FANOUT.c.id).limit(FAST_FORWARD_STEP))).all()
    previous = after
    for fanout_id, followers_of, inboxes in rows:
        where: list[Any] = [L.cursor >= previous, L.cursor < fanout_id, L.state == "idle",
                            L.attempts == 0, L.done.is_(None)]
        hosts = sorted({h for h in (inbox_host(u) for u in inboxes or []) if h})
        if hosts:
            where.append(L.host.not_in(hosts))
        if followers_of is not None:
            where.append(~exists().where(
                FOLLOWER.c.local_actor_id == followers_of, FOLLOWER.c.state == "accepted",
                FOLLOWER.c.host == L.host))
        await conn.execute(update(HOST_STATE).where(*where).values(cursor=fanout_id))
        previous = fanout_id
    return previous


async def claim_lanes(db: Database, worker_id: str, limit: int, lease: timedelta, *,
                      now: datetime | None = None, fast: bool = False,
                      skip_after: int | None = None) -> tuple[list[LaneClaim], int | None]:
    """Lease up to ``limit`` due lanes to ``worker_id``. With ``fast``, first
    fast-forwards lanes past the fan-outs after ``skip_after`` (None: from the
    lowest idle healthy lane; see ``fast_forward``) and returns the new mark."""
    async with db.write() as session:
        return await _claim(session, db.is_sqlite, worker_id, limit, lease, now or utcnow(),
                            fast, skip_after)


async def _claim(session: AsyncSession, sqlite: bool, worker_id: str, limit: int,
                 lease: timedelta, now: datetime, fast: bool, skip_after: int | None,
                 exclude: Collection[str] = ()) -> tuple[list[LaneClaim], int | None]:
    conn = await session.connection()
    mark: int | None = skip_after
    if fast:
        if skip_after is None:
            # A worker's first look: from the lowest idle healthy lane.
            skip_after = int((await conn.execute(
                select(func.coalesce(func.min(L.cursor), 0))
                .where(L.state == "idle", L.attempts == 0))).scalar_one())
        mark = await fast_forward(session, skip_after)
    if limit <= 0:
        return [], mark
    head = select(func.coalesce(func.max(FANOUT.c.id), 0)).scalar_subquery()
    query = (select(L.host, L.cursor, L.attempts, L.done, L.signature_scheme)
             .where(L.cursor < head, L.next_attempt_at <= now,
                    (L.state == "idle") | (L.lease_until < now))
             .order_by(L.next_attempt_at).limit(limit))
    if exclude:
        query = query.where(L.host.not_in(sorted(exclude)))
    if not sqlite:
        query = query.with_for_update(skip_locked=True)
    rows = (await conn.execute(query)).all()
    if rows:
        await conn.execute(update(HOST_STATE).where(L.host.in_([r[0] for r in rows]))
                           .values(state="sending", worker_id=worker_id,
                                   lease_until=now + lease))
    claims = [LaneClaim(host, cursor, attempts, frozenset(done or ()),
                        "rfc9421" if scheme == "rfc9421" else "cavage")
              for host, cursor, attempts, done, scheme in rows]
    return claims, mark


async def lanes_due(db: Database, *, now: datetime | None = None) -> bool:
    """Whether ``claim_lanes`` would find a lane: a read, so a worker woken for
    nothing (every local change wakes it) takes no write transaction, which on
    SQLite would queue behind, and hold up, the inbox's group commits."""
    now = now or utcnow()
    head = select(func.coalesce(func.max(FANOUT.c.id), 0)).scalar_subquery()
    async with db.read() as session:
        conn = await session.connection()
        found = (await conn.execute(
            select(L.host).where(L.cursor < head, L.next_attempt_at <= now,
                                 (L.state == "idle") | (L.lease_until < now)).limit(1))).first()
    return found is not None


async def renew_lanes(db: Database, worker_id: str, hosts: Sequence[str],
                      lease: timedelta) -> int:
    """Extend this worker's lease on lanes in hand; returns how many it still holds."""
    if not hosts:
        return 0
    async with db.write() as session:
        conn = await session.connection()
        mine = (L.host.in_(sorted(hosts)), L.worker_id == worker_id, L.state == "sending")
        if not db.is_sqlite:
            # Rows locked in host order, as flush locks them: the renewal runs
            # beside the worker's flush (worker._keep_leases), and two UPDATEs
            # locking the same rows in different orders deadlock.
            await conn.execute(select(L.host).where(*mine).order_by(L.host).with_for_update())
        result = await conn.execute(
            update(HOST_STATE).where(*mine).values(lease_until=utcnow() + lease))
        return max(result.rowcount or 0, 0)


async def fanouts_after(db: Database, cursor: int, limit: int) -> list[FanoutInfo]:
    async with db.read() as session:
        conn = await session.connection()
        rows = (await conn.execute(
            select(FANOUT.c.id, FANOUT.c.activity_id, FANOUT.c.followers_of, FANOUT.c.inboxes)
            .where(FANOUT.c.id > cursor).order_by(FANOUT.c.id).limit(limit))).all()
    return [FanoutInfo(i, a, f, tuple(inboxes or ())) for i, a, f, inboxes in rows]


async def follower_targets(db: Database, actor_id: int,
                           hosts: Sequence[str]) -> dict[str, list[str]]:
    """For each of ``hosts``: the inboxes an activity to the actor's followers
    goes to there (``bound_inboxes``). One query for many hosts."""
    if not hosts:
        return {}
    f = FOLLOWER.c
    is_shared = func.max(case((f.deliver_to == f.shared_inbox, 1), else_=0))
    query = (select(f.host, f.deliver_to, func.count(), is_shared)
             .where(f.local_actor_id == actor_id, f.state == "accepted",
                    f.host.in_(list(hosts)), f.deliver_to.is_not(None))
             .group_by(f.host, f.deliver_to))
    counts: dict[str, list[tuple[str, bool, int]]] = defaultdict(list)
    async with db.read() as session:
        conn = await session.connection()
        for host, url, n, is_shared in (await conn.execute(query)).all():
            counts[host].append((url, bool(is_shared), int(n)))
    return {host: bound_inboxes(host, rows) for host, rows in counts.items()}


@dataclass(slots=True)
class LaneWrite:
    """A lane's state as its worker has it now; written by ``flush``."""

    host: str
    cursor: int
    attempts: int
    next_attempt_at: datetime
    done: list[str] | None
    scheme: Scheme
    release: bool = False
    last_status: int | None = None
    last_error: str | None = None
    succeeded: bool = False  # an inbox of the host accepted something since the last flush
    failed: bool = False  # the lane failed an attempt since the last flush


@dataclass(frozen=True, slots=True)
class Failure:
    """An inbox that will not get a fan-out."""

    fanout_id: int
    activity_id: int
    host: str
    inbox_url: str
    status: int | None
    error: str | None


_WRITE = (
    update(HOST_STATE)
    .where(L.host == bindparam("h"), L.worker_id == bindparam("wid"), L.state == "sending")
    .values(cursor=bindparam("cur"), attempts=bindparam("att"),
            next_attempt_at=bindparam("next_at"), done=bindparam("dn"),
            signature_scheme=bindparam("scheme"), last_status=bindparam("st"),
            last_error=bindparam("err"), consecutive_failures=bindparam("att"),
            circuit_open_until=bindparam("circuit"), state=bindparam("new_state"),
            lease_until=bindparam("lease"), worker_id=bindparam("new_wid"))
)


@dataclass(slots=True)
class FlushResult:
    written: set[str] = field(default_factory=set)
    lost: set[str] = field(default_factory=set)  # lanes another worker holds now


async def flush(db: Database, worker_id: str, writes: Iterable[LaneWrite],
                failures: Sequence[Failure], lease: timedelta, *,
                now: datetime | None = None) -> FlushResult:
    """Write lane progress and failures in one transaction, for lanes this
    worker still holds. A released lane becomes idle; the others keep their
    lease (renewed here too)."""
    by_host = {w.host: w for w in writes}
    if not by_host:
        return FlushResult()
    async with db.write() as session:
        result = await _flush(session, db.is_sqlite, worker_id, by_host, failures, lease,
                              now or utcnow())
    _log_lost(result, worker_id)
    return result


async def flush_and_claim(db: Database, worker_id: str, writes: Iterable[LaneWrite],
                          failures: Sequence[Failure], lease: timedelta, limit: int, *,
                          skip_after: int | None, exclude: Collection[str] = ()
                          ) -> tuple[FlushResult, list[LaneClaim], int | None]:
    """``flush`` then ``claim_lanes`` (with fast-forward) in one transaction:
    the worker's one write per step while lanes come and go. ``exclude``: lanes
    the worker still walks, never claimed here (a claim is never dropped)."""
    by_host = {w.host: w for w in writes}
    async with db.write() as session:
        # The clock is read once the transaction has begun: a worker that waited
        # for the write lock would otherwise grant leases already partly spent.
        now = utcnow()
        result = (await _flush(session, db.is_sqlite, worker_id, by_host, failures, lease, now)
                  if by_host else FlushResult())
        claims, mark = await _claim(session, db.is_sqlite, worker_id, limit, lease, now,
                                    True, skip_after, exclude)
    _log_lost(result, worker_id)
    return result, claims, mark


def _log_lost(result: FlushResult, worker_id: str) -> None:
    for host in sorted(result.lost):
        log.info("lane progress ignored: the lease went to another worker",
                 extra={"host": log_host(host), "worker_id": worker_id})


async def _flush(session: AsyncSession, sqlite: bool, worker_id: str,
                 by_host: dict[str, LaneWrite], failures: Sequence[Failure],
                 lease: timedelta, now: datetime) -> FlushResult:
    from node.federation.retry import lane_circuit

    owned_q = (select(L.host).where(L.host.in_(sorted(by_host)), L.worker_id == worker_id,
                                    L.state == "sending").order_by(L.host))
    if not sqlite:
        owned_q = owned_q.with_for_update()
    conn = await session.connection()
    owned = {h for (h,) in (await conn.execute(owned_q)).all()}
    params: list[dict[str, Any]] = []
    for host in sorted(owned):
        w = by_host[host]
        params.append({
            "h": host, "wid": worker_id, "cur": w.cursor, "att": w.attempts,
            "next_at": w.next_attempt_at, "dn": w.done or None, "scheme": w.scheme,
            "st": w.last_status, "err": (w.last_error or "")[:200] or None,
            "circuit": lane_circuit(w.attempts, w.next_attempt_at),
            "new_state": "idle" if w.release else "sending",
            "lease": None if w.release else now + lease,
            "new_wid": None if w.release else worker_id})
    if params:
        await conn.execute(_WRITE, params)
        ok = sorted(h for h in owned if by_host[h].succeeded)
        bad = sorted(h for h in owned if by_host[h].failed)
        if ok:
            await conn.execute(update(HOST_STATE).where(L.host.in_(ok))
                               .values(last_success_at=now))
        if bad:
            await conn.execute(update(HOST_STATE).where(L.host.in_(bad))
                               .values(last_failure_at=now))
    mine = [f for f in failures if f.host in owned]
    if mine:
        await conn.execute(FAILURE.insert(), [
            {"fanout_id": f.fanout_id, "activity_id": f.activity_id, "host": f.host,
             "inbox_url": f.inbox_url[:2048], "status": f.status,
             "error": (f.error or "")[:200] or None, "at": now} for f in mine])
    return FlushResult(owned, set(by_host) - owned)


# --- reading: status of a post, depth of the queue ------------------------------------------


@dataclass(frozen=True, slots=True)
class HostDelivery:
    """Where one activity stands at one host (``delivery_status``)."""

    host: str
    state: Literal["delivered", "waiting", "retrying", "failed"]
    next_attempt_at: datetime | None = None  # retrying: when the lane tries again
    last_error: str | None = None  # retrying: why the last attempt failed
    failures: tuple[tuple[str, int | None, str | None], ...] = ()  # (inbox, status, error)


async def delivery_status(session: AsyncSession, activity_id: int) -> list[HostDelivery]:
    """Per host the activity goes to: delivered, waiting (the lane has not
    reached it), retrying (the lane is backing off; when and why) or failed
    (inboxes that will not get it, and why). Hosts of followers are those of
    the actor's current accepted followers."""
    conn = await session.connection()
    fanouts = (await conn.execute(
        select(FANOUT.c.id, FANOUT.c.followers_of, FANOUT.c.inboxes)
        .where(FANOUT.c.activity_id == activity_id))).all()
    wanted: dict[str, int] = {}  # host -> the fan-out that brings it the activity
    for fanout_id, followers_of, inboxes in fanouts:
        for url in inboxes or []:
            host = inbox_host(url)
            if host is not None:
                wanted.setdefault(host, fanout_id)
        if followers_of is not None:
            for (host,) in (await conn.execute(
                    select(FOLLOWER.c.host).distinct()
                    .where(FOLLOWER.c.local_actor_id == followers_of,
                           FOLLOWER.c.state == "accepted",
                           FOLLOWER.c.host.is_not(None)))).all():
                wanted.setdefault(host, fanout_id)
    if not wanted:
        return []
    failed: dict[str, list[tuple[str, int | None, str | None]]] = defaultdict(list)
    for host, url, status, error in (await conn.execute(
            select(FAILURE.c.host, FAILURE.c.inbox_url, FAILURE.c.status, FAILURE.c.error)
            .where(FAILURE.c.activity_id == activity_id)
            .order_by(FAILURE.c.host, FAILURE.c.inbox_url))).all():
        failed[host].append((url, status, error))
    lanes = {row[0]: row for row in (await conn.execute(
        select(L.host, L.cursor, L.attempts, L.next_attempt_at, L.last_error)
        .where(L.host.in_(sorted(wanted))))).all()}
    out: list[HostDelivery] = []
    for host in sorted(wanted):
        lane = lanes.get(host)
        if lane is not None and lane[1] >= wanted[host]:
            state: Literal["delivered", "failed"] = "failed" if failed.get(host) else "delivered"
            out.append(HostDelivery(host, state, failures=tuple(failed.get(host, ()))))
        elif lane is not None and lane[2] > 0:
            out.append(HostDelivery(host, "retrying", lane[3], lane[4],
                                    tuple(failed.get(host, ()))))
        else:
            out.append(HostDelivery(host, "waiting", failures=tuple(failed.get(host, ()))))
    return out


@dataclass(frozen=True, slots=True)
class QueueDepth:
    lanes: int  # hosts with a lane
    behind: int  # lanes with fan-outs still to walk
    retrying: int  # lanes backing off after failures
    sending: int  # lanes leased to a worker
    positions_behind: int  # sum over lanes of log positions still to walk (an upper bound)


async def queue_depth(session: AsyncSession) -> QueueDepth:
    conn = await session.connection()
    head = (await conn.execute(select(func.coalesce(func.max(FANOUT.c.id), 0)))).scalar_one()
    behind = L.cursor < head
    lanes, n_behind, retrying, sending, positions = (await conn.execute(select(
        func.count(),
        func.count().filter(behind),
        func.count().filter(and_(behind, L.attempts > 0)),
        func.count().filter(L.state == "sending"),
        func.coalesce(func.sum(head - L.cursor).filter(behind), 0),
    ))).one()
    return QueueDepth(int(lanes), int(n_behind), int(retrying), int(sending), int(positions))
