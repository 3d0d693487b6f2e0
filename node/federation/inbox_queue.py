"""The durable inbox queue: one ``inbox_item`` row per verified activity.

The twin of the delivery queue (delivery/), for what arrives::

    receive ──store──▶ pending ──claim──▶ processing ──complete──▶ done
                          ▲                    │   └─────────────▶ failed  (attempts used up)
                          └────── retry ───────┘                   (next_attempt_at = backoff)

- ``pending``: stored before the 202; waits for ``next_attempt_at``.
- ``processing``: leased to one worker (``worker_id``) until ``lease_until``;
  the worker renews the lease while a handler runs. Claims use ``FOR UPDATE
  SKIP LOCKED`` on PostgreSQL; on SQLite the write transaction is exclusive.
- ``done`` / ``failed``: finished; ``last_error`` says why an attempt failed.

A crashed worker's items come back when their lease runs out. A late
``complete`` from a worker whose lease was taken over changes nothing: only
the lease holder records an outcome (the owner check). Handlers may therefore
run twice for one item; they are idempotent — state they already produced is
recognised, and what they send carries ids derived from the item
(``dispatch.emission_uuid``), so a retry re-uses them.

Backoff and the attempt limit are the pure policy of retry.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, or_, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlmodel import col, select

from node.core.idle import IdleWait, wait_for_work
from node.federation.retry import next_attempt_at
from node.storage.db import Database, dialect_insert, utcnow
from node.storage.models import InboxItem, RemoteActor
from node.storage.states import InboxState

log = logging.getLogger("hambastegi.inbox_queue")

INBOX = InboxItem.metadata.tables["inbox_item"]
LEASE = timedelta(minutes=2)
BATCH = 200
# Outcomes are written when this many wait, or this long after the first.
FLUSH_ROWS = 50
FLUSH_SECONDS = 0.5
# While requests wait for their commit, handlers wait this long at most for them,
# once per this much of their own work: under a sustained volley of requests the
# handlers keep at least half the time. (Waiting before every item capped them at
# 20 items a second whatever they cost: 10,000 Follows were answered 202 at 225/s
# while their Accepts left at 24/s, docs/ARCHITECTURE.md §3.)
YIELD_SECONDS = 0.05

RunItem = Callable[[InboxItem], Awaitable[None]]


# --- store: group commit ---------------------------------------------------------------------


class InboxWriter:
    """Group commit for the inbox: requests arriving together share one INSERT
    and one commit. Each request still gets its 202 only after the commit that
    holds its row (verify → store → 202), and learns whether its activity id
    was new (idempotency). A failed write fails every request waiting for it
    (the inbox answers them 503): none of them was answered 202.

    A request from an actor met for the first time brings the actor's row
    along (``actor``, remote_actors.actor_values): it is upserted in the same
    transaction as the activity, so first contact costs no write transaction
    of its own, and the inbox worker finds the actor stored when it claims the
    activity (docs/ARCHITECTURE.md §3). The writer fills in ``actor["id"]``.

    A batch refused by the database for what one of its rows holds (a value
    PostgreSQL will not take, say) is written again row by row, so one hostile
    request fails alone, not everyone who arrived with it."""

    def __init__(self, db: Database, max_batch: int = 500) -> None:
        self._db = db
        self._max = max_batch
        self._pending: list[_Waiting] = []
        self._flushing = False
        self._quiet = asyncio.Event()  # set while no request waits for a commit
        self._quiet.set()

    async def quiet(self, at_most: float) -> None:
        """Return when no request waits for a commit, or after ``at_most``
        seconds: the inbox worker lets the requests' commits go first
        (``InboxWorker``)."""
        if self._flushing:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(at_most):
                    await self._quiet.wait()

    async def add(self, values: dict[str, Any], actor: dict[str, Any] | None = None) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((values, actor, future))
        if not self._flushing:
            self._flushing = True
            self._quiet.clear()
            asyncio.get_running_loop().create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        try:
            while self._pending:
                await asyncio.sleep(0)  # one loop turn: let concurrent requests join
                batch, self._pending = self._pending[:self._max], self._pending[self._max:]
                try:
                    inserted = await self._write(batch)
                except Exception as exc:  # every waiting request must hear of it
                    if len(batch) > 1 and _row_refused(exc):
                        await self._write_singly(batch)
                        continue
                    # Whoever queued behind this write would wait out the same
                    # lock (a busy timeout each): tell them now, they get a 503.
                    batch, self._pending = batch + self._pending, []
                    for _, _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                _answer(batch, inserted)
        finally:
            self._flushing = False
            self._quiet.set()

    async def _write_singly(self, batch: list[_Waiting]) -> None:
        for waiting in batch:
            try:
                _answer([waiting], await self._write([waiting]))
            except Exception as exc:
                if not waiting[2].done():
                    waiting[2].set_exception(exc)

    async def _write(self, batch: list[_Waiting]) -> set[str]:
        insert = dialect_insert(self._db.is_sqlite)
        # One cached statement executed with many parameter sets ("insertmanyvalues"):
        # compiling a fresh multi-row VALUES per batch cost more than the insert.
        stmt = (insert(InboxItem)
                .on_conflict_do_nothing(index_elements=["activity_id"])
                .returning(col(InboxItem.activity_id)))
        actors: dict[str, dict[str, Any]] = {}
        for _, actor, _ in batch:
            if actor is not None:
                actors[actor["uri"]] = actor  # once per statement (PostgreSQL requires it)
        stored: dict[str, int] = {}
        async with self._db.write() as session:
            if actors:
                conn = await session.connection()
                result = await conn.execute(_actor_upsert(insert), list(actors.values()))
                stored = {uri: actor_id for actor_id, uri in result.all()}
            result = await session.exec(stmt, params=[values for values, _, _ in batch])
            inserted = {row[0] for row in result.all()}
        for _, actor, _ in batch:
            if actor is not None:
                actor["id"] = stored.get(actor["uri"])
        return inserted


_Waiting = tuple[dict[str, Any], dict[str, Any] | None, asyncio.Future[bool]]


def _answer(batch: list[_Waiting], inserted: set[str]) -> None:
    seen: set[str] = set()
    for values, _, future in batch:
        activity_id = values["activity_id"]
        if not future.done():  # a request that gave up waiting (503)
            future.set_result(activity_id in inserted and activity_id not in seen)
        seen.add(activity_id)


def _row_refused(exc: Exception) -> bool:
    """The database refused what a row holds (not: it is busy, locked or gone)."""
    return isinstance(exc, DBAPIError) and not isinstance(exc, OperationalError | InterfaceError) \
        and not exc.connection_invalidated


def _actor_upsert(insert: Any) -> Any:
    """Insert or refresh remote actors (the freshly fetched document wins), as
    remote_actors.store_actor does one at a time."""
    stmt = insert(RemoteActor)
    columns = [c.name for c in RemoteActor.__table__.columns  # type: ignore[attr-defined]
               if c.name not in ("id", "uri")]
    return (stmt.on_conflict_do_update(index_elements=["uri"],
                                       set_={c: stmt.excluded[c] for c in columns})
            .returning(col(RemoteActor.id), col(RemoteActor.uri)))


def new_item(activity: dict[str, Any], activity_id: str, activity_type: str, actor_id: str,
             recipient_id: int | None) -> dict[str, Any]:
    """The row of a freshly verified activity."""
    now = utcnow()
    return {"activity_id": activity_id, "activity_type": activity_type, "actor_uri": actor_id,
            "recipient_id": recipient_id, "body": activity, "state": InboxState.PENDING.value,
            "attempts": 0, "next_attempt_at": now, "received_at": now}


# --- claim, renew, complete ----------------------------------------------------------------


async def claim(db: Database, worker_id: str, limit: int, lease: timedelta, *,
                now: datetime | None = None) -> list[InboxItem]:
    """Lease up to ``limit`` due items to ``worker_id`` until now + ``lease``,
    oldest first. Due: pending with ``next_attempt_at`` reached, or processing
    with an expired lease (a crashed worker's items)."""
    now = now or utcnow()
    query = (
        select(InboxItem)
        .where(or_(
            (col(InboxItem.state) == InboxState.PENDING) & (col(InboxItem.next_attempt_at) <= now),
            (col(InboxItem.state) == InboxState.PROCESSING) & (col(InboxItem.lease_until) < now),
        ))
        .order_by(col(InboxItem.id))
        .limit(limit)
    )
    if not db.is_sqlite:
        query = query.with_for_update(skip_locked=True)
    async with db.write() as session:
        items = list((await session.exec(query)).all())
        if items:
            await session.exec(
                update(InboxItem).where(col(InboxItem.id).in_([i.id for i in items]))
                .values(state=InboxState.PROCESSING, worker_id=worker_id,
                        lease_until=now + lease))
        for item in items:
            session.expunge(item)
            item.state, item.worker_id, item.lease_until = (InboxState.PROCESSING, worker_id,
                                                            now + lease)
    return items


async def renew(db: Database, worker_id: str, ids: Sequence[int], lease: timedelta) -> set[int]:
    """Extend this worker's lease on items still in hand; returns the ids it
    still holds (an item whose lease went to another worker is lost to us)."""
    if not ids:
        return set()
    c = INBOX.c
    async with db.write() as session:
        conn = await session.connection()
        result = await conn.execute(
            update(INBOX)
            .where(c.id.in_(list(ids)), c.worker_id == worker_id,
                   c.state == InboxState.PROCESSING)
            .values(lease_until=utcnow() + lease)
            .returning(c.id))
        return {row[0] for row in result}


@dataclass(frozen=True, slots=True)
class Outcome:
    item_id: int
    attempts: int  # made before this one
    error: str | None = None  # None: every handler succeeded


_DONE = (
    update(INBOX)
    .where(INBOX.c.id == bindparam("iid"), INBOX.c.worker_id == bindparam("wid"),
           INBOX.c.state == InboxState.PROCESSING)
    .values(state=bindparam("new_state"), attempts=bindparam("new_attempts"),
            last_error=bindparam("error"), processed_at=bindparam("finished"),
            lease_until=None)
)
_RETRY = (
    update(INBOX)
    .where(INBOX.c.id == bindparam("iid"), INBOX.c.worker_id == bindparam("wid"),
           INBOX.c.state == InboxState.PROCESSING)
    .values(state=InboxState.PENDING, attempts=bindparam("new_attempts"),
            last_error=bindparam("error"), next_attempt_at=bindparam("next_at"),
            lease_until=None)
)
_RNG = random.Random()


async def complete(db: Database, worker_id: str, outcomes: Sequence[Outcome], *,
                   rng: random.Random | None = None,
                   now: datetime | None = None) -> dict[int, InboxState]:
    """Record outcomes in one transaction, only for items this worker still
    holds; returns the new state of each item recorded. Success → done; an
    error → pending again after the backoff, or failed once the attempts are
    used up."""
    if not outcomes:
        return {}
    rng = rng or _RNG
    now = now or utcnow()
    by_id = {o.item_id: o for o in outcomes}
    owned_q = (select(col(InboxItem.id))
               .where(col(InboxItem.id).in_(sorted(by_id)), col(InboxItem.worker_id) == worker_id,
                      col(InboxItem.state) == InboxState.PROCESSING)
               .order_by(col(InboxItem.id)))
    if not db.is_sqlite:
        owned_q = owned_q.with_for_update()  # an expiring lease can't be claimed under us
    recorded: dict[int, InboxState] = {}
    async with db.write() as session:
        owned = [by_id[i] for i in (await session.exec(owned_q)).all() if i is not None]
        finished: list[dict[str, Any]] = []
        retried: list[dict[str, Any]] = []
        for outcome in owned:
            attempts = outcome.attempts + 1
            values: dict[str, Any] = {"iid": outcome.item_id, "wid": worker_id,
                                      "new_attempts": attempts, "error": outcome.error}
            when = next_attempt_at(attempts, now, rng) if outcome.error is not None else None
            if when is not None:
                retried.append({**values, "next_at": when})
                recorded[outcome.item_id] = InboxState.PENDING
            else:
                state = InboxState.DONE if outcome.error is None else InboxState.FAILED
                finished.append({**values, "new_state": state, "finished": now})
                recorded[outcome.item_id] = state
        conn = await session.connection()
        if finished:
            await conn.execute(_DONE, finished)
        if retried:
            await conn.execute(_RETRY, retried)
    for outcome in outcomes:
        if outcome.item_id not in recorded:
            log.info("late inbox outcome ignored: the lease went to another worker",
                     extra={"inbox_item_id": outcome.item_id, "worker_id": worker_id})
    return recorded


# --- the worker ---------------------------------------------------------------------------


class InboxWorker:
    """Claims due items, runs their handlers one after the other (in arrival
    order: a Follow before its Undo), renews the lease meanwhile, records
    outcomes in small batches."""

    def __init__(self, db: Database, run_item: RunItem, *, wake: asyncio.Event | None = None,
                 after_batch: Callable[[], None] | None = None, lease: timedelta = LEASE,
                 batch: int = BATCH, poll_seconds: float = 1.0,
                 worker_id: str | None = None,
                 idle_wait: IdleWait | None = None,
                 yield_to: Callable[[float], Awaitable[None]] | None = None) -> None:
        """``yield_to(seconds)``: awaited before an item once per ``YIELD_SECONDS`` of
        handler work (``InboxWriter.quiet``):
        requests waiting for their commit (and their 202) go before handlers,
        which would otherwise hold SQLite's one write connection and the event
        loop in between (bench/profiles/README.md)."""
        self.db = db
        self.yield_to = yield_to
        self.run_item = run_item
        self.wake = wake or asyncio.Event()
        self.after_batch = after_batch or (lambda: None)
        self.lease = lease
        self.batch = batch
        self.poll_seconds = poll_seconds
        # Returns when another process may have stored an item (node/storage/wakeup.py);
        # without it, only ``wake`` (this process) and the poll find new items.
        self.idle_wait = idle_wait
        self.idle = False  # True while it waits on an empty queue (tests)
        self.worker_id = worker_id or secrets.token_hex(8)
        self.rng = random.Random()
        self.done = 0
        self.retried = 0
        self.failed = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            # Clear before working: a wake-up during the work is then not lost.
            self.wake.clear()
            try:
                claimed = await self.run_batch()
            except Exception:  # the database went away, say: leases retry the work
                log.exception("inbox batch failed", extra={"worker_id": self.worker_id})
                claimed = 0
            if claimed >= self.batch:
                continue
            self.idle = True
            try:
                await wait_for_work(self.wake, stop, self.idle_wait, self.poll_seconds)
            finally:
                self.idle = False

    async def run_once(self) -> int:
        """Process until nothing is due; returns how many items were claimed (tests)."""
        total = 0
        while claimed := await self.run_batch():
            total += claimed
        return total

    async def run_batch(self) -> int:
        items = await claim(self.db, self.worker_id, self.batch, self.lease)
        if not items:
            return 0
        held = {item.id for item in items if item.id is not None}
        renewer = asyncio.create_task(self._keep_leases(held))
        buffer: list[Outcome] = []
        loop = asyncio.get_running_loop()
        flush_at = loop.time() + FLUSH_SECONDS
        worked = YIELD_SECONDS  # handler time since the last yield: the first item yields
        try:
            for item in items:
                if item.id not in held:
                    continue  # the lease went elsewhere: that worker runs it
                if self.yield_to is not None and worked >= YIELD_SECONDS:
                    await self.yield_to(YIELD_SECONDS)
                    worked = 0.0
                started = loop.time()
                buffer.append(Outcome(item.id or 0, item.attempts, await self._run(item)))
                worked += loop.time() - started
                if len(buffer) >= FLUSH_ROWS or loop.time() >= flush_at:
                    await self._record(buffer, held)
                    buffer, flush_at = [], loop.time() + FLUSH_SECONDS
            await self._record(buffer, held)
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
        self.after_batch()
        return len(items)

    async def _run(self, item: InboxItem) -> str | None:
        try:
            await self.run_item(item)
        except Exception as exc:  # one bad activity must not stop the queue
            error = f"{type(exc).__name__}: {exc}"[:400]
            log.warning("inbox item failed", extra={
                "activity_type": item.activity_type, "attempts": item.attempts + 1,
                "error": error}, exc_info=True)
            return error
        return None

    async def _record(self, outcomes: list[Outcome], held: set[int]) -> None:
        if not outcomes:
            return
        recorded = await complete(self.db, self.worker_id, outcomes, rng=self.rng)
        for outcome in outcomes:
            held.discard(outcome.item_id)
        for state in recorded.values():
            if state == InboxState.DONE:
                self.done += 1
            elif state == InboxState.PENDING:
                self.retried += 1
            else:
                self.failed += 1

    async def _keep_leases(self, held: set[int]) -> None:
        """Renew the lease of the items in hand every third of the lease."""
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            try:
                still = await renew(self.db, self.worker_id, sorted(held), self.lease)
            except Exception:
                log.exception("inbox lease renewal failed", extra={"worker_id": self.worker_id})
                continue
            lost = held - still
            if lost:
                log.warning("inbox leases lost", extra={"worker_id": self.worker_id,
                                                        "items": len(lost)})
                held -= lost
