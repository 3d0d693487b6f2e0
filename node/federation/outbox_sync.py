"""Peer sync: backfill and catch-up of followed actors' outboxes (issue 15
point 3; FEDERATION.md "Peer sync"; docs/ARCHITECTURE.md §2b).

- **Backfill**: when one of our groups' follows is accepted (``schedule``, from
  the Accept handler) — or when the lead's network code calls ``backfill`` —
  the actor's outbox is walked newest first within ``BACKFILL`` bounds and what
  the actor vouches for is stored (``remote_posts``).
- **Catch-up**: the sync worker, in the serve process beside the inbox and
  delivery workers, walks each followed actor's outbox at start and then every
  ``HAMBASTEGI_SYNC_SECONDS`` until it meets what it already has: the first item
  of the last walk, or a Create of a stored object. Nothing changed costs one
  GET (the first page, remembered). A failing peer backs off
  (``retry.sync_retry_delay``); a walk cut short is walked whole next time.
- **Several serve processes**: each actor's ``sync_state`` row is leased (a
  conditional UPDATE, which both databases make atomic), so two workers never
  walk one actor at once; the store is an idempotent upsert anyway.

Fetching never happens inside a write transaction: walk first, then store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from node.core.jsonsafe import as_id
from node.federation import remote_posts, retry
from node.federation.outbox_walk import Bounds, Walk, WalkFailed, walk_outbox
from node.federation.remote_posts import Source
from node.federation.runtime import Node
from node.storage.db import dialect_insert, utcnow
from node.storage.models import Following, SyncState
from node.storage.states import FollowingState

log = logging.getLogger("hambastegi.sync")

# A first contact (and a gap after a walk cut short): history, bounded.
BACKFILL = Bounds(max_items=200, max_age=timedelta(days=90), max_pages=20, deadline=60.0)
# A periodic catch-up walks until it meets what it has; the same bounds stop
# it if the peer's outbox hides what we have (or never stops).
CATCH_UP = BACKFILL
# A lease outlives the walk it covers (the walk's deadline plus the store).
LEASE = timedelta(seconds=BACKFILL.deadline + 30)
# Actors walked at once by one worker.
CONCURRENCY = 4


async def schedule(session: AsyncSession, actor_uri: str, *, backfill: bool = True) -> None:
    """Ask for a walk of ``actor_uri``'s outbox as soon as a worker is free
    (in the caller's transaction; the worker fetches after the commit).
    ``backfill``: walk the whole bounded history, not only up to what we have."""
    now = utcnow()
    insert = dialect_insert(session.get_bind().dialect.name == "sqlite")
    stmt = insert(SyncState).values(actor_uri=actor_uri, next_sync_at=now, failures=0)
    changes: dict[str, object] = {"next_sync_at": now, "failures": 0}
    if backfill:
        changes["backfilled_at"] = None
    await session.exec(stmt.on_conflict_do_update(index_elements=["actor_uri"], set_=changes))


async def store(node: Node, walk: Walk, source: Source) -> int:
    """Store what a walk found, oldest first (a later Delete wins over its Create);
    returns how many posts were new."""
    if not walk.found:
        return 0
    fresh: list[dict[str, Any]] = []
    async with node.db.write() as session:
        for found in reversed(walk.found):
            if found.kind == "tombstone":
                await remote_posts.tombstone(session, found.object_id, walk.actor_uri)
                fresh = [p for p in fresh if as_id(p) != found.object_id]
            elif found.obj is not None and await remote_posts.upsert(
                    session, found.obj, walk.actor_uri, source=source):
                fresh.append(found.obj)
    node.changed()
    await _hand_up(node, walk.actor_uri, fresh, source)
    return len(fresh)


async def _hand_up(node: Node, actor_uri: str, fresh: list[dict[str, Any]],
                   source: Source) -> None:
    """Posts stored for the first time go to the layer above (``Inbound.synced``:
    the network relay), after the commit. Only new rows: a post the inbox (or an
    earlier walk) stored is not handed up again. A failure there is logged, not
    the walk's: the posts are stored, and the walk's schedule stays as it is."""
    hook = node.inbound.synced
    if hook is None or not fresh:
        return
    try:
        await hook(node, actor_uri, fresh, source)
    except Exception:  # the relay's failure must not undo or repeat the walk
        log.exception("synced posts not handed up")


async def _known(node: Node, ids: list[str]) -> set[str]:
    async with node.db.read() as session:
        return await remote_posts.known_ids(session, ids)


async def backfill(node: Node, actor_uri: str, *, bounds: Bounds = BACKFILL) -> Walk:
    """Walk ``actor_uri``'s outbox within ``bounds`` and store what it vouches for
    (for the network code: a member's history when a group joins). Raises
    WalkFailed when the outbox cannot be read at all."""
    walk = await walk_outbox(node, actor_uri, bounds=bounds)
    await store(node, walk, "backfill")
    return walk


async def sync_one(node: Node, state: SyncState) -> Walk:
    """One walk of a followed actor: whole (bounded) when it was never walked
    whole, else up to what we already have."""
    if state.backfilled_at is None:
        walk = await walk_outbox(node, state.actor_uri, bounds=BACKFILL)
        await store(node, walk, "backfill")
        return walk

    async def known(ids: list[str]) -> set[str]:
        return await _known(node, ids)

    walk = await walk_outbox(node, state.actor_uri, bounds=CATCH_UP,
                             stop_at=state.first_item_id, first_page=state.first_page,
                             known=known)
    await store(node, walk, "sync")
    return walk


@dataclass(frozen=True)
class Outcome:
    actor_uri: str
    walk: Walk | None
    error: str | None = None


class SyncWorker:
    """Catch-up of every followed actor, in the serve process (app.py lifespan)."""

    def __init__(self, node: Node, *, period: float, poll: float,
                 concurrency: int = CONCURRENCY, rng: random.Random | None = None) -> None:
        self.node = node
        self.period = timedelta(seconds=period)
        self.poll = min(period, max(poll, 0.5))
        self.concurrency = concurrency
        self.worker_id = secrets.token_hex(8)
        self.rng = rng or random.Random()
        self.wake_event = asyncio.Event()

    def wake(self) -> None:
        self.wake_event.set()

    async def run(self, stop: asyncio.Event) -> None:
        await self.due_now()  # "on start": every healthy actor is walked at once
        refreshed_at = None
        while not stop.is_set():
            try:
                now = utcnow()
                if refreshed_at is None or now - refreshed_at >= self.period:
                    await self.refresh_rows()
                    refreshed_at = now
                claimed = await self.claim()
                if claimed:
                    outcomes = await asyncio.gather(*(self.walk(s) for s in claimed))
                    await self.record(outcomes)
                    continue
            except Exception:  # a database hiccup must not end the worker
                log.exception("sync worker round failed")
            self.wake_event.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll):
                    waiters = [asyncio.ensure_future(stop.wait()),
                               asyncio.ensure_future(self.wake_event.wait())]
                    try:
                        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        for waiter in waiters:
                            waiter.cancel()

    async def due_now(self) -> None:
        async with self.node.db.write() as session:
            await session.exec(update(SyncState).where(col(SyncState.failures) == 0)
                               .values(next_sync_at=utcnow()))

    async def refresh_rows(self) -> None:
        """A row per followed actor (follows made before this code, or by another
        process), none for actors no longer followed."""
        async with self.node.db.read() as session:
            followed = set((await session.exec(
                select(Following.target_uri).where(
                    col(Following.state) == FollowingState.ACCEPTED).distinct())).all())
            tracked = set((await session.exec(select(SyncState.actor_uri))).all())
        missing, gone = followed - tracked, tracked - followed
        if not missing and not gone:
            return
        async with self.node.db.write() as session:
            for uri in missing:
                await schedule(session, uri)
            if gone:
                now = utcnow()
                await session.exec(delete(SyncState).where(
                    col(SyncState.actor_uri).in_(gone),
                    or_(col(SyncState.lease_until).is_(None), col(SyncState.lease_until) < now)))

    async def claim(self) -> list[SyncState]:
        """Lease due rows one by one with a conditional UPDATE: of two workers
        racing for a row, exactly one sees its UPDATE change it."""
        now = utcnow()
        free = or_(col(SyncState.lease_until).is_(None), col(SyncState.lease_until) < now)
        async with self.node.db.read() as session:
            due = list((await session.exec(
                select(SyncState.actor_uri).where(col(SyncState.next_sync_at) <= now, free)
                .order_by(col(SyncState.next_sync_at)).limit(self.concurrency))).all())
        claimed: list[SyncState] = []
        for uri in due:
            async with self.node.db.write() as session:
                result = await session.exec(
                    update(SyncState).where(col(SyncState.actor_uri) == uri, free)
                    .values(lease_until=now + LEASE, worker_id=self.worker_id))
                if not result.rowcount:
                    continue
                row = await session.get(SyncState, uri)
                if row is not None:
                    session.expunge(row)
                    claimed.append(row)
        return claimed

    async def walk(self, state: SyncState) -> Outcome:
        try:
            return Outcome(state.actor_uri, await sync_one(self.node, state))
        except WalkFailed as exc:
            return Outcome(state.actor_uri, None, exc.reason[:200])
        except Exception as exc:  # one actor's failure is that actor's alone
            log.exception("sync walk failed")
            return Outcome(state.actor_uri, None, type(exc).__name__)

    async def record(self, outcomes: list[Outcome]) -> None:
        now = utcnow()
        async with self.node.db.write() as session:
            for outcome in outcomes:
                row = await session.get(SyncState, outcome.actor_uri)
                if row is None or row.worker_id != self.worker_id:
                    continue  # lost the lease (or unfollowed meanwhile): not ours to write
                row.lease_until = None
                row.worker_id = None
                walk = outcome.walk
                if walk is not None and walk.complete:
                    row.failures = 0
                    row.last_error = None
                    row.last_synced_at = now
                    row.backfilled_at = row.backfilled_at or now
                    if walk.first_item_id is not None:
                        row.first_item_id = walk.first_item_id
                    row.first_page = walk.first_page or row.first_page
                    row.next_sync_at = now + retry.next_sync_delay(self.period, self.rng)
                else:
                    row.failures += 1
                    row.last_error = outcome.error or (walk.stopped if walk else "failed")
                    if walk is not None and walk.found:
                        row.backfilled_at = None  # a gap may be left: walk it whole next time
                    row.next_sync_at = now + retry.sync_retry_delay(
                        row.failures, self.period, self.rng)
                    log.info("sync walk incomplete", extra={"reason": row.last_error,
                                                            "failures": row.failures})
                session.add(row)
