"""The ASGI application: routes, and the background loops of one process."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import func
from sqlmodel import select
from starlette.applications import Starlette
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from node.api import campaigns as api_campaigns
from node.api import events as api_events
from node.api import policy as api_policy
from node.api import routes as api
from node.calls import calendar
from node.clientapi.routes import routes as client_api
from node.core import minisign
from node.core.metrics import METRICS
from node.core.middleware import NodeMiddleware
from node.core.onion import OnionSite
from node.core.settings import Settings
from node.federation import delivery, followers_sync, inbox, nodeinfo, webfinger
from node.federation.authorized_fetch import signed_only
from node.federation.outbox_sync import SyncWorker
from node.federation.runtime import Node
from node.inbound import INBOUND
from node.storage.models import InboxItem
from node.web import (
    admin,
    campaigns,
    collections,
    documents,
    feeds,
    mail_pages,
    networks,
    remote_follow,
)
from node.web import pages as web
from node.web.addressed import or_addressed

log = logging.getLogger("hambastegi")


async def health(request: Request) -> Response:
    node: Node = request.app.state.node
    try:
        async with node.db.read() as session:
            await session.exec(select(1))
    except Exception:  # any database failure means unhealthy
        return JSONResponse({"status": "database unavailable"}, status_code=503)
    return JSONResponse({"status": "ok"})


async def mirror_key(request: Request) -> Response:
    """The public key that signs this node's static mirrors, in minisign's file format
    (``minisign -Vm manifest.json -p hambastegi-mirror.pub``); 404 before one exists."""
    node: Node = request.app.state.node
    public = minisign.read_public(node.settings.data_dir)
    if public is None:
        return PlainTextResponse("no mirror key yet\n", status_code=404)
    return PlainTextResponse(public.file_text(), headers={"Cache-Control": "public, max-age=3600"})


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


class NodeApp(Starlette):
    """Starlette with one middleware layer (node/core/middleware.py) around its exception
    handling, in place of its ServerErrorMiddleware and of five stacked layers
    (docs/ARCHITECTURE.md#7-the-read-path)."""

    def __init__(self, node: Node, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.node = node
        self.mirror = False  # set by the mirror export (node/mirror/export.py)
        self._site: tuple[float, web.Site] | None = None

    def site(self) -> web.Site:
        """The footer's facts (web/pages.py ``Site``); the key file is looked at again
        every ten seconds, so ``hambastegi mirror key`` shows without a restart."""
        now = asyncio.get_running_loop().time()
        if self._site is not None and now - self._site[0] < 10:
            return self._site[1]
        settings = self.node.settings
        public = minisign.read_public(settings.data_dir)
        site = web.Site(origin=settings.base_url, onion=settings.onion_origin,
                        mirror_key=public.encoded() if public else "", mirror=self.mirror)
        self._site = (now, site)
        return site

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            web.SITE.set(self.site())
        await super().__call__(scope, receive, send)

    def build_middleware_stack(self) -> ASGIApp:
        inner = ExceptionMiddleware(self.router, handlers=dict(self.exception_handlers))
        settings = self.node.settings
        # Latencies only where /metrics can be read: without a token nobody can.
        onion = OnionSite(settings.base_url, settings.host.lower(),
                          settings.onion_hostname) if settings.onion_hostname else None
        return NodeMiddleware(inner, body_timeout=settings.body_timeout,
                              before_read=self.node.changes.sync,
                              observe=METRICS.observe_request if settings.metrics_token else None,
                              client_header=settings.client_address_header,
                              max_per_address=settings.max_connections_per_address,
                              onion=onion)


def build_routes() -> list[BaseRoute]:
    # Starlette tries routes in order and no two paths here overlap, so the hot reads
    # come first: each route passed costs a regex match (bench/readpath.py).
    return [
        Route("/.well-known/webfinger", webfinger.webfinger),
        Route("/groups/{username}", documents.group_actor),
        # Actor-scoped ActivityPub documents: behind authorized fetch when it is on.
        Route("/groups/{username}/outbox", signed_only(collections.outbox)),
        # A co-owner's campaign update answers its addressee only (web/addressed.py).
        Route("/objects/{uuid}", or_addressed(signed_only(documents.local_object,
                                                          json_only=True))),
        Route("/groups/{username}/inbox", inbox.receive, methods=["POST"]),
        Route("/inbox", inbox.receive, methods=["POST"]),
        Route("/", web.index),
        Route("/.well-known/host-meta", webfinger.host_meta),
        Route("/.well-known/nodeinfo", nodeinfo.well_known),
        Route("/.well-known/hambastegi-mirror.pub", mirror_key),
        Route("/nodeinfo/{version}", nodeinfo.nodeinfo),
        Route("/actor", documents.instance_actor),
        Route("/actor/inbox", inbox.receive_instance, methods=["POST"]),
        Route("/groups/{username}/followers", signed_only(collections.followers)),
        Route("/groups/{username}/following", signed_only(collections.following)),
        # answers only signed GETs of the host it names (federation/followers_sync.py)
        Route("/groups/{username}/followers_synchronization",
              followers_sync.partial_collection),
        Route("/groups/{username}/featured", signed_only(collections.featured)),
        Route("/objects/{uuid}/organizers", signed_only(collections.organizers)),
        Route("/objects/{uuid}/calendar.ics", calendar.event_ics),
        Route("/groups/{username}/calendar.ics", calendar.group_ics),
        Route("/groups/{username}/feed.atom", feeds.atom),
        Route("/groups/{username}/feed.json", feeds.json_feed),
        Route("/groups/{username}/members",
              signed_only(networks.members_collection, json_only=True)),
        Route("/groups/{username}/calls.ics", networks.calls_ics),
        Route("/groups/{username}/calls.atom", networks.calls_atom),
        Route("/groups/{username}/calls.json", networks.calls_json),
        Route("/activities/{uuid}", signed_only(documents.activity)),
        Route("/tags/{tag}", web.tag_page),
        Route("/static/site.css", web.stylesheet),
        Route("/favicon.ico", web.favicon),
        Route("/groups/{username}/remote-follow", remote_follow.remote_follow, methods=["POST"]),
        Route("/campaigns", campaigns.page),
        Route("/campaigns/feed.atom", campaigns.atom),
        Route("/campaigns/feed.json", campaigns.json_feed),
        Route("/groups/{username}/campaigns", campaigns.group_page),
        Route("/groups/{username}/campaigns.atom", campaigns.group_atom),
        Route("/groups/{username}/campaigns.json", campaigns.group_json),
        Route("/media/{kind}/{name}", documents.media),
        Route("/health", health),
        Route("/metrics", metrics),
        *api.routes,
        *api_policy.routes,
        *api_events.routes,
        *admin.routes,
        *api_campaigns.routes,
        *mail_pages.routes,
        # The Mastodon client API (node/clientapi): after ours, none of its paths overlap.
        *client_api,
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
            # Catch-up of followed outboxes (federation/outbox_sync.py): outbound
            # GETs, so it runs where deliveries run; leases keep processes apart.
            syncer = SyncWorker(node, period=settings.sync_seconds,
                                poll=settings.worker_poll_seconds)
            node.sync_wake = syncer.wake
            tasks.append(asyncio.create_task(syncer.run(stop)))
            if settings.mail_enabled:
                from node.mail.worker import MailWorker

                mailer = MailWorker(node, idle_wait=node.wakeup.waiter().wait)
                node.mail_wake = mailer.wake
                tasks.append(asyncio.create_task(mailer.run(stop)))
            # Telegram / Bluesky copies: their own rows and client (crosspost/worker.py).
            from node.crosspost.worker import CrosspostWorker

            tasks.append(asyncio.create_task(CrosspostWorker(node).run(stop)))
        log.info("node started", extra={"base_url": settings.base_url})
        try:
            yield {}
        finally:
            stop.set()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait_for(task, timeout=10)
            await node.close()

    app = NodeApp(node, routes=build_routes(), lifespan=lifespan)
    app.state.node = node
    return app
