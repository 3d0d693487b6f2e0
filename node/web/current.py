"""Activities as served: the stored envelope around the object as it is now.

An activity body is stored once, when it is sent, and deliveries use exactly
those bytes. But a Create or Update read later from the outbox or at its id
must not show what the post said before it was edited or deleted (an event's
old meeting place, a retracted text). So every public read rebuilds the
embedded object from the current row (a Tombstone once deleted) instead of
rewriting stored bodies: one source of truth, no writer (notes, events,
co-signing, status notes) has to remember to fix old activities, and queued
deliveries keep the bytes they were signed over.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from node.calls import operations as calls
from node.core.urls import Urls
from node.federation.vocabulary import object_document, tombstone
from node.groups.operations import OperationError
from node.storage.models import Activity, LocalActor, LocalObject


async def current_object(session: AsyncSession, urls: Urls, obj: LocalObject,
                         actor: LocalActor) -> dict[str, Any]:
    """The object's public document now, without @context (for embedding)."""
    if obj.deleted_at is not None:
        return tombstone(obj, urls, with_context=False)
    if obj.object_type == "Event":
        try:
            return await calls.document(session, urls, obj, actor, with_context=False)
        except OperationError:
            pass  # an Event row missing: fall back to the plain object
    return object_document(obj, actor, urls, with_context=False)


def _local_uuid(urls: Urls, value: Any) -> str | None:
    return urls.local_object_uuid(value.get("id")) if isinstance(value, dict) else None


async def current_activities(session: AsyncSession, urls: Urls,
                             rows: list[Activity]) -> list[dict[str, Any]]:
    """Parsed activity bodies with every embedded local object replaced by its current form."""
    docs = [orjson.loads(row.body) for row in rows]
    wanted = {uuid for doc in docs if (uuid := _local_uuid(urls, doc.get("object")))}
    if not wanted:
        return docs
    objects = (await session.exec(
        select(LocalObject).where(col(LocalObject.uuid).in_(wanted)))).all()
    actor_ids = {obj.local_actor_id for obj in objects}
    actors = {a.id: a for a in (await session.exec(
        select(LocalActor).where(col(LocalActor.id).in_(actor_ids)))).all()}
    current: dict[str, dict[str, Any]] = {}
    for obj in objects:
        actor = actors.get(obj.local_actor_id)
        if actor is not None:
            current[obj.uuid] = await current_object(session, urls, obj, actor)
    for doc in docs:
        uuid = _local_uuid(urls, doc.get("object"))
        if uuid is not None and uuid in current:
            doc["object"] = current[uuid]
    return docs
