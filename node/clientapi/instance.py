"""``/api/v1/instance``, ``/api/v2/instance``, ``/api/v1/instance/languages`` and
``/api/v1/custom_emojis``: what apps read before and after login.

``version`` says Mastodon 4.5.0 first, so client libraries that gate features by
version take the 4.x paths, then who answers (issue 29, point 4)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from node import __version__
from node.clientapi.statuses import MAX_CHARACTERS, MAX_MEDIA
from node.federation import local_actors
from node.federation.runtime import Node
from node.media.uploads import MAX_UPLOAD
from node.news.items import MAX_ALT

MASTODON_VERSION = "4.5.0"
VERSION = f"{MASTODON_VERSION} (compatible; Hambastegi {__version__})"
IMAGE_TYPES = ["image/jpeg", "image/png", "image/webp", "image/gif", "image/avif",
               "image/heic", "image/heif"]


def _node(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


def _streaming(node: Node) -> str:
    base = node.settings.base_url
    return "wss://" + base[len("https://"):] if base.startswith("https://") else \
        "ws://" + base[len("http://"):]


def configuration() -> dict[str, Any]:
    return {
        "statuses": {"max_characters": MAX_CHARACTERS, "max_media_attachments": MAX_MEDIA,
                     "characters_reserved_per_url": 23},
        "media_attachments": {"supported_mime_types": IMAGE_TYPES,
                              "description_limit": MAX_ALT,
                              "image_size_limit": MAX_UPLOAD,
                              "image_matrix_limit": 33_177_600,
                              "video_size_limit": 0, "video_frame_rate_limit": 0,
                              "video_matrix_limit": 0},
        "polls": {"max_options": 0, "max_characters_per_option": 0,
                  "min_expiration": 0, "max_expiration": 0},
        "accounts": {"max_featured_tags": 0, "max_pinned_statuses": 5},
        "translation": {"enabled": False},
    }


async def _languages(node: Node) -> list[str]:
    async with node.db.read() as session:
        groups = await local_actors.list_groups(session)
    return sorted({g.language for g in groups} | {"en"})


Builder = Callable[[Node], Awaitable[dict[str, Any]]]


def _cached(name: str) -> Callable[[Builder], Callable[[Request], Awaitable[Response]]]:
    """The instance documents change with the groups' languages only: kept in the
    document cache (emptied by the change counter) like the public documents."""
    def wrap(build: Builder) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            node = _node(request)
            body = node.doc_cache.get(("clientapi", name))
            if body is None:
                body = node.doc_cache.put(("clientapi", name), await build(node), ttl=300)
            return Response(body, media_type="application/json")
        return endpoint
    return wrap


@_cached("instance-v2")
async def instance_v2(node: Node) -> dict[str, Any]:
    settings = node.settings
    return {
        "domain": settings.host, "title": settings.host, "version": VERSION,
        "source_url": "https://codeberg.org/hambastegi/hambastegi",
        "description": "A Hambastegi node: labour-solidarity groups publishing news, "
                       "calls and campaigns.",
        "usage": {"users": {"active_month": 0}},
        "thumbnail": {"url": f"{settings.base_url}/favicon.ico"},
        "icon": [],
        "languages": await _languages(node),
        "configuration": {**configuration(), "urls": {"streaming": _streaming(node),
                                                      "status": None},
                          "vapid": {"public_key": ""}},
        "registrations": {"enabled": False, "approval_required": True, "message": None},
        "api_versions": {"mastodon": 6},
        "contact": {"email": "", "account": None},
        "rules": [],
    }


@_cached("instance-v1")
async def instance_v1(node: Node) -> dict[str, Any]:
    settings = node.settings
    return {
        "uri": settings.host, "title": settings.host, "short_description": "",
        "description": "A Hambastegi node.", "email": "", "version": VERSION,
        "urls": {"streaming_api": _streaming(node)},
        "stats": {"user_count": 0, "status_count": 0, "domain_count": 0},
        "thumbnail": None, "languages": await _languages(node), "registrations": False,
        "approval_required": True, "invites_enabled": False,
        "configuration": configuration(), "contact_account": None, "rules": [],
    }


async def languages(request: Request) -> Response:
    from node.core.languages import autonym

    return JSONResponse([{"code": code, "name": autonym(code)}
                         for code in await _languages(_node(request))])


async def custom_emojis(request: Request) -> Response:
    return JSONResponse([])


routes = [
    Route("/api/v2/instance", instance_v2),
    Route("/api/v1/instance", instance_v1),
    Route("/api/v1/instance/languages", languages),
    Route("/api/v1/custom_emojis", custom_emojis),
]
