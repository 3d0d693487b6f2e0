"""JSON API for campaigns (issue 16); README, "Campaigns". The same operations as the
CLI (node/campaigns/operations.py, coowners.py)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from node.api.routes import _check_group, endpoint
from node.campaigns import coowners, operations
from node.federation.runtime import Node
from node.groups.operations import OperationError
from node.storage.models import ApiToken


def _node(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


async def create(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
    actor = await _check_group(request, token)
    campaign_id = await operations.create_campaign(_node(request), actor.username, body)
    return JSONResponse({"id": campaign_id}, status_code=201)


async def edit(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
    campaign_id = await operations.edit_campaign(_node(request), request.path_params["uuid"],
                                                 body, allowed_actor=token.local_actor_id)
    return JSONResponse({"id": campaign_id})


async def add_update(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
    note = await operations.add_update(_node(request), request.path_params["uuid"], body,
                                       allowed_actor=token.local_actor_id)
    return JSONResponse({"id": note}, status_code=201)


async def set_status(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
    note = body.get("note")
    if note is not None and not isinstance(note, str):
        raise OperationError("note must be text")
    campaign_id = await operations.set_status(
        _node(request), request.path_params["uuid"], body.get("status"), when=body.get("date"),
        note=note, allowed_actor=token.local_actor_id)
    return JSONResponse({"id": campaign_id})


async def set_visibility(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
    campaign_id = await operations.set_visibility(
        _node(request), request.path_params["uuid"], body.get("visibility"),
        network=body.get("network"), allowed_actor=token.local_actor_id)
    return JSONResponse({"id": campaign_id, "visibility": body.get("visibility")})


def _target(body: dict[str, Any]) -> str:
    target = body.get("target")
    if not isinstance(target, str):
        raise OperationError("'target' must be @group@host or the group's URL")
    return target


async def invite(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
    invite_id = await coowners.invite(_node(request), request.path_params["uuid"], _target(body),
                                      allowed_actor=token.local_actor_id)
    return JSONResponse({"id": invite_id}, status_code=201)


async def remove_owner(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
    remove_id = await coowners.remove_owner(_node(request), request.path_params["uuid"],
                                            _target(body),
                                            allowed_actor=token.local_actor_id)
    return JSONResponse({"id": remove_id})


async def leave(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
    """The token's group stops co-owning another node's campaign."""
    actor = await _check_group(request, token)
    campaign = body.get("campaign")
    if not isinstance(campaign, str):
        raise OperationError("'campaign' must be the campaign's URL")
    await coowners.leave(_node(request), campaign, actor.username)
    return JSONResponse({"id": campaign, "left": True})


async def co_owned_update(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
    """A timeline update for another node's campaign the token's group co-owns: sent
    to the owner, which verifies and publishes it (coowners.send_update)."""
    actor = await _check_group(request, token)
    campaign = body.get("campaign")
    if not isinstance(campaign, str):
        raise OperationError("'campaign' must be the campaign's URL")
    entry = {k: v for k, v in body.items() if k != "campaign"}
    sent = await coowners.send_update(_node(request), campaign, entry, group_id=actor.id)
    return JSONResponse({"id": sent}, status_code=202)


async def withdraw(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
    campaign_id = await operations.withdraw(_node(request), request.path_params["uuid"],
                                            allowed_actor=token.local_actor_id)
    return JSONResponse({"id": campaign_id, "deleted": True})


routes: list[Route] = [
    Route("/api/v1/groups/{username}/campaigns", endpoint(create), methods=["POST"]),
    Route("/api/v1/campaigns/{uuid}/updates", endpoint(add_update), methods=["POST"]),
    Route("/api/v1/campaigns/{uuid}/status", endpoint(set_status), methods=["POST"]),
    Route("/api/v1/campaigns/{uuid}/visibility", endpoint(set_visibility), methods=["POST"]),
    Route("/api/v1/campaigns/{uuid}/invite", endpoint(invite), methods=["POST"]),
    Route("/api/v1/campaigns/{uuid}/remove-owner", endpoint(remove_owner), methods=["POST"]),
    Route("/api/v1/groups/{username}/campaigns/leave", endpoint(leave), methods=["POST"]),
    Route("/api/v1/groups/{username}/campaigns/updates", endpoint(co_owned_update),
          methods=["POST"]),
    Route("/api/v1/campaigns/{uuid}", endpoint(edit), methods=["PUT"]),
    Route("/api/v1/campaigns/{uuid}", endpoint(withdraw), methods=["DELETE"]),
]
