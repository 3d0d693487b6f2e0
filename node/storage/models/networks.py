"""Networks of groups: the network, its members, our groups' joins."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from node.storage.db import utcnow
from node.storage.states import (
    MembershipState,
    check_constraint,
)

# --- networks of groups (issue 15; node/networks/) ------------------------------------


class Network(SQLModel, table=True):
    """A network: the local ``Group`` actor ``actor_id`` whose members are groups
    on any node (told apart from other groups by this row, as channels are by
    ``news_channel``)."""

    __tablename__ = "network"

    id: int | None = Field(default=None, primary_key=True)
    actor_id: int = Field(foreign_key="local_actor.id", unique=True)
    created_at: datetime = Field(default_factory=utcnow)


class NetworkMembership(SQLModel, table=True):
    """A group's application to / membership of one of our networks (network side).

    Pending, rejected and removed rows are the admins' business only; accepted
    rows are the public directory and the ``members`` collection."""

    __tablename__ = "network_membership"
    __table_args__ = (
        UniqueConstraint("network_id", "member_uri"),
        CheckConstraint(check_constraint("state", MembershipState),
                        name="ck_network_membership_state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    network_id: int = Field(foreign_key="network.id", index=True)
    member_uri: str = Field(max_length=2048, index=True)
    inbox: str = Field(max_length=2048)
    join_activity_id: str = Field(max_length=2048)
    state: str = Field(default=MembershipState.PENDING, max_length=16)
    # The public directory: name (from the actor document), city, country
    # (ISO 3166-1 alpha-2), node (the member's host), languages (BCP 47).
    name: str = Field(max_length=200)
    city: str | None = Field(default=None, max_length=100)
    country: str | None = Field(default=None, max_length=2)
    node_host: str = Field(max_length=256)
    languages: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class NetworkJoin(SQLModel, table=True):
    """One of our groups' Join of a network (member side): only the network
    actor's answer to exactly this Join, while pending, changes it."""

    __tablename__ = "network_join"
    __table_args__ = (
        UniqueConstraint("local_actor_id", "network_uri"),
        CheckConstraint(check_constraint("state", MembershipState),
                        name="ck_network_join_state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    local_actor_id: int = Field(foreign_key="local_actor.id", index=True)
    network_uri: str = Field(max_length=2048)
    network_inbox: str = Field(max_length=2048)
    join_activity_id: str = Field(max_length=2048, unique=True)
    state: str = Field(default=MembershipState.PENDING, max_length=16)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class NetworkRoster(SQLModel, table=True):
    """The members of a network on another node, as last fetched from its
    ``members`` collection (node/networks/roster.py): where a ``network_only``
    campaign goes, and whose signed GETs may read it, without a fetch per GET.
    ``members``: [{"uri", "inbox", "host"}] (inbox: the shared one where known)."""

    __tablename__ = "network_roster"

    id: int | None = Field(default=None, primary_key=True)
    network_uri: str = Field(max_length=2048, unique=True)
    members_url: str = Field(max_length=2048, index=True)
    inbox: str = Field(max_length=2048)  # the network actor's (shared) inbox
    members: list[dict[str, str]] = Field(default_factory=list,
                                          sa_column=Column(JSON, nullable=False))
    fetched_at: datetime = Field(default_factory=utcnow)
