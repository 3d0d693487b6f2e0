"""Authorized fetch (``HAMBASTEGI_AUTHORIZED_FETCH=1``, like Mastodon's secure mode;
docs/ARCHITECTURE.md §9, FEDERATION.md "Authorized fetch").

Actor-scoped ActivityPub documents (outbox, objects, activities, the followers,
following, featured and organizers collections) are served only to a GET signed
(draft-cavage or RFC 9421, the inbox's parsers) by an actor whose key verifies
and whose domain we federate with: unsigned or badly signed → 401, a blocked
(allowlist mode: unlisted) domain → 403. What stays open: the actor documents
(their ``publicKey`` is how peers verify us, and how they sign the GETs we ask
for), WebFinger, NodeInfo, and the HTML pages, Atom/JSON feeds and calendars,
which are public by design (Mastodon keeps HTML public in secure mode too).

Our own GETs are signed by the instance actor (remote_actors.fetch_document), so
two nodes in this mode fetch each other's documents; to verify one, the key's
actor document is fetched, which is never refused.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from node.federation import signatures
from node.federation.inbox import target_uri
from node.federation.negotiation import wants_activity_json
from node.federation.remote_actors import RemoteError, fetch_budget, lookup_key
from node.federation.runtime import Node
from node.storage.db import utcnow

log = logging.getLogger("hambastegi.authorized_fetch")

Handler = Callable[[Request], Awaitable[Response]]
# A response that depends on who asked must not be stored by shared caches.
PRIVATE = "private, max-age=0"


def _refused(status: int, reason: str, detail: str) -> Response:
    log.info("signed GET refused", extra={"reason": reason, "status": status})
    headers = {"Vary": "Accept, Signature, Signature-Input", "Cache-Control": PRIVATE}
    if status == 401:
        headers["WWW-Authenticate"] = 'Signature realm="hambastegi"'
    return JSONResponse({"error": detail, "reason": reason}, status_code=status,
                        headers=headers)


async def check_signed_get(node: Node, request: Request) -> Response | None:
    """None when the request is a valid signed GET from a permitted peer; else
    the refusal to send. At most ``FETCHES_PER_REQUEST`` fetches (the key)."""
    found = await signed_requester(node, request)
    return found if isinstance(found, Response) else None


async def signed_requester(node: Node, request: Request) -> str | Response:
    """The id of the actor whose key signed this GET (verified, from a permitted
    peer), else the refusal to send: for documents served to their addressees
    only (web/addressed.py)."""
    try:
        parsed = signatures.parse_request_signature(
            method=request.method, target_uri=target_uri(node, request),
            headers=request.headers, now=utcnow(), require_digest=False)
    except signatures.SignatureError as exc:
        return _refused(401, exc.reason, "this document needs a signed request")
    if parsed.scheme == "cavage" and request.headers.get("host", "").lower() \
            != node.settings.host.lower():
        return _refused(401, "target_mismatch", "signed for another host")
    # The middleware read the change counter for this GET already (core/middleware.py).
    await node.peer_policy.refresh(node.db)
    policy = node.peer_policy
    refused = policy.refusal_uri(parsed.key_id)
    if refused is not None:  # before any fetch: a blocked domain costs us nothing
        return _refused(403, refused, "this node does not federate with that domain")
    try:
        with fetch_budget():
            actor, key = await lookup_key(node, parsed.key_id)
            try:
                signatures.verify_signature(parsed, key)
            except signatures.SignatureError:
                # Perhaps a rotated key under the same id (as the inbox does).
                actor, key = await lookup_key(node, parsed.key_id, refresh=True)
                signatures.verify_signature(parsed, key)
    except RemoteError as exc:
        return _refused(401, exc.reason, "cannot get the signing key")
    except signatures.SignatureError as exc:
        return _refused(401, exc.reason, "signature does not verify")
    refused = policy.refusal_uri(actor.uri)
    if refused is not None:
        return _refused(403, refused, "this node does not federate with that domain")
    return actor.uri


def signed_only(handler: Handler, *, json_only: bool = False) -> Handler:
    """``handler`` behind authorized fetch when the node runs in that mode.
    ``json_only``: the URL also serves HTML (an object's page), which stays
    public; only its ActivityPub representation is guarded."""

    async def guarded(request: Request) -> Response:
        node: Node = request.app.state.node
        if not node.settings.authorized_fetch:
            return await handler(request)
        if json_only and not wants_activity_json(request):
            return await handler(request)
        refusal = await check_signed_get(node, request)
        if refusal is not None:
            return refusal
        response = await handler(request)
        response.headers["Cache-Control"] = PRIVATE
        response.headers["Vary"] = "Accept, Signature, Signature-Input"
        return response

    return guarded
