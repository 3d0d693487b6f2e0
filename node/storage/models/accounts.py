"""Who may act: API tokens, and the workspace's accounts, sessions, throttling and drafts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Column, LargeBinary
from sqlmodel import Field, SQLModel

from node.storage.db import utcnow


class ApiToken(SQLModel, table=True):
    """A bearer token for the JSON API. Only its SHA-256 is stored."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    label: str = Field(max_length=200)
    # None = all groups (admin token); else the one group it may act for.
    local_actor_id: int | None = Field(default=None, foreign_key="local_actor.id")
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None


# --- accounts, sessions and drafts of the editors' workspace (issue 14) ----------------


class Account(SQLModel, table=True):
    """A person who logs in to /admin: the node's admin, or an editor of some groups.

    ``password_hash`` is argon2id (node/accounts/passwords.py); None until the
    one-time link is used."""

    __tablename__ = "account"
    __table_args__ = (CheckConstraint("role IN ('admin', 'editor')", name="ck_account_role"),)

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True, index=True)
    role: str = Field(default="editor", max_length=16)
    password_hash: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    password_changed_at: datetime | None = None


class AccountGroup(SQLModel, table=True):
    """A group an editor may act for."""

    __tablename__ = "account_group"

    account_id: int = Field(foreign_key="account.id", primary_key=True)
    local_actor_id: int = Field(foreign_key="local_actor.id", primary_key=True)


class AccountSession(SQLModel, table=True):
    """A logged-in browser. Only the SHA-256 of the cookie's random id is stored."""

    __tablename__ = "account_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)


class PasswordLink(SQLModel, table=True):
    """A one-time set-password link (its token's SHA-256), valid until ``expires_at``."""

    __tablename__ = "password_link"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    expires_at: datetime


class LoginFailure(SQLModel, table=True):
    """A failed login, keyed by an HMAC of the account name or of the client address
    (never the address itself: DESIGN.md, safety defaults); rows expire."""

    __tablename__ = "login_failure"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64, index=True)
    at: datetime = Field(default_factory=utcnow, index=True)


class NodeSecret(SQLModel, table=True):
    """Random keys the node makes once (CSRF tokens, throttling keys)."""

    __tablename__ = "node_secret"

    name: str = Field(max_length=32, primary_key=True)
    value: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class Draft(SQLModel, table=True):
    """An unpublished call or news item: the same JSON body the CLI and API take.

    A draft is never a LocalObject, so no page, feed, collection or fetch can serve it;
    publishing runs the same operation as the API, then the row goes."""

    __tablename__ = "draft"
    __table_args__ = (CheckConstraint("kind IN ('call', 'news')", name="ck_draft_kind"),)

    id: int | None = Field(default=None, primary_key=True)
    local_actor_id: int = Field(foreign_key="local_actor.id", index=True)
    kind: str = Field(max_length=16)
    body: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_by: int | None = Field(default=None, foreign_key="account.id")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
