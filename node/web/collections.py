"""Paged OrderedCollections: outbox, followers, following, featured.

Who follows a group is sensitive for people a state watches: by default the
followers collection shows only ``totalItems`` (like Mastodon's "hide
network" option). ``HAMBASTEGI_SHOW_FOLLOWERS=1`` publishes the pages.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import func
from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from node.federation import local_actors as groups
from node.federation.negotiation import as_response
from node.federation.runtime import Node
from node.federation.vocabulary import object_document, ordered_collection, ordered_collection_page
from node.storage.models import Activity, Follower, Following, LocalActor, LocalObject
from node.web.current import current_activities

PAGE_SIZE = 20
MAX_PAGE = 100_000


def _page_number(request: Request) -> int | None:
    raw = request.query_params.get("page")
    if raw is None:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise ValueError("page must be a number from 1")
    return int(raw)


async def _group(request: Request) -> tuple[Node, LocalActor | None]:
    node: Node = request.app.state.node
    async with node.db.read() as session:
        actor = await groups.get_group(session, request.path_params["username"])
    return node, actor


async def _group_page(request: Request) -> tuple[Node, LocalActor, int | None] | Response:
    """The group and the page asked for, or the error response (404, 400)."""
    node, actor = await _group(request)
    if actor is None:
        return JSONResponse({"error": "no such group"}, status_code=404)
    try:
        page = _page_number(request)
    except ValueError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return node, actor, page


def _respond(
    collection_id: str, total: int, page: int | None, items: list[Any], *, paged: bool = True
) -> Response:
    last_page = max(1, -(-total // PAGE_SIZE))
    if page is None:
        doc = ordered_collection(
            collection_id,
            total,
            first=f"{collection_id}?page=1" if paged else None,
            last=f"{collection_id}?page={last_page}" if paged else None,
        )
    else:
        doc = ordered_collection_page(
            f"{collection_id}?page={page}",
            collection_id,
            items,
            next_page=f"{collection_id}?page={page + 1}" if page < last_page else None,
            prev_page=f"{collection_id}?page={page - 1}" if page > 1 else None,
            total=total,
        )
    return as_response(orjson.dumps(doc))


async def outbox(request: Request) -> Response:
    node: Node = request.app.state.node
    try:
        page = _page_number(request)
    except ValueError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    # A hot read: served from memory until something changes (cache.py).
    key = ("outbox", request.path_params["username"], page)
    cached = node.doc_cache.get(key)
    if cached is not None:
        return as_response(cached)
    node, actor = await _group(request)
    if actor is None:
        return JSONResponse({"error": "no such group"}, status_code=404)
    base = select(Activity).where(
        Activity.local_actor_id == actor.id, col(Activity.in_outbox).is_(True)
    )
    async with node.db.read() as session:
        total = (
            await session.exec(select(func.count()).select_from(base.subquery()))
        ).one()
        items: list[Any] = []
        if page is not None:
            rows = await session.exec(
                base.order_by(col(Activity.id).desc())
                .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)
            )
            # The objects as they are now, never the text they had when sent.
            for doc in await current_activities(session, node.urls, list(rows.all())):
                doc.pop("@context", None)
                items.append(doc)
    response = _respond(node.urls.outbox(actor.username), int(total), page, items)
    node.doc_cache.put_raw(key, bytes(response.body))
    return response


async def followers(request: Request) -> Response:
    setup = await _group_page(request)
    if isinstance(setup, Response):
        return setup
    node, actor, page = setup
    show = node.settings.show_followers
    base = select(Follower.actor_uri).where(
        Follower.local_actor_id == actor.id, Follower.state == "accepted"
    )
    async with node.db.read() as session:
        total = (await session.exec(select(func.count()).select_from(base.subquery()))).one()
        items: list[Any] = []
        if page is not None and show:
            rows = await session.exec(
                base.order_by(col(Follower.id)).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)
            )
            items = list(rows.all())
    if page is not None and not show:
        return JSONResponse({"error": "this group does not publish its followers"},
                            status_code=403)
    return _respond(node.urls.followers(actor.username), int(total), page, items, paged=show)


async def following(request: Request) -> Response:
    setup = await _group_page(request)
    if isinstance(setup, Response):
        return setup
    node, actor, page = setup
    base = select(Following.target_uri).where(
        Following.local_actor_id == actor.id, Following.state == "accepted"
    )
    async with node.db.read() as session:
        total = (await session.exec(select(func.count()).select_from(base.subquery()))).one()
        items: list[Any] = []
        if page is not None:
            rows = await session.exec(
                base.order_by(col(Following.id)).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)
            )
            items = list(rows.all())
    return _respond(node.urls.following(actor.username), int(total), page, items)


async def featured(request: Request) -> Response:
    setup = await _group_page(request)
    if isinstance(setup, Response):
        return setup
    node, actor, page = setup
    base = select(LocalObject).where(
        LocalObject.local_actor_id == actor.id,
        col(LocalObject.pinned_at).is_not(None),
        col(LocalObject.deleted_at).is_(None),
    )
    async with node.db.read() as session:
        total = (await session.exec(select(func.count()).select_from(base.subquery()))).one()
        items: list[Any] = []
        if page is not None:
            rows = await session.exec(
                base.order_by(col(LocalObject.pinned_at).desc())
                .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)
            )
            items = [object_document(o, actor, node.urls, with_context=False)
                     for o in rows.all()]
    return _respond(node.urls.featured(actor.username), int(total), page, items)


async def organizers(request: Request) -> Response:
    """The groups that sign an event: the author, then those who accepted (FEP-8a8e);
    of a campaign: the owner, then its current co-owners."""
    from node.calls import operations as calls
    from node.campaigns import coowners
    from node.federation import publishing

    node: Node = request.app.state.node
    async with node.db.read() as session:
        obj = await publishing.get_object(session, request.path_params["uuid"])
        if obj is None or obj.object_type not in ("Event", "Article") \
                or obj.deleted_at is not None:
            return JSONResponse({"error": "no such event"}, status_code=404)
        actor = await session.get(LocalActor, obj.local_actor_id)
        assert actor is not None
        if obj.object_type == "Article":
            owners = await coowners.organizers(session, node, obj, actor)
            if owners is None:
                return JSONResponse({"error": "no such campaign"}, status_code=404)
            items = owners
        else:
            event = await calls.event_for(session, obj)
            items = [uri for uri, _ in await calls.organizers_of(session, node.urls, actor,
                                                                 event)]
    collection_id = node.urls.object(obj.uuid) + "/organizers"
    doc = ordered_collection(collection_id, len(items), first=None)
    doc["orderedItems"] = items
    return as_response(orjson.dumps(doc))
