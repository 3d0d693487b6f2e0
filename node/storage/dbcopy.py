"""`hambastegi db copy --to URL`: move a node's data to another database
(typically SQLite → PostgreSQL when a node outgrows one process).

The target is migrated to the current schema first and must be empty; rows
are copied table by table in foreign-key order, in chunks, and PostgreSQL's id
sequences are moved past the copied ids so new rows don't collide.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import func, insert, select, text
from sqlmodel import SQLModel

import node.storage.models  # noqa: F401  (registers every table)
from node.storage import migrate
from node.storage.db import Database

CHUNK = 1000


class CopyError(RuntimeError):
    pass


async def _count(db: Database, table_name: str) -> int:
    table = SQLModel.metadata.tables[table_name]
    async with db.read_engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def copy_database(source_url: str, target_url: str) -> dict[str, int]:
    """Copy every row; returns the number of rows per table."""
    if source_url == target_url:
        raise CopyError("source and target are the same database")
    await asyncio.to_thread(migrate.upgrade, target_url)
    source, target = Database(source_url), Database(target_url)
    copied: dict[str, int] = {}
    try:
        tables = SQLModel.metadata.sorted_tables
        for table in tables:
            if await _count(target, table.name):
                raise CopyError(f"the target database is not empty (table {table.name})")
        async with source.read_engine.connect() as src, target.write_engine.begin() as dst:
            for table in tables:
                result = await src.stream(select(table))
                total = 0
                async for chunk in result.partitions(CHUNK):
                    rows = [dict(row._mapping) for row in chunk]
                    await dst.execute(insert(table), rows)
                    total += len(rows)
                copied[table.name] = total
            if not target.is_sqlite:
                for table in tables:
                    if "id" in table.c and table.c.id.autoincrement is not False \
                            and table.c.id.primary_key:
                        # Table names come from our own metadata, never from input.
                        await dst.execute(text(
                            f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "  # noqa: S608
                            f"COALESCE((SELECT MAX(id) FROM {table.name}), 0) + 1, false)"))
    finally:
        await source.dispose()
        await target.dispose()
    return copied
