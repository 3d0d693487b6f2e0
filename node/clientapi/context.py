"""What every client API request passes: the bearer token (looked up anew each
time: apps.caller_of), the scope the endpoint needs, the parameters, and Mastodon's
error bodies for whatever goes wrong."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from node.clientapi import apps
from node.clientapi.params import ApiError, Params, error, read_params
from node.federation.runtime import Node
from node.groups.errors import OperationError
from node.storage.models import LocalActor

log = logging.getLogger("hambastegi.clientapi")


@dataclass
class Call:
    """One request: the node, who calls, and its parameters."""

    node: Node
    request: Request
    caller: apps.Caller | None
    params: Params

    @property
    def group(self) -> LocalActor:
        """The group the token acts for (endpoints that need one are user-only)."""
        assert self.caller is not None and self.caller.group is not None
        return self.caller.group


Handler = Callable[[Call], Awaitable[Response]]


def bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    # Browsers cannot set headers on a WebSocket: Mastodon takes ?access_token= there.
    return request.query_params.get("access_token") if request.url.path.startswith(
        "/api/v1/streaming") else None


def endpoint(handler: Handler, *, scope: str | None, user: bool = True, public: bool = False,
             uploads: bool = False) -> Callable[[Request], Awaitable[Response]]:
    """``scope``: what the token must grant (None: any token). ``user``: a token
    bound to a user and group (not an app-only one). ``public``: answers without a
    token too (instance, public timelines)."""

    async def wrapped(request: Request) -> Response:
        node: Node = request.app.state.node
        token = bearer(request)
        # Reads may use the per-process answer (the change check ran before them).
        caller = await apps.caller_of(node, token, cached=request.method in {"GET", "HEAD"}) \
            if token else None
        if caller is None and (token or not public):
            return error("The access token is invalid", 401)
        if caller is not None:
            if user and caller.group is None:
                return error("This method requires an authenticated user", 422)
            if scope is not None and not apps.allows(caller.scopes, scope):
                return error("This action is outside the authorized scopes", 403)
        try:
            params = await read_params(request, uploads=uploads)
            return await handler(Call(node, request, caller, params))
        except ApiError as exc:
            return error(str(exc), exc.status)
        except OperationError as exc:
            # The operations' 400 is Mastodon's 422 (validation failed).
            status = 422 if exc.status == 400 else exc.status
            return error(str(exc), status)

    return wrapped
