"""the Mastodon client API: apps, codes, tokens, notifications, markers, idempotency keys

Six new tables (node/storage/models/clientapi.py) and ``media_file.description``
(the alt text an app sends with an upload), two indexes for timelines,
and change-counter triggers on what decides who a token speaks for. Codes, tokens and client secrets are
stored as SHA-256 only. No cached document reads these tables: no trigger.

Revision ID: 0019_client_api
Revises: 0018_crosspost
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0019_client_api"
down_revision = "0018_crosspost"
branch_labels = None
depends_on = None

BUMP = "UPDATE change_counter SET value = value + 1 WHERE id = 1"
CALLER_TABLES = ("oauth_token", "account", "account_group")


def upgrade() -> None:
    op.create_table(
        "oauth_app",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("client_secret_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("website", sa.String(length=2048), nullable=True),
        sa.Column("redirect_uris", sa.JSON(), nullable=False),
        sa.Column("scopes", sa.String(length=1000), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    )
    op.create_index("ix_oauth_app_client_id", "oauth_app", ["client_id"], unique=True)
    op.create_table(
        "oauth_code",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("app_id", sa.Integer(), sa.ForeignKey("oauth_app.id"), nullable=False),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("account.id"), nullable=False),
        sa.Column("local_actor_id", sa.Integer(), sa.ForeignKey("local_actor.id"),
                  nullable=False),
        sa.Column("scopes", sa.String(length=1000), nullable=False),
        sa.Column("redirect_uri", sa.String(length=2048), nullable=False),
        sa.Column("code_challenge", sa.String(length=128), nullable=True),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("used_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    )
    op.create_index("ix_oauth_code_code_hash", "oauth_code", ["code_hash"], unique=True)
    op.create_index("ix_oauth_code_app_id", "oauth_code", ["app_id"])
    op.create_index("ix_oauth_code_account_id", "oauth_code", ["account_id"])
    op.create_table(
        "oauth_token",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("app_id", sa.Integer(), sa.ForeignKey("oauth_app.id"), nullable=False),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("account.id"), nullable=True),
        sa.Column("local_actor_id", sa.Integer(), sa.ForeignKey("local_actor.id"),
                  nullable=True),
        sa.Column("scopes", sa.String(length=1000), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("last_used_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    )
    op.create_index("ix_oauth_token_token_hash", "oauth_token", ["token_hash"], unique=True)
    op.create_index("ix_oauth_token_app_id", "oauth_token", ["app_id"])
    op.create_index("ix_oauth_token_account_id", "oauth_token", ["account_id"])
    op.create_table(
        "client_notification",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("local_actor_id", sa.Integer(), sa.ForeignKey("local_actor.id"),
                  nullable=False),
        sa.Column("notification_type", sa.String(length=32), nullable=False),
        sa.Column("account_uri", sa.String(length=2048), nullable=False),
        sa.Column("status_uri", sa.String(length=2048), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "notification_type IN ('mention', 'follow', 'follow_request', 'favourite', "
            "'reblog', 'update')", name="ck_client_notification_type"),
    )
    op.create_index("ix_client_notification_group", "client_notification",
                    ["local_actor_id", "id"])
    op.create_table(
        "idempotency_key",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token_id", sa.Integer(), sa.ForeignKey("oauth_token.id"), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("object_uri", sa.String(length=2048), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.UniqueConstraint("token_id", "key"),
    )
    op.create_index("ix_idempotency_key_token_id", "idempotency_key", ["token_id"])
    op.create_index("ix_idempotency_key_created_at", "idempotency_key", ["created_at"])
    op.create_table(
        "client_marker",
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("account.id"), primary_key=True),
        sa.Column("local_actor_id", sa.Integer(), sa.ForeignKey("local_actor.id"),
                  primary_key=True),
        sa.Column("timeline", sa.String(length=16), primary_key=True),
        sa.Column("last_read_id", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    )
    # Timelines read a group's posts and a followed actor's posts newest first.
    op.create_index("ix_local_object_actor_published", "local_object",
                    ["local_actor_id", "published"])
    op.create_index("ix_remote_object_actor_published", "remote_object",
                    ["actor_uri", "published_at"])
    # Who a token speaks for is cached per process for reads (clientapi/apps.py), so
    # what decides it bumps the change counter (0005_change_counter): a revocation,
    # a deleted user or a group taken away holds at the next request everywhere.
    if op.get_bind().dialect.name == "sqlite":
        for table in CALLER_TABLES:
            for event in ("INSERT", "UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER change_counter_{table}_{event.lower()} "
                           f"AFTER {event} ON {table} BEGIN {BUMP}; END")
    else:
        for table in CALLER_TABLES:
            op.execute(f"CREATE TRIGGER change_counter_{table} AFTER INSERT OR UPDATE OR "
                       f"DELETE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION "
                       "change_counter_bump()")
    # ADD COLUMN, not a batch copy: media_file keeps its triggers on SQLite.
    op.add_column("media_file", sa.Column("description", sa.String(length=1500), nullable=True))


def downgrade() -> None:
    for table in CALLER_TABLES:
        if op.get_bind().dialect.name == "sqlite":
            for event in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS change_counter_{table}_{event}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS change_counter_{table} ON {table}")
    op.drop_index("ix_remote_object_actor_published", table_name="remote_object")
    op.drop_index("ix_local_object_actor_published", table_name="local_object")
    with op.batch_alter_table("media_file", recreate="never") as batch:
        batch.drop_column("description")
    for table in ("client_marker", "idempotency_key", "client_notification", "oauth_token", "oauth_code",
                  "oauth_app"):
        op.drop_table(table)
