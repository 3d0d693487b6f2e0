"""Database migrations (Alembic), callable from the CLI and from tests.

Alembic's env.py uses ``asyncio.run``, so these functions must be called
from synchronous code (the CLI), or through ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alembic.config import Config


MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", database_url)
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)


def head_revision() -> str | None:
    """The newest revision, read from the files (no Alembic); None unless exactly one."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        source = path.read_text("utf-8")
        revision = re.search(r'^revision = "([^"]+)"', source, re.MULTILINE)
        down = re.search(r'^down_revision = "([^"]+)"', source, re.MULTILINE)
        if revision:
            revisions.add(revision.group(1))
        if down:
            parents.add(down.group(1))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def current_revision(database_url: str) -> str | None:
    """The revision the database is at; None if it has none (new, or unreachable)."""
    try:
        if database_url.startswith("sqlite"):
            import sqlite3

            path = database_url.split(":///", 1)[1]
            if not path or path == ":memory:" or not Path(path).exists():
                return None
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
                row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        else:
            row = asyncio.run(_postgres_revision(database_url))
    except Exception:  # no table, no database yet: Alembic will say what is wrong
        return None
    return str(row[0]) if row else None


async def _postgres_revision(database_url: str) -> Any:
    import asyncpg  # type: ignore[import-untyped]

    from node.storage.wakeup import asyncpg_dsn

    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        return await conn.fetchrow("SELECT version_num FROM alembic_version")
    finally:
        await conn.close()


def upgrade_if_behind(database_url: str) -> None:
    """``upgrade`` unless the database is at the head already (found without Alembic)."""
    head = head_revision()
    if head is None or current_revision(database_url) != head:
        upgrade(database_url)


def downgrade(database_url: str, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(database_url), revision)


def upgrade_in_child(database_url: str) -> None:
    """Run migrations in a short-lived child process, so that a long-running
    server or worker never loads Alembic (about 10 MB of resident memory)."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "node.storage.migrate", database_url],  # noqa: S603 - our own interpreter and module
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        lines = (result.stderr.strip() or "unknown error").splitlines()
        raise RuntimeError(f"database migration failed: {lines[-1]}")


if __name__ == "__main__":
    import sys

    upgrade(sys.argv[1])
