"""Reading a node's delivery queue (fan-out log and host lanes) from a test."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from node.federation.delivery import delivery_status, queue_depth
from node.storage.models import Activity


async def activity_states(db: Any, activity_id: int) -> list[str]:
    """Per host the activity goes to: delivered, waiting, retrying or failed."""
    async with db.read() as session:
        return [h.state for h in await delivery_status(session, activity_id)]


async def object_states(db: Any, object_uri: str, activity_type: str = "Create") -> list[str]:
    """``activity_states`` of the activity of that type about one of our objects."""
    async with db.read() as session:
        activity_id = (await session.exec(select(Activity.id).where(
            Activity.object_uri == object_uri,
            Activity.activity_type == activity_type))).first()
        if activity_id is None:
            return []
        return [h.state for h in await delivery_status(session, activity_id)]


async def lanes_behind(db: Any) -> int:
    """Host lanes with fan-outs still to walk (0: everything handled)."""
    async with db.read() as session:
        return (await queue_depth(session)).behind


async def positions_behind(db: Any) -> int:
    async with db.read() as session:
        return (await queue_depth(session)).positions_behind
