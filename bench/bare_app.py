"""The baseline: a bare Starlette app under the same uvicorn, doing nothing but
answering JSON (read path) or reading the body and answering 202 (ingest)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

DOC = {"@context": "https://www.w3.org/ns/activitystreams", "id": "http://x/groups/x",
       "type": "Group", "preferredUsername": "x", "name": "x" * 40}


async def document(request: Request) -> Response:
    return JSONResponse(DOC, media_type="application/activity+json")


async def inbox(request: Request) -> Response:
    await request.body()
    return Response(status_code=202)


app = Starlette(routes=[Route("/json", document), Route("/inbox", inbox, methods=["POST"])])
