"""NodeInfo 2.1 (FEP-f1d5) and the FEP-2677 link to the instance actor."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from node import __version__
from node.core.urls import INSTANCE_USERNAME
from node.federation.runtime import Node
from node.storage.models import LocalActor, LocalObject

SCHEMA_21 = "http://nodeinfo.diaspora.software/ns/schema/2.1"
SCHEMA_20 = "http://nodeinfo.diaspora.software/ns/schema/2.0"
APPLICATION_REL = "https://www.w3.org/ns/activitystreams#Application"


async def well_known(request: Request) -> Response:
    node: Node = request.app.state.node
    return JSONResponse(
        {
            "links": [
                {"rel": SCHEMA_21, "href": f"{node.settings.base_url}/nodeinfo/2.1"},
                # 2.0 as well: several clients (bovine, older servers) only read it.
                {"rel": SCHEMA_20, "href": f"{node.settings.base_url}/nodeinfo/2.0"},
                {"rel": APPLICATION_REL, "href": node.urls.actor(INSTANCE_USERNAME)},
            ]
        },
        headers={"Access-Control-Allow-Origin": "*"},
    )


async def nodeinfo(request: Request) -> Response:
    node: Node = request.app.state.node
    version = request.path_params.get("version", "2.1")
    if version not in ("2.0", "2.1"):
        return JSONResponse({"error": "NodeInfo 2.0 and 2.1 are served"}, status_code=404)
    cached = node.doc_cache.get(("nodeinfo", version))
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
        software = {"name": "hambastegi", "version": __version__}
        if version == "2.1":  # 2.0's schema has no repository/homepage
            software["repository"] = "https://codeberg.org/hambastegi/hambastegi"
            software["homepage"] = node.settings.base_url
        doc = {
            "version": version,
            "software": software,
            "protocols": ["activitypub"],
            "services": {"inbound": [], "outbound": []},
            "openRegistrations": False,
            # Groups are the node's accounts; no person's activity is counted.
            "usage": {"users": {"total": int(groups)}, "localPosts": int(posts)},
            # Client libraries that pick an API by NodeInfo (megalodon reads
            # upstream.name) speak Mastodon's to us: node/clientapi answers it, as the
            # 4.5.0 that /api/v1/instance's version names.
            "metadata": {"nodeName": node.settings.host,
                         "upstream": {"name": "mastodon", "version": "4.5.0"}},
        }
        cached = node.doc_cache.put(("nodeinfo", version), doc, ttl=300)
    return Response(
        cached,
        media_type=f'application/json; profile="http://nodeinfo.diaspora.software/ns/schema/{version}#"',
        headers={"Access-Control-Allow-Origin": "*"},
    )
