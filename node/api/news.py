"""JSON API for news items and language channels (issue 13); README, "News"."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from node.api.routes import _check_group, endpoint
from node.federation.runtime import Node
from node.groups.operations import OperationError
from node.news import channels
from node.news import operations as news
from node.storage.models import ApiToken


def _node(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


async def create_item(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
    actor = await _check_group(request, token)
    object_id = await news.create_item(_node(request), actor.username, body)
    return JSONResponse({"id": object_id}, status_code=201)


async def replace_item(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
    object_id = await news.replace_item(_node(request), request.path_params["uuid"], body,
                                        allowed_actor=token.local_actor_id)
    return JSONResponse({"id": object_id})


async def add_version(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
    version = {k: v for k, v in body.items() if k != "language"}
    object_id = await news.add_version(_node(request), request.path_params["uuid"],
                                       body.get("language"), version,
                                       allowed_actor=token.local_actor_id)
    return JSONResponse({"id": object_id}, status_code=201)


async def edit_version(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
    object_id = await news.edit_version(_node(request), request.path_params["uuid"],
                                        request.path_params["lang"], body,
                                        allowed_actor=token.local_actor_id)
    return JSONResponse({"id": object_id})


async def delete_item(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
    object_id = await news.delete_item(_node(request), request.path_params["uuid"],
                                       allowed_actor=token.local_actor_id)
    return JSONResponse({"id": object_id, "deleted": True})


async def enable_channels(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
    actor = await _check_group(request, token)
    langs = body.get("languages")
    if not isinstance(langs, list):
        raise OperationError("'languages' must be a list of language tags")
    ids = await channels.enable(_node(request), actor.username, langs)
    return JSONResponse({"channels": ids}, status_code=201)


async def publish_bulletin(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
    from node.mail.queue import bulletin_hook
    from node.news import bulletin

    actor = await _check_group(request, token)
    node = _node(request)
    number, object_id = await bulletin.publish(node, actor.username, since=body.get("since"),
                                               on_published=bulletin_hook(node.settings))
    return JSONResponse({"number": number, "id": object_id}, status_code=201)


routes: list[Route] = [
    Route("/api/v1/groups/{username}/bulletins", endpoint(publish_bulletin), methods=["POST"]),
    Route("/api/v1/groups/{username}/news", endpoint(create_item), methods=["POST"]),
    Route("/api/v1/groups/{username}/channels", endpoint(enable_channels), methods=["POST"]),
    Route("/api/v1/news/{uuid}", endpoint(replace_item), methods=["PUT"]),
    Route("/api/v1/news/{uuid}", endpoint(delete_item), methods=["DELETE"]),
    Route("/api/v1/news/{uuid}/versions", endpoint(add_version), methods=["POST"]),
    Route("/api/v1/news/{uuid}/versions/{lang}", endpoint(edit_version), methods=["PUT"]),
]
