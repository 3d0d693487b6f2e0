"""Where a post stands on each outside destination (issue 27, point 4), for
``hambastegi status`` and the workspace's post view: sent, waiting (and why: queued,
paced, retrying, paused) or failed (and why). Reads only; never a secret."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select

from node.storage.models import CrosspostAccount, CrosspostItem, LocalActor, LocalObject, NewsCopy
from node.storage.states import CrosspostAccountState, CrosspostState


@dataclass(frozen=True)
class Destination:
    object_uri: str
    actor: str
    service: str
    target: str
    state: str  # sent | waiting | failed | skipped
    why: str
    next_attempt_at: datetime | None


def describe(item: CrosspostItem, account: CrosspostAccount) -> tuple[str, str]:
    """(state, why) for people (pure)."""
    if item.state == CrosspostState.SENT:
        return "sent", "deleted there" if item.action == "delete" else ""
    if item.state == CrosspostState.FAILED:
        return "failed", item.last_error or ""
    if item.state == CrosspostState.SKIPPED:
        return "skipped", "deleted on the node before it was sent"
    if account.state == CrosspostAccountState.PAUSED:
        return "waiting", f"paused: {account.paused_reason or 'the service refused'}"
    error = item.last_error or ""
    if error.startswith("paced"):
        return "waiting", error
    if item.attempts:
        return "waiting", f"retrying (attempt {item.attempts + 1}): {error}"
    if item.state == CrosspostState.SENDING:
        return "waiting", "sending"
    return "waiting", "queued" + (f" ({item.action})" if item.action != "create" else "")


def _rows(rows: Any) -> list[Destination]:
    out = []
    for item, account, actor in rows:
        state, why = describe(item, account)
        out.append(Destination(item.object_uri, actor, account.service, account.target,
                               state, why, item.next_attempt_at if state == "waiting" else None))
    return out


def _joined() -> Any:
    return (select(CrosspostItem, CrosspostAccount, LocalActor.username)
            .join(CrosspostAccount, col(CrosspostAccount.id) == col(CrosspostItem.account_id))
            .join(LocalActor, col(LocalActor.id) == col(CrosspostAccount.local_actor_id)))


async def of_post(session: Any, urls: Any, obj: LocalObject) -> list[Destination]:
    """The post's destinations, with those of its language channels' copies."""
    copies = (await session.exec(select(LocalObject.uuid).join(
        NewsCopy, col(NewsCopy.object_id) == col(LocalObject.id)).where(
        NewsCopy.source_object_id == obj.id))).all()
    uris = [urls.object(obj.uuid), *(urls.object(u) for u in copies)]
    rows = (await session.exec(_joined().where(col(CrosspostItem.object_uri).in_(uris))
                               .order_by(col(CrosspostItem.id)))).all()
    return _rows(rows)


async def unsettled(session: Any, limit: int = 20) -> tuple[int, list[Destination]]:
    """Rows waiting or failed, newest first (how many in all, and the first ``limit``)."""
    where = col(CrosspostItem.state).in_([CrosspostState.PENDING, CrosspostState.SENDING,
                                          CrosspostState.FAILED])
    total = int((await session.exec(select(func.count()).select_from(CrosspostItem)
                                    .where(where))).one())
    rows = (await session.exec(_joined().where(where)
                               .order_by(col(CrosspostItem.id).desc()).limit(limit))).all()
    return total, _rows(rows)
