"""Database engines and sessions (async SQLAlchemy under SQLModel).

Two session kinds: ``read()`` for queries and ``write()`` for transactions
that change rows. On SQLite the write engine opens every transaction with
``BEGIN IMMEDIATE`` so a transaction that starts by reading never has to
upgrade its lock later (which fails at once with SQLITE_BUSY in WAL mode
instead of waiting); and it keeps a single connection per process so writers
in one process queue in Python instead of spinning on the lock.
On PostgreSQL both are the same engine.

No network I/O may happen while a write transaction is open: on SQLite every
other write of the process waits behind it, so a slow remote server would stall
them all. ``write()`` marks its scope (``in_write_transaction``), and the
guarded outbound client refuses or reports requests made inside one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession


class _WriteScope:
    """One open ``write()``; ``open`` turns False when it ends, so a task started
    inside it (which copies the context) is not taken to be inside it forever."""

    __slots__ = ("open",)

    def __init__(self) -> None:
        self.open = True


_WRITE_SCOPE: ContextVar[_WriteScope | None] = ContextVar("hambastegi_write_scope",
                                                          default=None)


def in_write_transaction() -> bool:
    """True while the calling task is inside ``Database.write()``."""
    scope = _WRITE_SCOPE.get()
    return scope is not None and scope.open


def dialect_insert(is_sqlite: bool) -> Any:
    """The dialect's INSERT construct, for ``ON CONFLICT`` clauses.

    Imported on use: ``sqlalchemy.dialects.postgresql`` is 2.4 MB of a node's idle memory
    and a SQLite node never needs it (#17, idle RSS)."""
    if is_sqlite:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    return pg_insert


def utcnow() -> datetime:
    """Aware UTC; SQLModel's UTCDateTime stores it on both databases."""
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """A stored moment made aware: SQLite gives naive datetimes back (stored as UTC)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the writer; NORMAL sync is durable in WAL
    # except for the last transaction on power loss, the usual server choice.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
    # Let SQLAlchemy, not pysqlite, emit BEGIN (see _sqlite_begin_*).
    dbapi_connection.isolation_level = None


def _make_engine(url: str, *, immediate: bool) -> AsyncEngine:
    if url.startswith("sqlite"):
        # No overflow: an overflow connection is closed after each use, and
        # opening one (a thread, the file, the pragmas) cost more than the
        # query; measured with bench/readpath.py.
        engine = create_async_engine(
            url,
            pool_size=1 if immediate else 16,
            max_overflow=0,
            pool_timeout=60,
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql(begin)

        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.read_engine = _make_engine(url, immediate=False)
        self.write_engine = (
            _make_engine(url, immediate=True) if self.is_sqlite else self.read_engine
        )
        self._read = async_sessionmaker(
            self.read_engine, class_=AsyncSession, expire_on_commit=False
        )
        self._write = async_sessionmaker(
            self.write_engine, class_=AsyncSession, expire_on_commit=False
        )

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._read() as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A transaction: commits on success, rolls back on any exception.
        No network I/O inside it (see the module docstring)."""
        scope = _WriteScope()
        token = _WRITE_SCOPE.set(scope)
        try:
            async with self._write() as session, session.begin():
                yield session
        finally:
            scope.open = False
            _WRITE_SCOPE.reset(token)

    async def dispose(self) -> None:
        await self.read_engine.dispose()
        if self.write_engine is not self.read_engine:
            await self.write_engine.dispose()
