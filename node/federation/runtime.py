"""The running node: settings, database, URLs, the guarded client, background tasks."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import make_url, text

from node.core.cache import (
    BatchedReads,
    ChangeWatcher,
    DocCache,
    GroupLookups,
    HostBuckets,
    KeyCache,
    SingleFlight,
)
from node.core.settings import Settings
from node.core.urls import INSTANCE_USERNAME, Urls
from node.federation.delivery import DeliveryWorker
from node.federation.dispatch import Inbound
from node.federation.fetch import GuardedClient, allow_all_policy, public_address_policy
from node.federation.inbox_queue import InboxWorker, InboxWriter
from node.federation.local_actors import ensure_instance_actor
from node.federation.signatures import RequestSigner
from node.storage.db import Database
from node.storage.models import InboxItem, LocalActor

log = logging.getLogger("hambastegi")

USER_AGENT = "Hambastegi/0.1 (+https://codeberg.org/hambastegi)"

Scheme = Literal["cavage", "rfc9421"]
CHANGE_COUNTER = text("SELECT value FROM change_counter WHERE id = 1")
# The wal-index header's first copy (https://sqlite.org/walformat.html, "The WAL-Index
# Header"): its frame count, salts and checksums change with every commit, from any
# process, before the commit returns. Reading it costs a few microseconds.
WAL_INDEX_HEADER = 48
# Under load, at most one counter read per 2 ms (measured with bench/readpath.py).
COUNTER_READ_SPACING = 0.002


def sqlite_wal_index(database_url: str) -> Path | None:
    """The ``-shm`` file of a file-backed SQLite database; None for PostgreSQL."""
    url = make_url(database_url)
    if not url.drivername.startswith("sqlite") or not url.database \
            or url.database == ":memory:":
        return None
    return Path(url.database + "-shm")


class WalIndexProbe:
    """Reads the wal-index header of a SQLite database (its -shm file); None
    while there is no such file.

    The descriptor stays open: closing *any* descriptor of a file drops every
    POSIX lock this process holds on it (fcntl semantics), SQLite's own locks
    on the -shm included. Another process opening the database then believes
    it is the first, truncates the -shm, and this process dies of SIGBUS on
    its mapping (bench/ingest.py hit exactly this when a probe opened and
    closed the file each time). SQLite deletes and recreates the file when the
    last connection closes: the descriptor of a replaced file is swapped for a
    new one (its locks, on the old file, are no one's any more)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def __call__(self) -> bytes | None:
        fd = self._fd
        try:
            if fd is None or os.fstat(fd).st_nlink == 0:
                fresh = os.open(self.path, os.O_RDONLY)
                if fd is not None:
                    os.close(fd)  # the unlinked file's: no lock of ours is on it now
                self._fd = fd = fresh
            # os.pread: a third of the cost of a Python file object, on every GET
            return os.pread(fd, WAL_INDEX_HEADER, 0)
        except OSError:
            return None

    def close(self) -> None:
        """Only once this process's connections to the database are closed."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


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
        self.client = GuardedClient(
            policy=allow_all_policy if settings.allow_private_networks else public_address_policy,
            user_agent=USER_AGENT,
        )
        self.inbox_wake = asyncio.Event()
        self.doc_cache = DocCache()
        # Which group an inbox path names: the per-group inbox's lookup, cached.
        self.group_lookups = GroupLookups()
        # Other processes' changes reach this process's cache through the database.
        wal_index = sqlite_wal_index(settings.database_url)
        self._wal_probe = WalIndexProbe(wal_index) if wal_index is not None else None
        self.changes = ChangeWatcher(
            self._change_counter, self._drop_cached, min_interval=COUNTER_READ_SPACING,
            probe=self._wal_probe)
        self.key_cache = KeyCache()
        # Key fetches in flight, by (key id, refresh): one GET however many wait.
        self.key_fetches: SingleFlight[Any] = SingleFlight()
        # The stored owners of key ids, read together (set by remote_actors on first use).
        self.owner_reads: BatchedReads[str, Any] | None = None
        # RSA signatures of the node's own GETs, off the event loop (remote_actors).
        self.signing_threads = ThreadPoolExecutor(max_workers=2,
                                                  thread_name_prefix="sign-get")
        self.fetch_buckets = HostBuckets()
        self.inbox_writer = InboxWriter(self.db)
        # Set by the in-process delivery worker so publishing sends at once.
        self.delivery_wake: Callable[[], None] = lambda: None
        self._instance_signer: RequestSigner | None = None

    async def start(self) -> None:
        await self.client.start()
        async with self.db.write() as session:
            instance = await ensure_instance_actor(session)
        self._instance_signer = actor_signer(instance, self.urls)

    async def close(self) -> None:
        self.signing_threads.shutdown(wait=False, cancel_futures=True)
        await self.client.close()
        await self.db.dispose()
        if self._wal_probe is not None:  # after the connections: nothing of ours is locked
            self._wal_probe.close()

    def _drop_cached(self) -> None:
        self.doc_cache.clear()
        self.group_lookups.clear()

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

    def delivery_worker(self) -> DeliveryWorker:
        """A delivery worker over this node's database and client."""
        return DeliveryWorker(
            self.db, self.client, self.urls,
            concurrency=self.settings.delivery_concurrency,
            poll_seconds=self.settings.worker_poll_seconds,
            lease=timedelta(seconds=self.settings.delivery_lease_seconds),
            batch=self.settings.delivery_batch,
        )

    def inbox_worker(self) -> InboxWorker:
        """An inbox worker running this node's handler table."""
        return InboxWorker(self.db, self.handle, wake=self.inbox_wake, after_batch=self.changed,
                           poll_seconds=self.settings.worker_poll_seconds)

    async def handle(self, item: InboxItem) -> None:
        """Run every handler the table has for the item; each runs even if
        another failed, and the first failure fails the item (to be retried)."""
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
            raise RuntimeError("node not started")
        return self._instance_signer

    @property
    def instance_username(self) -> str:
        return INSTANCE_USERNAME
