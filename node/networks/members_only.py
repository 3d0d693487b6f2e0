"""Member side of what is addressed to a network's members only: a ``network_only``
campaign (FEDERATION.md "Campaigns"), delivered by a fellow member's node.

Kept as a remote post (``remote_posts.upsert``) when it is addressed to the
``members`` collection of a network this node hosts or one of our groups
belongs to, and its author is a member of that network (the roster,
node/networks/roster.py). Its ``to`` names the collection and never
``as:Public``, so no public surface lists it: they list only remote posts
addressed to the public, and the relay announces only those
(relay.relayable). Updates of a kept post and Deletes go through
``processing`` like any other (its owner alone may change it).
"""

from __future__ import annotations

import logging
from typing import Any

from node.core.jsonsafe import as_id, as_list
from node.federation import remote_posts
from node.federation.runtime import Node
from node.federation.vocabulary import PUBLIC, is_public_name
from node.networks import roster as rosters
from node.storage.models import InboxItem

log = logging.getLogger("hambastegi.networks")


def _addresses(*docs: Any) -> list[str]:
    """The to/cc/audience of the activity and its object (``as:Public`` in any form
    counted as the public)."""
    out: list[str] = []
    for doc in docs:
        if not isinstance(doc, dict):
            continue
        for key in ("to", "cc", "audience"):
            for value in as_list(doc.get(key))[:20]:
                if is_public_name(value):
                    out.append(PUBLIC)
                elif (address := as_id(value)) is not None:
                    out.append(address)
    return list(dict.fromkeys(out))


async def _is_member(node: Node, network_uri: str, actor_uri: str) -> bool:
    known = await rosters.stored(node, network_uri)
    if known is not None and known.has(actor_uri):
        return True
    try:  # a member accepted since we last looked: one fetch, not more often than this
        fresh = await rosters.current(node, network_uri, max_age=rosters.RETRY_AFTER)
    except rosters.RosterError as exc:
        log.info("members-only post: roster not had", extra={"reason": str(exc)[:100]})
        return False
    return fresh.has(actor_uri)


async def keep(node: Node, item: InboxItem) -> None:
    obj = item.body.get("object")
    if not isinstance(obj, dict) or not remote_posts.is_post(obj):
        return
    addresses = _addresses(item.body, obj)
    if PUBLIC in addresses:
        return  # a public post: processing keeps it if we follow its author
    if remote_posts.vouched_id(obj, item.actor_uri) is None:
        return
    for network_uri in await rosters.addressed_networks(node, addresses):
        if await _is_member(node, network_uri, item.actor_uri):
            async with node.db.write() as session:
                await remote_posts.upsert(session, obj, item.actor_uri, source="inbox")
            node.changed()
            return


async def on_create(node: Node, item: InboxItem) -> None:
    await keep(node, item)


async def on_update(node: Node, item: InboxItem) -> None:
    """An Update of a post we missed the Create of is kept too (processing refreshed
    it already if we had it; ``upsert`` leaves tombstones and others' rows alone)."""
    await keep(node, item)
