"""The running node: settings, database, URLs, the guarded client, background tasks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

from sqlalchemy import text

from node.core.cache import (
    BatchedReads,
    ChangeWatcher,
    DocCache,
    GroupLookups,
    HostBuckets,
    KeyCache,
    SingleFlight,
)
from node.core.domains import normal_host
from node.core.settings import Settings
from node.core.urls import INSTANCE_USERNAME, Urls
from node.federation.delivery import DeliveryWorker
from node.federation.dispatch import Inbound
from node.federation.fetch import GuardedClient, allow_all_policy, public_address_policy
from node.federation.inbox_queue import InboxWorker, InboxWriter
from node.federation.local_actors import ensure_instance_actor
from node.federation.peer_rules import PeerPolicy
from node.federation.signatures import RequestSigner
from node.storage.db import Database
from node.storage.models import InboxItem, LocalActor
from node.storage.wakeup import Wakeup, WalIndex, sqlite_wal_index, wakeup_for

log = logging.getLogger("hambastegi")

USER_AGENT = "Hambastegi/0.1 (+https://codeberg.org/hambastegi)"

Scheme = Literal["cavage", "rfc9421"]
CHANGE_COUNTER = text("SELECT value FROM change_counter WHERE id = 1")
# Under load, at most one counter read per 2 ms (measured with bench/readpath.py).
COUNTER_READ_SPACING = 0.002


@dataclass
class FollowerChecks:
    """FEP-8fcf checks of senders' followers headers in this process
    (federation/followers_sync.py): in flight, and when each sender was last checked."""

    running: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    last: dict[str, float] = field(default_factory=dict)


def actor_signer(actor: LocalActor, urls: Urls) -> RequestSigner:
    return RequestSigner(actor.rsa_private_pem, urls.key_id(actor.username))


class Node:
    """``inbound``: what received activities mean (the handler table and content
    checks, built by node/inbound.py); without it the node stores what it
    receives and does nothing more with it."""

    def __init__(self, settings: Settings, db: Database | None = None,
                 inbound: Inbound | None = None) -> None:
        self.settings = settings
        self.inbound = inbound or Inbound()
        self.db = db or Database(settings.database_url)
        self.urls = Urls(settings.base_url)
        # Blocked / allowed domains, in memory (peer_rules.py, docs/ARCHITECTURE.md §9):
        # the guarded client asks it before every request, the inbox before any fetch.
        self.peer_policy = PeerPolicy(
            allowlist=settings.federation_mode == "allowlist",
            own_host=normal_host(urlsplit(settings.base_url).hostname or ""))
        self.client = GuardedClient(
            policy=allow_all_policy if settings.allow_private_networks else public_address_policy,
            user_agent=USER_AGENT, host_check=self.peer_policy.refusal,
        )
        self.inbox_wake = asyncio.Event()
        self.doc_cache = DocCache()
        # Which group an inbox path names: the per-group inbox's lookup, cached.
        self.group_lookups = GroupLookups()
        # Other processes' changes reach this process's cache through the database
        # (one reader of the wal index per process: storage/wakeup.py WalIndex) ...
        wal_path = sqlite_wal_index(settings.database_url)
        self._wal_index = WalIndex(wal_path) if wal_path is not None else None
        self.changes = ChangeWatcher(
            self._change_counter, self._counter_moved, min_interval=COUNTER_READ_SPACING,
            probe=self._wal_index.header if self._wal_index is not None else None)
        # ... and reach its workers through the wake-up (LISTEN or the wal index),
        # started by the first worker that waits: a CLI command never starts it.
        self.wakeup: Wakeup = wakeup_for(settings.database_url, wal_index=self._wal_index)
        self.key_cache = KeyCache()
        # Key fetches in flight, by (key id, refresh): one GET however many wait.
        self.key_fetches: SingleFlight[Any] = SingleFlight()
        # The stored owners of key ids, read together (set by remote_actors on first use).
        self.owner_reads: BatchedReads[str, Any] | None = None
        # RSA signatures off the event loop (RSA releases the GIL): the node's own
        # GETs (remote_actors) and its deliveries (delivery_worker) share these.
        self.signing_threads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sign")
        self.fetch_buckets = HostBuckets()
        self.inbox_writer = InboxWriter(self.db)
        # Set by the in-process delivery worker so publishing sends at once.
        self.delivery_wake: Callable[[], None] = lambda: None
        # Set by the in-process sync worker so a new follow is backfilled at once.
        self.sync_wake: Callable[[], None] = lambda: None
        # Set by the in-process mail worker (node/mail/worker.py) so queued mail goes at once.
        self.mail_wake: Callable[[], None] = lambda: None
        # FEP-8fcf (federation/followers_sync.py): (actor id, host) → the header of
        # a delivery to the actor's followers there, dropped with the other caches.
        self.follower_digests: dict[tuple[int, str], dict[str, str]] = {}
        self.follower_checks = FollowerChecks()
        self._instance: LocalActor | None = None
        self._instance_signer: RequestSigner | None = None

    async def start(self) -> None:
        await self.client.start()
        async with self.db.write() as session:
            instance = await ensure_instance_actor(session)
        # The signer is built at its first use: loading the RSA key cost a CLI
        # command that signs nothing a twentieth of its run.
        self._instance = instance
        # The counter first, then the rules: a block committed between the two
        # moves the counter past the value seen, so the watcher marks the rules
        # stale; read the other way round it would be taken as the baseline.
        await self.changes.sync()
        await self.peer_policy.refresh(self.db)

    async def close(self) -> None:
        await self.wakeup.close()
        self.signing_threads.shutdown(wait=False, cancel_futures=True)
        await self.client.close()
        await self.db.dispose()
        if self._wal_index is not None:  # after the connections: nothing of ours is locked
            self._wal_index.close()

    def _drop_cached(self) -> None:
        self.doc_cache.clear()
        self.group_lookups.clear()
        self.follower_digests.clear()

    def _counter_moved(self) -> None:
        """Some process committed something: cached documents and the domain
        rules may be out of date (the rules reload when next asked for)."""
        self._drop_cached()
        self.peer_policy.mark_stale()

    async def current_policy(self) -> PeerPolicy:
        """The domain rules as the database has them now (cheap when nothing
        changed: the counter read is shared and spaced, the reload skipped)."""
        await self.changes.sync()
        await self.peer_policy.refresh(self.db)
        return self.peer_policy

    async def _change_counter(self) -> int:
        async with self.db.read_engine.connect() as conn:
            return int((await conn.execute(CHANGE_COUNTER)).scalar_one())

    def changed(self) -> None:
        """Something local changed: drop cached documents, wake the delivery worker.

        Other processes learn of it from the change counter, which the database's
        triggers bumped in the same transaction as the change (ChangeWatcher).
        """
        self._drop_cached()
        self.delivery_wake()
        self.mail_wake()

    def delivery_worker(self) -> DeliveryWorker:
        """A delivery worker over this node's database and client; deliveries to
        followers carry FEP-8fcf's header (imported here: it builds on this module)."""
        from node.federation import followers_sync

        async def sync_headers(actor_id: int, hosts: Sequence[str]
                               ) -> dict[str, dict[str, str]]:
            return await followers_sync.sync_headers(self, actor_id, hosts)

        return DeliveryWorker(
            self.db, self.client, self.urls,
            concurrency=self.settings.delivery_concurrency,
            poll_seconds=self.settings.worker_poll_seconds,
            lease=timedelta(seconds=self.settings.delivery_lease_seconds),
            batch=self.settings.delivery_batch,
            idle_wait=self.wakeup.waiter().wait,
            signing_pool=self.signing_threads,
            sync_headers=sync_headers,
            before_claim=self.current_policy,
        )

    def inbox_worker(self) -> InboxWorker:
        """An inbox worker running this node's handler table."""
        return InboxWorker(self.db, self.handle, wake=self.inbox_wake, after_batch=self.changed,
                           poll_seconds=self.settings.worker_poll_seconds,
                           idle_wait=self.wakeup.waiter().wait,
                           yield_to=self.inbox_writer.quiet)

    async def handle(self, item: InboxItem) -> None:
        """Run every handler the table has for the item; each runs even if
        another failed, and the first failure fails the item (to be retried)."""
        # Queued before a block: dropped unhandled. The rules are as fresh as the
        # last request's counter read (every inbox POST reads it); no read of its
        # own here, which would cost every item a wait for the next counter read.
        await self.peer_policy.refresh(self.db)
        refusal = self.peer_policy.refusal_uri(item.actor_uri)
        if refusal is not None:
            log.info("inbox item dropped by peer policy", extra={"reason": refusal})
            return
        failure: Exception | None = None
        for handler in self.inbound.handlers_for(item.activity_type, item.body):
            try:
                await handler(self, item)
            except Exception as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

    @property
    def instance_signer(self) -> RequestSigner:
        """Signs the node's own GETs (authorized-fetch servers require it)."""
        if self._instance_signer is None:
            if self._instance is None:
                raise RuntimeError("node not started")
            self._instance_signer = actor_signer(self._instance, self.urls)
        return self._instance_signer

    @property
    def instance_username(self) -> str:
        return INSTANCE_USERNAME
