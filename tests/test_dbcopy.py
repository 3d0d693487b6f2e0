"""`hambastegi db copy`: SQLite → PostgreSQL (or another SQLite file) with nothing lost."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select
from sqlmodel import SQLModel

from node.storage.db import Database
from tests.conftest import DatabaseFactory


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "node.cli.main", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


async def counts(url: str) -> dict[str, int]:
    db = Database(url)
    try:
        async with db.read_engine.connect() as conn:
            return {t.name: int((await conn.execute(select(func.count()).select_from(t))
                                 ).scalar_one()) for t in SQLModel.metadata.sorted_tables}
    finally:
        await db.dispose()


async def test_copy_moves_every_row_and_the_node_keeps_working(
        tmp_path: Path, databases: DatabaseFactory) -> None:
    source = f"sqlite:///{tmp_path / 'source.sqlite3'}"
    env = {**os.environ, "HAMBASTEGI_DATA_DIR": str(tmp_path / "data"),
           "HAMBASTEGI_DATABASE_URL": source, "HAMBASTEGI_BASE_URL": "https://node.example"}
    assert run(env, "group", "create", "koeln", "--language", "de").returncode == 0
    for i in range(3):
        assert run(env, "publish", "note", "koeln", "--text", f"Nachricht {i}").returncode == 0
    fresh = await databases.new()  # PostgreSQL when the suite runs on it
    copied = run(env, "db", "copy", "--to", fresh)
    assert copied.returncode == 0, copied.stderr
    # A second copy would mix two nodes' data: refused.
    again = run(env, "db", "copy", "--to", fresh)
    assert again.returncode == 1 and "not empty" in again.stderr
    before = await counts(source.replace("sqlite://", "sqlite+aiosqlite://"))
    after = await counts(fresh)
    assert after == before and after["local_object"] == 3 and after["local_actor"] == 2
    moved = {**env, "HAMBASTEGI_DATABASE_URL": fresh}
    # New rows get fresh ids (sequences moved past the copied ones).
    published = run(moved, "publish", "note", "koeln", "--text", "nach dem Umzug")
    assert published.returncode == 0, published.stderr
    assert run(moved, "group", "list").stdout.splitlines() == [
        "koeln\thttps://node.example/groups/koeln\tkoeln"]


async def test_copy_to_the_same_database_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.sqlite3'}"
    env = {**os.environ, "HAMBASTEGI_DATA_DIR": str(tmp_path / "data"),
           "HAMBASTEGI_DATABASE_URL": url}
    result = run(env, "db", "copy", "--to", url)
    assert result.returncode == 1 and "same database" in result.stderr
