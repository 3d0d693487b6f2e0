"""crosspost: Telegram channels and Bluesky accounts of our actors, and their queue

``crosspost_account`` connects a group or language channel to a Telegram channel or a
Bluesky account (secret sealed, crosspost/secrets.py); ``crosspost_item`` is one row per
(post, connection) with explicit states (issue 27, docs/ARCHITECTURE.md §2c). Nothing
here is read by a cached document: no change-counter trigger.

Revision ID: 0018_crosspost
Revises: 0017_mail
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0018_crosspost"
down_revision = "0017_mail"
branch_labels = None
depends_on = None

UTC = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "crosspost_account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("local_actor_id", sa.Integer(), nullable=False),
        sa.Column("service", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=256), nullable=False),
        sa.Column("endpoint", sa.String(length=512), nullable=True),
        sa.Column("remote_id", sa.String(length=256), nullable=True),
        sa.Column("secret", sa.LargeBinary(), nullable=False),
        sa.Column("session", sa.LargeBinary(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("paused_reason", sa.String(length=500), nullable=True),
        sa.Column("next_send_at", UTC(), nullable=False),
        sa.Column("recent", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC(), nullable=False),
        sa.CheckConstraint("service IN ('telegram', 'bluesky', 'bridgy')", name="ck_crosspost_service"),
        sa.CheckConstraint("state IN ('active', 'paused')", name="ck_crosspost_account_state"),
        sa.ForeignKeyConstraint(["local_actor_id"], ["local_actor.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("local_actor_id", "service", "target"),
    )
    op.create_index("ix_crosspost_account_local_actor_id", "crosspost_account",
                    ["local_actor_id"])
    op.create_table(
        "crosspost_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("object_uri", sa.String(length=2048), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("remote", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTC(), nullable=False),
        sa.Column("lease_until", UTC(), nullable=True),
        sa.Column("worker_id", sa.String(length=64), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", UTC(), nullable=False),
        sa.Column("sent_at", UTC(), nullable=True),
        sa.CheckConstraint("state IN ('pending', 'sending', 'sent', 'failed', 'skipped')",
                           name="ck_crosspost_item_state"),
        sa.CheckConstraint("action IN ('create', 'update', 'delete')",
                           name="ck_crosspost_item_action"),
        sa.ForeignKeyConstraint(["account_id"], ["crosspost_account.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id", "object_uri"),
    )
    op.create_index("ix_crosspost_item_account_id", "crosspost_item", ["account_id"])
    op.create_index("ix_crosspost_item_object_uri", "crosspost_item", ["object_uri"])
    op.create_index("ix_crosspost_item_state", "crosspost_item", ["state"])
    op.create_index("ix_crosspost_item_next_attempt_at", "crosspost_item", ["next_attempt_at"])


def downgrade() -> None:
    op.drop_table("crosspost_item")
    op.drop_table("crosspost_account")
