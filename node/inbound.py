"""What inbound activities mean: the one handler table, in one place.

Read it as "activity type [+ object type] → handler". The ``(type, None)``
entry runs for every object of that type; a typed entry runs as well when
the object is embedded with that type; an object given only by its id runs
every entry of its activity type (each handler acts only on what it
recognises). The table and the content checks are handed to the federation
layer as a value (``Node(inbound=INBOUND)``), so imports keep pointing down:
this module sits above node/calls, next to the app and the CLI that use it.
"""

from __future__ import annotations

from typing import Any

from node.calls import cosign, participation
from node.calls.events import EventError, check_remote_event
from node.campaigns import coowners
from node.federation import processing
from node.federation.dispatch import ContentCheck, ContentError, Handler, HandlerKey, Inbound
from node.federation.runtime import Node
from node.storage.models import InboxItem


def check_event(obj: dict[str, Any]) -> None:
    try:
        check_remote_event(obj)
    except EventError as exc:
        raise ContentError("bad_event", str(exc)) from exc


async def on_accept_invite(node: Node, item: InboxItem) -> None:
    """An Accept of our Invite: to co-sign a call or to co-own a campaign (each
    handler acts only on its own invitations)."""
    await cosign.on_accept_invite(node, item)
    await coowners.on_accept_invite(node, item)


async def on_reject_invite(node: Node, item: InboxItem) -> None:
    await cosign.on_reject_invite(node, item)
    await coowners.on_reject_invite(node, item)


async def on_create_note(node: Node, item: InboxItem) -> None:
    """A Note: a call author's status Note, or a co-owner's campaign update."""
    await cosign.on_create_status_note(node, item)
    await coowners.on_create_update(node, item)


HANDLERS: dict[HandlerKey, Handler] = {
    # follows of our groups, and answers to our follows
    ("Follow", None): processing.on_follow,
    ("Accept", "Follow"): processing.on_accept_follow,
    ("Reject", "Follow"): processing.on_reject_follow,
    ("Undo", None): processing.on_undo,  # Undo of a Follow, Like or Announce
    # what remote actors publish
    ("Create", None): processing.on_create,  # replies to our posts
    ("Update", None): processing.on_update,  # actor profiles and keys, stored replies
    ("Delete", None): processing.on_delete,
    ("Like", None): processing.on_like,
    ("Announce", None): processing.on_announce,
    # co-signing (node/calls/cosign.py): author side
    ("Accept", "Invite"): on_accept_invite,  # and co-owning campaigns (node/campaigns)
    ("Reject", "Invite"): on_reject_invite,
    ("Undo", "Accept"): cosign.on_undo_accept,
    # co-signing: invited side
    ("Invite", None): cosign.on_invite,
    ("Update", "Event"): cosign.on_update_cosigned,
    ("Create", "Note"): on_create_note,
    # joining meetings (node/calls/participation.py)
    ("Join", None): participation.on_join,
    ("Leave", None): participation.on_leave,
}

# Objects that Create/Update would make us keep, checked before the 202.
CONTENT_CHECKS: dict[str, ContentCheck] = {
    "Event": check_event,
}

INBOUND = Inbound(handlers=HANDLERS, content_checks=CONTENT_CHECKS)
