"""queue notify: INSERTs on the queue tables wake workers in other processes (PostgreSQL)

A row written by the CLI or another web process must reach a worker at once, not at its
next poll (node/storage/wakeup.py, docs/ARCHITECTURE.md#4-the-walk-of-an-activity). Every
INSERT statement on ``inbox_item`` and ``fanout`` sends a NOTIFY on ``hambastegi_queue``;
PostgreSQL delivers it at commit, so the listener sees the rows when it looks, and folds
repeats within one transaction into one.

``fanout`` is the delivery log (0007): every publish that goes anywhere appends one row,
so one trigger covers posts from every process.

SQLite needs nothing: its workers look at the wal-index header, which every commit changes.

Revision ID: 0008_queue_notify
Revises: 0007_fanout_lanes
"""

from __future__ import annotations

from alembic import op

revision = "0008_queue_notify"
down_revision = "0007_fanout_lanes"
branch_labels = None
depends_on = None

CHANNEL = "hambastegi_queue"  # node.storage.wakeup.CHANNEL (migrations stay frozen)
TABLES = ("inbox_item", "fanout")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE FUNCTION hambastegi_queue_notify() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME); RETURN NULL; END $$"
    )
    for table in TABLES:
        # Once per statement: a bulk insert notifies once.
        op.execute(
            f"CREATE TRIGGER queue_notify_{table} AFTER INSERT ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION hambastegi_queue_notify()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS queue_notify_{table} ON {table}")
    op.execute("DROP FUNCTION IF EXISTS hambastegi_queue_notify()")
