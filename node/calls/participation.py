"""Joining meetings and conferences, as Mobilizon does: ``Join{object: event}``
→ ``Accept``/``Reject`` (by ``joinMode``), ``Leave``. Who attends stays private
to the organising group; only ``participantCount`` is published.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from node.calls import private_links
from node.core.jsonsafe import as_id
from node.federation import publishing
from node.federation.dispatch import emission_uuid
from node.federation.remote_actors import get_actor
from node.federation.runtime import Node
from node.groups.operations import OperationError, require_group
from node.storage import states
from node.storage.models import Event, InboxItem, LocalActor, LocalObject, Participation
from node.storage.states import (
    JOIN_REQUEST,
    AlreadyDecided,
    ParticipationState,
    join_state,
    left,
)


async def _event_of(node: Node, session: Any, uri: str | None
                    ) -> tuple[LocalObject, Event, LocalActor] | None:
    uuid = node.urls.local_object_uuid(uri)
    if uuid is None:
        return None
    obj = await publishing.get_object(session, uuid)
    if obj is None or obj.object_type != "Event" or obj.deleted_at is not None:
        return None
    event = (await session.exec(select(Event).where(Event.object_id == obj.id))).first()
    actor = await session.get(LocalActor, obj.local_actor_id)
    if event is None or actor is None:
        return None
    return obj, event, actor


async def _answer(node: Node, session: Any, actor: LocalActor, participation: Participation,
                  accept: bool, event_uri: str, activity_uuid: str | None = None) -> None:
    join = {"id": participation.join_activity_id, "type": "Join",
            "actor": participation.actor_uri, "object": event_uri}
    await publishing.send_to(session, actor, node.urls,
                             activity_type="Accept" if accept else "Reject", obj=join,
                             recipient=participation.actor_uri, inbox=participation.inbox,
                             activity_uuid=activity_uuid)


async def on_join(node: Node, item: InboxItem) -> None:
    event_uri = as_id(item.body.get("object"))
    async with node.db.read() as session:
        if event_uri is None or await _event_of(node, session, event_uri) is None:
            return  # not one of our events: nothing to fetch, nothing to answer
    joiner = await get_actor(node, item.actor_uri)
    async with node.db.write() as session:
        found = await _event_of(node, session, event_uri)
        if found is None:
            return
        _, event, actor = found
        participation = (await session.exec(select(Participation).where(
            Participation.event_id == event.id,
            Participation.actor_uri == item.actor_uri))).first()
        if participation is None:
            participation = Participation(event_id=event.id or 0, actor_uri=item.actor_uri,
                                          inbox=joiner.inbox, join_activity_id=item.activity_id)
        participation.join_activity_id = item.activity_id
        if participation.id is not None and participation.state in (
                ParticipationState.REJECTED, ParticipationState.ACCEPTED):
            pass  # A decision stands: asking again gets the same answer, it does not
            # put a refused request back in the editors' queue.
        else:
            participation.state = join_state(cancelled=event.status == "cancelled",
                                             join_mode=event.join_mode)
        session.add(participation)
        await session.flush()
        if participation.state != ParticipationState.PENDING:
            await _answer(node, session, actor, participation,
                          participation.state == ParticipationState.ACCEPTED, event_uri,
                          activity_uuid=emission_uuid(item, "answer"))
            await private_links.send_link(session, node.urls, actor, found[0], event,
                                          participation,
                                          activity_uuid=emission_uuid(item, "link"))


async def on_leave(node: Node, item: InboxItem) -> None:
    event_uri = as_id(item.body.get("object"))
    async with node.db.write() as session:
        found = await _event_of(node, session, event_uri)
        if found is None:
            return
        participation = (await session.exec(select(Participation).where(
            Participation.event_id == found[1].id,
            Participation.actor_uri == item.actor_uri))).first()
        if participation is not None:
            participation.state = left(participation.state)
            session.add(participation)


async def pending(node: Node, username: str) -> list[tuple[Participation, str]]:
    """Join requests awaiting an editor (restricted events), with the event's id."""
    group = await require_group(node, username)
    async with node.db.read() as session:
        rows = await session.exec(
            select(Participation, LocalObject)
            .join(Event, Event.id == Participation.event_id)  # type: ignore[arg-type]
            .join(LocalObject, LocalObject.id == Event.object_id)  # type: ignore[arg-type]
            .where(LocalObject.local_actor_id == group.id,
                   Participation.state == ParticipationState.PENDING))
        return [(p, node.urls.object(o.uuid)) for p, o in rows.all()]


async def decide(node: Node, username: str, participation_id: int, *, accept: bool) -> None:
    group = await require_group(node, username)
    async with node.db.write() as session:
        participation = await session.get(Participation, participation_id)
        if participation is None:
            raise OperationError("no such pending join request", status=404)
        event = await session.get(Event, participation.event_id)
        obj = await session.get(LocalObject, event.object_id) if event else None
        if obj is None or obj.local_actor_id != group.id:
            raise OperationError("no such pending join request", status=404)
        try:
            participation.state = states.decide(JOIN_REQUEST, participation.state, accept=accept)
        except AlreadyDecided:
            raise OperationError("no such pending join request", status=404) from None
        session.add(participation)
        await _answer(node, session, group, participation, accept, node.urls.object(obj.uuid))
        if event is not None:
            await private_links.send_link(session, node.urls, group, obj, event, participation)
    node.changed()

