"""The delivery worker: claims due rows, signs and POSTs them with bounded
concurrency, and records the outcomes. The queue and its states are
described in ``queue.py``; no transaction is open while a request is in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlmodel import col
from sqlmodel import select as sm_select

from node.core.metrics import METRICS
from node.core.urls import Urls
from node.federation.delivery.queue import (
    Claimed,
    Kind,
    Outcome,
    Scheme,
    claim_due,
    complete,
    log_host,
    renew,
)
from node.federation.fetch import FetchError, GuardedClient
from node.federation.retry import after_knock, classify_status
from node.federation.signatures import RequestSigner
from node.storage.db import Database
from node.storage.models import Activity, LocalActor

log = logging.getLogger("hambastegi.delivery")

# A worker writes its outcomes when this many are waiting, or this long after
# the previous write: few transactions, yet progress (and the breaker) is
# visible while slow requests of the same batch are still running.
FLUSH_ROWS = 200
FLUSH_SECONDS = 0.5
# FetchError reasons that will never change by trying again.
PERMANENT_FETCH_ERRORS = frozenset({"forbidden_address", "bad_scheme"})


@dataclass(frozen=True, slots=True)
class _Source:
    """What a batch needs per activity: loaded once, used for every row."""

    body: bytes
    signer: RequestSigner | None
    error: str | None = None


@dataclass(slots=True)
class BatchReport:
    scanned: int = 0
    claimed: int = 0
    sent: int = 0


class DeliveryWorker:
    """Claims due rows, sends them with bounded concurrency, records outcomes.

    Counters (``sent``, ``retried``, ``failed``, ``postponed``, ``lost_leases``)
    count recorded outcomes of this worker, for /metrics and tests.
    """

    def __init__(self, db: Database, client: GuardedClient, urls: Urls, *,
                 concurrency: int = 64, batch: int = 500, poll_seconds: float = 1.0,
                 lease: timedelta = timedelta(minutes=2), worker_id: str | None = None,
                 signing_threads: int = 2,
                 idle_wait: Callable[[float], Awaitable[None]] | None = None) -> None:
        self.db = db
        self.client = client
        self.urls = urls
        self.concurrency = concurrency
        self.batch = batch
        self.poll_seconds = poll_seconds
        self.lease = lease
        self.worker_id = worker_id or secrets.token_hex(8)
        # RSA signing releases the GIL, so a small pool signs beside the event
        # loop on another core (bench/fanout.py); 0 signs inline.
        self.signing_threads = signing_threads
        # Returns when another process may have queued rows (node/storage/wakeup.py).
        self.idle_wait = idle_wait
        self.idle = False  # True while it waits on an empty queue (_idle)
        self.sent = 0
        self.retried = 0
        self.failed = 0
        self.postponed = 0
        self.lost_leases = 0
        self._wake = asyncio.Event()
        self._rng = random.Random()
        self._pool: ThreadPoolExecutor | None = None
        # By (username, PEM): a rotated key is picked up at the next batch.
        self._signers: dict[tuple[str, str], RequestSigner] = {}

    @property
    def counters(self) -> dict[str, int]:
        return {"sent": self.sent, "retried": self.retried, "failed": self.failed,
                "postponed": self.postponed, "lost_leases": self.lost_leases}

    def wake(self) -> None:
        """Deliver now: the in-process publisher calls this after enqueueing."""
        self._wake.set()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set. The batch in hand is finished first; if the
        task is cancelled instead, its rows go again when their lease runs out."""
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    report = await self.run_batch()
                except Exception:  # the database went away, say: try again later
                    log.exception("delivery batch failed", extra={"worker_id": self.worker_id})
                    report = BatchReport()
                if report.scanned >= self.batch:
                    continue  # a full batch: more is probably due, no pause
                await self._idle(stop)
        finally:
            self.close()

    async def _idle(self, stop: asyncio.Event) -> None:
        self.idle = True  # observable: tests and status wait for "nothing left to do"
        waiters: set[asyncio.Future[Any]] = {asyncio.create_task(self._wake.wait()),
                                             asyncio.create_task(stop.wait())}
        if self.idle_wait is not None:
            waiters.add(asyncio.ensure_future(self.idle_wait(self.poll_seconds)))
        try:
            await asyncio.wait(waiters, timeout=self.poll_seconds,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.idle = False
            for waiter in waiters:
                waiter.cancel()

    async def run_once(self) -> int:
        """Claim and send until nothing is due; returns how many were sent (tests)."""
        sent = 0
        while True:
            report = await self.run_batch()
            sent += report.sent
            if report.scanned == 0:
                return sent

    async def run_batch(self) -> BatchReport:
        """Claim one batch, send it, record every outcome."""
        started = time.perf_counter()
        result = await claim_due(self.db, self.worker_id, self.batch, self.lease)
        report = BatchReport(scanned=result.scanned, claimed=len(result.claimed))
        self.postponed += result.postponed
        if result.postponed:
            METRICS.delivery("postponed", result.postponed)
        if not result.claimed:
            return report
        sources = await self._sources({c.activity_id for c in result.claimed})
        semaphore = asyncio.Semaphore(self.concurrency)
        results: asyncio.Queue[Outcome] = asyncio.Queue()
        buffer: list[Outcome] = []
        tasks: list[asyncio.Task[None]] = []
        in_flight: set[int] = set()
        for item in result.claimed:
            source = sources.get(item.activity_id)
            if source is None or source.signer is None:
                error = source.error if source is not None else "activity_gone"
                buffer.append(Outcome(item, "permanent", error=error, scheme=item.scheme))
                continue
            in_flight.add(item.id)
            tasks.append(asyncio.create_task(
                self._deliver(item, source.body, source.signer, semaphore, results)))
        loop = asyncio.get_running_loop()
        renew_every = max(self.lease.total_seconds() / 3, 0.05)
        next_renew = loop.time() + renew_every
        # Outcomes wait at most FLUSH_SECONDS from the first one buffered.
        flush_at = loop.time() + FLUSH_SECONDS if buffer else None
        try:
            while in_flight:
                deadline = next_renew if flush_at is None else min(next_renew, flush_at)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout_at(deadline):
                        arrived = [await results.get()]
                        while not results.empty():
                            arrived.append(results.get_nowait())
                        for outcome in arrived:
                            in_flight.discard(outcome.claimed.id)
                        if not buffer:
                            flush_at = loop.time() + FLUSH_SECONDS
                        buffer += arrived
                if buffer and (len(buffer) >= FLUSH_ROWS or not in_flight
                               or (flush_at is not None and loop.time() >= flush_at)):
                    report.sent += await self._record(buffer)
                    buffer, flush_at = [], None
                if in_flight and loop.time() >= next_renew:
                    await self._renew(in_flight)
                    next_renew = loop.time() + renew_every
            if buffer:
                report.sent += await self._record(buffer)
        finally:
            for task in tasks:
                task.cancel()  # only on cancellation are any still running
        log.debug("delivery batch", extra={
            "worker_id": self.worker_id, "claimed": report.claimed, "sent": report.sent,
            "seconds": round(time.perf_counter() - started, 3)})
        return report

    async def _sources(self, activity_ids: set[int]) -> dict[int, _Source]:
        """Each activity's body and its actor's signer, once per batch."""
        query = (sm_select(col(Activity.id), col(Activity.body), col(LocalActor.username),
                           col(LocalActor.rsa_private_pem))
                 .join(LocalActor, col(LocalActor.id) == col(Activity.local_actor_id))
                 .where(col(Activity.id).in_(activity_ids)))
        async with self.db.read() as session:
            rows = (await session.exec(query)).all()
        sources: dict[int, _Source] = {}
        for activity_id, body, username, pem in rows:
            signer = self._signers.get((username, pem))
            if signer is None:
                try:
                    signer = RequestSigner(pem, self.urls.key_id(username))
                except (ValueError, TypeError):  # KeyFormatError is a ValueError
                    log.error("cannot sign: the actor's RSA key is unusable",
                              extra={"activity_id": activity_id, "actor": username})
                    sources[int(activity_id or 0)] = _Source(body, None, "bad_key")
                    continue
                if len(self._signers) > 1000:
                    self._signers.clear()  # keys of deleted or rotated actors
                self._signers[(username, pem)] = signer
            sources[int(activity_id or 0)] = _Source(body, signer)
        return sources

    async def _sign(self, signer: RequestSigner, url: str, body: bytes,
                    scheme: Scheme) -> Mapping[str, str]:
        if self.signing_threads <= 0:
            return signer("POST", url, body, scheme)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.signing_threads,
                                            thread_name_prefix="sign")
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, signer, "POST", url, body, scheme)

    async def _deliver(self, item: Claimed, body: bytes, signer: RequestSigner,
                       semaphore: asyncio.Semaphore, results: asyncio.Queue[Outcome]) -> None:
        try:
            async with semaphore:
                outcome = await self._send(item, body, signer)
        except Exception:  # a bug must cost a retry, not the whole batch's outcomes
            log.exception("delivery crashed", extra={"delivery_id": item.id})
            outcome = Outcome(item, "retry", error="internal_error", scheme=item.scheme)
        results.put_nowait(outcome)

    async def _send(self, item: Claimed, body: bytes, signer: RequestSigner) -> Outcome:
        """POST once; on 400/401 once more at once with the other scheme."""
        scheme = item.scheme
        knocked = False
        try:
            # One URL object: its string form is signed and the object itself is
            # sent, so the signed request-target is byte for byte the one on the wire.
            target = self.client.check_url(item.inbox_url)
        except FetchError as exc:
            return Outcome(item, "permanent", exc.status, exc.reason, scheme=scheme)
        while True:
            headers = await self._sign(signer, str(target), body, scheme)
            try:
                result = await self.client.post_signed(target, body, headers)
            except FetchError as exc:
                if exc.reason in PERMANENT_FETCH_ERRORS:
                    return Outcome(item, "permanent", exc.status, exc.reason, scheme=scheme)
                return Outcome(item, "retry", exc.status, exc.reason, scheme=scheme,
                               host_ok=False)
            status = result.status
            verdict = classify_status(status)
            if verdict == "knock" and not knocked:
                # Double knock: maybe the host verifies only the other scheme.
                knocked = True
                scheme = "rfc9421" if scheme == "cavage" else "cavage"
                continue
            if verdict == "sent":
                return Outcome(item, "sent", status, scheme=scheme, host_ok=True)
            kind: Kind = after_knock(status) if verdict == "knock" else verdict
            # 5xx, 408 and 429 say the host is unwell; other answers that it works.
            unwell = verdict == "retry"
            return Outcome(item, kind, status, f"http_{status}", result.retry_after, scheme,
                           host_ok=not unwell)

    async def _record(self, outcomes: list[Outcome]) -> int:
        """Write outcomes (one retry on a database hiccup); returns how many sent."""
        for attempt in (1, 2):
            try:
                written = await complete(self.db, self.worker_id, outcomes, rng=self._rng)
                break
            except Exception:
                if attempt == 2:
                    # The rows stay leased; when the lease runs out they go again.
                    log.exception("recording delivery outcomes failed",
                                  extra={"worker_id": self.worker_id, "rows": len(outcomes)})
                    return 0
                await asyncio.sleep(0.2)
        self.lost_leases += len(outcomes) - len(written)
        sent = 0
        for record in written:
            if record.state == "sent":
                sent += 1
            elif record.state == "pending":
                self.retried += 1
                METRICS.delivery("retried")
                log.debug("delivery retried", extra=_log_fields(record.outcome))
            else:
                self.failed += 1
                METRICS.delivery("failed")
                log.info("delivery failed", extra=_log_fields(record.outcome))
        self.sent += sent
        if sent:
            METRICS.delivery("sent", sent)
        return sent

    async def _renew(self, in_flight: set[int]) -> None:
        try:
            held = await renew(self.db, self.worker_id, sorted(in_flight), self.lease)
        except Exception:
            log.exception("lease renewal failed", extra={"worker_id": self.worker_id})
            return
        if held < len(in_flight):
            log.warning("leases lost while sending",
                        extra={"worker_id": self.worker_id, "rows": len(in_flight) - held})


def _log_fields(outcome: Outcome) -> dict[str, Any]:
    return {"delivery_id": outcome.claimed.id, "activity_id": outcome.claimed.activity_id,
            "host": log_host(outcome.claimed.host), "status": outcome.status,
            "reason": outcome.error, "attempts": outcome.claimed.attempts + 1}

