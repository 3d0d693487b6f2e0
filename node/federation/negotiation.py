"""Content negotiation: one URL serves ActivityStreams JSON and HTML."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from node.federation.vocabulary import AS_MEDIA_TYPE

AS_ACCEPT = ("application/activity+json", "application/ld+json")


def wants_activity_json(request: Request) -> bool:
    accept = request.headers.get("accept", "").lower()
    return any(kind in accept for kind in AS_ACCEPT)


def as_response(body: bytes, *, status_code: int = 200, etag: str | None = None,
                request: Request | None = None, max_age: int = 0) -> Response:
    headers = {"Vary": "Accept", "Access-Control-Allow-Origin": "*"}
    if max_age:
        headers["Cache-Control"] = f"public, max-age={max_age}"
    if etag is not None:
        headers["ETag"] = etag
        if request is not None and request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
    return Response(body, status_code=status_code, media_type=AS_MEDIA_TYPE, headers=headers)
