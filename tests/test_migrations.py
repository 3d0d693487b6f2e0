"""Migrations form one line, and what later ones do never undoes earlier ones."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory

from node.storage.db import Database
from node.storage.migrate import MIGRATIONS

_spec = importlib.util.spec_from_file_location(
    "change_counter", MIGRATIONS / "versions" / "0005_change_counter.py")
assert _spec is not None and _spec.loader is not None
CHANGE_COUNTER = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(CHANGE_COUNTER)


def test_migrations_form_a_single_line() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    script = ScriptDirectory.from_config(config)
    assert len(script.get_heads()) == 1
    revisions = list(script.walk_revisions())
    assert all(len(r._all_down_revisions) <= 1 for r in revisions)
    files = sorted(p.name for p in Path(MIGRATIONS, "versions").glob("0*.py"))
    assert len(files) == len(revisions)


async def test_every_watched_table_bumps_the_change_counter(db: Database) -> None:
    """A later SQLite batch migration recreates its table and would silently drop
    the change-counter triggers: every watched table must still bump it."""
    async with db.write() as session:
        before = (await session.exec(sa.text("SELECT value FROM change_counter"))).one()[0]
        names = await session.run_sync(lambda s: sa.inspect(s.connection()).get_table_names())
    assert set(CHANGE_COUNTER.WATCHED) <= set(names)
    for table in CHANGE_COUNTER.WATCHED:
        async with db.write() as session:
            # An UPDATE that changes no row still fires a statement-level trigger on
            # PostgreSQL; on SQLite row triggers need a row, so delete of nothing is
            # not enough there: compare the trigger catalogue instead.
            if db.is_sqlite:
                found = (await session.exec(sa.text(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' "
                    f"AND tbl_name = '{table}' AND name LIKE 'change_counter_%'"))).one()[0]
                assert found == 3, table
            else:
                await session.exec(sa.text(f"DELETE FROM {table} WHERE false"))
    if not db.is_sqlite:
        async with db.read() as session:
            after = (await session.exec(sa.text("SELECT value FROM change_counter"))).one()[0]
        assert after == before + len(CHANGE_COUNTER.WATCHED)
