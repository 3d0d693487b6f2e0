"""NodeInfo 2.1 (FEP-f1d5) and the FEP-2677 link to the instance actor."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from node import __version__
from node.models import LocalActor, LocalObject
from node.runtime import Node
from node.urls import INSTANCE_USERNAME

SCHEMA_21 = "http://nodeinfo.diaspora.software/ns/schema/2.1"
APPLICATION_REL = "https://www.w3.org/ns/activitystreams#Application"


async def well_known(request: Request) -> Response:
    node: Node = request.app.state.node
    return JSONResponse(
        {
            "links": [
                {"rel": SCHEMA_21, "href": f"{node.settings.base_url}/nodeinfo/2.1"},
                {"rel": APPLICATION_REL, "href": node.urls.actor(INSTANCE_USERNAME)},
            ]
        },
        headers={"Access-Control-Allow-Origin": "*"},
    )


async def nodeinfo(request: Request) -> Response:
    node: Node = request.app.state.node
    cached = node.doc_cache.get(("nodeinfo",))
    if cached is None:
        async with node.db.read() as session:
            groups = (
                await session.exec(
                    select(func.count()).select_from(LocalActor)
                    .where(LocalActor.actor_type != "Application")
                )
            ).one()
            posts = (
                await session.exec(
                    select(func.count()).select_from(LocalObject)
                    .where(col(LocalObject.deleted_at).is_(None))
                )
            ).one()
        doc = {
            "version": "2.1",
            "software": {
                "name": "hambastegi",
                "version": __version__,
                "repository": "https://codeberg.org/hambastegi/hambastegi",
                "homepage": node.settings.base_url,
            },
            "protocols": ["activitypub"],
            "services": {"inbound": [], "outbound": []},
            "openRegistrations": False,
            # Groups are the node's accounts; no person's activity is counted.
            "usage": {"users": {"total": int(groups)}, "localPosts": int(posts)},
            "metadata": {"nodeName": node.settings.host},
        }
        cached = node.doc_cache.put(("nodeinfo",), doc, ttl=300)
    return Response(
        cached,
        media_type='application/json; profile="http://nodeinfo.diaspora.software/ns/schema/2.1#"',
        headers={"Access-Control-Allow-Origin": "*"},
    )
