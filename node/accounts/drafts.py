"""Drafts: a call or news item not published yet, kept as the JSON body the CLI and
API take. A draft is never a local_object, so nothing public can serve it
(docs/ARCHITECTURE.md, "Drafts"); publishing is the front end's job (it calls the
same operation as the API, then ``delete``)."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select

from node.core import characters
from node.federation.runtime import Node
from node.groups.errors import OperationError
from node.storage.db import utcnow
from node.storage.models import Draft, LocalActor

KINDS = ("call", "news")
MAX_DRAFTS_PER_GROUP = 200


async def save(node: Node, group: LocalActor, kind: str, body: dict[str, Any], *,
               draft_id: int | None = None, account_id: int | None = None) -> Draft:
    if kind not in KINDS:
        raise OperationError("a draft is a call or a news item")
    # Which fields are one-line is the call's or item's business at publishing;
    # what no text may hold is refused now (node/core/characters.py).
    try:
        checked = characters.check_all(body, "draft")
    except characters.CharacterError as exc:
        raise OperationError(str(exc)) from exc
    assert isinstance(checked, dict)
    body = checked
    async with node.db.write() as session:
        if draft_id is not None:
            draft = await session.get(Draft, draft_id)
            if draft is None or draft.local_actor_id != group.id or draft.kind != kind:
                raise OperationError("no such draft", status=404)
            draft.body = body
            draft.updated_at = utcnow()
        else:
            count = len((await session.exec(select(Draft.id).where(
                Draft.local_actor_id == group.id))).all())
            if count >= MAX_DRAFTS_PER_GROUP:
                raise OperationError(f"a group keeps at most {MAX_DRAFTS_PER_GROUP} drafts; "
                                     "publish or delete some")
            draft = Draft(local_actor_id=group.id or 0, kind=kind, body=body,
                          created_by=account_id)
        session.add(draft)
        await session.flush()
        await session.refresh(draft)
        return draft


async def get(node: Node, draft_id: int) -> Draft:
    async with node.db.read() as session:
        draft = await session.get(Draft, draft_id)
    if draft is None:
        raise OperationError("no such draft", status=404)
    return draft


async def of_group(node: Node, group: LocalActor) -> list[Draft]:
    async with node.db.read() as session:
        return list((await session.exec(select(Draft).where(
            Draft.local_actor_id == group.id).order_by(col(Draft.updated_at).desc()))).all())


async def delete(node: Node, draft_id: int) -> None:
    async with node.db.write() as session:
        draft = await session.get(Draft, draft_id)
        if draft is not None:
            await session.delete(draft)
