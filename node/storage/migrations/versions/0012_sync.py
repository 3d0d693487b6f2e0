"""peer sync: followed actors' posts, backfill and catch-up state (issue 15 point 3)

``remote_object`` keeps the posts of actors our groups follow as well as replies,
so it gains ``published_at`` (newest-first views and the age bound of backfill)
and ``source`` (inbox | backfill | sync). Its rows end up in served documents
(network views build on them), so it gets the change-counter triggers of
0005_change_counter. ``sync_state`` holds one row per followed actor for the
catch-up worker (federation/outbox_sync.py).

Revision ID: 0012_sync
Revises: 0011_networks
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0012_sync"
down_revision = "0011_networks"
branch_labels = None
depends_on = None

BUMP = "UPDATE change_counter SET value = value + 1 WHERE id = 1"


def upgrade() -> None:
    # Added columns only (no batch rebuild), so SQLite keeps the table as it is.
    op.add_column("remote_object", sa.Column(
        "published_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    op.add_column("remote_object", sa.Column(
        "source", sa.String(length=16), nullable=False, server_default="inbox"))
    op.create_index("ix_remote_object_published_at", "remote_object", ["published_at"])
    op.create_table(
        "sync_state",
        sa.Column("actor_uri", sa.String(length=2048), nullable=False),
        sa.Column("next_sync_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("last_synced_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("first_item_id", sa.String(length=2048), nullable=True),
        sa.Column("first_page", sa.String(length=2048), nullable=True),
        sa.Column("backfilled_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("lease_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("worker_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("actor_uri"),
    )
    op.create_index("ix_sync_state_next_sync_at", "sync_state", ["next_sync_at"])
    if op.get_bind().dialect.name == "sqlite":
        for event in ("INSERT", "UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER change_counter_remote_object_{event.lower()} "
                       f"AFTER {event} ON remote_object BEGIN {BUMP}; END")
    else:
        op.execute("CREATE TRIGGER change_counter_remote_object AFTER INSERT OR UPDATE OR "
                   "DELETE ON remote_object FOR EACH STATEMENT EXECUTE FUNCTION "
                   "change_counter_bump()")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS change_counter_remote_object_{event}")
    else:
        op.execute("DROP TRIGGER IF EXISTS change_counter_remote_object ON remote_object")
    op.drop_table("sync_state")
    op.drop_index("ix_remote_object_published_at", table_name="remote_object")
    with op.batch_alter_table("remote_object") as batch:
        batch.drop_column("source")
        batch.drop_column("published_at")
