"""change counter: one row bumped by triggers whenever published content changes

Web processes cache serialised documents (node/core/cache.py); the counter tells them,
with one cheap read, that another process (the CLI, another web process, a worker) changed
something. Triggers bump it inside the writing transaction itself, so no code path that
writes content can forget it, and a reader that sees the new content also sees the bump.

Revision ID: 0005_change_counter
Revises: 0004_content_ownership
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_change_counter"
down_revision = "0004_content_ownership"
branch_labels = None
depends_on = None

# Tables whose rows end up in served documents (actors, objects, collections, events).
WATCHED = ("local_actor", "local_object", "activity", "follower", "following",
           "interaction", "event", "cosigner", "participation")
BUMP = "UPDATE change_counter SET value = value + 1 WHERE id = 1"


def upgrade() -> None:
    op.create_table(
        "change_counter",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("INSERT INTO change_counter (id, value) VALUES (1, 0)")
    if op.get_bind().dialect.name == "sqlite":
        for table in WATCHED:
            for event in ("INSERT", "UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER change_counter_{table}_{event.lower()} "
                    f"AFTER {event} ON {table} BEGIN {BUMP}; END"
                )
    else:
        op.execute(
            "CREATE FUNCTION change_counter_bump() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN {BUMP}; RETURN NULL; END $$"
        )
        for table in WATCHED:
            # Once per statement: a bulk write bumps (and locks the row) once.
            op.execute(
                f"CREATE TRIGGER change_counter_{table} AFTER INSERT OR UPDATE OR DELETE "
                f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION change_counter_bump()"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in WATCHED:
            for event in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS change_counter_{table}_{event}")
    else:
        for table in WATCHED:
            op.execute(f"DROP TRIGGER IF EXISTS change_counter_{table} ON {table}")
        op.execute("DROP FUNCTION IF EXISTS change_counter_bump()")
    op.drop_table("change_counter")
