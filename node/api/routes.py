"""The JSON API for scripts: bearer tokens (``hambastegi token create``).

Errors are JSON ``{"error": "..."}`` with a fitting status; bodies are
bounded and parsed like inbox bodies.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from node.core.jsonsafe import JsonError, parse_object
from node.federation.inbox import BodyTooLarge, read_body
from node.federation.runtime import Node
from node.groups import operations
from node.storage.models import ApiToken, LocalActor

MAX_API_BODY = 256 * 1024
Endpoint = Callable[[Request, ApiToken, dict[str, Any]], Awaitable[Response]]


def error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _token(node: Node, request: Request) -> ApiToken | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token or len(token) > 200:
        return None
    async with node.db.read() as session:
        row = (await session.exec(select(ApiToken).where(
            ApiToken.token_hash == operations.hash_token(token.strip()),
            col(ApiToken.revoked_at).is_(None)))).first()
    return row


def endpoint(handler: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    async def wrapped(request: Request) -> Response:
        node: Node = request.app.state.node
        token = await _token(node, request)
        if token is None:
            return error("missing or invalid bearer token", 401)
        body: dict[str, Any] = {}
        if request.method in {"POST", "PATCH", "PUT"}:
            try:
                raw = await read_body(request, MAX_API_BODY)
                body = parse_object(raw) if raw.strip() else {}
            except BodyTooLarge:
                return error(f"body over {MAX_API_BODY} bytes", 413)
            except JsonError as exc:
                return error(str(exc), 400)
        try:
            return await handler(request, token, body)
        except operations.OperationError as exc:
            return error(str(exc), exc.status)

    return wrapped


async def _check_group(request: Request, token: ApiToken) -> LocalActor:
    node: Node = request.app.state.node
    actor = await operations.require_group(node, request.path_params["username"])
    if token.local_actor_id is not None and token.local_actor_id != actor.id:
        raise operations.OperationError("this token may not act for that group", 403)
    return actor


def _text(body: dict[str, Any], field: str = "text") -> str:
    value = body.get(field)
    if not isinstance(value, str):
        raise operations.OperationError(f"'{field}' must be a string")
    return value


def _opt_text(body: dict[str, Any], field: str) -> str | None:
    value = body.get(field)
    if value is not None and not isinstance(value, str):
        raise operations.OperationError(f"'{field}' must be a string")
    return value


async def create_group(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
    if token.local_actor_id is not None:
        return error("only an admin token may create groups", 403)
    node: Node = request.app.state.node
    actor = await operations.create_group(
        node, _text(body, "username"), display_name=_text(body, "display_name"),
        language=_opt_text(body, "language") or "en", summary=_opt_text(body, "summary"),
        manually_approves=bool(body.get("manually_approves_followers", False)),
    )
    return JSONResponse({"id": node.urls.actor(actor.username)}, status_code=201)


async def create_note(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
    actor = await _check_group(request, token)
    node: Node = request.app.state.node
    object_id = await operations.publish_note(
        node, actor.username, text=_text(body), language=_opt_text(body, "lang"))
    return JSONResponse({"id": object_id}, status_code=201)


async def edit_object(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
    node: Node = request.app.state.node
    from node.news import operations as news

    await news.refuse_note_edit(node, request.path_params["uuid"])
    object_id = await operations.edit_note(node, request.path_params["uuid"], text=_text(body),
                                           allowed_actor=token.local_actor_id)
    return JSONResponse({"id": object_id})


async def delete_object(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
    node: Node = request.app.state.node
    from node.news import operations as news

    if await news.is_item(node, request.path_params["uuid"]):
        # A news item goes with its language channels' copies.
        object_id = await news.delete_item(node, request.path_params["uuid"],
                                           allowed_actor=token.local_actor_id)
    else:
        object_id = await operations.delete_post(node, request.path_params["uuid"],
                                                 allowed_actor=token.local_actor_id)
        await news.delete_copies(node, request.path_params["uuid"])
    return JSONResponse({"id": object_id, "deleted": True})


async def follow(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
    actor = await _check_group(request, token)
    node: Node = request.app.state.node
    follow_id = await operations.follow(node, actor.username, _text(body, "target"))
    return JSONResponse({"id": follow_id}, status_code=202)


async def unfollow(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
    actor = await _check_group(request, token)
    node: Node = request.app.state.node
    await operations.unfollow(node, actor.username, _text(body, "target"))
    return JSONResponse({"unfollowed": True}, status_code=202)


async def list_follow_requests(request: Request, token: ApiToken,
                               body: dict[str, Any]) -> Response:
    actor = await _check_group(request, token)
    node: Node = request.app.state.node
    pending = await operations.follow_requests(node, actor.username)
    return JSONResponse([{"id": f.id, "actor": f.actor_uri} for f in pending])


def _decide(accept: bool) -> Endpoint:
    async def decide(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
        actor = await _check_group(request, token)
        node: Node = request.app.state.node
        raw_id = request.path_params["request_id"]
        await operations.decide_follow_request(node, actor.username, raw_id, accept=accept)
        return JSONResponse({"accepted": accept})

    return decide


async def edit_group(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
    actor = await _check_group(request, token)
    node: Node = request.app.state.node
    actor = await operations.edit_group(node, actor.username, body)
    return JSONResponse({"id": node.urls.actor(actor.username)})


def _pin(pinned: bool) -> Endpoint:
    async def pin(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
        node: Node = request.app.state.node
        object_id = await operations.pin(node, request.path_params["uuid"], pinned=pinned,
                                         allowed_actor=token.local_actor_id)
        return JSONResponse({"id": object_id, "pinned": pinned})

    return pin


async def list_replies(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
    actor = await _check_group(request, token)
    node: Node = request.app.state.node
    return JSONResponse([{"id": r.id, "uri": r.uri, "actor": r.actor_uri,
                          "in_reply_to": r.in_reply_to, "state": r.moderation_state}
                         for r in await operations.replies(node, actor.username)])


def _hide(hidden: bool) -> Endpoint:
    async def hide(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
        node: Node = request.app.state.node
        await operations.hide_reply(node, request.path_params["reply_id"], hidden=hidden,
                                    allowed_actor=token.local_actor_id)
        return JSONResponse({"hidden": hidden})

    return hide


routes = [
    Route("/api/v1/groups", endpoint(create_group), methods=["POST"]),
    Route("/api/v1/groups/{username}", endpoint(edit_group), methods=["PATCH"]),
    Route("/api/v1/groups/{username}/notes", endpoint(create_note), methods=["POST"]),
    Route("/api/v1/objects/{uuid}/pin", endpoint(_pin(True)), methods=["POST"]),
    Route("/api/v1/objects/{uuid}/unpin", endpoint(_pin(False)), methods=["POST"]),
    Route("/api/v1/groups/{username}/replies", endpoint(list_replies), methods=["GET"]),
    Route("/api/v1/replies/{reply_id:int}/hide", endpoint(_hide(True)), methods=["POST"]),
    Route("/api/v1/replies/{reply_id:int}/unhide", endpoint(_hide(False)), methods=["POST"]),
    Route("/api/v1/objects/{uuid}", endpoint(edit_object), methods=["PATCH"]),
    Route("/api/v1/objects/{uuid}", endpoint(delete_object), methods=["DELETE"]),
    Route("/api/v1/groups/{username}/follow", endpoint(follow), methods=["POST"]),
    Route("/api/v1/groups/{username}/unfollow", endpoint(unfollow), methods=["POST"]),
    Route("/api/v1/groups/{username}/follow-requests", endpoint(list_follow_requests),
          methods=["GET"]),
    Route("/api/v1/groups/{username}/follow-requests/{request_id:int}/accept",
          endpoint(_decide(True)), methods=["POST"]),
    Route("/api/v1/groups/{username}/follow-requests/{request_id:int}/reject",
          endpoint(_decide(False)), methods=["POST"]),
]


# News routes live in their own module (node/api/news.py), which imports the
# helpers above; imported last so those exist when it does.
from node.api import networks as _networks  # noqa: E402
from node.api import news as _news  # noqa: E402

routes += _news.routes
routes += _networks.routes
