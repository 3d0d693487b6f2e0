"""What a group account has no use for, answered as snac and GoToSocial answer it:
an empty list or object, so an app shows an empty screen instead of an error.
Push subscriptions answer 404 with Mastodon's error body, as Mastodon does on a
server without VAPID keys (apps then fall back to polling or streaming)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from node.clientapi.context import Call, endpoint
from node.clientapi.params import error

EMPTY_LISTS = (
    "/api/v1/filters", "/api/v2/filters", "/api/v1/lists", "/api/v1/bookmarks",
    "/api/v1/favourites", "/api/v1/announcements", "/api/v1/trends",
    "/api/v1/trends/tags", "/api/v1/trends/statuses", "/api/v1/trends/links",
    "/api/v1/suggestions", "/api/v2/suggestions", "/api/v1/conversations",
    "/api/v1/followed_tags", "/api/v1/scheduled_statuses", "/api/v1/blocks",
    "/api/v1/mutes", "/api/v1/domain_blocks", "/api/v1/endorsements",
    "/api/v1/featured_tags", "/api/v1/featured_tags/suggestions",
    "/api/v1/accounts/familiar_followers",
)


async def empty_list(call: Call) -> Response:
    return JSONResponse([])


async def preferences(call: Call) -> Response:
    return JSONResponse({
        "posting:default:visibility": "public", "posting:default:sensitive": False,
        "posting:default:language": call.group.language, "reading:expand:media": "default",
        "reading:expand:spoilers": False, "reading:autoplay:gifs": False})


async def no_push(request: Request) -> Response:
    return error("Record not found", 404)


async def app_credentials(call: Call) -> Response:
    """GET /api/v1/apps/verify_credentials: the calling app (no secret)."""
    assert call.caller is not None
    app = call.caller.app
    return JSONResponse({"id": str(app.id), "name": app.name, "website": app.website,
                         "scopes": app.scopes.split(),
                         "redirect_uri": "\n".join(app.redirect_uris),
                         "redirect_uris": list(app.redirect_uris)})


routes = [
    *(Route(path, endpoint(empty_list, scope=None), methods=["GET"]) for path in EMPTY_LISTS),
    Route("/api/v1/preferences", endpoint(preferences, scope="read:accounts"),
          methods=["GET"]),
    Route("/api/v1/push/subscription", no_push,
          methods=["GET", "POST", "PUT", "DELETE"]),
    Route("/api/v1/apps/verify_credentials", endpoint(app_credentials, scope=None,
                                                       user=False), methods=["GET"]),
]
