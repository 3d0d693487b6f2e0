"""Routes for actors, objects, activities and media, with content negotiation.

Every document is served at exactly its ``id`` (Mastodon refuses a document
whose id differs from the URL fetched, INTEROP.md).
"""

from __future__ import annotations

import asyncio

import orjson
from sqlmodel import select
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from node.calls import operations as calls
from node.campaigns import network_copy
from node.campaigns import operations as campaigns
from node.core.urls import INSTANCE_USERNAME
from node.federation import authorized_fetch, publishing
from node.federation import local_actors as groups
from node.federation.negotiation import as_response, wants_activity_json
from node.federation.runtime import Node
from node.federation.vocabulary import actor_document, object_document, tombstone
from node.media import avatars, uploads
from node.networks import members as networks
from node.storage.db import utcnow
from node.storage.models import Activity, Campaign, LocalActor, MediaFile
from node.web import campaign_page, group_page, post_page
from node.web import pages as web
from node.web.current import current_activities
from node.web.i18n import N_, resolve


def not_found(request: Request, what: str = N_("not found")) -> Response:
    if wants_activity_json(request):
        return JSONResponse({"error": what}, status_code=404)
    return web.render_error(request, 404, what)


async def _actor_response(request: Request, username: str) -> Response:
    node: Node = request.app.state.node
    if not wants_activity_json(request):
        # The HTML page, cached per reader's language (web/group_page.py).
        return await group_page.respond(request, username)
    # The JSON document, cached until something changes (cache.py).
    key = ("actor", username)
    body = node.doc_cache.get(key)
    if body is not None:
        return as_response(body, etag=node.doc_cache.etag(key), request=request, max_age=60)
    async with node.db.read() as session:
        actor = await groups.get_actor(session, username)
        network = await networks.network_of(session, username)
    if actor is None:
        return not_found(request, N_("no such group"))
    doc = actor_document(actor, node.urls)
    if network is not None:  # a network links its members (FEDERATION.md, "Networks")
        doc["members"] = networks.members_url(node, username)
    body = node.doc_cache.put(key, doc)
    return as_response(body, etag=node.doc_cache.etag(key), request=request, max_age=60)


async def group_actor(request: Request) -> Response:
    username = request.path_params["username"]
    if username == INSTANCE_USERNAME:
        return not_found(request, N_("no such group"))
    return await _actor_response(request, username)


async def instance_actor(request: Request) -> Response:
    return await _actor_response(request, INSTANCE_USERNAME)


async def local_object(request: Request) -> Response:
    node: Node = request.app.state.node
    as_json = wants_activity_json(request)
    preferred, remember = (None, False) if as_json else web.reader_preference(request)
    key = ("object", request.path_params["uuid"], as_json, preferred)
    cached = node.doc_cache.get(key)
    if cached is None:
        response = await _local_object(request, node, preferred)
        if response.status_code == 404:
            # A network_only campaign's document has no local_object row (so no
            # public surface lists it) and is never cached: looked for only here.
            members_only = await network_copy.campaign_of(node, request.path_params["uuid"])
            if members_only is not None:
                return await _members_only(request, node, members_only)
        if response.status_code != 200:
            return response
        cached = node.doc_cache.put_raw(key, bytes(response.body))
        if as_json:
            return response
    if as_json:
        return as_response(cached, max_age=10)
    out = web.html_response(cached)
    if remember and preferred:
        web.remember_language(out, preferred)
    return out


async def _members_only(request: Request, node: Node, campaign: Campaign) -> Response:
    """A ``network_only`` campaign's document (issue 16): its ActivityPub form to a
    signed GET from an actor on a member node of its network, whatever the node's
    authorized-fetch setting; 404 to everyone else, as for an id never given (not
    401/403: the document is not known to exist), and its HTML page never."""
    if not wants_activity_json(request):
        return not_found(request)
    requester, refusal = await authorized_fetch.signed_requester(node, request)
    doc = None if refusal is not None else await network_copy.readable(
        node, campaign, requester, today=utcnow().date())
    if doc is None:
        return not_found(request)
    response = as_response(orjson.dumps(doc))
    response.headers["Cache-Control"] = authorized_fetch.PRIVATE
    response.headers["Vary"] = "Accept, Signature, Signature-Input"
    return response


async def _local_object(request: Request, node: Node, preferred: str | None) -> Response:
    async with node.db.read() as session:
        obj = await publishing.get_object(session, request.path_params["uuid"])
        actor = await session.get(LocalActor, obj.local_actor_id) if obj else None
    if obj is None or actor is None:
        return not_found(request)
    if obj.deleted_at is not None:
        async with node.db.read() as session:
            # A campaign the public may not see is not known to exist (issue 16).
            if await campaigns.hidden_object(session, obj):
                return not_found(request)
        # 410 with a Tombstone: the id existed and will not come back.
        if wants_activity_json(request):
            return as_response(orjson.dumps(tombstone(obj, node.urls)), status_code=410)
        return web.render_error(request, 410, N_("this post was deleted"))
    if wants_activity_json(request):
        if obj.object_type == "Event":
            async with node.db.read() as session:
                doc = await calls.document(session, node.urls, obj, actor)
            return as_response(orjson.dumps(doc), max_age=10)
        return as_response(orjson.dumps(object_document(obj, actor, node.urls)), max_age=60)
    language = resolve(preferred, actor.language)
    campaign = await campaign_page.respond(node, obj, actor, language)  # a campaign's own page
    if campaign is not None:
        return campaign
    async with node.db.read() as session:
        context = await post_page.render(node, session, obj, actor, language)
    return web.render("post.html", language=language, host=node.settings.host,
                      page_url=context["object_url"], **context)


async def activity(request: Request) -> Response:
    node: Node = request.app.state.node
    async with node.db.read() as session:
        row = (
            await session.exec(select(Activity).where(Activity.uuid == request.path_params["uuid"]))
        ).first()
        # Private activities (Follow, Accept …) name their recipients: never served.
        if row is None or not row.in_outbox:
            return JSONResponse({"error": "not found"}, status_code=404)
        (doc,) = await current_activities(session, node.urls, [row])
    return as_response(orjson.dumps(doc))


# Images are never sniffed into something else (an HTML or SVG "image" would
# run script on this origin); uploads have random names and never change.
NOSNIFF = {"X-Content-Type-Options": "nosniff"}
IMMUTABLE = {**NOSNIFF, "Cache-Control": "public, max-age=31536000, immutable"}


async def media(request: Request) -> Response:
    kind = request.path_params["kind"]
    name = request.path_params["name"]
    if kind == "uploads":
        node: Node = request.app.state.node
        if not uploads.valid_name(name):
            return Response(status_code=404)
        # The content type is the one recorded when we encoded the file,
        # never guessed from its bytes; a file without a row is not served.
        async with node.db.read() as session:
            record = (await session.exec(select(MediaFile).where(MediaFile.name == name))).first()
        path = node.settings.media_dir / "uploads" / name
        if record is None or not path.is_file():
            return Response(status_code=404)
        return FileResponse(path, media_type=record.media_type, headers=IMMUTABLE)
    if kind not in avatars.DRAWERS or not name.endswith(".png"):
        return Response(status_code=404)
    username = name[:-4]
    data = avatars.cached(kind, username)
    if data is None:
        # Unknown names are answered from the database, never drawn.
        node = request.app.state.node
        async with node.db.read() as session:
            actor = await groups.get_group(session, username)
        if actor is None:
            return Response(status_code=404)
        data = await asyncio.to_thread(avatars.draw, kind, username)
    return Response(data, media_type="image/png",
                    headers={**NOSNIFF, "Cache-Control": "public, max-age=86400"})
