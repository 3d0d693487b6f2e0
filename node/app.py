"""The ASGI application: routes, and the background loops of one process."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import func
from sqlmodel import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from node.api import events as api_events
from node.api import routes as api
from node.calls import calendar
from node.core.httpsecurity import NulBytesMiddleware, SecurityHeadersMiddleware
from node.core.metrics import METRICS
from node.core.server import BodyTimeoutMiddleware
from node.core.settings import Settings
from node.federation import delivery, inbox, nodeinfo, webfinger
from node.federation.runtime import Node
from node.inbound import INBOUND
from node.storage.models import InboxItem
from node.web import collections, documents, feeds
from node.web import pages as web

log = logging.getLogger("hambastegi")


async def health(request: Request) -> Response:
    node: Node = request.app.state.node
    try:
        async with node.db.read() as session:
            await session.exec(select(1))
    except Exception:  # any database failure means unhealthy
        return JSONResponse({"status": "database unavailable"}, status_code=503)
    return JSONResponse({"status": "ok"})


async def queue_gauges(node: Node) -> list[tuple[str, str, dict[str, str], float]]:
    gauges: list[tuple[str, str, dict[str, str], float]] = []
    async with node.db.read() as session:
        depth = await delivery.queue_depth(session)
        for state, count in (("behind", depth.behind), ("retrying", depth.retrying),
                             ("sending", depth.sending), ("all", depth.lanes)):
            gauges.append(("hambastegi_delivery_lanes",
                           "Per-host delivery lanes: behind the fan-out log, backing off "
                           "after failures, leased to a worker, all.",
                           {"state": state}, float(count)))
        gauges.append(("hambastegi_delivery_queue",
                       "Fan-out log positions still to walk, summed over lanes (an upper "
                       "bound of activities to deliver per host).", {},
                       float(depth.positions_behind)))
        for state, count in (await session.exec(
            select(InboxItem.state, func.count()).group_by(InboxItem.state)
        )).all():
            gauges.append(("hambastegi_inbox_queue", "Inbox items by state.",
                           {"state": state}, float(count)))
    return gauges


def metrics_allowed(request: Request, token: str) -> bool:
    """The bearer token of HAMBASTEGI_METRICS_TOKEN, compared in constant time."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode())


async def metrics(request: Request) -> Response:
    node: Node = request.app.state.node
    # Queue depths and traffic shape are for the operator, never the public: without a
    # token configured there is no /metrics at all (the proxy's block is a second layer).
    if not node.settings.metrics_token:
        return JSONResponse({"error": "not found"}, status_code=404)
    if not metrics_allowed(request, node.settings.metrics_token):
        return JSONResponse({"error": "metrics need the bearer token"}, status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})
    return PlainTextResponse(METRICS.render(await queue_gauges(node)),
                             media_type="text/plain; version=0.0.4")


class LatencyMiddleware:
    """Request latency per route template (never per URL: no ids, no cardinality blow-up)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", "other")
            METRICS.observe_request(name, time.perf_counter() - started)


class ChangeSyncMiddleware:
    """Before a GET is answered (possibly from the document cache), apply changes
    other processes committed: the ChangeWatcher clears the cache if there were any."""

    def __init__(self, app: ASGIApp, node: Node) -> None:
        self.app = app
        self.node = node

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in {"GET", "HEAD"}:
            try:
                await self.node.changes.sync()
            except Exception:  # the cache is cleared; the handler reports the database
                log.warning("change counter unreadable")
        await self.app(scope, receive, send)


def build_routes() -> list[Route]:
    return [
        Route("/", web.index),
        Route("/.well-known/webfinger", webfinger.webfinger),
        Route("/.well-known/host-meta", webfinger.host_meta),
        Route("/.well-known/nodeinfo", nodeinfo.well_known),
        Route("/nodeinfo/{version}", nodeinfo.nodeinfo),
        Route("/actor", documents.instance_actor),
        Route("/actor/inbox", inbox.receive_instance, methods=["POST"]),
        Route("/inbox", inbox.receive, methods=["POST"]),
        Route("/groups/{username}", documents.group_actor),
        Route("/groups/{username}/inbox", inbox.receive, methods=["POST"]),
        Route("/groups/{username}/outbox", collections.outbox),
        Route("/groups/{username}/followers", collections.followers),
        Route("/groups/{username}/following", collections.following),
        Route("/groups/{username}/featured", collections.featured),
        Route("/objects/{uuid}", documents.local_object),
        Route("/objects/{uuid}/organizers", collections.organizers),
        Route("/objects/{uuid}/calendar.ics", calendar.event_ics),
        Route("/groups/{username}/calendar.ics", calendar.group_ics),
        Route("/groups/{username}/feed.atom", feeds.atom),
        Route("/groups/{username}/feed.json", feeds.json_feed),
        Route("/activities/{uuid}", documents.activity),
        Route("/tags/{tag}", web.tag_page),
        Route("/media/{kind}/{name}", documents.media),
        Route("/health", health),
        Route("/metrics", metrics),
        *api.routes,
        *api_events.routes,
    ]


def create_app(settings: Settings, *, run_worker: bool = True,
               run_processor: bool = True) -> Starlette:
    node = Node(settings, inbound=INBOUND)
    stop = asyncio.Event()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        await node.start()
        tasks: list[asyncio.Task[None]] = []
        if run_processor:
            tasks.append(asyncio.create_task(node.inbox_worker().run(stop)))
        if run_worker:
            worker = node.delivery_worker()
            node.delivery_wake = worker.wake
            tasks.append(asyncio.create_task(worker.run(stop)))
        log.info("node started", extra={"base_url": settings.base_url})
        try:
            yield {}
        finally:
            stop.set()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait_for(task, timeout=10)
            await node.close()

    app = Starlette(routes=build_routes(), lifespan=lifespan)
    app.state.node = node
    app.add_middleware(ChangeSyncMiddleware, node=node)
    app.add_middleware(LatencyMiddleware)
    app.add_middleware(NulBytesMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(BodyTimeoutMiddleware, timeout=settings.body_timeout)
    return app
