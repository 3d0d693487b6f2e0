"""JSON API for networks (issue 15): the operations of `hambastegi network …`.

A network is a group actor, so a token limited to it may act for it (decide
applications, remove members) and a token limited to a group may make that
group join or leave networks; creating a network needs an admin token.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from node.api.routes import _check_group, _opt_text, _text, endpoint, error
from node.federation.runtime import Node
from node.groups.operations import OperationError
from node.networks import directory, members
from node.storage.models import ApiToken, NetworkMembership


def _node(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


def _membership(m: NetworkMembership) -> dict[str, Any]:
    return {"id": m.id, "actor": m.member_uri, "name": m.name, "city": m.city,
            "country": m.country, "node": m.node_host, "languages": m.languages,
            "state": m.state}


async def create_network(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
    if token.local_actor_id is not None:
        return error("only an admin token may create networks", 403)
    actor_id = await members.create(
        _node(request), _text(body, "name"),
        display_name=_opt_text(body, "display_name") or _text(body, "name"),
        language=_opt_text(body, "language") or "en", summary=_opt_text(body, "summary"))
    return JSONResponse({"id": actor_id}, status_code=201)


async def join(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
    actor = await _check_group(request, token)
    entry = None
    if any(k in body for k in ("city", "country", "languages")):
        try:
            entry = directory.Entry(city=directory.city(body.get("city")),
                                    country=directory.country(body.get("country")),
                                    languages=directory.language_list(body.get("languages")))
        except directory.DirectoryError as exc:
            raise OperationError(str(exc)) from exc
    join_id = await members.join(_node(request), actor.username, _text(body, "network"), entry)
    return JSONResponse({"id": join_id}, status_code=201)


async def leave(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
    actor = await _check_group(request, token)
    await members.leave(_node(request), actor.username, _text(body, "network"))
    return JSONResponse({"left": True})


async def list_applications(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
    actor = await _check_group(request, token)
    rows = await members.applications(_node(request), actor.username)
    return JSONResponse({"applications": [_membership(m) for m in rows]})


async def list_members(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
    actor = await _check_group(request, token)
    rows = await members.members(_node(request), actor.username)
    return JSONResponse({"members": [_membership(m) for m in rows]})


def _decide(accept: bool) -> Any:
    async def decide(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
        actor = await _check_group(request, token)
        membership = await members.decide_application(
            _node(request), actor.username, request.path_params["application_id"],
            accept=accept)
        return JSONResponse(_membership(membership))

    return decide


async def remove(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
    actor = await _check_group(request, token)
    await members.remove(_node(request), actor.username, _text(body, "actor"))
    return JSONResponse({"removed": True})


routes: list[Route] = [
    Route("/api/v1/networks", endpoint(create_network), methods=["POST"]),
    Route("/api/v1/groups/{username}/networks/join", endpoint(join), methods=["POST"]),
    Route("/api/v1/groups/{username}/networks/leave", endpoint(leave), methods=["POST"]),
    Route("/api/v1/networks/{username}/applications", endpoint(list_applications),
          methods=["GET"]),
    Route("/api/v1/networks/{username}/applications/{application_id:int}/accept",
          endpoint(_decide(True)), methods=["POST"]),
    Route("/api/v1/networks/{username}/applications/{application_id:int}/reject",
          endpoint(_decide(False)), methods=["POST"]),
    Route("/api/v1/networks/{username}/members", endpoint(list_members), methods=["GET"]),
    Route("/api/v1/networks/{username}/remove", endpoint(remove), methods=["POST"]),
]
