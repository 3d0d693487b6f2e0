"""What we receive: the inbox queue, interactions, stored remote posts, peer sync state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Column, Index
from sqlmodel import Field, SQLModel

from node.storage.db import utcnow
from node.storage.states import (
    InboxState,
    check_constraint,
)

# --- what we receive -----------------------------------------------------------


class InboxItem(SQLModel, table=True):
    """A verified inbound activity, stored before the 202; processed after.

    States (``InboxState``): pending → processing (leased to ``worker_id``
    until ``lease_until``) → done | failed (node/federation/inbox_queue.py).
    Unique by activity id: idempotency.
    """

    __tablename__ = "inbox_item"
    __table_args__ = (
        Index("ix_inbox_due", "state", "next_attempt_at"),
        CheckConstraint(check_constraint("state", InboxState), name="ck_inbox_item_state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    activity_id: str = Field(max_length=2048, unique=True)
    activity_type: str = Field(max_length=64)
    actor_uri: str = Field(max_length=2048)
    # The local actor whose inbox received it; None for the shared inbox.
    recipient_id: int | None = Field(default=None, foreign_key="local_actor.id")
    body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    state: str = Field(default=InboxState.PENDING, max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    lease_until: datetime | None = None
    worker_id: str | None = Field(default=None, max_length=64)
    last_error: str | None = Field(default=None, max_length=400)
    received_at: datetime = Field(default_factory=utcnow)
    processed_at: datetime | None = None


class Interaction(SQLModel, table=True):
    """A Like or Announce of one of our objects (counted, undone by Undo)."""

    __tablename__ = "interaction"

    id: int | None = Field(default=None, primary_key=True)
    activity_id: str = Field(max_length=2048, unique=True)
    interaction_type: str = Field(max_length=16)  # Like | Announce
    actor_uri: str = Field(max_length=2048, index=True)
    object_uri: str = Field(max_length=2048, index=True)
    created_at: datetime = Field(default_factory=utcnow)


class RemoteObject(SQLModel, table=True):
    """A remote post we keep: a reply to one of ours (held for moderation), or a
    post of an actor one of our groups follows (federation/remote_posts.py)."""

    __tablename__ = "remote_object"
    # A followed actor's posts newest first (the client API's home timeline).
    __table_args__ = (Index("ix_remote_object_actor_published", "actor_uri",
                            "published_at"),)

    id: int | None = Field(default=None, primary_key=True)
    uri: str = Field(max_length=2048, unique=True)
    actor_uri: str = Field(max_length=2048, index=True)
    object_type: str = Field(max_length=32)
    in_reply_to: str | None = Field(default=None, max_length=2048, index=True)
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    moderation_state: str = Field(default="pending", max_length=16)  # pending|approved|hidden
    received_at: datetime = Field(default_factory=utcnow)
    deleted: bool = False
    # The object's own ``published`` (None when it gave none or nonsense).
    published_at: datetime | None = Field(default=None, index=True)
    # How it reached us: inbox | backfill | sync (federation/outbox_sync.py).
    source: str = Field(default="inbox", max_length=16)


class SyncState(SQLModel, table=True):
    """Catch-up of one followed actor's outbox (federation/outbox_sync.py):
    when it is due, what its newest item was, how it has been failing, and which
    worker holds it now (a lease, so two serve processes never walk it at once)."""

    __tablename__ = "sync_state"

    actor_uri: str = Field(primary_key=True, max_length=2048)
    next_sync_at: datetime = Field(default_factory=utcnow, index=True)
    last_synced_at: datetime | None = None
    # The first item of the outbox's first page at the last good walk: when the
    # page still starts with it, nothing changed.
    first_item_id: str | None = Field(default=None, max_length=2048)
    # The first page's URL (on the actor's origin): one GET per cheap check.
    first_page: str | None = Field(default=None, max_length=2048)
    # Set once a whole bounded walk succeeded; NULL asks for one (a new follow,
    # a network join, or a walk cut short: the gap is walked again).
    backfilled_at: datetime | None = None
    failures: int = 0
    last_error: str | None = Field(default=None, max_length=200)
    lease_until: datetime | None = None
    worker_id: str | None = Field(default=None, max_length=64)
