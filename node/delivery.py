"""The durable delivery queue: one ``delivery`` row per activity and inbox.

States: ``pending`` → ``sending`` (leased by one worker until ``lease_until``)
→ ``sent`` | ``failed``; a retry puts the row back to ``pending`` with a later
``next_attempt_at``. Claims use ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so
several workers never take the same row; on SQLite the write transaction is
already exclusive.

The crash story: a worker killed mid-send leaves its rows in ``sending``; when
the lease runs out they are due again and another worker sends them. Delivery
is therefore at-least-once on the wire; receivers (ours included) store an
activity once per id, which makes it effectively once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import urlsplit

from sqlalchemy import and_, or_, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from node.db import Database, utcnow
from node.fetch import FetchError, GuardedClient
from node.metrics import METRICS
from node.models import Activity, Delivery, HostState, LocalActor
from node.retry import circuit_open_until, classify_status, parse_retry_after, retry_delay
from node.signatures import RequestSigner
from node.urls import Urls

log = logging.getLogger("hambastegi.delivery")

Scheme = Literal["cavage", "rfc9421"]
ENQUEUE_CHUNK = 500


def _host(url: str) -> str:
    return urlsplit(url).netloc.lower()[:256]


async def enqueue(session: AsyncSession, activity_id: int, inbox_urls: Iterable[str]) -> int:
    """Queue one row per distinct inbox; rows already queued are skipped."""
    inboxes = sorted(set(inbox_urls))
    if not inboxes:
        return 0
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    now = utcnow()
    inserted = 0
    for start in range(0, len(inboxes), ENQUEUE_CHUNK):
        rows = [
            {"activity_id": activity_id, "inbox_url": url, "host": _host(url),
             "state": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now}
            for url in inboxes[start:start + ENQUEUE_CHUNK]
        ]
        stmt = insert(Delivery).values(rows).on_conflict_do_nothing(
            index_elements=["activity_id", "inbox_url"])
        result = await session.exec(stmt)
        inserted += max(getattr(result, "rowcount", 0) or 0, 0)
    return inserted


@dataclass(frozen=True)
class Claimed:
    id: int
    activity_id: int
    inbox_url: str
    host: str
    attempts: int
    scheme: Scheme


@dataclass(frozen=True)
class Outcome:
    claimed: Claimed
    kind: Literal["sent", "retry", "permanent"]
    status: int | None
    error: str | None
    retry_after: str | None
    scheme: Scheme


async def claim(db: Database, worker_id: str, limit: int, lease: timedelta) -> list[Claimed]:
    """Lease due rows to this worker; rows of hosts with an open circuit wait."""
    now = utcnow()
    async with db.write() as session:
        query = (
            sa_select(col(Delivery.id), col(Delivery.activity_id), col(Delivery.inbox_url),
                      col(Delivery.host), col(Delivery.attempts))
            .where(or_(
                and_(col(Delivery.state) == "pending", col(Delivery.next_attempt_at) <= now),
                and_(col(Delivery.state) == "sending", col(Delivery.lease_until) < now),
            ))
            .order_by(col(Delivery.next_attempt_at))
            .limit(limit)
        )
        if not db.is_sqlite:
            query = query.with_for_update(skip_locked=True)
        # sqlmodel's exec() types selects of at most four columns.
        rows = [tuple(r) for r in (await session.exec(query)).all()]  # type: ignore[call-overload]
        if not rows:
            return []
        hosts = {row[3] for row in rows}
        states = {h.host: h for h in (await session.exec(
            select(HostState).where(col(HostState.host).in_(hosts)))).all()}
        postponed: dict[datetime, list[int]] = {}
        taken: list[Claimed] = []
        for row_id, activity_id, inbox_url, host, attempts in rows:
            state = states.get(host)
            if state is not None and state.circuit_open_until is not None \
                    and state.circuit_open_until > now:
                # A dead host doesn't hold workers; no attempt is counted.
                postponed.setdefault(state.circuit_open_until, []).append(row_id)
                continue
            scheme: Scheme = "rfc9421" if state is not None and \
                state.signature_scheme == "rfc9421" else "cavage"
            taken.append(Claimed(row_id, activity_id, inbox_url, host, attempts, scheme))
        for until, ids in postponed.items():
            await session.exec(update(Delivery).where(col(Delivery.id).in_(ids))
                               .values(state="pending", next_attempt_at=until))
        if taken:
            await session.exec(
                update(Delivery).where(col(Delivery.id).in_([c.id for c in taken]))
                .values(state="sending", lease_until=now + lease, worker_id=worker_id))
    return taken


async def record(db: Database, worker_id: str, outcomes: list[Outcome],
                 rng: random.Random) -> None:
    """Write a batch of outcomes in one transaction. Only the lease holder may."""
    now = utcnow()
    mine = and_(col(Delivery.worker_id) == worker_id, col(Delivery.state) == "sending")
    sent = [o.claimed.id for o in outcomes if o.kind == "sent"]
    host_results: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        host_results.setdefault(outcome.claimed.host, []).append(outcome)
    async with db.write() as session:
        if sent:
            await session.exec(update(Delivery).where(col(Delivery.id).in_(sent), mine).values(
                state="sent", finished_at=now, lease_until=None, last_error=None,
                attempts=Delivery.attempts + 1, last_status=200))
        for outcome in outcomes:
            if outcome.kind == "sent":
                continue
            attempts = outcome.claimed.attempts + 1
            delay = retry_delay(attempts, rng) if outcome.kind == "retry" else None
            values: dict[str, object] = {"attempts": attempts, "last_status": outcome.status,
                                         "last_error": (outcome.error or "")[:200] or None,
                                         "lease_until": None}
            if delay is None:
                values.update(state="failed", finished_at=now)
            else:
                after = parse_retry_after(outcome.retry_after, now)
                values.update(state="pending",
                              next_attempt_at=max(now + delay, after or now))
            await session.exec(update(Delivery).where(
                col(Delivery.id) == outcome.claimed.id, mine).values(**values))
        states = {h.host: h for h in (await session.exec(
            select(HostState).where(col(HostState.host).in_(list(host_results))))).all()}
        for host, results in host_results.items():
            _update_host(session, states.get(host), host, results, now)


def _update_host(session: AsyncSession, state: HostState | None, host: str,
                 results: list[Outcome], now: datetime) -> None:
    """Per-host health. A healthy host speaking cavage needs no row at all,
    so the common case of a fan-out writes nothing here."""
    successes = [r for r in results if r.kind == "sent"]
    # Only network errors and 5xx/429 speak of the host's health.
    failures = [r for r in results if r.kind == "retry"]
    if successes:
        scheme = successes[-1].scheme
        if state is None and scheme == "cavage":
            return
        if state is not None and state.consecutive_failures == 0 \
                and state.signature_scheme == scheme:
            return
        state = state or HostState(host=host)
        state.consecutive_failures = 0
        state.circuit_open_until = None
        state.last_success_at = now
        state.signature_scheme = scheme
    elif failures:
        state = state or HostState(host=host)
        state.consecutive_failures += len(failures)
        state.last_failure_at = now
        state.circuit_open_until = circuit_open_until(state.consecutive_failures, now)
    else:
        return
    session.add(state)


class DeliveryWorker:
    def __init__(self, db: Database, client: GuardedClient, urls: Urls, *,
                 concurrency: int = 64, batch: int = 500, poll_seconds: float = 1.0,
                 lease: timedelta = timedelta(minutes=2), worker_id: str | None = None,
                 signing_threads: int = 2) -> None:
        self.db = db
        self.client = client
        self.urls = urls
        self.concurrency = concurrency
        self.batch = batch
        self.poll_seconds = poll_seconds
        self.lease = lease
        self.worker_id = worker_id or secrets.token_hex(8)
        self.counts: Counter[str] = Counter()
        self._wake = asyncio.Event()
        self._signers: dict[int, RequestSigner] = {}
        self._rng = random.Random()
        self._pool = ThreadPoolExecutor(max_workers=signing_threads,
                                        thread_name_prefix="sign")

    def wake(self) -> None:
        self._wake.set()

    async def _signer(self, actor_id: int) -> RequestSigner:
        signer = self._signers.get(actor_id)
        if signer is None:
            async with self.db.read() as session:
                actor = await session.get(LocalActor, actor_id)
            if actor is None:
                raise LookupError("activity without its actor")
            signer = RequestSigner(actor.rsa_private_pem, self.urls.key_id(actor.username))
            self._signers[actor_id] = signer
        return signer

    async def _bodies(self, activity_ids: set[int]) -> dict[int, tuple[bytes, int]]:
        async with self.db.read() as session:
            rows = await session.exec(select(Activity.id, Activity.body, Activity.local_actor_id)
                                      .where(col(Activity.id).in_(activity_ids)))
            return {int(row[0] or 0): (row[1], row[2]) for row in rows.all()}

    async def _send(self, item: Claimed, body: bytes, signer: RequestSigner,
                    semaphore: asyncio.Semaphore) -> Outcome:
        async with semaphore:
            scheme = item.scheme
            for knock in (0, 1):
                try:
                    # RSA signing releases the GIL: in the pool it runs beside
                    # the event loop, on the other core (bench/fanout.py).
                    headers = await asyncio.get_running_loop().run_in_executor(
                        self._pool, signer, "POST", item.inbox_url, body, scheme)
                    result = await self.client.post_signed(item.inbox_url, body, headers)
                except FetchError as exc:
                    kind: Literal["retry", "permanent"] = (
                        "permanent" if exc.reason in ("forbidden_address", "bad_scheme")
                        else "retry")
                    return Outcome(item, kind, exc.status, exc.reason, None, scheme)
                verdict = classify_status(result.status)
                if verdict == "knock":
                    if knock == 0:
                        # Double-knocking: the other scheme, once, at once.
                        scheme = "rfc9421" if scheme == "cavage" else "cavage"
                        continue
                    verdict = "retry" if result.status == 401 else "permanent"
                if verdict == "sent":
                    return Outcome(item, "sent", result.status, None, None, scheme)
                return Outcome(item, verdict, result.status, f"HTTP {result.status}",
                               result.retry_after, scheme)
        raise AssertionError("unreachable")

    async def run_batch(self) -> int:
        """Claim and send one batch; returns how many rows were claimed."""
        claimed = await claim(self.db, self.worker_id, self.batch, self.lease)
        if not claimed:
            return 0
        bodies = await self._bodies({c.activity_id for c in claimed})
        semaphore = asyncio.Semaphore(self.concurrency)
        tasks = []
        for item in claimed:
            body, actor_id = bodies[item.activity_id]
            tasks.append(self._send(item, body, await self._signer(actor_id), semaphore))
        outcomes = list(await asyncio.gather(*tasks))
        await record(self.db, self.worker_id, outcomes, self._rng)
        for outcome in outcomes:
            self.counts[outcome.kind] += 1
            METRICS.delivery(outcome.kind)
        return len(claimed)

    async def run_once(self) -> int:
        """Send until nothing is due; returns the number of rows handled (tests)."""
        total = 0
        while (count := await self.run_batch()) > 0:
            total += count
        return total

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._wake.clear()
            try:
                count = await self.run_batch()
            except Exception:  # keep the loop alive; leases retry the work
                log.exception("delivery batch failed")
                count = 0
            if count >= self.batch:
                continue  # more is probably due: no pause
            if count:
                continue
            waiter = asyncio.ensure_future(self._wake.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({waiter, stopper}, timeout=self.poll_seconds,
                               return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            stopper.cancel()
