"""Favourite and boost from the app: ``Like`` to the post's author, ``Announce`` to
the group's followers and the author; undone with ``Undo``. What the group has
favourited or boosted is read back from its own activities (entities.standing)."""

from __future__ import annotations

from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from node.clientapi.context import Call, endpoint
from node.clientapi.entities import activity_url, mark_own, standing
from node.clientapi.statuses import entity, readable
from node.federation import publishing
from node.federation.vocabulary import PUBLIC
from node.storage.models import LocalActor, RemoteActor, RemoteObject

KINDS = {"favourite": "Like", "reblog": "Announce"}


async def _author_inbox(session: AsyncSession, found: Any, node: Any) -> tuple[str, str | None]:
    if isinstance(found, RemoteObject):
        actor = (await session.exec(select(RemoteActor).where(
            RemoteActor.uri == found.actor_uri))).first()
        return found.actor_uri, (actor.shared_inbox or actor.inbox) if actor else None
    _, owner = found
    return node.urls.actor(owner.username), None  # ours: no delivery needed to the author


def _act(action: str, undo: bool) -> Any:
    kind = KINDS[action]

    async def act(call: Call) -> Response:
        found = await readable(call, call.request.path_params["id"])
        uri = (call.node.urls.object(found[0].uuid) if isinstance(found, tuple)
               else found.uri)
        async with call.node.db.write() as session:
            group = await session.get(LocalActor, call.group.id)
            assert group is not None
            author, inbox = await _author_inbox(session, found, call.node)
            live = (await standing(session, group.id or 0, kind, [uri])).get(uri)
            followers = call.node.urls.followers(group.username)
            if undo and live is not None:
                await publishing.record_activity(
                    session, group, call.node.urls, activity_type="Undo",
                    obj=activity_url(live), object_uri=activity_url(live),
                    to=[PUBLIC] if kind == "Announce" else [author],
                    cc=[followers, author] if kind == "Announce" else None,
                    inboxes=[inbox] if inbox else None, to_followers=kind == "Announce",
                    in_outbox=False)
            elif not undo and live is None:
                await publishing.record_activity(
                    session, group, call.node.urls, activity_type=kind, obj=uri,
                    to=[PUBLIC] if kind == "Announce" else [author],
                    cc=[followers, author] if kind == "Announce" else None,
                    inboxes=[inbox] if inbox else None, to_followers=kind == "Announce",
                    in_outbox=kind == "Announce")
        call.node.changed()
        status = await entity(call, found)
        await mark_own(call.node, group.id or 0, [status])
        return JSONResponse(status)

    return act


routes = [
    Route("/api/v1/statuses/{id}/favourite", endpoint(_act("favourite", False),
                                                      scope="write:favourites"),
          methods=["POST"]),
    Route("/api/v1/statuses/{id}/unfavourite", endpoint(_act("favourite", True),
                                                        scope="write:favourites"),
          methods=["POST"]),
    Route("/api/v1/statuses/{id}/reblog", endpoint(_act("reblog", False),
                                                   scope="write:statuses"), methods=["POST"]),
    Route("/api/v1/statuses/{id}/unreblog", endpoint(_act("reblog", True),
                                                     scope="write:statuses"), methods=["POST"]),
]
