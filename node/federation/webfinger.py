"""WebFinger (RFC 7033) and host-meta (RFC 6415).

Mastodon requires ``subject`` and a ``self`` link of an ActivityStreams type,
and checks that the actor's ``preferredUsername@host`` leads back here.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from node.core.urls import INSTANCE_USERNAME
from node.federation import local_actors as groups
from node.federation.runtime import Node
from node.federation.vocabulary import AS_MEDIA_TYPE
from node.storage.models import LocalActor

MAX_RESOURCE = 512
JRD = "application/jrd+json"


class BadResource(ValueError):
    pass


def parse_resource(resource: str, node: Node) -> str | None:
    """The username a resource names on this node; None if it names another host.

    Raises BadResource for malformed input (→ 400).
    """
    if not resource or len(resource) > MAX_RESOURCE or any(c.isspace() for c in resource):
        raise BadResource("resource is empty, too long or has spaces")
    host = node.settings.host.lower()
    if resource.startswith("acct:"):
        account = unquote(resource[5:]).lstrip("@")
        user, sep, domain = account.rpartition("@")
        if not sep or not user or not domain or "@" in user:
            raise BadResource("expected acct:user@host")
        return user.lower() if domain.lower() == host else None
    if resource.startswith(("https://", "http://")):
        try:
            parts = urlsplit(resource)
        except ValueError as exc:  # "http://[" and other broken authorities
            raise BadResource("resource is not a valid URL") from exc
        if parts.netloc.lower() != host:
            return None
        path = parts.path.rstrip("/")
        if path == "/actor":
            return INSTANCE_USERNAME
        if path.startswith("/groups/") and path.count("/") == 2:
            return unquote(path[len("/groups/"):]).lower()
        if path.startswith("/@") and path.count("/") == 1:
            return unquote(path[2:]).lower()
        return None
    raise BadResource("resource must be acct: or an http(s) URL")


def jrd_for(actor: LocalActor, node: Node) -> dict[str, object]:
    actor_url = node.urls.actor(actor.username)
    return {
        "subject": f"acct:{actor.username}@{node.settings.host}",
        "aliases": [actor_url],
        "links": [
            {"rel": "self", "type": AS_MEDIA_TYPE, "href": actor_url},
            {"rel": "http://webfinger.net/rel/profile-page", "type": "text/html",
             "href": actor_url},
        ],
    }


async def webfinger(request: Request) -> Response:
    node: Node = request.app.state.node
    resource = request.query_params.get("resource", "")
    try:
        username = parse_resource(resource, node)
    except BadResource as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    if username is None:
        return JSONResponse({"error": "not a resource of this host"}, status_code=404)
    cached = node.doc_cache.get(("webfinger", username))
    if cached is None:
        async with node.db.read() as session:
            actor = await groups.get_actor(session, username)
        if actor is None:
            return JSONResponse({"error": "no such account"}, status_code=404)
        cached = node.doc_cache.put(("webfinger", username), jrd_for(actor, node))
    return Response(cached, media_type=JRD,
                    headers={"Access-Control-Allow-Origin": "*",
                             "Cache-Control": "max-age=300"})


async def host_meta(request: Request) -> Response:
    node: Node = request.app.state.node
    template = f"{node.settings.base_url}/.well-known/webfinger?resource={{uri}}"
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<XRD xmlns="http://docs.oasis-open.org/ns/xri/xrd-1.0">\n'
        f'  <Link rel="lrdd" template="{template}"/>\n'
        "</XRD>\n"
    )
    return Response(body, media_type="application/xrd+xml")
