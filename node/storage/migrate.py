"""Database migrations (Alembic), callable from the CLI and from tests.

Alembic's env.py uses ``asyncio.run``, so these functions must be called
from synchronous code (the CLI), or through ``asyncio.to_thread``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

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
