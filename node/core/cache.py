"""Serialised hot documents (actor, WebFinger, NodeInfo), kept briefly in memory.

Each process keeps its own copy; a change made in this process invalidates at
once. A change made by another process (the CLI, a second web process) bumps a
counter in the database (triggers, migration 0005_change_counter); the
ChangeWatcher reads it before a request is served and clears the cache when it
moved, so the next request after the other process committed sees the change.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from typing import Any, Generic, TypeVar

import orjson

DEFAULT_TTL = 10.0
MAX_ENTRIES = 4096

T = TypeVar("T")


class DocCache:
    def __init__(self) -> None:
        self._entries: dict[Hashable, tuple[float, bytes, str]] = {}

    def get(self, key: Hashable) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def etag(self, key: Hashable) -> str | None:
        entry = self._entries.get(key)
        return entry[2] if entry is not None else None

    def put(self, key: Hashable, doc: Any, ttl: float = DEFAULT_TTL) -> bytes:
        return self.put_raw(key, orjson.dumps(doc), ttl)

    def put_raw(self, key: Hashable, body: bytes, ttl: float = DEFAULT_TTL) -> bytes:
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        self._entries[key] = (time.monotonic() + ttl, body, etag)
        return body

    def clear(self) -> None:
        self._entries.clear()


class KeyCache:
    """Verified-sender keys in memory: the inbox's hot path must not query the
    database (or parse PEM) per request. Entries expire, and any refresh of
    the actor (Update, rotation) drops them at once in this process.

    Two more memories keep hostile or broken senders from making us fetch:
    - failures: a key id that could not be had is not fetched again for
      ``failure_ttl`` seconds (a negative cache);
    - refetches: an actor we know, signing with a key id it does not list
      (rotation to a new key id), is refetched at most once per
      ``refetch_interval`` seconds.
    """

    def __init__(self, ttl: float = 600.0, max_entries: int = 10_000,
                 failure_ttl: float = 60.0, refetch_interval: float = 60.0) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._failure_ttl = failure_ttl
        self._refetch_interval = refetch_interval
        self._entries: dict[str, tuple[float, Any]] = {}
        # actor uri → its cached key ids: forgetting an actor must not scan
        # every entry (first contact with thousands of actors did, per actor).
        self._by_actor: dict[str, set[str]] = {}
        self._failures: dict[str, tuple[float, str]] = {}
        self._refetched: dict[str, float] = {}

    def get(self, key_id: str) -> Any:
        entry = self._entries.get(key_id)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key_id: str, value: Any) -> None:
        """``value``: (actor, key); the actor's ``uri`` indexes it."""
        if len(self._entries) >= self._max:
            self._entries.clear()
            self._by_actor.clear()
        previous = self._entries.get(key_id)
        if previous is not None:
            self._unindex(key_id, previous[1][0].uri)
        self._entries[key_id] = (time.monotonic() + self._ttl, value)
        self._by_actor.setdefault(value[0].uri, set()).add(key_id)
        self._failures.pop(key_id, None)

    def clear(self) -> None:
        self._entries.clear()
        self._by_actor.clear()
        self._failures.clear()
        self._refetched.clear()

    def forget_actor(self, actor_uri: str) -> None:
        for key_id in self._by_actor.pop(actor_uri, ()):
            self._entries.pop(key_id, None)

    def _unindex(self, key_id: str, actor_uri: str) -> None:
        key_ids = self._by_actor.get(actor_uri)
        if key_ids is not None:
            key_ids.discard(key_id)
            if not key_ids:
                del self._by_actor[actor_uri]

    def fail(self, key_id: str, reason: str) -> None:
        if len(self._failures) >= self._max:
            self._failures.clear()
        self._failures[key_id] = (time.monotonic() + self._failure_ttl, reason)

    def failure(self, key_id: str) -> str | None:
        """Why the key id could not be had, if that was moments ago."""
        entry = self._failures.get(key_id)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def may_refetch(self, actor_uri: str) -> bool:
        """True at most once per interval per actor (and then counts as used)."""
        now = time.monotonic()
        last = self._refetched.get(actor_uri)
        if last is not None and now - last < self._refetch_interval:
            return False
        if len(self._refetched) >= self._max:
            self._refetched.clear()
        self._refetched[actor_uri] = now
        return True


class SingleFlight(Generic[T]):
    """One run of a coroutine per key at a time: callers arriving while it runs
    wait for its result (or its exception) instead of starting their own.

    The inbox's first contact: a burst of requests signed by one unknown actor
    fetches its document once (docs/ARCHITECTURE.md §3, verify). The run is a
    task of its own, so a caller that goes away (its client hung up) does not
    cancel it for the others; it runs in the first caller's context, so the
    first caller's fetch budget pays for it."""

    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Future[T]] = {}
        self._waiting: dict[Hashable, int] = {}

    def __len__(self) -> int:
        return len(self._running)

    def waiting(self, key: Hashable) -> int:
        """How many callers wait for the run of ``key`` now (tests, metrics)."""
        return self._waiting.get(key, 0)

    async def run(self, key: Hashable, start: Callable[[], Coroutine[Any, Any, T]]) -> T:
        running = self._running.get(key)
        if running is None:
            running = asyncio.ensure_future(start())
            self._running[key] = running
            running.add_done_callback(lambda done: self._finished(key, done))
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            return await asyncio.shield(running)
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key]

    def _finished(self, key: Hashable, done: asyncio.Future[T]) -> None:
        if self._running.get(key) is done:
            del self._running[key]
        if not done.cancelled():
            done.exception()  # retrieved: every waiter may have gone


K = TypeVar("K", bound=Hashable)


class BatchedReads(Generic[K, T]):
    """Reads of one kind asked for together become one query: the callers of
    one loop turn share a call of ``read_many`` (keys → found values; a key
    missing from its answer is None). The read twin of the inbox's group
    commit: a burst of first contacts looks its key owners up in one SELECT
    instead of one each (docs/ARCHITECTURE.md §3, verify)."""

    def __init__(self, read_many: Callable[[list[K]], Awaitable[dict[K, T]]],
                 max_batch: int = 500) -> None:
        self._read_many = read_many
        self._max = max_batch
        self._pending: dict[K, asyncio.Future[T | None]] = {}
        self._reading = False

    async def get(self, key: K) -> T | None:
        future = self._pending.get(key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._pending[key] = future
            if not self._reading:
                self._reading = True
                asyncio.get_running_loop().create_task(self._read())
        return await asyncio.shield(future)

    async def _read(self) -> None:
        try:
            while self._pending:
                await asyncio.sleep(0)  # one loop turn: let concurrent callers join
                keys = list(self._pending)[:self._max]
                batch = {key: self._pending.pop(key) for key in keys}
                try:
                    found = await self._read_many(keys)
                except Exception as exc:  # every caller must hear of it
                    for future in batch.values():
                        if not future.done():
                            future.set_exception(exc)
                            future.exception()  # retrieved: callers may have gone
                    continue
                for key, future in batch.items():
                    if not future.done():
                        future.set_result(found.get(key))
        finally:
            self._reading = False


class GroupLookups:
    """Which local actor an inbox path names (``/groups/NAME/inbox`` → its row
    id, or None for no such group), kept like keys: the inbox must not query
    the database per request for what changes once in a blue moon. Cleared
    whenever a change to the served tables is seen (``ChangeWatcher``, across
    processes); entries also expire, in case a change is missed. After a
    clear, the requests for one group share one read (single-flight), and a
    read that began before a clear is not kept."""

    def __init__(self, ttl: float = 60.0, max_entries: int = 4096) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._entries: dict[str, tuple[float, int | None]] = {}
        self._reads: SingleFlight[int | None] = SingleFlight()
        self._generation = 0

    async def lookup(self, name: str,
                     read: Callable[[], Coroutine[Any, Any, int | None]]) -> int | None:
        entry = self._entries.get(name)
        if entry is not None and entry[0] >= time.monotonic():
            return entry[1]
        return await self._reads.run((name, self._generation),
                                     lambda: self._read(name, read))

    async def _read(self, name: str,
                    read: Callable[[], Coroutine[Any, Any, int | None]]) -> int | None:
        generation = self._generation
        actor_id = await read()
        if generation == self._generation:  # no change seen meanwhile
            if len(self._entries) >= self._max:
                self._entries.clear()
            self._entries[name] = (time.monotonic() + self._ttl, actor_id)
        return actor_id

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()


class HostBuckets:
    """A token bucket per remote host for our outbound fetches: a burst of
    ``capacity``, then ``rate`` per second. Whatever senders do (thirty key
    ids, thirty actors), one host gets a bounded number of our GETs."""

    # A burst of 60 and 10/s: a large instance whose new followers arrive
    # together is served (senders retry what we refuse), while a forged flood
    # naming a victim host makes us send it at most ten GETs a second.
    def __init__(self, capacity: float = 60.0, rate: float = 10.0,
                 max_hosts: int = 10_000) -> None:
        self.capacity = capacity
        self.rate = rate
        self._max = max_hosts
        self._buckets: dict[str, tuple[float, float]] = {}  # host → (tokens, at)

    def take(self, host: str) -> bool:
        now = time.monotonic()
        tokens, at = self._buckets.get(host, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - at) * self.rate)
        if tokens < 1.0:
            self._buckets[host] = (tokens, now)
            return False
        if len(self._buckets) >= self._max and host not in self._buckets:
            self._buckets.clear()
        self._buckets[host] = (tokens - 1.0, now)
        return True


class ChangeWatcher:
    """Applies the database's change counter before cached documents are served.

    ``sync()`` returns once a counter read that *began after the call* has been
    compared with the last one seen (and ``on_change`` run if it moved): a request
    that arrives after another process committed never gets the older document.
    Concurrent callers share reads: while one read is in flight, every new caller
    waits for the single next one, so under load the cost is one small query at a
    time however many requests there are (bench/readpath.py).
    """

    def __init__(self, read_counter: Callable[[], Awaitable[int]],
                 on_change: Callable[[], None], *, min_interval: float = 0.0,
                 probe: Callable[[], bytes | None] | None = None) -> None:
        self._read = read_counter
        self._min_interval = min_interval
        self._last_start = 0.0
        # ``probe``: a cheap synchronous look at "has anything committed at all"
        # (SQLite's wal-index header). Equal to its value when the last good read
        # began → nothing was written since, so that read still holds.
        self._probe = probe
        self._clean_probe: bytes | None = None
        self._on_change = on_change
        self._seen: int | None = None
        self._next: asyncio.Future[None] | None = None
        self._reader: asyncio.Task[None] | None = None

    async def sync(self) -> None:
        if self._probe is not None and self._clean_probe is not None \
                and self._probe() == self._clean_probe:
            return
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            if self._reader is None:
                self._reader = asyncio.create_task(self._read_while_wanted())
        # shield: one cancelled request must not cancel the read the others wait for.
        await asyncio.shield(self._next)

    async def _read_while_wanted(self) -> None:
        try:
            while self._next is not None:
                # Under load, space reads out: each costs event-loop time, and
                # waiting a little longer costs none (bench/readpath.py).
                pause = self._last_start + self._min_interval - time.monotonic()
                if pause > 0:
                    await asyncio.sleep(pause)
                self._last_start = time.monotonic()
                # Everyone waiting now registered before this read starts.
                waiting, self._next = self._next, None
                probed = self._probe() if self._probe is not None else None
                try:
                    value = await self._read()
                except Exception as exc:  # database trouble: trust no cached copy
                    self._seen = self._clean_probe = None
                    self._on_change()
                    waiting.set_exception(exc)
                    waiting.exception()  # retrieved: callers may all have gone
                    continue
                if value != self._seen:
                    if self._seen is not None:
                        self._on_change()
                    self._seen = value
                self._clean_probe = probed
                waiting.set_result(None)
        finally:
            self._reader = None
