"""networks of groups (issue 15): network actors, memberships, joins

``network`` marks a local Group actor as a network; ``network_membership`` holds
applications and members on the network's node (its accepted rows are served:
the members collection and the directory page, hence the change-counter
triggers of 0005); ``network_join`` holds our groups' Joins of networks.

Revision ID: 0011_networks
Revises: 0010_accounts
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0011_networks"
down_revision = "0010_accounts"
branch_labels = None
depends_on = None

# Served: a network's actor document (members link), members collection, page.
WATCHED = ("network", "network_membership")
BUMP = "UPDATE change_counter SET value = value + 1 WHERE id = 1"
STATES = "state IN ('pending', 'accepted', 'rejected', 'left', 'removed')"


def upgrade() -> None:
    op.create_table(
        "network",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), sa.ForeignKey("local_actor.id"), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("actor_id"),
    )
    op.create_table(
        "network_membership",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("network_id", sa.Integer(), sa.ForeignKey("network.id"), nullable=False),
        sa.Column("member_uri", sa.String(length=2048), nullable=False),
        sa.Column("inbox", sa.String(length=2048), nullable=False),
        sa.Column("join_activity_id", sa.String(length=2048), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("city", sa.String(length=100), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("node_host", sa.String(length=256), nullable=False),
        sa.Column("languages", sa.JSON(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("network_id", "member_uri"),
        sa.CheckConstraint(STATES, name="ck_network_membership_state"),
    )
    op.create_index("ix_network_membership_network_id", "network_membership", ["network_id"])
    op.create_index("ix_network_membership_member_uri", "network_membership", ["member_uri"])
    op.create_table(
        "network_join",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("local_actor_id", sa.Integer(), sa.ForeignKey("local_actor.id"),
                  nullable=False),
        sa.Column("network_uri", sa.String(length=2048), nullable=False),
        sa.Column("network_inbox", sa.String(length=2048), nullable=False),
        sa.Column("join_activity_id", sa.String(length=2048), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("local_actor_id", "network_uri"),
        sa.UniqueConstraint("join_activity_id"),
        sa.CheckConstraint(STATES, name="ck_network_join_state"),
    )
    op.create_index("ix_network_join_local_actor_id", "network_join", ["local_actor_id"])
    if op.get_bind().dialect.name == "sqlite":
        for table in WATCHED:
            for event in ("INSERT", "UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER change_counter_{table}_{event.lower()} "
                           f"AFTER {event} ON {table} BEGIN {BUMP}; END")
    else:
        for table in WATCHED:  # change_counter_bump() comes from 0005
            op.execute(f"CREATE TRIGGER change_counter_{table} AFTER INSERT OR UPDATE OR "
                       f"DELETE ON {table} FOR EACH STATEMENT "
                       "EXECUTE FUNCTION change_counter_bump()")


def downgrade() -> None:
    op.drop_table("network_join")
    op.drop_table("network_membership")
    op.drop_table("network")
