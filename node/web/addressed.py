"""Objects only their addressee may read: a co-owner's campaign update (FEDERATION.md,
"Campaigns"; node/campaigns/coowners.send_update).

A co-owning group sends the campaign's owner a ``Create{Note}`` addressed to the
owning group alone; the Note's id is ours (``/objects/<uuid>``), so it must
dereference — but only for that owner. The Note is never a ``local_object`` (no
page, outbox, feed, collection or list may show it); it lives in the body of
the stored activity. ``or_addressed`` wraps the object route: when the route
finds no object (404) and an ActivityPub document was asked for, it looks for
such an activity, and serves the Note to a GET signed by an actor of the
addressee's origin (the owner's node signs its fetches with its instance actor,
FEDERATION.md "Authorized fetch"). Everyone else, signed or not, gets the same
404 as for an id that never existed.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlmodel import select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from node.federation.authorized_fetch import PRIVATE, Handler, signed_requester
from node.federation.negotiation import wants_activity_json
from node.federation.remote_actors import same_origin
from node.federation.runtime import Node
from node.federation.vocabulary import AS_MEDIA_TYPE, CONTEXT, is_public_name
from node.storage.models import Activity, LocalObject


def _addressees(node: Node, note: dict[str, Any]) -> list[str] | None:
    """The Note's addressees when it is private to remote actors only, else None."""
    to = note.get("to")
    if not isinstance(to, list) or not to or "cc" in note or "bto" in note:
        return None
    if any(not isinstance(a, str) or is_public_name(a) or node.urls.is_local(a) for a in to):
        return None
    return list(to)


async def addressed_note(node: Node, uuid: str) -> tuple[dict[str, Any], list[str]] | None:
    """The Note with id ``/objects/<uuid>`` we sent to named remote actors only."""
    url = node.urls.object(uuid)
    async with node.db.read() as session:
        if (await session.exec(select(LocalObject.id).where(
                LocalObject.uuid == uuid))).first() is not None:
            return None  # a post (current, deleted or hidden): the object route's answer
        rows = (await session.exec(select(Activity).where(
            Activity.object_uri == url, Activity.activity_type == "Create",
            Activity.in_outbox == False))).all()  # noqa: E712 (SQL comparison)
    for row in rows:
        note = orjson.loads(row.body).get("object")
        if not isinstance(note, dict) or note.get("type") != "Note" or note.get("id") != url:
            continue
        addressees = _addressees(node, note)
        if addressees is not None:
            return note, addressees
    return None


def or_addressed(handler: Handler) -> Handler:
    """``handler``, and where it finds nothing, a Note for its addressee only."""

    async def serve(request: Request) -> Response:
        response = await handler(request)
        if response.status_code != 404 or not wants_activity_json(request):
            return response
        node: Node = request.app.state.node
        found = await addressed_note(node, request.path_params["uuid"])
        if found is None:
            return response
        requester, refusal = await signed_requester(node, request)
        note, addressees = found
        if refusal is not None or requester is None or not any(
                same_origin(requester, addressee) for addressee in addressees):
            return JSONResponse({"error": "not found"}, status_code=404)
        return Response(orjson.dumps({"@context": CONTEXT, **note}),
                        media_type=AS_MEDIA_TYPE,
                        headers={"Cache-Control": PRIVATE,
                                 "Vary": "Accept, Signature, Signature-Input"})

    return serve
