"""News items in many languages, bulletins and language channels."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from node.storage.db import utcnow

# --- news items in many languages (issue 13) ------------------------------------------


class NewsItem(SQLModel, table=True):
    """What an editor wrote for a news item, kept to re-render it after a change.

    The rendered texts and the wire fields live on the item's LocalObject (so
    pages, outbox and fetches serve it like any post); this row keeps the
    Markdown per language and the shared parts (node/news/items.py).
    """

    __tablename__ = "news_item"

    id: int | None = Field(default=None, primary_key=True)
    object_id: int = Field(foreign_key="local_object.id", unique=True, index=True)
    # {lang: {"title": ..., "text": <Markdown>, "summary": ...}}
    versions: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # [{"media", "path", "media_type", "width", "height", "blurhash", "focalPoint",
    #   "alt": {lang: text}}]
    photos: list[dict[str, Any]] = Field(default_factory=list,
                                         sa_column=Column(JSON, nullable=False))
    hashtags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    sources: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    country: str | None = Field(default=None, max_length=2)
    sectors: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # "item", or "bulletin": a numbered digest of items, always an Article.
    kind: str = Field(default="item", max_length=16)
    created_at: datetime = Field(default_factory=utcnow)


class NewsBulletin(SQLModel, table=True):
    """Bulletin number N of a group: the items published in (period_start, period_end].

    Rows stay when a bulletin is deleted, so a number is never given twice."""

    __tablename__ = "news_bulletin"
    __table_args__ = (UniqueConstraint("group_id", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="local_actor.id", index=True)
    number: int
    object_id: int = Field(foreign_key="local_object.id", unique=True)
    period_start: datetime
    period_end: datetime
    # The items listed (local_object ids), in the order listed.
    item_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class NewsChannel(SQLModel, table=True):
    """A language channel: the actor ``GROUP_LANG`` publishing one language of a group."""

    __tablename__ = "news_channel"
    __table_args__ = (UniqueConstraint("group_id", "language"),)

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="local_actor.id", index=True)
    actor_id: int = Field(foreign_key="local_actor.id", unique=True)
    language: str = Field(max_length=16)
    created_at: datetime = Field(default_factory=utcnow)


class NewsCopy(SQLModel, table=True):
    """A channel's own one-language object for an item (or an action call)."""

    __tablename__ = "news_copy"
    __table_args__ = (UniqueConstraint("source_object_id", "channel_id"),)

    id: int | None = Field(default=None, primary_key=True)
    source_object_id: int = Field(foreign_key="local_object.id", index=True)
    channel_id: int = Field(foreign_key="news_channel.id", index=True)
    object_id: int = Field(foreign_key="local_object.id", unique=True)
