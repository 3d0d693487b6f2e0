"""Timelines: ``home`` (the group's own posts and the stored posts of the actors it
follows: federation/remote_posts.py), ``public`` (``local``, ``remote``),
``tag/:hashtag``, and an account's statuses; pages by time-ordered ids
(pagination.py) with a ``Link`` header."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from node.clientapi.context import Call, endpoint
from node.clientapi.entities import local_number, mark_own, remote_number, render_statuses
from node.clientapi.pagination import Window, at_of, link_header, select_page
from node.clientapi.params import ApiError
from node.federation.runtime import Node
from node.storage.db import utcnow
from node.storage.models import Following, LocalActor, LocalObject, RemoteActor, RemoteObject
from node.storage.states import FollowingState

TAG_SCAN = 500


def remote_at() -> ColumnElement[Any]:
    """The time stored posts are ordered by (entities.remote_time): ``published``,
    on its index. Posts dated in the future wait until then (a forged date cannot
    hold a post at the top); posts without a date are not in timelines."""
    return col(RemoteObject.published_at)  # type: ignore[return-value]


def _bounded(query: Any, column: Any, window: Window) -> Any:
    if window.upper is not None:
        query = query.where(column < at_of(window.upper) + timedelta(milliseconds=1))
    if window.lower is not None:
        query = query.where(column >= at_of(window.lower))
    order = column.asc() if window.ascending else column.desc()
    return query.order_by(order).limit(window.fetch())


Entry = tuple[LocalObject, LocalActor] | RemoteObject


async def page_of(call: Call | Node, window: Window, *, local: Any | None,
                  remote: Any | None, keep: Any = None) -> list[dict[str, Any]]:
    """One page from a query of our objects (joined with their actor) and one of
    stored posts, merged by id. ``keep``: a filter on entries read."""
    node = call.node if isinstance(call, Call) else call
    candidates: list[tuple[int, Entry]] = []
    async with node.db.read() as session:
        if local is not None:
            rows = (await session.exec(_bounded(local, col(LocalObject.published),
                                                window))).all()
            candidates += [(local_number(obj), (obj, actor)) for obj, actor in rows]
        if remote is not None:
            dated = remote.where(col(RemoteObject.published_at).is_not(None),
                                 col(RemoteObject.published_at) <= utcnow())
            rows = (await session.exec(_bounded(dated, remote_at(), window))).all()
            candidates += [(remote_number(row), row) for row in rows]
        if keep is not None:
            candidates = [(n, e) for n, e in candidates if keep(e)]
        chosen = select_page(candidates, window)
        rendered = await render_statuses(
            session, node.urls, [e for _, e in chosen if isinstance(e, tuple)],
            [e for _, e in chosen if isinstance(e, RemoteObject)], cache=node.doc_cache)
    return [rendered[n] for n, _ in chosen]


async def answer(call: Call, page: list[dict[str, Any]]) -> Response:
    if call.caller is not None and call.caller.group is not None:
        await mark_own(call.node, call.caller.group.id or 0, page)
    link = link_header(call.node.settings.base_url, call.request.url.path, call.params,
                       [status["id"] for status in page])
    return JSONResponse(page, headers={"Link": link} if link else None)


def _local_query() -> Any:
    return select(LocalObject, LocalActor).join(
        LocalActor, col(LocalActor.id) == col(LocalObject.local_actor_id)).where(
        col(LocalObject.deleted_at).is_(None))


def _remote_query() -> Any:
    return select(RemoteObject).where(col(RemoteObject.deleted).is_(False),
                                      RemoteObject.moderation_state == "approved")


def home_queries(group_id: int | None) -> tuple[Any, Any]:
    """The group's own posts, and the stored posts of the actors it follows."""
    followed = select(Following.target_uri).where(
        Following.local_actor_id == group_id, Following.state == FollowingState.ACCEPTED)
    return (_local_query().where(LocalObject.local_actor_id == group_id),
            _remote_query().where(col(RemoteObject.actor_uri).in_(followed)))


def local_query() -> Any:
    """Every group's posts (``public?local=true``, the ``public:local`` stream)."""
    return _local_query().where(LocalActor.actor_type == "Group")


async def home(call: Call) -> Response:
    local, remote = home_queries(call.group.id)
    page = await page_of(call, Window.of(call.params), local=local, remote=remote)
    return await answer(call, page)


async def public(call: Call) -> Response:
    only_local = call.params.flag("local")
    only_remote = call.params.flag("remote")
    page = await page_of(
        call, Window.of(call.params),
        local=None if only_remote else _local_query().where(
            LocalActor.actor_type == "Group"),
        remote=None if only_local else _remote_query(),
        keep=_media_only if call.params.flag("only_media") else None)
    return await answer(call, page)


def _tags_of(entry: Entry) -> set[str]:
    data = entry[0].extra if isinstance(entry, tuple) else entry.data
    tags = data.get("tag")
    return {t["name"].lstrip("#").lower() for t in tags[:50] if isinstance(t, dict)
            and t.get("type") == "Hashtag" and isinstance(t.get("name"), str)} \
        if isinstance(tags, list) else set()


def _media_only(entry: Entry) -> bool:
    data = entry[0].extra if isinstance(entry, tuple) else entry.data
    return bool(data.get("attachment"))


async def tag(call: Call) -> Response:
    wanted = call.request.path_params["hashtag"].lower()
    if not 1 <= len(wanted) <= 100:
        raise ApiError("Record not found", 404)
    window = Window(**{**Window.of(call.params).__dict__})
    wide = Window(window.upper, window.lower, TAG_SCAN - 10, window.ascending)
    page = await page_of(call, wide, local=_local_query().where(
        LocalActor.actor_type == "Group"), remote=_remote_query(),
        keep=lambda entry: wanted in _tags_of(entry))
    return await answer(call, page[:window.limit])


async def account_page(call: Call, *, group: LocalActor | None, remote: RemoteActor | None,
                       window: Window, pinned: bool, exclude_replies: bool,
                       only_media: bool) -> list[dict[str, Any]]:
    if pinned and remote is not None:
        return []
    local_query = remote_query = None
    if group is not None:
        local_query = _local_query().where(LocalObject.local_actor_id == group.id)
        if pinned:
            local_query = local_query.where(col(LocalObject.pinned_at).is_not(None))
        if exclude_replies:
            local_query = local_query.where(col(LocalObject.in_reply_to).is_(None))
    elif remote is not None:
        remote_query = _remote_query().where(RemoteObject.actor_uri == remote.uri)
        if exclude_replies:
            remote_query = remote_query.where(col(RemoteObject.in_reply_to).is_(None))
    wide = Window(window.upper, window.lower, window.limit * 3 if only_media else window.limit,
                  window.ascending)
    page = await page_of(call, wide, local=local_query, remote=remote_query,
                         keep=_media_only if only_media else None)
    return page[:window.limit]


routes = [
    Route("/api/v1/timelines/home", endpoint(home, scope="read:statuses"), methods=["GET"]),
    Route("/api/v1/timelines/public", endpoint(public, scope="read:statuses", public=True,
                                               user=False), methods=["GET"]),
    Route("/api/v1/timelines/tag/{hashtag}", endpoint(tag, scope="read:statuses",
                                                      public=True, user=False),
          methods=["GET"]),
]
