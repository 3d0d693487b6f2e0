"""states as CHECK constraints; the inbox queue's lease columns

Revision ID: 0003_states
Revises: 0002

Every stateful table gets a CHECK constraint allowing exactly the values of
its ``StrEnum`` (node/storage/states.py). The inbox queue gains what the
delivery queue has: the lease holder (``worker_id``) and its end
(``lease_until``); ``error`` becomes ``last_error``.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0003_states"
down_revision = "0002"
branch_labels = None
depends_on = None

# The values as of this revision: a migration must not follow later edits of the enums.
STATES: dict[str, tuple[str, ...]] = {
    "inbox_item": ("pending", "processing", "done", "failed"),
    "delivery": ("pending", "sending", "sent", "failed"),
    "follower": ("pending", "accepted", "rejected"),
    "following": ("pending", "accepted", "rejected"),
    "cosigner": ("invited", "accepted", "declined", "withdrawn"),
    "invitation": ("pending", "accepted", "declined", "withdrawn"),
    "participation": ("pending", "accepted", "rejected", "left"),
}


def _condition(values: tuple[str, ...]) -> str:
    return "state IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def upgrade() -> None:
    with op.batch_alter_table("inbox_item", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("worker_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.alter_column("error", new_column_name="last_error",
                              existing_type=sa.String(length=400), existing_nullable=True)
    # An item claimed by the old loop carried its lease in next_attempt_at:
    # it simply becomes due again.
    op.execute("UPDATE inbox_item SET state = 'pending' WHERE state = 'processing'")
    for table, values in STATES.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_check_constraint(f"ck_{table}_state", _condition(values))


def downgrade() -> None:
    for table in STATES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f"ck_{table}_state", type_="check")
    with op.batch_alter_table("inbox_item", schema=None) as batch_op:
        batch_op.alter_column("last_error", new_column_name="error",
                              existing_type=sa.String(length=400), existing_nullable=True)
        batch_op.drop_column("worker_id")
        batch_op.drop_column("lease_until")
