"""Peer policy: domain rules and what we know of other nodes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, UniqueConstraint
from sqlmodel import Field, SQLModel

from node.storage.db import utcnow

# --- peer policy (issue 15 point 5) -------------------------------------------


class DomainRule(SQLModel, table=True):
    """A domain an admin blocked or (allowlist mode) allowed; subdomains included.
    ``domain`` is in normal form (core/domains.py)."""

    __tablename__ = "domain_rule"
    __table_args__ = (
        UniqueConstraint("domain", "kind"),
        CheckConstraint("kind IN ('block', 'allow')", name="ck_domain_rule_kind"),
    )

    id: int | None = Field(default=None, primary_key=True)
    domain: str = Field(max_length=253)
    kind: str = Field(max_length=8)  # block | allow
    note: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow)


class Peer(SQLModel, table=True):
    """What we learned of a remote node: its software from NodeInfo (cached)."""

    __tablename__ = "peer"

    host: str = Field(primary_key=True, max_length=256)  # as lanes name it: host[:port]
    software: str | None = Field(default=None, max_length=64)
    version: str | None = Field(default=None, max_length=64)
    nodeinfo_fetched_at: datetime | None = None
    # Why the last NodeInfo fetch failed (a stable code), None when it worked.
    nodeinfo_error: str | None = Field(default=None, max_length=64)
