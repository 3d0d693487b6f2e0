"""The Mastodon client API (node/clientapi): registered apps, authorisation codes,
access tokens, notifications and Idempotency-Keys.

Codes, tokens and client secrets are random and stored only as their SHA-256
(like API tokens and sessions): a copy of the database lets nobody act."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from node.storage.db import utcnow
from node.storage.states import NotificationType, check_constraint


class OAuthApp(SQLModel, table=True):
    """A client registered with ``POST /api/v1/apps`` (RFC 7591 in Mastodon's form)."""

    __tablename__ = "oauth_app"

    id: int | None = Field(default=None, primary_key=True)
    client_id: str = Field(max_length=64, unique=True, index=True)
    client_secret_hash: str = Field(max_length=64)
    name: str = Field(max_length=200)
    website: str | None = Field(default=None, max_length=2048)
    # Matched exactly at /oauth/authorize and /oauth/token (RFC 6749 §3.1.2.2).
    redirect_uris: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    scopes: str = Field(max_length=1000)
    created_at: datetime = Field(default_factory=utcnow)


class OAuthCode(SQLModel, table=True):
    """An authorisation code: single use (``used_at``), valid ten minutes."""

    __tablename__ = "oauth_code"

    id: int | None = Field(default=None, primary_key=True)
    code_hash: str = Field(max_length=64, unique=True, index=True)
    app_id: int = Field(foreign_key="oauth_app.id", index=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    local_actor_id: int = Field(foreign_key="local_actor.id")
    scopes: str = Field(max_length=1000)
    redirect_uri: str = Field(max_length=2048)
    # RFC 7636: the S256 challenge, when the app sent one.
    code_challenge: str | None = Field(default=None, max_length=128)
    expires_at: datetime
    used_at: datetime | None = None


class OAuthToken(SQLModel, table=True):
    """An access token bound to (account, group, scopes); an app-only token
    (client_credentials) has neither account nor group."""

    __tablename__ = "oauth_token"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    app_id: int = Field(foreign_key="oauth_app.id", index=True)
    account_id: int | None = Field(default=None, foreign_key="account.id", index=True)
    local_actor_id: int | None = Field(default=None, foreign_key="local_actor.id")
    scopes: str = Field(max_length=1000)
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class ClientNotification(SQLModel, table=True):
    """What a group's editors see in their app's notifications: written where the
    follow, reply, like or boost is stored (federation/processing.py). The row id is
    the notification's id, so ids sort in time order."""

    __tablename__ = "client_notification"
    __table_args__ = (
        Index("ix_client_notification_group", "local_actor_id", "id"),
        CheckConstraint(check_constraint("notification_type", NotificationType),
                        name="ck_client_notification_type"),
    )

    id: int | None = Field(default=None, primary_key=True)
    local_actor_id: int = Field(foreign_key="local_actor.id")
    notification_type: str = Field(max_length=32)
    account_uri: str = Field(max_length=2048)
    # The local object (favourite, reblog) or the remote reply (mention), if any.
    status_uri: str | None = Field(default=None, max_length=2048)
    created_at: datetime = Field(default_factory=utcnow)


class IdempotencyKey(SQLModel, table=True):
    """An ``Idempotency-Key`` a token posted with, and the status it made: the same
    key again answers that status instead of posting twice."""

    __tablename__ = "idempotency_key"
    __table_args__ = (UniqueConstraint("token_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    token_id: int = Field(foreign_key="oauth_token.id", index=True)
    key: str = Field(max_length=200)
    object_uri: str = Field(max_length=2048)
    created_at: datetime = Field(default_factory=utcnow, index=True)


class ClientMarker(SQLModel, table=True):
    """Where an editor stopped reading a group's ``home`` or ``notifications``
    (Mastodon's markers), per user and group."""

    __tablename__ = "client_marker"

    account_id: int = Field(foreign_key="account.id", primary_key=True)
    local_actor_id: int = Field(foreign_key="local_actor.id", primary_key=True)
    timeline: str = Field(max_length=16, primary_key=True)
    last_read_id: str = Field(max_length=40)
    version: int = 1
    updated_at: datetime = Field(default_factory=utcnow)
