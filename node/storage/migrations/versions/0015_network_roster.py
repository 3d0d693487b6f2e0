"""network_only campaigns: the rosters of remote networks, the members-only id

``network_roster`` keeps, per network on another node, the members last fetched
from its ``members`` collection (node/networks/roster.py), so a member node's
signed GET of a ``network_only`` campaign is checked without a fetch.
``campaign.network_uuid`` is the id of the document only members may read
(node/campaigns/network_copy.py). Neither is read by a cached document, so no
change-counter trigger; ``campaign`` keeps its triggers (ADD COLUMN does not
rebuild the table on SQLite).

Revision ID: 0015_network_roster
Revises: 0014_campaigns
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0015_network_roster"
down_revision = "0014_campaigns"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "network_roster",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("network_uri", sa.String(length=2048), nullable=False),
        sa.Column("members_url", sa.String(length=2048), nullable=False),
        sa.Column("inbox", sa.String(length=2048), nullable=False),
        sa.Column("members", sa.JSON(), nullable=False),
        sa.Column("fetched_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("network_uri"),
    )
    op.create_index("ix_network_roster_members_url", "network_roster", ["members_url"])
    op.add_column("campaign", sa.Column("network_uuid", sa.String(length=64), nullable=True))
    op.create_index("ix_campaign_network_uuid", "campaign", ["network_uuid"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_campaign_network_uuid", table_name="campaign")
    with op.batch_alter_table("campaign", recreate="never") as batch:
        batch.drop_column("network_uuid")
    op.drop_index("ix_network_roster_members_url", table_name="network_roster")
    op.drop_table("network_roster")
