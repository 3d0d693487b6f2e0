"""What we publish and the delivery queue: objects, activities, the fan-out log, lanes,
failures (docs/ARCHITECTURE.md §2)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Column, Index, LargeBinary
from sqlmodel import Field, SQLModel

from node.storage.db import utcnow
from node.storage.states import (
    LaneState,
    check_constraint,
)

# --- what we publish -----------------------------------------------------------


class LocalObject(SQLModel, table=True):
    """A post of ours (Note now; Article, Event … later), served at /objects/<uuid>."""

    __tablename__ = "local_object"

    # A group's posts newest first (the client API's timelines: node/clientapi).
    __table_args__ = (Index("ix_local_object_actor_published", "local_actor_id",
                            "published"),)

    id: int | None = Field(default=None, primary_key=True)
    uuid: str = Field(max_length=64, unique=True, index=True)
    local_actor_id: int = Field(foreign_key="local_actor.id", index=True)
    object_type: str = Field(default="Note", max_length=32)
    language: str = Field(default="en", max_length=16)
    # Per-language texts; the object's language first. Content is sanitised HTML.
    names: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    summaries: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    contents: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    in_reply_to: str | None = Field(default=None, max_length=2048)
    # Extra type-specific fields (Event details etc.), already in AS vocabulary.
    extra: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    published: datetime = Field(default_factory=utcnow)
    updated: datetime | None = None
    deleted_at: datetime | None = None
    pinned_at: datetime | None = None


class Activity(SQLModel, table=True):
    """An activity we sent. The body is serialised once; deliveries point at it."""

    __tablename__ = "activity"

    id: int | None = Field(default=None, primary_key=True)
    uuid: str = Field(max_length=64, unique=True, index=True)
    local_actor_id: int = Field(foreign_key="local_actor.id", index=True)
    activity_type: str = Field(max_length=32)
    object_uri: str | None = Field(default=None, max_length=2048, index=True)
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    # Listed in the public outbox (Create/Update/Delete/Announce of public posts).
    in_outbox: bool = Field(default=True)
    published: datetime = Field(default_factory=utcnow)


class Fanout(SQLModel, table=True):
    """One published activity that goes somewhere: the fan-out log.

    The id is the log position; every host's lane (``HostState.cursor``) walks
    the log in id order, so one row stands for every follower of the actor
    (``followers_of``) and/or a short explicit list of inboxes (``inboxes``:
    an Accept, an invitation, mentions). No per-inbox rows are written when
    publishing (docs/ARCHITECTURE.md §2).
    """

    __tablename__ = "fanout"
    # AUTOINCREMENT on SQLite: a log position is never reused, even after the
    # newest row was deleted.
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    activity_id: int = Field(foreign_key="activity.id", index=True)
    followers_of: int | None = Field(default=None, foreign_key="local_actor.id")
    inboxes: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)


class HostState(SQLModel, table=True):
    """Per remote host: its delivery lane over the fan-out log, the signature
    scheme it accepts, and its failure record (the lane is the breaker).

    ``cursor``: the last fan-out fully handled for this host. ``attempts``:
    consecutive failed attempts of the fan-out at the head; ``done``: inboxes of
    the head fan-out already sent, so a retry does not repeat them.
    """

    __tablename__ = "host_state"
    __table_args__ = (
        Index("ix_host_state_due", "next_attempt_at"),
        CheckConstraint(check_constraint("state", LaneState), name="ck_host_state_state"),
    )

    host: str = Field(primary_key=True, max_length=256)
    cursor: int = 0
    state: str = Field(default=LaneState.IDLE, max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    lease_until: datetime | None = None
    worker_id: str | None = Field(default=None, max_length=64)
    last_status: int | None = None
    last_error: str | None = Field(default=None, max_length=200)
    done: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    consecutive_failures: int = 0
    circuit_open_until: datetime | None = None
    signature_scheme: str | None = Field(default=None, max_length=16)  # cavage | rfc9421
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None


class DeliveryFailure(SQLModel, table=True):
    """An inbox that did not get a fan-out: a permanent answer, a refused
    address, or attempts used up. The lane moved on; this is the record."""

    __tablename__ = "delivery_failure"

    id: int | None = Field(default=None, primary_key=True)
    fanout_id: int = Field(foreign_key="fanout.id")
    activity_id: int = Field(foreign_key="activity.id", index=True)
    host: str = Field(max_length=256)
    inbox_url: str = Field(max_length=2048)
    status: int | None = None
    error: str | None = Field(default=None, max_length=200)
    at: datetime = Field(default_factory=utcnow, index=True)
