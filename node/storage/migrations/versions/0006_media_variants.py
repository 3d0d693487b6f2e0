"""media variants, blurhash and focal point

Each upload gets smaller copies (rows whose ``variant_of`` names the
original), a blurhash and an optional focal point, which the flyer
attachment and the group's icon carry (FEDERATION.md). Uploads made before
this keep working without them.

Revision ID: 0006_media_variants
Revises: 0005_change_counter
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_media_variants"
down_revision = "0005_change_counter"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("media_file") as batch:
        batch.add_column(sa.Column("variant_of", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("blurhash", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("focus_x", sa.Float(), nullable=True))
        batch.add_column(sa.Column("focus_y", sa.Float(), nullable=True))
        batch.create_index("ix_media_file_variant_of", ["variant_of"])
        batch.create_foreign_key("fk_media_file_variant_of", "media_file",
                                 ["variant_of"], ["id"])


def downgrade() -> None:
    # Without the column a variant would pass for an upload of its own.
    op.execute("DELETE FROM media_file WHERE variant_of IS NOT NULL")
    with op.batch_alter_table("media_file") as batch:
        batch.drop_constraint("fk_media_file_variant_of", type_="foreignkey")
        batch.drop_index("ix_media_file_variant_of")
        batch.drop_column("focus_y")
        batch.drop_column("focus_x")
        batch.drop_column("blurhash")
        batch.drop_column("variant_of")
