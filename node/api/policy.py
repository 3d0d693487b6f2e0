"""Peer policy in the JSON API (admin tokens only): peers, blocks, allows.

The same operations as ``hambastegi peers|block|unblock|allow|disallow``
(federation/policy.py, federation/peers.py).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from node.api.routes import endpoint, error
from node.federation import peers, policy
from node.federation.runtime import Node
from node.storage.models import ApiToken


def _admin(token: ApiToken) -> Response | None:
    if token.local_actor_id is not None:
        return error("only an admin token may change or read peer policy", 403)
    return None


def _change(change: policy.RuleChange, status: int) -> Response:
    return JSONResponse({"domain": change.domain, "changed": change.changed,
                         "followers_removed": change.followers_removed,
                         "follows_cancelled": change.follows_cancelled}, status_code=status)


async def list_peers(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
    refused = _admin(token)
    if refused is not None:
        return refused
    node: Node = request.app.state.node
    refresh = request.query_params.get("refresh", "") in ("1", "true")
    found = await peers.list_peers(node, refresh=refresh)
    return JSONResponse({"peers": [p.as_json() for p in found]})


async def list_rules(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
    refused = _admin(token)
    if refused is not None:
        return refused
    node: Node = request.app.state.node
    rules = await policy.list_rules(node)
    return JSONResponse({
        "mode": node.settings.federation_mode,
        "authorized_fetch": node.settings.authorized_fetch,
        "rules": [{"domain": r.domain, "kind": r.kind, "note": r.note,
                   "created_at": r.created_at.isoformat()} for r in rules]})


def _rule_endpoint(kind: str, add: bool) -> Any:
    async def handle(request: Request, token: ApiToken, body: dict[str, Any]) -> Response:
        refused = _admin(token)
        if refused is not None:
            return refused
        node: Node = request.app.state.node
        domain = body.get("domain")
        note = body.get("note")
        if not isinstance(domain, str):
            return error("'domain' must be a string", 400)
        if note is not None and not isinstance(note, str):
            return error("'note' must be a string", 400)
        try:
            if kind == "block":
                change = await (policy.block_domain(node, domain, note) if add
                                else policy.unblock_domain(node, domain))
            else:
                change = await (policy.allow_domain(node, domain, note) if add
                                else policy.disallow_domain(node, domain))
        except policy.PolicyError as exc:
            return error(str(exc), 400)
        return _change(change, 201 if add and change.changed else 200)

    return handle


routes = [
    Route("/api/v1/peers", endpoint(list_peers), methods=["GET"]),
    Route("/api/v1/domain-rules", endpoint(list_rules), methods=["GET"]),
    Route("/api/v1/domain-rules/block", endpoint(_rule_endpoint("block", True)),
          methods=["POST"]),
    Route("/api/v1/domain-rules/unblock", endpoint(_rule_endpoint("block", False)),
          methods=["POST"]),
    Route("/api/v1/domain-rules/allow", endpoint(_rule_endpoint("allow", True)),
          methods=["POST"]),
    Route("/api/v1/domain-rules/disallow", endpoint(_rule_endpoint("allow", False)),
          methods=["POST"]),
]
