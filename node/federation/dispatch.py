"""What the inbox does with an activity, as a value handed down from above.

The federation layer knows how to receive, verify, store and retry; what an
activity *means* (a follow, a co-signature, a join) is partly decided by
higher layers (node/calls). They do not register themselves here: the
composition root (node/inbound.py) builds one ``Inbound`` — the handler
table and the per-object-type content checks — and gives it to the ``Node``.
Imports keep pointing down.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from node.storage.models import InboxItem

if TYPE_CHECKING:  # the Node is only a type here: runtime imports this module
    from node.federation.runtime import Node

Handler = Callable[["Node", InboxItem], Awaitable[None]]
# (activity type, object type); None as the object type: any object.
HandlerKey = tuple[str, str | None]
ContentCheck = Callable[[dict[str, Any]], None]
# What peer sync hands up after storing posts it had not stored before: the
# actor whose outbox was walked, its new posts (as the actor vouched for them,
# oldest first) and the walk's kind ("sync": a catch-up, "backfill": history).
# Called after the store's commit, never inside a transaction (outbox_sync.py).
SyncedPosts = Callable[["Node", str, list[dict[str, Any]], str], Awaitable[None]]

# The namespace of the ids our handlers derive from an inbox item.
_EMISSIONS = uuid.UUID("0e5c8a52-2b7e-4f0c-9a4e-6f1d3c2b9a10")


class ContentError(ValueError):
    """An object we would keep does not make sense; ``reason`` is a short code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def object_type(activity: Mapping[str, Any]) -> str | None:
    """The type of the activity's object when it is embedded, else None."""
    obj = activity.get("object")
    if isinstance(obj, dict):
        kind = obj.get("type")
        return kind if isinstance(kind, str) else None
    return None


@dataclass(frozen=True, slots=True)
class Inbound:
    """The handler table and the content checks of inbound activities.

    Which handlers run for an item: the ``(type, None)`` entry runs for every
    object; a ``(type, object type)`` entry runs as well when the object is
    embedded with that type; an object given only by its id (its type unknown)
    runs every entry of the activity type — each handler acts only on what it
    recognises as addressed to it.
    """

    handlers: Mapping[HandlerKey, Handler] = field(default_factory=dict)
    content_checks: Mapping[str, ContentCheck] = field(default_factory=dict)
    # Posts learnt by peer sync rather than by the inbox (a catch-up after
    # downtime): a network relays its members' like those delivered to it.
    synced: SyncedPosts | None = None

    def handlers_for(self, activity_type: str, body: Mapping[str, Any]) -> list[Handler]:
        inner = object_type(body)
        return [handler for (kind, on), handler in self.handlers.items()
                if kind == activity_type and (on is None or inner is None or on == inner)]

    def check_content(self, activity: Mapping[str, Any], activity_type: str) -> None:
        """Objects that Create or Update would make us keep must pass their
        type's check; raises ``ContentError``."""
        if activity_type not in ("Create", "Update"):
            return
        obj = activity.get("object")
        check = self.content_checks.get(object_type(activity) or "")
        if check is not None and isinstance(obj, dict):
            check(obj)


def emission_uuid(item: InboxItem, purpose: str) -> str:
    """The uuid of an activity a handler sends because of ``item``.

    Derived from the item, not random: a retried item (a crash or error after
    the handler already sent something) re-uses the ids it sent the first
    time, and ``publishing.record_activity`` then finds the activity already
    recorded instead of sending a second one with a fresh id.
    """
    return derived_uuid(item.activity_id, purpose)


def derived_uuid(cause: str, purpose: str) -> str:
    """The uuid of an activity sent because of ``cause`` (an activity or object
    id): the same cause and purpose give the same id, whichever path (inbox or
    peer sync) got there first, and ``Activity.uuid`` is unique."""
    return uuid.uuid5(_EMISSIONS, f"{cause}\n{purpose}").hex
