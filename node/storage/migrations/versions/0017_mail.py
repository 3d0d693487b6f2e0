"""the bulletin by e-mail (issue 26): subscribers, suppressions, mails, the mail queue

``mail_subscriber`` and ``mail_subscription`` hold a group's lists per language
(double opt-in: node/mail/subscriptions.py); ``mail_suppression`` keeps only a
keyed hash of an address that left; ``mail_message`` is one mail to many and
``mail_queue`` its rows per recipient, the twin of the inbox queue (states in
storage/states.MailState); ``mail_throttle`` keys subscription attempts by keyed
hashes. None of them is read by a cached document: no change-counter triggers.

Revision ID: 0017_mail
Revises: 0016_campaign_owner_response
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0017_mail"
down_revision = "0016_campaign_owner_response"
branch_labels = None
depends_on = None

UTC = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "mail_subscriber",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), sa.ForeignKey("local_actor.id"), nullable=False),
        sa.Column("address", sa.String(length=254), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("bulletins", sa.Boolean(), nullable=False),
        sa.Column("calls", sa.Boolean(), nullable=False),
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("consent", sa.String(length=500), nullable=False),
        sa.Column("created_at", UTC(), nullable=False),
        sa.Column("confirmed_at", UTC(), nullable=True),
        sa.Column("soft_bounce_days", sa.Integer(), nullable=False),
        sa.Column("last_soft_bounce", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("group_id", "address"),
        sa.CheckConstraint("state IN ('pending', 'confirmed')", name="ck_mail_subscriber_state"),
    )
    op.create_index("ix_mail_subscriber_group_id", "mail_subscriber", ["group_id"])
    op.create_index("ix_mail_subscriber_created_at", "mail_subscriber", ["created_at"])
    op.create_table(
        "mail_subscription",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), sa.ForeignKey("mail_subscriber.id"),
                  nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subscriber_id", "language"),
    )
    op.create_index("ix_mail_subscription_subscriber_id", "mail_subscription", ["subscriber_id"])
    op.create_index("ix_mail_subscription_language", "mail_subscription", ["language"])
    op.create_table(
        "mail_suppression",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), sa.ForeignKey("local_actor.id"), nullable=False),
        sa.Column("address_hash", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTC(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("group_id", "address_hash"),
    )
    op.create_index("ix_mail_suppression_group_id", "mail_suppression", ["group_id"])
    op.create_table(
        "mail_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), sa.ForeignKey("local_actor.id"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ref", sa.String(length=200), nullable=False),
        sa.Column("versions", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("group_id", "kind", "ref"),
    )
    op.create_index("ix_mail_message_group_id", "mail_message", ["group_id"])
    op.create_table(
        "mail_queue",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), sa.ForeignKey("mail_message.id"), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTC(), nullable=False),
        sa.Column("lease_until", UTC(), nullable=True),
        sa.Column("worker_id", sa.String(length=64), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("sent_at", UTC(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_id", "subscriber_id"),
        sa.CheckConstraint("state IN ('pending', 'sending', 'sent', 'bounced', 'failed')",
                           name="ck_mail_queue_state"),
    )
    op.create_index("ix_mail_queue_due", "mail_queue", ["state", "next_attempt_at"])
    op.create_index("ix_mail_queue_message_id", "mail_queue", ["message_id"])
    op.create_index("ix_mail_queue_subscriber_id", "mail_queue", ["subscriber_id"])
    op.create_table(
        "mail_throttle",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("at", UTC(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_mail_throttle_key", "mail_throttle", ["key"])
    op.create_index("ix_mail_throttle_at", "mail_throttle", ["at"])


def downgrade() -> None:
    for table in ("mail_throttle", "mail_queue", "mail_message", "mail_suppression",
                  "mail_subscription", "mail_subscriber"):
        op.drop_table(table)
