"""campaigns for imprisoned workers and their co-owners (issue 16)

``campaign`` keeps a dossier as its editors wrote it (node/campaigns/); its
public face is a ``local_object`` rendered from it. The campaign list page reads
``campaign`` itself (status, country, days in detention), so both new tables get
the change-counter triggers of 0005_change_counter: a status changed by the CLI
is seen by the next request of every web process.

Revision ID: 0014_campaigns
Revises: 0013_peer_policy
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0014_campaigns"
down_revision = "0013_peer_policy"
branch_labels = None
depends_on = None

WATCHED = ("campaign", "campaign_owner")
BUMP = "UPDATE change_counter SET value = value + 1 WHERE id = 1"


def upgrade() -> None:
    op.create_table(
        "campaign",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=64), nullable=False),
        sa.Column("group_id", sa.Integer(), sa.ForeignKey("local_actor.id"), nullable=False),
        sa.Column("object_id", sa.Integer(), sa.ForeignKey("local_object.id"), nullable=True),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("visibility", sa.String(length=20), nullable=False),
        sa.Column("network", sa.String(length=2048), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("detentions", sa.JSON(), nullable=False),
        sa.Column("timeline", sa.JSON(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("withdrawn_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.CheckConstraint("visibility IN ('public', 'name_withheld', 'network_only')",
                           name="ck_campaign_visibility"),
        sa.CheckConstraint("status IN ('detained', 'on_trial', 'sentenced', 'on_bail', "
                           "'released', 'died_in_custody')", name="ck_campaign_status"),
    )
    op.create_index("ix_campaign_uuid", "campaign", ["uuid"], unique=True)
    op.create_index("ix_campaign_group_id", "campaign", ["group_id"])
    op.create_index("ix_campaign_object_id", "campaign", ["object_id"])
    op.create_index("ix_campaign_country", "campaign", ["country"])
    op.create_table(
        "campaign_owner",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), sa.ForeignKey("campaign.id"), nullable=False),
        sa.Column("actor_uri", sa.String(length=2048), nullable=False),
        sa.Column("inbox", sa.String(length=2048), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("invite_activity_id", sa.String(length=2048), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("campaign_id", "actor_uri"),
        sa.UniqueConstraint("invite_activity_id"),
    )
    op.create_index("ix_campaign_owner_campaign_id", "campaign_owner", ["campaign_id"])
    if op.get_bind().dialect.name == "sqlite":
        for table in WATCHED:
            for event in ("INSERT", "UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER change_counter_{table}_{event.lower()} "
                           f"AFTER {event} ON {table} BEGIN {BUMP}; END")
    else:
        for table in WATCHED:
            op.execute(f"CREATE TRIGGER change_counter_{table} AFTER INSERT OR UPDATE OR "
                       f"DELETE ON {table} FOR EACH STATEMENT "
                       "EXECUTE FUNCTION change_counter_bump()")


def downgrade() -> None:
    for table in WATCHED:
        if op.get_bind().dialect.name == "sqlite":
            for event in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS change_counter_{table}_{event}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS change_counter_{table} ON {table}")
    op.drop_table("campaign_owner")
    op.drop_table("campaign")
