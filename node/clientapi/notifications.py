"""Notifications (``mention``, ``follow``, ``follow_request``, ``favourite``,
``reblog``), written by federation/processing.py as it stores what they are about;
follow requests; markers. A notification's id is its row id (time order)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func
from sqlmodel import col, select
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from node.clientapi.context import Call, endpoint
from node.clientapi.entities import (
    REMOTE_ACCOUNT_BASE,
    remote_account,
    render_statuses,
    stamp,
    unknown_account,
)
from node.clientapi.pagination import Window, link_header
from node.clientapi.params import NOT_FOUND, ApiError
from node.federation.runtime import Node
from node.groups import operations
from node.storage.db import utcnow
from node.storage.models import (
    ClientMarker,
    ClientNotification,
    Follower,
    LocalActor,
    LocalObject,
    RemoteActor,
    RemoteObject,
)
from node.storage.states import FollowerState, NotificationType

TYPES = frozenset(t.value for t in NotificationType)
MARKER_TIMELINES = ("home", "notifications")


def _types(call: Call) -> tuple[set[str], set[str]]:
    wanted = set(call.params.items("types", limit=20))
    excluded = set(call.params.items("exclude_types", limit=20))
    return wanted, excluded


def _id_bound(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit() or len(value) > 19:
        raise ApiError("Validation failed: ids are numbers", 400)
    return int(value)


async def _render(call: Call, rows: list[ClientNotification]) -> list[dict[str, Any]]:
    return await render(call.node, rows)


async def render(node: Node, rows: list[ClientNotification]) -> list[dict[str, Any]]:
    """Notification entities; one whose post is gone is left out."""
    if not rows:
        return []
    urls = node.urls
    async with node.db.read() as session:
        actors = {a.uri: remote_account(a) for a in (await session.exec(select(RemoteActor).where(
            col(RemoteActor.uri).in_({r.account_uri for r in rows})))).all()}
        status_uris = {r.status_uri for r in rows if r.status_uri}
        uuids = [u for u in (urls.local_object_uuid(s) for s in status_uris) if u]
        local = list((await session.exec(
            select(LocalObject, LocalActor).join(
                LocalActor, col(LocalActor.id) == col(LocalObject.local_actor_id))
            .where(col(LocalObject.uuid).in_(uuids),
                   col(LocalObject.deleted_at).is_(None)))).all()) if uuids else []
        remote = list(await session.exec(select(RemoteObject).where(
            col(RemoteObject.uri).in_(status_uris),
            col(RemoteObject.deleted).is_(False)))) if status_uris else []
        rendered = await render_statuses(session, urls, local, remote)
    by_uri = {status["uri"]: status for status in rendered.values()}
    out = []
    for row in rows:
        status = by_uri.get(row.status_uri) if row.status_uri else None
        if row.status_uri and status is None:
            continue  # its post was deleted: Mastodon drops such notifications too
        out.append({"id": str(row.id), "type": row.notification_type,
                    "created_at": stamp(row.created_at), "group_key": f"ungrouped-{row.id}",
                    "account": actors.get(row.account_uri) or unknown_account(row.account_uri),
                    "status": status})
    return out


def _query(call: Call) -> Any:
    wanted, excluded = _types(call)
    query = select(ClientNotification).where(
        ClientNotification.local_actor_id == call.group.id)
    if wanted:
        query = query.where(col(ClientNotification.notification_type).in_(wanted & TYPES))
    if excluded:
        query = query.where(col(ClientNotification.notification_type).not_in(excluded))
    account = call.params.text("account_id", limit=40)
    if account:
        if account.isdigit() and int(account) >= REMOTE_ACCOUNT_BASE:
            query = query.where(ClientNotification.account_uri.in_(  # type: ignore[attr-defined]
                select(RemoteActor.uri).where(
                    RemoteActor.id == int(account) - REMOTE_ACCOUNT_BASE)))
        else:
            return None
    return query


async def index(call: Call) -> Response:
    window = Window.of(call.params)
    query = _query(call)
    if query is None:
        return JSONResponse([])
    if window.upper is not None:
        query = query.where(col(ClientNotification.id) < window.upper)
    if window.lower is not None:
        query = query.where(col(ClientNotification.id) > window.lower)
    order = col(ClientNotification.id).asc() if window.ascending else \
        col(ClientNotification.id).desc()
    async with call.node.db.read() as session:
        rows = list((await session.exec(query.order_by(order).limit(window.limit))).all())
    rows.sort(key=lambda r: r.id or 0, reverse=True)
    page = await _render(call, rows)
    link = link_header(call.node.settings.base_url, call.request.url.path, call.params,
                       [r.id or 0 for r in rows])
    return JSONResponse(page, headers={"Link": link} if link else None)


async def _own(call: Call) -> ClientNotification:
    value = call.request.path_params["id"]
    async with call.node.db.read() as session:
        row = await session.get(ClientNotification, int(value)) \
            if value.isdigit() and len(value) < 19 else None
    if row is None or row.local_actor_id != call.group.id:
        raise ApiError(NOT_FOUND, 404)
    return row


async def show(call: Call) -> Response:
    rendered = await _render(call, [await _own(call)])
    if not rendered:
        raise ApiError(NOT_FOUND, 404)
    return JSONResponse(rendered[0])


async def dismiss(call: Call) -> Response:
    row = await _own(call)
    async with call.node.db.write() as session:
        await session.exec(delete(ClientNotification).where(
            col(ClientNotification.id) == row.id))
    return JSONResponse({})


async def clear(call: Call) -> Response:
    async with call.node.db.write() as session:
        await session.exec(delete(ClientNotification).where(
            col(ClientNotification.local_actor_id) == call.group.id))
    return JSONResponse({})


async def _marker(call: Call, timeline: str) -> ClientMarker | None:
    assert call.caller is not None and call.caller.account is not None
    async with call.node.db.read() as session:
        return await session.get(ClientMarker, (call.caller.account.id, call.group.id,
                                                timeline))


async def unread_count(call: Call) -> Response:
    marker = await _marker(call, "notifications")
    query = select(func.count()).select_from(ClientNotification).where(
        ClientNotification.local_actor_id == call.group.id)
    if marker is not None and marker.last_read_id.isdigit():
        query = query.where(col(ClientNotification.id) > int(marker.last_read_id))
    async with call.node.db.read() as session:
        count = (await session.exec(query)).one()
    limit = call.params.number("limit", 100, low=1, high=1000)
    return JSONResponse({"count": min(int(count), limit)})


# --- follow requests ------------------------------------------------------------------


async def follow_requests(call: Call) -> Response:
    async with call.node.db.read() as session:
        rows = (await session.exec(select(Follower, RemoteActor).join(
            RemoteActor, col(RemoteActor.uri) == col(Follower.actor_uri))
            .where(Follower.local_actor_id == call.group.id,
                   Follower.state == FollowerState.PENDING)
            .order_by(col(Follower.id).desc()).limit(80))).all()
    return JSONResponse([remote_account(actor) for _, actor in rows])


def _decide(accept: bool) -> Any:
    async def decide(call: Call) -> Response:
        from node.clientapi.accounts import account_by_id, relationship

        account_id = call.request.path_params["id"]
        _, remote = await account_by_id(call, account_id)
        if remote is None:
            raise ApiError(NOT_FOUND, 404)
        async with call.node.db.read() as session:
            row = (await session.exec(select(Follower).where(
                Follower.local_actor_id == call.group.id,
                Follower.actor_uri == remote.uri))).first()
        if row is None:
            raise ApiError(NOT_FOUND, 404)
        try:
            await operations.decide_follow_request(call.node, call.group.username,
                                                   row.id or 0, accept=accept)
        except operations.OperationError as exc:
            if exc.status != 409:
                raise
        return JSONResponse(await relationship(call, account_id))

    return decide


# --- markers ---------------------------------------------------------------------------


def _marker_entity(marker: ClientMarker) -> dict[str, Any]:
    return {"last_read_id": marker.last_read_id, "version": marker.version,
            "updated_at": stamp(marker.updated_at)}


async def markers(call: Call) -> Response:
    out = {}
    for timeline in call.params.items("timeline", limit=2) or list(MARKER_TIMELINES):
        if timeline in MARKER_TIMELINES and (marker := await _marker(call, timeline)):
            out[timeline] = _marker_entity(marker)
    return JSONResponse(out)


async def save_markers(call: Call) -> Response:
    assert call.caller is not None and call.caller.account is not None
    out = {}
    for timeline in MARKER_TIMELINES:
        value = call.params.values.get(f"{timeline}[last_read_id]")
        nested = call.params.values.get(timeline)
        if isinstance(nested, dict):
            value = nested.get("last_read_id")
        if value is None:
            continue
        if not isinstance(value, str | int) or not str(value).isdigit() or len(str(value)) > 19:
            raise ApiError("Validation failed: last_read_id is an id")
        async with call.node.db.write() as session:
            key = (call.caller.account.id, call.group.id, timeline)
            marker = await session.get(ClientMarker, key)
            if marker is None:
                marker = ClientMarker(account_id=key[0] or 0, local_actor_id=key[1] or 0,
                                      timeline=timeline, last_read_id=str(value))
            else:
                marker.last_read_id = str(value)
                marker.version += 1
                marker.updated_at = utcnow()
            session.add(marker)
            await session.flush()
            out[timeline] = _marker_entity(marker)
    return JSONResponse(out)


routes = [
    Route("/api/v1/notifications", endpoint(index, scope="read:notifications"),
          methods=["GET"]),
    Route("/api/v1/notifications/unread_count",
          endpoint(unread_count, scope="read:notifications"), methods=["GET"]),
    Route("/api/v1/notifications/clear", endpoint(clear, scope="write:notifications"),
          methods=["POST"]),
    Route("/api/v1/notifications/{id}", endpoint(show, scope="read:notifications"),
          methods=["GET"]),
    Route("/api/v1/notifications/{id}/dismiss",
          endpoint(dismiss, scope="write:notifications"), methods=["POST"]),
    Route("/api/v1/follow_requests", endpoint(follow_requests, scope="read:follows"),
          methods=["GET"]),
    Route("/api/v1/follow_requests/{id}/authorize",
          endpoint(_decide(True), scope="write:follows"), methods=["POST"]),
    Route("/api/v1/follow_requests/{id}/reject",
          endpoint(_decide(False), scope="write:follows"), methods=["POST"]),
    Route("/api/v1/markers", endpoint(markers, scope="read:statuses"), methods=["GET"]),
    Route("/api/v1/markers", endpoint(save_markers, scope="write:statuses"),
          methods=["POST"]),
]
