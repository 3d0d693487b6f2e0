"""Walking a remote actor's outbox, newest first, within bounds (peer sync,
FEDERATION.md "Peer sync"; the store and the schedule are in outbox_sync.py).

Network only, no database writes: the caller stores what the walk found in a
transaction of its own afterwards (no fetch inside a write transaction,
docs/ARCHITECTURE.md §1).

What an outbox may make us do is bounded, whatever it contains:
- pages: at most ``Bounds.max_pages``, each URL at most once (a circular
  ``next`` ends the walk), every page on the actor's origin (a page elsewhere is
  refused: another origin cannot speak for the actor);
- bytes: each GET is the guarded client's (1 MiB, its timeouts, no private
  addresses), and items per page are capped;
- time: one deadline for the whole walk; what was found before it is kept;
- items: at most ``max_items`` walked, none older than ``max_age``, at most
  ``max_fetches`` objects fetched by id;
- trust: an activity counts only when its ``actor`` is the actor, an object
  only when it is on the actor's origin and attributed to the actor
  (``remote_posts.vouched_id``); objects given by id are fetched from their
  own origin (which must be the actor's). Everything else is skipped and counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from node.core.jsonsafe import as_id, as_list
from node.federation import remote_posts
from node.federation.fetch import FetchError
from node.federation.remote_actors import RemoteError, get_actor, metered_signer, same_origin
from node.federation.runtime import Node
from node.storage.db import utcnow

log = logging.getLogger("hambastegi.sync")

Stop = Literal["end", "known", "unchanged", "count", "age", "pages", "circular", "deadline",
               "foreign_page", "page_failed"]
# Stops that mean the walk saw everything it was meant to see.
COMPLETE: frozenset[str] = frozenset({"end", "known", "unchanged", "count", "age", "pages"})
MAX_ITEMS_PER_PAGE = 200
KnownIds = Callable[[list[str]], Awaitable[set[str]]]


@dataclass(frozen=True)
class Bounds:
    max_items: int = 200
    max_age: timedelta = timedelta(days=90)
    max_pages: int = 20
    deadline: float = 60.0  # seconds, the whole walk
    max_fetches: int = 40  # objects and activities given only by id


@dataclass(frozen=True)
class Found:
    """One change the actor vouched for: a post to keep, or a deletion."""

    kind: Literal["post", "tombstone"]
    object_id: str
    obj: dict[str, Any] | None = None


@dataclass
class Walk:
    actor_uri: str
    found: list[Found] = field(default_factory=list)  # newest first
    first_item_id: str | None = None
    first_page: str | None = None
    stopped: Stop = "end"
    pages: int = 0
    items: int = 0
    fetches: int = 0
    refused: int = 0

    @property
    def complete(self) -> bool:
        return self.stopped in COMPLETE


class WalkFailed(Exception):
    """The walk could not start (no actor, no outbox, the first page failed)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Done(Exception):
    def __init__(self, stop: Stop) -> None:
        self.stop = stop


async def _get(node: Node, url: str, actor_uri: str) -> dict[str, Any]:
    """A signed GET of a document on the actor's origin (its id there too)."""
    if not same_origin(url, actor_uri):
        raise FetchError("foreign_origin", "not on the actor's origin")
    fetched = await node.client.fetch_activity(url, signer=metered_signer(node))
    # fetch_activity vouches that the id is on the origin that answered; the
    # answer must also come from the actor's origin (a redirect cannot move it).
    if not same_origin(fetched.url, actor_uri) or not same_origin(
            str(fetched.data.get("id")), actor_uri):
        raise FetchError("foreign_origin", "answered from another origin")
    return fetched.data


class _Walker:
    def __init__(self, node: Node, walk: Walk, bounds: Bounds, stop_at: str | None,
                 known: KnownIds | None) -> None:
        self.node = node
        self.walk = walk
        self.bounds = bounds
        self.stop_at = stop_at
        self.known = known
        self.oldest = utcnow() - bounds.max_age
        self.visited: set[str] = set()

    async def fetch_item(self, url: str) -> dict[str, Any] | None:
        """An activity or object given by id: fetched from its origin, counted."""
        if self.walk.fetches >= self.bounds.max_fetches:
            self.walk.refused += 1
            return None
        self.walk.fetches += 1
        try:
            return await _get(self.node, url, self.walk.actor_uri)
        except FetchError:
            self.walk.refused += 1
            return None

    async def page(self, url: str) -> None:
        """Walk the page at ``url`` and those after it."""
        while True:
            if url in self.visited:
                raise _Done("circular")
            if self.walk.pages >= self.bounds.max_pages:
                raise _Done("pages")
            if not same_origin(url, self.walk.actor_uri):
                raise _Done("foreign_page")
            self.visited.add(url)
            try:
                doc = await _get(self.node, url, self.walk.actor_uri)
            except FetchError as exc:
                if self.walk.pages == 0:
                    raise WalkFailed(exc.reason) from exc
                raise _Done("page_failed") from exc
            if self.walk.pages == 0:
                self.walk.first_page = url
            self.walk.pages += 1
            await self.items(doc)
            following = as_id(doc.get("next"))
            if following is None:
                raise _Done("end")
            url = following

    async def items(self, page: dict[str, Any]) -> None:
        raw = page.get("orderedItems", page.get("items"))
        items = as_list(raw)[:MAX_ITEMS_PER_PAGE]
        # Catch-up stops at a Create of something already stored: one query a page.
        created = [i for i in (as_id(item.get("object")) for item in items
                               if isinstance(item, dict) and item.get("type") == "Create") if i]
        known = await self.known(created) if self.known is not None and created else set()
        for item in items:
            await self.item(item, known)

    async def item(self, item: Any, known: set[str]) -> None:
        walk = self.walk
        if walk.items >= self.bounds.max_items:
            raise _Done("count")
        walk.items += 1
        item_id = as_id(item)
        if walk.first_item_id is None:
            walk.first_item_id = item_id
        if self.stop_at is not None and item_id == self.stop_at:
            raise _Done("known")
        if isinstance(item, str):
            item = await self.fetch_item(item) if item_id else None
        if not isinstance(item, dict):
            return
        if as_id(item.get("actor")) != walk.actor_uri or not same_origin(
                item_id or "", walk.actor_uri):
            walk.refused += 1  # another actor's activity in this outbox: not its to vouch
            return
        kind = item.get("type")
        obj = item.get("object")
        if kind == "Delete":
            object_id = as_id(obj)
            if object_id is not None and same_origin(object_id, walk.actor_uri):
                walk.found.append(Found("tombstone", object_id))
            return
        if kind not in ("Create", "Update"):
            return  # Announces, Likes …: not the actor's own posts
        if isinstance(obj, str):
            obj = await self.fetch_item(obj) if as_id(obj) else None
        if not isinstance(obj, dict):
            return
        object_id = as_id(obj)
        if object_id is None or not same_origin(object_id, walk.actor_uri):
            walk.refused += 1
            return
        if obj.get("type") == "Tombstone":
            walk.found.append(Found("tombstone", object_id))
            return
        if kind == "Create" and object_id in known:
            raise _Done("known")
        published = remote_posts.published_at(obj)
        if kind == "Create" and published is not None and published < self.oldest:
            raise _Done("age")
        if remote_posts.vouched_id(obj, walk.actor_uri) is None:
            walk.refused += 1
            return
        if remote_posts.is_post(obj):
            walk.found.append(Found("post", object_id, obj))

    async def run(self, outbox: str, first_page: str | None) -> None:
        if first_page is not None:
            try:
                await self.page(first_page)
                return
            except WalkFailed:
                # The remembered first page moved (or failed): start from the outbox.
                self.walk.first_page = None
                self.visited.clear()
        await self.collection(outbox)

    async def collection(self, outbox: str) -> None:
        if not same_origin(outbox, self.walk.actor_uri):
            raise WalkFailed("foreign_outbox")
        self.visited.add(outbox)
        try:
            doc = await _get(self.node, outbox, self.walk.actor_uri)
        except FetchError as exc:
            raise WalkFailed(exc.reason) from exc
        first = doc.get("first")
        if "orderedItems" in doc or "items" in doc:
            # Items inline in the collection itself: it is the first page.
            self.walk.first_page = outbox
            self.walk.pages += 1
            await self.items(doc)
            next_page = as_id(doc.get("next"))
            if next_page is None:
                raise _Done("end")
            await self.page(next_page)
        elif isinstance(first, dict) and as_id(first) is not None \
                and same_origin(as_id(first) or "", self.walk.actor_uri):
            # An embedded first page (Mastodon embeds none; others do).
            self.walk.first_page = as_id(first)
            self.walk.pages += 1
            await self.items(first)
            next_page = as_id(first.get("next"))
            if next_page is None:
                raise _Done("end")
            await self.page(next_page)
        else:
            first_url = as_id(first)
            if first_url is None:
                raise _Done("end")  # an empty outbox
            await self.page(first_url)


async def walk_outbox(node: Node, actor_uri: str, *, bounds: Bounds | None = None,
                      stop_at: str | None = None, first_page: str | None = None,
                      known: KnownIds | None = None) -> Walk:
    """Walk ``actor_uri``'s outbox newest first. ``stop_at``: the first item
    of the last walk (its page still starts there: nothing new); ``known``:
    which Create'd objects are stored (the walk stops at the first). Raises
    WalkFailed when nothing could be walked; otherwise returns what was found
    and why it stopped (a deadline keeps what came before it)."""
    bounds = bounds or Bounds()
    walk = Walk(actor_uri)
    try:
        actor = await get_actor(node, actor_uri)
        if "outbox" not in actor.raw:  # cached before the outbox was kept
            actor = await get_actor(node, actor_uri, refresh=True)
    except RemoteError as exc:
        raise WalkFailed(exc.reason) from exc
    outbox = actor.raw.get("outbox")
    if not isinstance(outbox, str):
        raise WalkFailed("no_outbox")
    walker = _Walker(node, walk, bounds, stop_at, known)
    try:
        async with asyncio.timeout(bounds.deadline):
            await walker.run(outbox, first_page)
    except _Done as done:
        walk.stopped = done.stop
    except TimeoutError:
        walk.stopped = "deadline"
    if walk.stopped == "known" and walk.pages == 1 and not walk.found \
            and walk.first_item_id == stop_at:
        walk.stopped = "unchanged"
    log.info("outbox walked", extra={"pages": walk.pages, "items": walk.items,
                                     "found": len(walk.found), "refused": walk.refused,
                                     "stopped": walk.stopped})
    return walk
