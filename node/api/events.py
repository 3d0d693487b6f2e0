"""JSON API for action calls, co-signing, participation and uploads (issue 3)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from node.api.routes import _check_group, _text, endpoint, error
from node.calls import cosign, participation
from node.calls import operations as calls
from node.federation.inbox import BodyTooLarge, read_body
from node.federation.runtime import Node
from node.groups import operations
from node.media.uploads import MAX_UPLOAD, UploadError, parse_focus
from node.storage.models import ApiToken, LocalActor


def _node(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


async def create_event(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
    actor = await _check_group(request, token)
    object_id = await calls.create_call(_node(request), actor.username, body)
    return JSONResponse({"id": object_id}, status_code=201)


async def replace_event(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
    object_id = await calls.update_call(_node(request), request.path_params["uuid"], body,
                                        allowed_actor=token.local_actor_id)
    return JSONResponse({"id": object_id})


async def event_status(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
    start, end = body.get("start"), body.get("end")
    if (start is not None and not isinstance(start, str)) or (end is not None and \
            not isinstance(end, str)):
        raise operations.OperationError("start and end must be ISO 8601 strings")
    object_id = await calls.change_status(
        _node(request), request.path_params["uuid"], _text(body, "status"), start=start,
        end=end, allowed_actor=token.local_actor_id)
    return JSONResponse({"id": object_id})


async def invite(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
    invite_id = await cosign.invite(_node(request), request.path_params["uuid"],
                                    _text(body, "target"), allowed_actor=token.local_actor_id)
    return JSONResponse({"id": invite_id}, status_code=202)


async def list_cosigners(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
    rows = await cosign.cosigners(_node(request), request.path_params["uuid"],
                                  allowed_actor=token.local_actor_id)
    return JSONResponse([{"actor": c.actor_uri, "state": c.state} for c in rows])


async def list_invitations(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
    actor = await _check_group(request, token)
    rows = await cosign.invitations(_node(request), actor.username)
    return JSONResponse([{"id": i.id, "inviter": i.inviter_uri, "event": i.event_uri,
                          "title": i.event.get("name"), "summary": i.event.get("summary"),
                          "state": i.state} for i in rows])


def _invitation_action(action: str) -> Any:
    async def handler(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
        actor = await _check_group(request, token)
        node = _node(request)
        invitation_id = request.path_params["invitation_id"]
        if action == "withdraw":
            await cosign.withdraw(node, actor.username, invitation_id)
            return JSONResponse({"state": "withdrawn"})
        await cosign.respond(node, actor.username, invitation_id, accept=action == "accept")
        return JSONResponse({"state": "accepted" if action == "accept" else "declined"})

    return handler


async def list_join_requests(request: Request, token: ApiToken,
                             body: dict[str, Any]) -> Response:
    actor = await _check_group(request, token)
    rows = await participation.pending(_node(request), actor.username)
    return JSONResponse([{"id": p.id, "actor": p.actor_uri, "event": event}
                         for p, event in rows])


def _join_action(accept: bool) -> Any:
    async def handler(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
        actor = await _check_group(request, token)
        await participation.decide(_node(request), actor.username,
                                   request.path_params["request_id"], accept=accept)
        return JSONResponse({"accepted": accept})

    return handler


async def upload(request: Request) -> Response:
    """Raw image body (Content-Type image/*); EXIF/GPS removed on the way in."""
    from node.api.routes import _token

    node = _node(request)
    token = await _token(node, request)
    if token is None:
        return error("missing or invalid bearer token", 401)
    # A group token's uploads are its group's; an admin names the group (?group=).
    group = request.query_params.get("group")
    if token.local_actor_id is not None:
        async with node.db.read() as session:
            owner = await session.get(LocalActor, token.local_actor_id)
        if owner is None or (group is not None and group != owner.username):
            return error("this token may not act for that group", 403)
        group = owner.username
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("video/", "audio/")):
        return error("video and audio are not accepted; only still JPEG, PNG, WebP and GIF "
                     "images", 415)
    if not content_type.startswith("image/"):
        return error("send the image itself with an image/* Content-Type", 415)
    focus = None
    if "focus" in request.query_params:
        try:
            focus = parse_focus(request.query_params["focus"])
        except UploadError as exc:
            return error(str(exc), 400)
    try:
        data = await read_body(request, MAX_UPLOAD)
    except BodyTooLarge:
        return error(f"image over {MAX_UPLOAD} bytes", 413)
    try:
        original, variants = await operations.upload_media_files(node, data, group=group,
                                                                 focus=focus)
    except operations.OperationError as exc:
        return error(str(exc), exc.status)
    return JSONResponse({
        "name": original.name, "url": node.urls.media(f"uploads/{original.name}"),
        "mediaType": original.media_type, "width": original.width, "height": original.height,
        "blurhash": original.blurhash,
        "variants": [{"url": node.urls.media(f"uploads/{v.name}"), "width": v.width,
                      "height": v.height} for v in variants]}, status_code=201)


routes = [
    Route("/api/v1/groups/{username}/events", endpoint(create_event), methods=["POST"]),
    Route("/api/v1/events/{uuid}", endpoint(replace_event), methods=["PUT"]),
    Route("/api/v1/events/{uuid}/status", endpoint(event_status), methods=["POST"]),
    Route("/api/v1/events/{uuid}/invitations", endpoint(invite), methods=["POST"]),
    Route("/api/v1/events/{uuid}/cosigners", endpoint(list_cosigners), methods=["GET"]),
    Route("/api/v1/groups/{username}/invitations", endpoint(list_invitations),
          methods=["GET"]),
    *[Route(f"/api/v1/groups/{{username}}/invitations/{{invitation_id:int}}/{action}",
            endpoint(_invitation_action(action)), methods=["POST"])
      for action in ("accept", "decline", "withdraw")],
    Route("/api/v1/groups/{username}/join-requests", endpoint(list_join_requests),
          methods=["GET"]),
    Route("/api/v1/groups/{username}/join-requests/{request_id:int}/accept",
          endpoint(_join_action(True)), methods=["POST"]),
    Route("/api/v1/groups/{username}/join-requests/{request_id:int}/reject",
          endpoint(_join_action(False)), methods=["POST"]),
    Route("/api/v1/media", upload, methods=["POST"]),
]
