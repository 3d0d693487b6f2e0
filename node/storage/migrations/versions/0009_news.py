"""news items, bulletins, language channels and their copies (issue 13)

``news_item`` keeps what the editor wrote per language; ``news_bulletin`` numbers
a group's bulletins (never reused); ``news_channel`` ties a
language channel actor (``GROUP_LANG``) to its group; ``news_copy`` ties a
channel's one-language object to the item it copies. What is served lives on
``local_object`` and ``local_actor``, whose change-counter triggers already
cover these writes (0005_change_counter).

Revision ID: 0009_news
Revises: 0008_queue_notify
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0009_news"
down_revision = "0008_queue_notify"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "news_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("object_id", sa.Integer(), sa.ForeignKey("local_object.id"), nullable=False),
        sa.Column("versions", sa.JSON(), nullable=False),
        sa.Column("photos", sa.JSON(), nullable=False),
        sa.Column("hashtags", sa.JSON(), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("sectors", sa.JSON(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_news_item_object_id", "news_item", ["object_id"], unique=True)
    op.create_table(
        "news_bulletin",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), sa.ForeignKey("local_actor.id"), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("object_id", sa.Integer(), sa.ForeignKey("local_object.id"), nullable=False),
        sa.Column("period_start", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("period_end", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("item_ids", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("group_id", "number"),
        sa.UniqueConstraint("object_id"),
    )
    op.create_index("ix_news_bulletin_group_id", "news_bulletin", ["group_id"])
    op.create_table(
        "news_channel",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), sa.ForeignKey("local_actor.id"), nullable=False),
        sa.Column("actor_id", sa.Integer(), sa.ForeignKey("local_actor.id"), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("group_id", "language"),
        sa.UniqueConstraint("actor_id"),
    )
    op.create_index("ix_news_channel_group_id", "news_channel", ["group_id"])
    op.create_table(
        "news_copy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_object_id", sa.Integer(), sa.ForeignKey("local_object.id"),
                  nullable=False),
        sa.Column("channel_id", sa.Integer(), sa.ForeignKey("news_channel.id"), nullable=False),
        sa.Column("object_id", sa.Integer(), sa.ForeignKey("local_object.id"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source_object_id", "channel_id"),
        sa.UniqueConstraint("object_id"),
    )
    op.create_index("ix_news_copy_source_object_id", "news_copy", ["source_object_id"])
    op.create_index("ix_news_copy_channel_id", "news_copy", ["channel_id"])


def downgrade() -> None:
    op.drop_table("news_copy")
    op.drop_table("news_channel")
    op.drop_table("news_bulletin")
    op.drop_table("news_item")
