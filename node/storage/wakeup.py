"""Wake-ups across processes: "something may have changed in the database".

A publish from the CLI or from another web process writes queue rows that this
process's workers must see at once, not at their next poll
(docs/ARCHITECTURE.md#4-the-walk-of-an-activity). Workers wait on a ``Waiter``
instead of sleeping; it returns when a change may have happened (spurious
wake-ups allowed: the worker then finds nothing due) or when the timeout passed.

- PostgreSQL: ``LISTEN`` on ``CHANNEL``; migration ``0008_queue_notify`` makes
  every INSERT statement on the queue tables ``pg_notify`` it, delivered at
  commit. One dedicated asyncpg connection; if it drops, waiters wake every
  ``fallback_seconds`` (polling) until it is back.
- SQLite: a look at the wal-index header (``WalIndex``) every ``interval``;
  its bytes change with every commit of any process. 2.4 µs a look against
  4.4 µs for ``PRAGMA data_version`` on a dedicated connection (measured on
  the dev machine, timeit), and it needs no connection of its own.

Each waiter keeps the generation it last saw, so a change that lands while its
worker is busy wakes that worker's next wait at once, whatever other workers
sharing the object saw (``waiter()``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import make_url

log = logging.getLogger("hambastegi.wakeup")

CHANNEL = "hambastegi_queue"
# The wal-index header's first copy (https://sqlite.org/walformat.html, "The WAL-Index
# Header"): its frame count, salts and checksums change with every commit, from any
# process, before the commit returns. Reading it costs a few microseconds.
WAL_INDEX_HEADER = 48

IdleWait = Callable[[float], Awaitable[None]]


def sqlite_wal_index(database_url: str) -> Path | None:
    """The ``-shm`` file of a file-backed SQLite database; None otherwise."""
    url = make_url(database_url)
    if not url.drivername.startswith("sqlite") or not url.database \
            or url.database == ":memory:":
        return None
    return Path(url.database + "-shm")


class WalIndex:
    """Reads the wal-index header of one SQLite database (its -shm file): equal
    bytes, no commit between; None while there is no such file.

    The descriptor stays open: closing *any* descriptor of a file drops every
    POSIX lock this process holds on it (fcntl semantics), SQLite's own locks
    on the -shm included. Another process opening the database then believes
    it is the first, truncates the -shm, and this process dies of SIGBUS on
    its mapping (bench/ingest.py hit exactly this when a probe opened and
    closed the file each time). SQLite deletes and recreates the file when the
    last connection closes: the descriptor of a replaced file is swapped for a
    new one (its locks, on the old file, are no one's any more). One instance
    per process and database, closed only after the engine's connections."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def header(self) -> bytes | None:
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


def asyncpg_dsn(database_url: str) -> str:
    """The SQLAlchemy URL (``postgresql+asyncpg://…``) as a plain libpq DSN."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class Wakeup:
    """A generation number that moves when the database may have changed.

    ``start`` begins watching (it is also started by the first wait), ``close``
    stops. ``wait`` is one shared waiter; give each worker its own ``waiter()``.
    """

    def __init__(self) -> None:
        self.generation = 0
        # Replaced at each bump: whoever waits on it is woken by that bump.
        self._moved = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._default: Waiter | None = None

    def bump(self) -> None:
        """Record a possible change and wake every waiter (event-loop thread only)."""
        self.generation += 1
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()

    async def start(self) -> None:
        if self._task is None and not self._closed:
            self._task = asyncio.create_task(self._watch())

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def waiter(self) -> Waiter:
        return Waiter(self)

    async def wait(self, timeout: float) -> None:  # noqa: ASYNC109 - the workers' idle_wait
        if self._default is None:
            self._default = self.waiter()
        await self._default.wait(timeout)

    async def _watch(self) -> None:
        raise NotImplementedError


class Waiter:
    """One consumer's view: returns at once if the generation moved since its last return."""

    def __init__(self, wakeup: Wakeup) -> None:
        self._wakeup = wakeup
        self._seen = wakeup.generation

    async def wait(self, timeout: float) -> None:  # noqa: ASYNC109 - the workers' idle_wait
        wakeup = self._wakeup
        await wakeup.start()
        if wakeup.generation == self._seen:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup._moved.wait(), timeout)
        self._seen = wakeup.generation


class PollWakeup(Wakeup):
    """No cross-process signal: the timeout alone (an in-memory database, say)."""

    async def _watch(self) -> None:
        return None


class SqliteWakeup(Wakeup):
    """Looks at the wal-index header every ``interval`` seconds."""

    def __init__(self, wal_index: WalIndex, *, interval: float = 0.025) -> None:
        super().__init__()
        self.wal_index = wal_index
        self.interval = interval

    async def _watch(self) -> None:
        last = self.wal_index.header()
        while True:
            await asyncio.sleep(self.interval)
            now = self.wal_index.header()
            if now != last:
                last = now
                self.bump()


class PostgresWakeup(Wakeup):
    """LISTEN on a dedicated connection; polls every ``fallback_seconds`` while it is down.

    The connection must be a direct one (or a session-mode pooler): a
    transaction-mode pooler (PgBouncer's default) does not keep LISTEN.
    """

    def __init__(self, dsn: str, *, fallback_seconds: float = 1.0,
                 check_seconds: float = 30.0) -> None:
        super().__init__()
        self.dsn = dsn
        self.fallback_seconds = fallback_seconds
        self.check_seconds = check_seconds
        self.listening = False  # observable (tests, status)
        self.connects = 0
        self.backend_pid: int | None = None

    def _on_notify(self, *_args: Any) -> None:
        self.bump()

    async def _watch(self) -> None:
        import asyncpg  # type: ignore[import-untyped]

        backoff = 0.1
        # Not ``while True``: asyncpg may swallow a cancellation that lands while it
        # connects, so ``close`` also says it with ``_closed``.
        while not self._closed:
            conn: Any = None
            try:
                conn = await asyncio.wait_for(asyncpg.connect(self.dsn), 10)
                if self._closed:
                    return  # the finally clause closes it
                lost = asyncio.Event()
                conn.add_termination_listener(_setter(lost))
                await conn.add_listener(CHANNEL, self._on_notify)
                self.listening = True
                self.connects += 1
                self.backend_pid = conn.get_server_pid()
                backoff = 0.1
                # Whatever was written while no one listened: look once.
                self.bump()
                await self._hold(conn, lost)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # refused, dropped, timed out: poll, then try again
                if self._closed:
                    return
                log.warning("queue listener down", extra={"error": type(exc).__name__})
            finally:
                self.listening = False
                self.backend_pid = None
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.terminate()
            await self._poll_for(backoff)
            backoff = min(backoff * 2, 5.0)

    async def _hold(self, conn: Any, lost: asyncio.Event) -> None:
        """Until the connection ends; a query now and then finds a silently dead one."""
        while not lost.is_set() and not conn.is_closed():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), self.check_seconds)
            if not lost.is_set():
                await asyncio.wait_for(conn.execute("SELECT 1"), 10)

    async def _poll_for(self, seconds: float) -> None:
        """While not listening, waiters wake every ``fallback_seconds``."""
        end = time.monotonic() + seconds
        self.bump()
        while (left := end - time.monotonic()) > 0:
            await asyncio.sleep(min(left, self.fallback_seconds))
            self.bump()


def _setter(event: asyncio.Event) -> Callable[[Any], None]:
    def set_event(_conn: Any) -> None:
        event.set()

    return set_event


def wakeup_for(database_url: str, *, sqlite_interval: float = 0.025,
               wal_index: WalIndex | None = None) -> Wakeup:
    """The wake-up that fits the database: LISTEN, a wal-index look, or the timeout
    alone. ``wal_index``: the process's one reader of the database's -shm file
    (see ``WalIndex`` for why there must be only one)."""
    if make_url(database_url).drivername.startswith("postgresql"):
        return PostgresWakeup(asyncpg_dsn(database_url))
    if wal_index is None:
        wal = sqlite_wal_index(database_url)
        if wal is None:
            return PollWakeup()
        wal_index = WalIndex(wal)
    return SqliteWakeup(wal_index, interval=sqlite_interval)
