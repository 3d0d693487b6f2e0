"""Campaigns for imprisoned workers and their co-owners."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from node.storage.db import utcnow

# --- campaigns for imprisoned workers (issue 16) ------------------------------------


class Campaign(SQLModel, table=True):
    """A dossier on one imprisoned worker, kept as the editors wrote it.

    ``data`` holds the validated input (names per script, texts per language,
    photo, "what you can do", per-field consent); ``detentions`` and
    ``timeline`` grow with status changes and updates. What the public sees is
    rendered from this row onto ``object_id`` (node/campaigns/render.py) only
    while the consent allows: a ``network_only`` campaign has no public object;
    its document for the network's member nodes has its own id (``network_uuid``).
    """

    __tablename__ = "campaign"

    id: int | None = Field(default=None, primary_key=True)
    uuid: str = Field(max_length=64, unique=True, index=True)
    group_id: int = Field(foreign_key="local_actor.id", index=True)
    # The public LocalObject while one exists (None: never public, or withdrawn).
    object_id: int | None = Field(default=None, foreign_key="local_object.id", index=True)
    language: str = Field(max_length=16)
    country: str | None = Field(default=None, max_length=2, index=True)
    status: str = Field(max_length=20)
    visibility: str = Field(default="public", max_length=20)
    network: str | None = Field(default=None, max_length=2048)
    # The id of the members-only document while ``network_only`` (rendered on
    # demand, never a local_object; node/campaigns/network_copy.py). A fresh one
    # each time the campaign becomes network_only: a Deleted id never returns.
    network_uuid: str | None = Field(default=None, max_length=64, unique=True, index=True)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # [{"arrested": "YYYY-MM-DD", "released": "YYYY-MM-DD" | None}], oldest first.
    detentions: list[dict[str, Any]] = Field(default_factory=list,
                                             sa_column=Column(JSON, nullable=False))
    # [{"date", "versions": {lang: text}, "sources", "by": actor URI, "note": URL}]
    timeline: list[dict[str, Any]] = Field(default_factory=list,
                                           sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    withdrawn_at: datetime | None = None


class CampaignOwner(SQLModel, table=True):
    """A group of another node invited to co-own a campaign (owning side)."""

    __tablename__ = "campaign_owner"
    __table_args__ = (UniqueConstraint("campaign_id", "actor_uri"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    actor_uri: str = Field(max_length=2048)
    inbox: str = Field(max_length=2048)
    state: str = Field(default="invited", max_length=16)  # invited|accepted|rejected|withdrawn
    invite_activity_id: str = Field(max_length=2048, unique=True)
    # The Accept that made it a co-owner: what its Undo{Accept} names when it leaves.
    response_activity_id: str | None = Field(default=None, max_length=2048, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
