"""The delivery worker: per-host lanes over the fan-out log, claimed
continuously (no batch barrier), each walking its fan-outs in order.

- Up to ``concurrency`` lanes send at once; as lanes finish, more are
  claimed, so a slow or dead host holds one slot, never the others.
- Lookahead: when lanes finish fast, more lanes than slots are claimed and
  planned, as many as finish during about two claims (at most
  ``LOOKAHEAD`` x ``concurrency``), so a slot that frees starts the next lane at
  once instead of waiting for the next claim's transaction (those round trips,
  not the sends, bounded the rate: bench/profiles/README.md). Slow lanes get
  no lookahead: lanes do not wait in one worker's hand while another is idle.
- A lane takes its next few fan-outs for its host per claim (``WINDOW``),
  resolves its host's inboxes for each (one query per actor for all lanes
  claimed together: ``lanes.follower_targets``),
  sends them (a few at once), and stops at the first failure: the lane backs
  off (``retry.lane_failed``), keeping its place and the inboxes already done.
- Progress is written in batches (``lanes.flush``: every ``FLUSH_ROWS``
  outcomes or ``FLUSH_SECONDS``), only by the lease holder; leases are short and
  renewed every third of a lease while lanes are in hand (``renew_lanes``), by a
  task of their own (``_keep_leases``) so that a claim held up cannot let them
  run out under walks still sending; a walk whose lease may have run out stops.
- A claim never returns a lane this worker still walks, so none is dropped and
  left ``sending``; ``check_invariants`` says so (``invariants.py``).

Memory is bounded by the lanes in hand (fan-outs per claim, times at most 50 inboxes
per host), never by the number of followers. docs/ARCHITECTURE.md §2.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import random
import secrets
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from datetime import timedelta

from sqlmodel import col
from sqlmodel import select as sm_select

from node.core.idle import IdleWait, wait_for_work
from node.core.metrics import METRICS
from node.core.urls import Urls
from node.federation.delivery.invariants import (
    Invariants,
    orphaned_lanes,
    unexplained_failures,
)
from node.federation.delivery.lanes import (
    Failure,
    FanoutInfo,
    LaneClaim,
    LaneWrite,
    Scheme,
    fanouts_after,
    flush_and_claim,
    follower_targets,
    lanes_due,
    renew_lanes,
)
from node.federation.delivery.sending import Result, Sender
from node.federation.delivery.targets import inbox_host, log_host
from node.federation.fetch import GuardedClient
from node.federation.retry import lane_failed, lane_succeeded
from node.federation.signatures import RequestSigner
from node.storage.db import Database, utcnow
from node.storage.models import Activity, LocalActor

log = logging.getLogger("hambastegi.delivery")

# Lane progress is written when this many outcomes wait, or this long after
# the first of them: few transactions, and a crash repeats little.
FLUSH_ROWS = 200
FLUSH_SECONDS = 0.2
# Lanes claimed ahead of free slots, at most, in multiples of ``concurrency``.
LOOKAHEAD = 3
# Activities (body and signer) kept per worker.
SOURCE_CACHE = 256
# Fan-outs a claim looks through for a lane's next ones for its host.
WINDOW = 256



@dataclass(frozen=True, slots=True)
class _Source:
    """What sending an activity needs: its body and its actor's signer."""

    body: bytes
    signer: RequestSigner | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class _Step:
    """One fan-out of a lane's walk, with the host's inboxes for it, and the
    headers that go with it there (FEP-8fcf, for a fan-out to followers)."""

    fanout: FanoutInfo
    inboxes: tuple[str, ...]
    # Held by the step itself, not looked up in the bounded cache when the lane
    # finally gets a slot: lanes claimed ahead outlive cache entries (issue 24).
    # None: the activity is not in the database (really gone).
    source: _Source | None
    headers: Mapping[str, str] | None = None


# (actor id, hosts) → per host the headers a delivery of the actor's to its
# followers there carries (federation/followers_sync.py builds them).
SyncHeaders = Callable[[int, Sequence[str]], Awaitable[dict[str, dict[str, str]]]]


class DeliveryWorker:
    """Claims lanes, sends their fan-outs, records progress.

    Counters (``sent``, ``retried``, ``failed``, ``lost_leases``) count outcomes
    of this worker: inboxes sent, failed attempts (a lane backing off), inboxes
    given up, lanes whose lease went to another worker.
    """

    def __init__(self, db: Database, client: GuardedClient, urls: Urls, *,
                 concurrency: int = 64, batch: int = 500, poll_seconds: float = 1.0,
                 lease: timedelta = timedelta(seconds=10), worker_id: str | None = None,
                 signing_threads: int = 2, fanouts_per_claim: int = 8, per_lane: int = 4,
                 request_timeout: float = 30.0, idle_wait: IdleWait | None = None,
                 signing_pool: Executor | None = None,
                 sync_headers: SyncHeaders | None = None,
                 before_claim: Callable[[], Awaitable[object]] | None = None) -> None:
        """``before_claim``: run before lanes are claimed (the node refreshes its
        domain rules there, so a block made elsewhere stops the next claim's sends)."""
        self.db = db
        self.sync_headers = sync_headers
        self.before_claim = before_claim
        self.urls = urls
        self.concurrency = concurrency
        self.lookahead = LOOKAHEAD  # 0: claim no more lanes than slots (bench/fanout.py)
        self._slots = asyncio.Semaphore(concurrency)  # lanes sending at once
        self._finished: deque[float] = deque()  # when lanes finished, the last second
        self._plan_seconds = 0.0  # how long the last claim (flush, claim, plan) took
        self.batch = batch  # lanes claimed at once, at most
        self.poll_seconds = poll_seconds
        self.lease = lease
        self.worker_id = worker_id or secrets.token_hex(8)
        self.fanouts_per_claim = fanouts_per_claim
        self.per_lane = per_lane
        # "Return when something may have changed, or after this many seconds":
        # a cross-process wake-up (LISTEN/NOTIFY, a change probe) plugs in here.
        self.idle_wait = idle_wait
        self.sender = Sender(client, signing_threads=signing_threads, timeout=request_timeout,
                             pool=signing_pool)
        self.idle = False  # True while it waits with nothing to do (_idle)
        self.sent = 0
        self.retried = 0
        self.failed = 0
        self.lost_leases = 0
        self._wake = asyncio.Event()
        self._rng = random.Random()
        self._signers: dict[tuple[str, str], RequestSigner] = {}
        self._sources: OrderedDict[int, _Source] = OrderedDict()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._claims: dict[str, LaneClaim] = {}
        self._writes: dict[str, LaneWrite] = {}
        self._failures: list[Failure] = []
        self._outcomes = 0
        self._first_buffered: float | None = None
        self._lost: set[str] = set()
        self._mark: int | None = None  # fast-forward: the last fan-out looked at
        self._renew_at = 0.0
        self._lease_until: dict[str, float] = {}  # host -> loop time its lease lasts until
        # Held from a claim until its lanes' walks are started (check_invariants).
        self._claiming = asyncio.Lock()

    @property
    def counters(self) -> dict[str, int]:
        return {"sent": self.sent, "retried": self.retried, "failed": self.failed,
                "lost_leases": self.lost_leases}

    async def check_invariants(self) -> Invariants:
        """The queue's invariants as this worker sees them (``invariants.py``):
        lanes leased to it that it does not walk, deliveries ended for no remote
        reason. Taken between claims, when every lane leased to this worker is
        walked by it or has progress waiting to be written."""
        async with self._claiming:
            held = set(self._tasks) | set(self._writes)
            async with self.db.read() as session:
                orphans = await orphaned_lanes(session, self.worker_id, held)
                unexplained = await unexplained_failures(session)
        if orphans:
            log.error("lanes leased to this worker and walked by none", extra={
                "worker_id": self.worker_id, "lanes": len(orphans)})
        return Invariants(len(orphans), unexplained)

    def wake(self) -> None:
        """Deliver now: the in-process publisher calls this after publishing."""
        self._wake.set()

    def close(self) -> None:
        self.sender.close()

    # --- the loop -----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set; then lanes in hand are interrupted, their
        progress written and the lanes released (unfinished sends go again)."""
        keeper = asyncio.create_task(self._keep_leases(stop))
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    busy = await self._step()
                except Exception:  # the database went away, say: try again later
                    log.exception("delivery step failed", extra={"worker_id": self.worker_id})
                    busy = False
                if not busy:
                    await self._idle(stop)
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
            await self._shutdown()
            self.close()

    async def run_once(self) -> int:
        """Work until nothing is due; returns how many inboxes were sent (tests)."""
        before = self.sent
        while await self._step():
            pass
        return self.sent - before

    async def _step(self) -> bool:
        """Wait a little for lanes in hand, then in one transaction write their
        progress and top them up; False when there is nothing in hand and
        nothing due."""
        loop = asyncio.get_running_loop()
        if self._tasks:
            wake = asyncio.create_task(self._wake.wait())
            try:
                await asyncio.wait([*self._tasks.values(), wake], timeout=FLUSH_SECONDS,
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                wake.cancel()
            self._harvest()
            if self._tasks and loop.time() >= self._renew_at:
                await self._renew()
        in_hand = self._in_hand(loop.time())
        free = min(in_hand - len(self._tasks), self.batch)
        # Top up when a quarter of the lanes in hand are done (fewer, larger claims).
        claim = free > 0 and (free * 4 >= in_hand or not self._tasks)
        flush_due = bool(self._writes) and (
            self._outcomes >= FLUSH_ROWS or not self._tasks or claim or (
                self._first_buffered is not None
                and loop.time() - self._first_buffered >= FLUSH_SECONDS))
        if not claim and not flush_due:
            return bool(self._tasks)
        if not self._tasks and not self._writes and not await lanes_due(self.db):
            return False  # woken for nothing: no write transaction
        if claim and self.before_claim is not None:
            await self.before_claim()
        planning = loop.time()
        async with self._claiming:
            # Walks that ended while the claim hook ran are finished here, right
            # before their progress is written: a lane whose release is in this
            # flush may be claimed again in the same transaction, and must then
            # get a new walk. Lanes still walked are not claimed at all (their
            # lease may have run out while this loop was held up): a claim is
            # never dropped, so no lane stays `sending` to a worker that does not
            # walk it (issue 24; docs/ARCHITECTURE.md §2, "Invariants").
            self._harvest()
            flushed, claims = await self._flush(free if claim else 0, exclude=set(self._tasks))
            if claims:
                if not self._tasks:  # a new burst: the claim just leased them
                    self._renew_at = planning + self.lease.total_seconds() / 3
                self._leased(claims, planning)
                await self._start(claims)
                self._plan_seconds = loop.time() - planning
        return bool(self._tasks or claims or flushed)

    def _harvest(self) -> None:
        """Forget walks that ended; a crashed one's lane is released unchanged."""
        loop = asyncio.get_running_loop()
        for host, task in list(self._tasks.items()):
            if task.done():
                del self._tasks[host]
                if host not in self._writes:
                    self._lease_until.pop(host, None)
                self._finished.append(loop.time())
                if not task.cancelled() and task.exception() is not None:
                    log.error("lane crashed", exc_info=task.exception(),
                              extra={"host": log_host(host)})
                    self._release_unchanged(host)

    def _leased(self, hosts: Iterable[str] | Iterable[LaneClaim], since: float) -> None:
        """The lanes' leases run at least until ``since`` (loop time, taken before
        the transaction that leased or renewed them) plus a lease."""
        until = since + self.lease.total_seconds()
        for item in hosts:
            host = item.host if isinstance(item, LaneClaim) else item
            self._lease_until[host] = max(self._lease_until.get(host, 0.0), until)

    def _lease_ok(self, host: str) -> bool:
        """Whether a walk may still send for the lane: its lease has at least a
        third left. A walk whose lease may have gone to another worker stops
        rather than send what that worker will send again (issue 24)."""
        left = self._lease_until.get(host, 0.0) - asyncio.get_running_loop().time()
        return left > self.lease.total_seconds() / 3

    async def _keep_leases(self, stop: asyncio.Event) -> None:
        """Renew the leases of lanes in hand every third of a lease, whatever
        the claiming loop is doing. The loop renews too, but it waits on the
        claim hook, the claim's transaction and the planning queries; held up
        past the lease it let another worker take lanes whose walks were still
        sending here: everything those walks sent went twice (issue 24)."""
        period = self.lease.total_seconds() / 3
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=max(0.01, self._renew_at
                                                                 - loop.time()))
            if stop.is_set():
                return
            if loop.time() < self._renew_at:
                continue  # the loop renewed meanwhile
            if not self._tasks:
                self._renew_at = loop.time() + period
                continue
            if self._writes and not self._claiming.locked():
                # The loop is held up before its claim: write the progress of the
                # walks too, so that a lease that runs out anyway (the write lock
                # came too late) costs no re-walk of what was sent meanwhile.
                async with self._claiming:
                    await self._flush()
            await self._renew()

    def _in_hand(self, now: float) -> int:
        """Lanes to hold: the sending slots, plus the lanes that finish during
        about two claims at the recent rate (see the module docstring)."""
        while self._finished and self._finished[0] < now - 1.0:
            self._finished.popleft()
        ahead = int(2 * len(self._finished) * self._plan_seconds)
        return self.concurrency + min(ahead, self.lookahead * self.concurrency)

    async def _idle(self, stop: asyncio.Event) -> None:
        self.idle = True  # observable: tests and status wait for "nothing left to do"
        try:
            await wait_for_work(self._wake, stop, self.idle_wait, self.poll_seconds)
        finally:
            self.idle = False

    async def _shutdown(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        for host in list(self._tasks):
            self._release_unchanged(host)
        self._tasks.clear()
        if self._writes:
            with contextlib.suppress(Exception):
                await self._flush()

    # --- lanes --------------------------------------------------------------------------

    async def _start(self, claims: Sequence[LaneClaim]) -> None:
        """Plan the claimed lanes (fan-outs, inboxes, activities) with a few
        queries for all of them, then start one task per lane.

        A lane's walk is its next ``fanouts_per_claim`` fan-outs *for its host*,
        looked for among up to ``WINDOW`` fan-outs after its cursor; the lane
        then stands past everything it looked through. Counting every fan-out
        instead made a lane opened for one Accept walk the rest of the log
        eight at a time, a claim each, while the Accepts of the thousand hosts
        after it piled up (issue 24). One read of the log serves every lane
        whose cursor falls inside a window already read."""
        by_cursor: dict[int, list[FanoutInfo]] = {}
        window: list[FanoutInfo] = []
        for cursor in sorted({c.cursor for c in claims}):
            if window and cursor < window[-1].id:  # inside the window read last
                by_cursor[cursor] = window[bisect.bisect_right([f.id for f in window], cursor):]
                continue
            window = await fanouts_after(self.db, cursor, WINDOW)
            by_cursor[cursor] = window
        wanted: dict[int, set[str]] = {}  # actor -> hosts
        for claim in claims:
            for fanout in by_cursor[claim.cursor]:
                if fanout.followers_of is not None:
                    wanted.setdefault(fanout.followers_of, set()).add(claim.host)
        targets: dict[tuple[int, str], list[str]] = {}
        headers: dict[tuple[int, str], dict[str, str]] = {}
        for actor_id, hosts in wanted.items():
            for host, inboxes in (await follower_targets(self.db, actor_id,
                                                         sorted(hosts))).items():
                targets[(actor_id, host)] = inboxes
            if self.sync_headers is not None:
                try:
                    for host, found in (await self.sync_headers(actor_id, sorted(hosts))).items():
                        headers[(actor_id, host)] = found
                except Exception:  # an optional header never holds up a delivery
                    log.exception("collection synchronization header failed")
        plans: list[tuple[LaneClaim, list[tuple[FanoutInfo, tuple[str, ...],
                                               Mapping[str, str] | None]], int]] = []
        # Each fan-out's explicit inboxes by host, parsed once per claim: the
        # lanes of a claim share windows, and parsing every URL for every lane
        # was most of a burst's planning time.
        explicit: dict[int, dict[str, list[str]]] = {}

        def inboxes_at(fanout: FanoutInfo, host: str) -> list[str]:
            found = explicit.get(fanout.id)
            if found is None:
                found = explicit[fanout.id] = {}
                for url in fanout.inboxes:
                    found.setdefault(inbox_host(url) or "", []).append(url)
            return found.get(host, [])

        for claim in claims:
            chosen_steps: list[tuple[FanoutInfo, tuple[str, ...], Mapping[str, str] | None]] = []
            rows = by_cursor[claim.cursor]
            through = rows[-1].id if rows else claim.cursor
            for fanout in rows:
                chosen = set(inboxes_at(fanout, claim.host))
                extra = None
                if fanout.followers_of is not None:
                    chosen.update(targets.get((fanout.followers_of, claim.host), ()))
                    extra = headers.get((fanout.followers_of, claim.host))
                if not chosen:
                    continue  # nothing for this host: looked through, not walked
                chosen_steps.append((fanout, tuple(sorted(chosen)), extra))
                if len(chosen_steps) == self.fanouts_per_claim:
                    through = fanout.id
                    break
            plans.append((claim, chosen_steps, through))
        sources = await self._load_sources(
            {f.activity_id for _, chosen_steps, _ in plans for f, _, _ in chosen_steps})
        for claim, chosen_steps, through in plans:
            steps = [_Step(f, inboxes, sources.get(f.activity_id), extra)
                     for f, inboxes, extra in chosen_steps]
            self._claims[claim.host] = claim
            self._lost.discard(claim.host)
            self._tasks[claim.host] = asyncio.create_task(self._walk(claim, steps, through))

    async def _walk(self, claim: LaneClaim, steps: Sequence[_Step], through: int) -> None:
        """Wait for a sending slot, then walk the lane."""
        async with self._slots:
            await self._walk_lane(claim, steps, through)

    async def _walk_lane(self, claim: LaneClaim, steps: Sequence[_Step], through: int) -> None:
        """Send the lane's fan-outs in order; stop at the first failed attempt.
        Walked to the end, the lane stands at ``through`` (the fan-outs between
        had nothing for its host)."""
        state = LaneWrite(claim.host, claim.cursor, claim.attempts, utcnow(),
                          sorted(claim.done) or None, claim.scheme)
        for step in steps:
            if claim.host in self._lost:
                return
            if not self._lease_ok(claim.host):
                log.warning("lane walk stopped: its lease was not renewed in time",
                            extra={"host": log_host(claim.host), "worker_id": self.worker_id})
                break
            done = set(state.done or ())
            todo = [u for u in step.inboxes if u not in done]
            source = step.source
            results: list[Result]
            if source is None or source.signer is None:
                error = source.error if source is not None else "activity_gone"
                results = [Result(u, "permanent", None, error) for u in todo]
            else:
                results = await self._send_all(todo, source, source.signer, state.scheme,
                                               step.headers)
            retry = [r for r in results if r.kind == "retry"]
            for result in results:
                if result.kind == "sent":
                    done.add(result.inbox)
                    state.scheme = result.scheme
                elif result.kind == "permanent":
                    done.add(result.inbox)
                    self._fail(step.fanout, claim.host, result.inbox, result.status, result.error)
            if any(r.host_ok for r in results):
                state.attempts = lane_succeeded()
                state.succeeded = True
            sent = sum(r.kind == "sent" for r in results)
            self.sent += sent
            if sent:
                METRICS.delivery("sent", sent)
            self._outcomes += len(results)
            if retry:
                worst = retry[0]
                lane = lane_failed(state.attempts, utcnow(), self._rng,
                                   max((r.retry_after for r in retry if r.retry_after),
                                       default=None))
                self.retried += 1
                METRICS.delivery("retried")
                state.attempts, state.next_attempt_at = lane.attempts, lane.next_attempt_at
                state.last_status, state.last_error = worst.status, worst.error
                state.failed = True
                log.info("delivery lane backs off", extra={
                    "host": log_host(claim.host), "fanout_id": step.fanout.id,
                    "status": worst.status, "reason": worst.error, "attempts": lane.attempts,
                    "give_up": lane.give_up})
                if not lane.give_up:
                    state.done = sorted(done) or None
                    self._buffer(replace(state, release=True))
                    return
                for result in retry:
                    self._fail(step.fanout, claim.host, result.inbox, result.status,
                               f"attempts_used_up:{result.error}")
            state.cursor, state.done = step.fanout.id, None
            self._buffer(replace(state))
            state.succeeded = state.failed = False
        else:
            if through > state.cursor:
                state.cursor, state.done = through, None
        self._buffer(replace(state, release=True))

    async def _send_all(self, inboxes: Sequence[str], source: _Source, signer: RequestSigner,
                        known: Scheme, extra: Mapping[str, str] | None = None
                        ) -> list[Result]:
        """Send to a host's inboxes, ``per_lane`` at a time."""
        gate = asyncio.Semaphore(self.per_lane)

        async def one(inbox: str) -> Result:
            async with gate:
                try:
                    return await self.sender.send(inbox, source.body, signer, known, extra)
                except Exception:  # a bug costs a retry, not the lane's progress
                    log.exception("delivery crashed", extra={"host": log_host(
                        inbox_host(inbox) or "")})
                    return Result(inbox, "retry", error="internal_error", scheme=known)

        return list(await asyncio.gather(*(one(inbox) for inbox in inboxes)))

    def _fail(self, fanout: FanoutInfo, host: str, inbox: str, status: int | None,
              error: str | None) -> None:
        self.failed += 1
        METRICS.delivery("failed")
        log.info("delivery failed", extra={"host": log_host(host), "fanout_id": fanout.id,
                                           "activity_id": fanout.activity_id,
                                           "status": status, "reason": error})
        self._failures.append(Failure(fanout.id, fanout.activity_id, host, inbox, status, error))

    def _buffer(self, write: LaneWrite) -> None:
        if write.host in self._writes:
            # Keep what an earlier, unflushed write of the lane observed.
            earlier = self._writes[write.host]
            write.succeeded |= earlier.succeeded
            write.failed |= earlier.failed
        self._writes[write.host] = write
        if self._first_buffered is None:
            self._first_buffered = asyncio.get_running_loop().time()

    def _release_unchanged(self, host: str) -> None:
        """Release a lane whose walk ended without a final write (cancelled,
        crashed): as far as it was written, to be walked again."""
        claim = self._claims.get(host)
        write = self._writes.get(host)
        if write is not None:
            write.release = True
        elif claim is not None:
            self._buffer(LaneWrite(host, claim.cursor, claim.attempts, utcnow(),
                                   sorted(claim.done) or None, claim.scheme, release=True))

    async def _flush(self, claim: int = 0, *, exclude: Collection[str] = ()
                     ) -> tuple[int, list[LaneClaim]]:
        """Write buffered progress and, with ``claim`` > 0, claim up to that many
        lanes (none of ``exclude``), in one transaction. Returns (lanes written,
        lanes claimed)."""
        started = asyncio.get_running_loop().time()
        writes, failures = list(self._writes.values()), self._failures
        self._writes, self._failures = {}, []
        self._outcomes, self._first_buffered = 0, None
        for attempt in (1, 2):
            try:
                result, claims, self._mark = await flush_and_claim(
                    self.db, self.worker_id, writes, failures, self.lease, claim,
                    skip_after=self._mark, exclude=exclude)
                break
            except Exception:
                if attempt == 2:
                    # Kept for the next flush (the walks' newer writes win): dropped,
                    # a released lane stayed `sending` at its old cursor, and was
                    # walked again from there once its lease ran out (issue 24).
                    log.exception("recording lane progress failed",
                                  extra={"worker_id": self.worker_id, "lanes": len(writes)})
                    self._restore(writes, failures)
                    return 0, []
                await asyncio.sleep(0.2)
        self.lost_leases += len(result.lost)
        self._lost |= result.lost
        self._leased((w.host for w in writes if not w.release and w.host in result.written),
                     started)
        for write in writes:
            if write.release or write.host in result.lost:
                self._claims.pop(write.host, None)
                if write.host not in self._tasks:
                    self._lease_until.pop(write.host, None)
        return len(writes), claims

    def _restore(self, writes: Sequence[LaneWrite], failures: list[Failure]) -> None:
        """Put unwritten progress back in front of what was buffered since."""
        newer = self._writes
        self._writes = {w.host: w for w in writes}
        for write in newer.values():
            self._buffer(write)
        self._failures = failures + self._failures
        if self._writes and self._first_buffered is None:
            self._first_buffered = asyncio.get_running_loop().time()

    async def _renew(self) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        self._renew_at = started + self.lease.total_seconds() / 3
        hosts = sorted(set(self._tasks) | {h for h, w in self._writes.items()})
        try:
            held = await renew_lanes(self.db, self.worker_id, hosts, self.lease)
        except Exception:
            log.exception("lease renewal failed", extra={"worker_id": self.worker_id})
            return
        self._leased(hosts, started)
        if held < len(hosts):
            log.warning("leases lost while sending",
                        extra={"worker_id": self.worker_id, "lanes": len(hosts) - held})

    async def _load_sources(self, activity_ids: set[int]) -> dict[int, _Source]:
        """Each activity's body and its actor's signer: from the bounded cache,
        else (a miss) from the database, and kept in the cache. An id missing
        from the answer is an activity that is not in the database."""
        found: dict[int, _Source] = {}
        for cached in activity_ids & set(self._sources):
            self._sources.move_to_end(cached)
            found[cached] = self._sources[cached]
        missing = activity_ids - set(self._sources)
        if not missing:
            return found
        query = (sm_select(col(Activity.id), col(Activity.body), col(LocalActor.username),
                           col(LocalActor.rsa_private_pem))
                 .join(LocalActor, col(LocalActor.id) == col(Activity.local_actor_id))
                 .where(col(Activity.id).in_(missing)))
        async with self.db.read() as session:
            rows = (await session.exec(query)).all()
        for activity_id, body, username, pem in rows:
            signer = self._signers.get((username, pem))
            source = _Source(body, signer)
            if signer is None:
                try:
                    # Loading checks the key (~40 ms of CPU): off the event loop,
                    # where it held up every lane in hand (bench/profiles/README.md).
                    signer = await asyncio.to_thread(RequestSigner, pem,
                                                     self.urls.key_id(username))
                    if len(self._signers) > 1000:
                        self._signers.clear()  # keys of deleted or rotated actors
                    self._signers[(username, pem)] = signer
                    source = _Source(body, signer)
                except (ValueError, TypeError):  # KeyFormatError is a ValueError
                    log.error("cannot sign: the actor's RSA key is unusable",
                              extra={"activity_id": activity_id, "actor": username})
                    source = _Source(body, None, "bad_key")
            self._sources[int(activity_id or 0)] = source
            found[int(activity_id or 0)] = source
        while len(self._sources) > SOURCE_CACHE:
            self._sources.popitem(last=False)
        return found
