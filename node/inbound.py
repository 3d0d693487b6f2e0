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
from node.networks import handlers as networks
from node.networks import members_only, relay
from node.storage.models import InboxItem


def check_event(obj: dict[str, Any]) -> None:
    try:
        check_remote_event(obj)
    except EventError as exc:
        raise ContentError("bad_event", str(exc)) from exc


def each(*handlers: Handler) -> Handler:
    """Several handlers for one key, run in order (each idempotent: a retry of
    the item runs them all again, docs/ARCHITECTURE.md §3)."""

    async def run(node: Node, item: InboxItem) -> None:
        for handler in handlers:
            await handler(node, item)

    # Named after what it runs, for readers of logs and tests: "processing.on_create
    # + relay.on_create".
    run.__name__ = " + ".join(f"{h.__module__.rsplit('.', 1)[-1]}.{h.__name__}"
                              for h in handlers)
    return run


HANDLERS: dict[HandlerKey, Handler] = {
    # follows of our groups, and answers to our follows
    ("Follow", None): processing.on_follow,
    ("Accept", "Follow"): processing.on_accept_follow,
    ("Reject", "Follow"): processing.on_reject_follow,
    ("Undo", None): processing.on_undo,  # Undo of a Follow, Like or Announce
    # what remote actors publish
    # replies to our posts; a network relays its members' posts (node/networks/relay.py)
    # posts addressed to a network's members only (network_only campaigns) are kept
    ("Create", None): each(processing.on_create, relay.on_create, members_only.on_create),
    # actor profiles and keys, stored replies; members' edits relayed
    ("Update", None): each(processing.on_update, relay.on_update, members_only.on_update),
    ("Delete", None): each(processing.on_delete, relay.on_delete),
    ("Like", None): processing.on_like,
    ("Announce", None): processing.on_announce,
    # co-signing (node/calls/cosign.py): author side
    # each handler acts only on its own invitations: co-signing a call, co-owning a campaign
    ("Accept", "Invite"): each(cosign.on_accept_invite, coowners.on_accept_invite),
    ("Reject", "Invite"): each(cosign.on_reject_invite, coowners.on_reject_invite),
    # a co-signer withdraws, a co-owner leaves
    ("Undo", "Accept"): each(cosign.on_undo_accept, coowners.on_undo_accept),
    # co-signing: invited side
    ("Invite", None): cosign.on_invite,
    ("Update", "Event"): cosign.on_update_cosigned,
    # a call author's status Note, or a co-owner's campaign update (node/campaigns)
    ("Create", "Note"): each(cosign.on_create_status_note, coowners.on_create_update),
    # joining meetings (node/calls/participation.py)
    ("Join", None): participation.on_join,
    ("Leave", None): participation.on_leave,
    # networks (node/networks/handlers.py): a Join or Leave whose object is a
    # network actor (given by id, so the untyped entries above run too and
    # ignore it); the network's answers and removals on the member's side
    ("Join", "Group"): networks.on_join,
    ("Leave", "Group"): networks.on_leave,
    ("Accept", "Join"): networks.on_accept_join,
    ("Reject", "Join"): networks.on_reject_join,
    # a network removes our group; a campaign's owner removes our group as co-owner
    ("Remove", None): each(networks.on_remove, coowners.on_removed),
}

# Objects that Create/Update would make us keep, checked before the 202.
CONTENT_CHECKS: dict[str, ContentCheck] = {
    "Event": check_event,
}

# Posts peer sync learns after downtime: a network relays its members' too
# (node/networks/relay.py on_synced; federation/outbox_sync.py hands them up).
INBOUND = Inbound(handlers=HANDLERS, content_checks=CONTENT_CHECKS, synced=relay.on_synced)
