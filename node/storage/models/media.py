"""Uploaded images."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from node.storage.db import utcnow


class MediaFile(SQLModel, table=True):
    """An uploaded image, re-encoded without metadata, under a random name."""

    __tablename__ = "media_file"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True, index=True)
    media_type: str = Field(max_length=64)
    width: int
    height: int
    size: int
    # The group that uploaded it; only that group may use it (None: uploaded
    # before owners were recorded, or by an admin without --group).
    local_actor_id: int | None = Field(default=None, foreign_key="local_actor.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    # A smaller copy of the upload ``variant_of`` (its own random name); None: an original.
    variant_of: int | None = Field(default=None, foreign_key="media_file.id", index=True)
    # The placeholder Mastodon shows while the image loads (https://blurha.sh).
    blurhash: str | None = Field(default=None, max_length=100)
    # Where to crop around (Mastodon's focalPoint): -1..1, y = 1 is the top.
    focus_x: float | None = None
    focus_y: float | None = None
    # Alt text given with the upload (the Mastodon client API's ``description``),
    # copied into the post that uses it.
    description: str | None = Field(default=None, max_length=1500)
