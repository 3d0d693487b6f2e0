"""campaign co-owners: the id of the Accept that made a group a co-owner

``campaign_owner.response_activity_id`` is what a co-owner's ``Undo{Accept}``
names when it leaves (node/campaigns/coowners.py), as ``cosigner`` keeps it for
co-signers; before this, the check read the stored inbox item of the Accept, which
would break the day inbox items are pruned. Rows accepted before keep NULL and
are still checked that way. Not read by a cached document: no trigger.

Revision ID: 0016_campaign_owner_response
Revises: 0015_network_roster
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_campaign_owner_response"
down_revision = "0015_network_roster"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("campaign_owner", sa.Column("response_activity_id", sa.String(length=2048),
                                              nullable=True))
    op.create_index("ix_campaign_owner_response_activity_id", "campaign_owner",
                    ["response_activity_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_campaign_owner_response_activity_id", table_name="campaign_owner")
    with op.batch_alter_table("campaign_owner", recreate="never") as batch:
        batch.drop_column("response_activity_id")
