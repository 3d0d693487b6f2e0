"""Action calls, meetings and conferences: events, co-signers, invitations, participation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from node.storage.db import utcnow
from node.storage.states import (
    CosignerState,
    InvitationState,
    ParticipationState,
    check_constraint,
)

# --- events: action calls, meetings, conferences (issue 3) ------------------------


class Event(SQLModel, table=True):
    """The event details of a LocalObject whose type is Event.

    Texts (title, description, one-line summary) stay per language on the
    LocalObject; this row holds what calendars and maps need.
    """

    __tablename__ = "event"

    id: int | None = Field(default=None, primary_key=True)
    object_id: int = Field(foreign_key="local_object.id", unique=True, index=True)
    kind: str = Field(default="action", max_length=16)  # action | meeting | conference
    start_time: datetime
    end_time: datetime | None = None
    timezone: str = Field(max_length=64)  # IANA name, e.g. Europe/Zurich
    status: str = Field(default="scheduled", max_length=16)  # scheduled|postponed|cancelled
    # {"name", "street", "postcode", "city", "country", "latitude", "longitude"}
    place: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    online_url: str | None = Field(default=None, max_length=2048)
    target: str | None = Field(default=None, max_length=300)  # e.g. the ILO
    hashtags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # {"path": "uploads/<random>.jpg", "media_type": "image/jpeg", "alt": "..."}
    flyer: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    contact_links: list[dict[str, str]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    join_mode: str = Field(default="external", max_length=16)  # free|restricted|invite|external
    category: str | None = Field(default=None, max_length=64)
    # iCalendar SEQUENCE: bumped on every change so calendars replace their copy.
    sequence: int = 0


class Cosigner(SQLModel, table=True):
    """A group invited to co-sign one of our events (author side)."""

    __tablename__ = "cosigner"
    __table_args__ = (
        UniqueConstraint("event_id", "actor_uri"),
        CheckConstraint(check_constraint("state", CosignerState), name="ck_cosigner_state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="event.id", index=True)
    actor_uri: str = Field(max_length=2048)
    inbox: str = Field(max_length=2048)
    display_name: str | None = Field(default=None, max_length=400)
    state: str = Field(default=CosignerState.INVITED, max_length=16)
    invite_activity_id: str = Field(max_length=2048, unique=True)
    response_activity_id: str | None = Field(default=None, max_length=2048)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Invitation(SQLModel, table=True):
    """An invitation one of our groups received to co-sign a remote event."""

    __tablename__ = "invitation"
    __table_args__ = (
        CheckConstraint(check_constraint("state", InvitationState), name="ck_invitation_state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    local_actor_id: int = Field(foreign_key="local_actor.id", index=True)
    inviter_uri: str = Field(max_length=2048)
    event_uri: str = Field(max_length=2048)
    invite_activity_id: str = Field(max_length=2048, unique=True)
    # The event as fetched from its origin (sanitised), for the editors to read.
    event: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    state: str = Field(default=InvitationState.PENDING, max_length=16)
    response_activity_id: str | None = Field(default=None, max_length=2048)
    announce_activity_id: str | None = Field(default=None, max_length=2048)
    received_at: datetime = Field(default_factory=utcnow)


class Participation(SQLModel, table=True):
    """Join/Leave of a meeting or conference. Private to the organising group."""

    __tablename__ = "participation"
    __table_args__ = (
        UniqueConstraint("event_id", "actor_uri"),
        CheckConstraint(check_constraint("state", ParticipationState),
                        name="ck_participation_state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="event.id", index=True)
    actor_uri: str = Field(max_length=2048)
    inbox: str = Field(max_length=2048)
    join_activity_id: str = Field(max_length=2048)
    state: str = Field(default=ParticipationState.PENDING, max_length=16)
    created_at: datetime = Field(default_factory=utcnow)
