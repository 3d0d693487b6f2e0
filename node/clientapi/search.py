"""``GET /api/v2/search``: accounts by ``@user@host`` (through WebFinger when
``resolve=true``), our groups by name, statuses by their URL among what is stored,
hashtags by name. Also who favourited or boosted one of our posts."""

from __future__ import annotations

import re
from typing import Any

from sqlmodel import col, select
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from node.clientapi.context import Call, endpoint
from node.clientapi.entities import group_account, remote_account, render_statuses
from node.clientapi.params import ApiError
from node.clientapi.statuses import own
from node.federation import publishing
from node.federation.remote_actors import resolve_handle
from node.storage.models import Interaction, LocalActor, RemoteActor, RemoteObject

HANDLE_RE = re.compile(r"@?([A-Za-z0-9_.-]{1,64})@([A-Za-z0-9.-]{1,253}(?::\d{1,5})?)")
TAG_RE = re.compile(r"#?([^\W_][\w]{0,99})")


async def search(call: Call) -> Response:
    query = (call.params.text("q", limit=2048) or "").strip()
    kind = call.params.text("type", limit=20)
    resolve = call.params.flag("resolve")
    accounts: list[dict[str, Any]] = []
    statuses: list[dict[str, Any]] = []
    hashtags: list[dict[str, Any]] = []
    if not query:
        return JSONResponse({"accounts": [], "statuses": [], "hashtags": []})
    node = call.node
    if kind in (None, "accounts"):
        handle = HANDLE_RE.fullmatch(query)
        async with node.db.read() as session:
            if handle and handle.group(2).lower() != node.settings.host.lower():
                known = (await session.exec(select(RemoteActor).where(
                    RemoteActor.username == handle.group(1),
                    RemoteActor.domain == handle.group(2).lower(),
                    col(RemoteActor.deleted).is_(False)))).first()
                if known is not None:
                    accounts.append(remote_account(known))
            else:
                name = handle.group(1) if handle else query.lstrip("@")
                groups = (await session.exec(select(LocalActor).where(
                    col(LocalActor.username).startswith(name.lower()[:64]),
                    LocalActor.actor_type == "Group").limit(10))).all()
                for group in groups:
                    accounts.append(await group_account(session, node.urls, group,
                                                        cache=node.doc_cache))
        if handle and not accounts and resolve:
            try:
                accounts.append(remote_account(await resolve_handle(node, query)))
            except Exception as exc:  # RemoteError, FetchError: nothing found
                reason = getattr(exc, "reason", type(exc).__name__)
                if reason in {"blocked_domain", "not_allowed"}:
                    raise ApiError("that server is blocked here", 422) from exc
    if kind in (None, "statuses") and query.startswith(("https://", "http://")):
        async with node.db.read() as session:
            uuid = node.urls.local_object_uuid(query)
            obj = await publishing.get_object(session, uuid) if uuid else None
            if obj is not None and obj.deleted_at is None:
                actor = await session.get(LocalActor, obj.local_actor_id)
                if actor is not None:
                    statuses += (await render_statuses(session, node.urls, [(obj, actor)],
                                                       [])).values()
            else:
                row = (await session.exec(select(RemoteObject).where(
                    RemoteObject.uri == query, RemoteObject.moderation_state == "approved",
                    col(RemoteObject.deleted).is_(False)))).first()
                if row is not None:
                    statuses += (await render_statuses(session, node.urls, [], [row])).values()
    if kind in (None, "hashtags"):
        tag = TAG_RE.fullmatch(query)
        if tag:
            name = tag.group(1)
            hashtags.append({"name": name, "url": f"{node.urls.base}/tags/{name.lower()}",
                             "history": [], "following": False})
    return JSONResponse({"accounts": accounts, "statuses": statuses, "hashtags": hashtags})


def _who(kind: str) -> Any:
    async def who(call: Call) -> Response:
        obj, _ = await own(call, call.request.path_params["id"])
        async with call.node.db.read() as session:
            actors = (await session.exec(select(RemoteActor).where(col(RemoteActor.uri).in_(
                select(Interaction.actor_uri).where(
                    Interaction.object_uri == call.node.urls.object(obj.uuid),
                    Interaction.interaction_type == kind))).limit(80))).all()
        return JSONResponse([remote_account(actor) for actor in actors])

    return who


routes = [
    Route("/api/v2/search", endpoint(search, scope="read:search"), methods=["GET"]),
    Route("/api/v1/statuses/{id}/favourited_by",
          endpoint(_who("Like"), scope="read:statuses"), methods=["GET"]),
    Route("/api/v1/statuses/{id}/reblogged_by",
          endpoint(_who("Announce"), scope="read:statuses"), methods=["GET"]),
]
