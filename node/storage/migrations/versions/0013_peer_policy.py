"""peer policy: blocked and allowed domains, known peers' software (issue 15, point 5)

``domain_rule`` rows change what we serve and to whom (authorized fetch, the
inbox, deliveries), and every process keeps them in memory: they carry the
change-counter triggers so another process's block is seen by the next request
(docs/ARCHITECTURE.md §1). ``peer`` caches NodeInfo; nothing served reads it.

Revision ID: 0013_peer_policy
Revises: 0012_sync
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0013_peer_policy"
down_revision = "0012_sync"
branch_labels = None
depends_on = None

BUMP = "UPDATE change_counter SET value = value + 1 WHERE id = 1"
EVENTS = ("insert", "update", "delete")


def upgrade() -> None:
    op.create_table(
        "domain_rule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("domain", "kind"),
        sa.CheckConstraint("kind IN ('block', 'allow')", name="ck_domain_rule_kind"),
    )
    op.create_table(
        "peer",
        sa.Column("host", sa.String(length=256), nullable=False),
        sa.Column("software", sa.String(length=64), nullable=True),
        sa.Column("version", sa.String(length=64), nullable=True),
        sa.Column("nodeinfo_fetched_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("nodeinfo_error", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("host"),
    )
    if op.get_bind().dialect.name == "sqlite":
        for event in EVENTS:
            op.execute(f"CREATE TRIGGER change_counter_domain_rule_{event} "
                       f"AFTER {event.upper()} ON domain_rule BEGIN {BUMP}; END")
    else:
        op.execute("CREATE TRIGGER change_counter_domain_rule AFTER INSERT OR UPDATE OR DELETE "
                   "ON domain_rule FOR EACH STATEMENT EXECUTE FUNCTION change_counter_bump()")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for event in EVENTS:
            op.execute(f"DROP TRIGGER IF EXISTS change_counter_domain_rule_{event}")
    else:
        op.execute("DROP TRIGGER IF EXISTS change_counter_domain_rule ON domain_rule")
    op.drop_table("peer")
    op.drop_table("domain_rule")
