"""Local and remote actors, and who follows whom."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from node.storage.db import utcnow
from node.storage.states import (
    FollowerState,
    FollowingState,
    check_constraint,
)

# --- local actors -----------------------------------------------------------


class LocalActor(SQLModel, table=True):
    """A group (or the instance Application actor, FEP-2677) hosted here."""

    __tablename__ = "local_actor"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True, index=True)
    actor_type: str = Field(default="Group", max_length=32)  # Group | Application
    display_name: str = Field(max_length=200)
    # Per-language texts: {"fa": "...", "de": "..."}; the primary language first.
    names: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    summaries: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    language: str = Field(default="en", max_length=16)
    manually_approves_followers: bool = False
    discoverable: bool = True
    indexable: bool = True
    # [{"name": "Website", "url": "https://..."}] → PropertyValue attachments.
    links: list[dict[str, str]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    icon_path: str | None = Field(default=None, max_length=200)
    image_path: str | None = Field(default=None, max_length=200)
    rsa_private_pem: str = Field(sa_column=Column(Text, nullable=False))
    rsa_public_pem: str = Field(sa_column=Column(Text, nullable=False))
    ed25519_private_pem: str = Field(sa_column=Column(Text, nullable=False))
    ed25519_public_multibase: str = Field(max_length=80)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


# --- remote actors and relations ---------------------------------------------


class RemoteActor(SQLModel, table=True):
    """A cached remote actor document: what we need to verify and deliver."""

    __tablename__ = "remote_actor"

    id: int | None = Field(default=None, primary_key=True)
    uri: str = Field(max_length=2048, unique=True, index=True)
    actor_type: str = Field(default="Person", max_length=32)
    username: str | None = Field(default=None, max_length=256)
    domain: str = Field(max_length=256, index=True)
    display_name: str | None = Field(default=None, max_length=400)
    inbox: str = Field(max_length=2048)
    shared_inbox: str | None = Field(default=None, max_length=2048)
    url: str | None = Field(default=None, max_length=2048)
    public_key_id: str | None = Field(default=None, max_length=2048, index=True)
    public_key_pem: str | None = Field(default=None, sa_column=Column(Text))
    # FEP-521a assertionMethod keys: [{"id": ..., "multibase": ...}]
    assertion_keys: list[dict[str, str]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    raw: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    fetched_at: datetime = Field(default_factory=utcnow)
    deleted: bool = False


class Follower(SQLModel, table=True):
    """A remote actor following one of our groups (pending until accepted)."""

    __tablename__ = "follower"
    __table_args__ = (
        UniqueConstraint("local_actor_id", "actor_uri"),
        Index("ix_follower_actor_host", "local_actor_id", "host"),
        CheckConstraint(check_constraint("state", FollowerState), name="ck_follower_state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    local_actor_id: int = Field(foreign_key="local_actor.id", index=True)
    actor_uri: str = Field(max_length=2048)
    inbox: str = Field(max_length=2048)
    shared_inbox: str | None = Field(default=None, max_length=2048)
    follow_activity_id: str = Field(max_length=2048)
    state: str = Field(default=FollowerState.PENDING, max_length=16)
    created_at: datetime = Field(default_factory=utcnow)
    # Where activities to followers go for this one (its shared inbox if on its
    # own origin, else its inbox: delivery.targets.deliver_to) and that URL's
    # host, the lane it is served by. Set when the row is written.
    deliver_to: str | None = Field(default=None, max_length=2048)
    host: str | None = Field(default=None, max_length=256)


class Following(SQLModel, table=True):
    """One of our groups following a remote actor."""

    __tablename__ = "following"
    __table_args__ = (
        UniqueConstraint("local_actor_id", "target_uri"),
        CheckConstraint(check_constraint("state", FollowingState), name="ck_following_state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    local_actor_id: int = Field(foreign_key="local_actor.id", index=True)
    target_uri: str = Field(max_length=2048)
    follow_activity_id: str = Field(max_length=2048, unique=True)
    state: str = Field(default=FollowingState.PENDING, max_length=16)
    created_at: datetime = Field(default_factory=utcnow)
