"""Reading a node's delivery queue (fan-out log and host lanes) from a test."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlmodel import select

from node.federation import delivery
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


def choose_inboxes(followers: Iterable[tuple[str, str, str | None]], *,
                   per_host: int = delivery.MAX_INBOXES_PER_HOST) -> list[str]:
    """Where one activity to these followers (actor URI, inbox, shared inbox)
    goes, by the node's two per-host rules (``delivery.deliver_to`` and
    ``delivery.bound_inboxes``) applied in memory; the lanes apply them to the
    follower rows in SQL (``lanes.follower_targets``)."""
    counts: dict[str, dict[tuple[str, bool], int]] = {}  # host -> (url, shared) -> n
    for actor_uri, inbox, shared in followers:
        target = delivery.deliver_to(actor_uri, inbox, shared)
        host = delivery.inbox_host(target)
        if host is None:
            continue  # never delivered to
        key = (target, target == shared)
        by_host = counts.setdefault(host, {})
        by_host[key] = by_host.get(key, 0) + 1
    chosen: list[str] = []
    for host, by_url in counts.items():
        chosen += delivery.bound_inboxes(
            host, [(url, is_shared, n) for (url, is_shared), n in by_url.items()],
            per_host=per_host)
    return sorted(chosen)

