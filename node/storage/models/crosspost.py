"""Posts on outside services (issue 27): the connections of our actors to Telegram
channels and Bluesky accounts, and one queue row per (post, connection).

The queue is its own, beside the fan-out log (docs/ARCHITECTURE.md §2c): a slow or
dead service holds only its own rows, never a fediverse lane.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Column, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from node.storage.db import utcnow
from node.storage.states import CrosspostAccountState, CrosspostState, check_constraint


class CrosspostAccount(SQLModel, table=True):
    """One actor (a group or a language channel) connected to one Telegram channel
    or one Bluesky account. ``secret`` is the bot token or app password, sealed
    with the node's key (crosspost/secrets.py); it is never shown or logged."""

    __tablename__ = "crosspost_account"
    __table_args__ = (
        UniqueConstraint("local_actor_id", "service", "target"),
        CheckConstraint("service IN ('telegram', 'bluesky', 'bridgy')",
                        name="ck_crosspost_service"),
        CheckConstraint(check_constraint("state", CrosspostAccountState),
                        name="ck_crosspost_account_state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    local_actor_id: int = Field(foreign_key="local_actor.id", index=True)
    service: str = Field(max_length=16)
    # Telegram: "@channel" (or a numeric chat id); Bluesky: the handle; bridgy: the
    # bridge bot's actor id (its inbox gets the companion Notes of calls, no secret).
    target: str = Field(max_length=256)
    # Bluesky: the PDS's base URL and the account's DID (from createSession).
    endpoint: str | None = Field(default=None, max_length=512)
    remote_id: str | None = Field(default=None, max_length=256)
    secret: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    # Bluesky session tokens (sealed like the secret), refreshed as they expire.
    session: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    state: str = Field(default=CrosspostAccountState.ACTIVE, max_length=16)
    paused_reason: str | None = Field(default=None, max_length=500)
    # Pacing: the earliest time the next request may go to this destination
    # (Telegram: 20 messages a minute per channel; a 429's retry_after).
    next_send_at: datetime = Field(default_factory=utcnow)
    # ISO times of the last messages sent (at most 20): the per-minute window.
    recent: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class CrosspostItem(SQLModel, table=True):
    """One post on one connection: what to do next (``action``), the public document
    to send (a snapshot taken when the node published it) and what the service
    answered (``remote``: message ids, record URIs)."""

    __tablename__ = "crosspost_item"
    __table_args__ = (
        UniqueConstraint("account_id", "object_uri"),
        CheckConstraint(check_constraint("state", CrosspostState),
                        name="ck_crosspost_item_state"),
        CheckConstraint("action IN ('create', 'update', 'delete')",
                        name="ck_crosspost_item_action"),
    )

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="crosspost_account.id", index=True)
    object_uri: str = Field(max_length=2048, index=True)
    action: str = Field(default="create", max_length=8)
    document: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    remote: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    state: str = Field(default=CrosspostState.PENDING, max_length=16, index=True)
    # Bumped by every change on the node; a worker's outcome for an older version
    # leaves the row pending, so an edit made while sending is not lost.
    version: int = Field(default=1)
    attempts: int = Field(default=0)
    next_attempt_at: datetime = Field(default_factory=utcnow, index=True)
    lease_until: datetime | None = None
    worker_id: str | None = Field(default=None, max_length=64)
    # Why it waits (paced, retrying, paused) or why it failed; for status, never secrets.
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
