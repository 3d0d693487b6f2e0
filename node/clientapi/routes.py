"""Every route of the Mastodon client API, for node/app.py."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from node.clientapi import (
    accounts,
    empty,
    instance,
    interactions,
    media,
    notifications,
    oauth,
    search,
    statuses,
    streaming,
    timelines,
)

routes: list[BaseRoute] = [
    Route("/api/v1/apps", oauth.create_app, methods=["POST"]),
    Route("/oauth/authorize", oauth.authorize, methods=["GET", "POST"]),
    Route("/oauth/token", oauth.token, methods=["POST"]),
    Route("/oauth/revoke", oauth.revoke, methods=["POST"]),
    Route("/.well-known/oauth-authorization-server", oauth.server_metadata),
    *instance.routes,
    *accounts.routes,
    *statuses.routes,
    *media.routes,
    *timelines.routes,
    *notifications.routes,
    *search.routes,
    *interactions.routes,
    *empty.routes,
    *streaming.routes,
]
