"""Remote actors: WebFinger resolution, fetching, caching, and key lookup.

Every fetch goes through the guarded client, signed by the instance actor
(servers with authorized fetch require it). Every signed GET — each redirect
hop and each knock counts — is paid for from two budgets: the inbound request
being verified may cause at most ``FETCHES_PER_REQUEST`` (``fetch_budget``),
and each remote host has a token bucket (``Node.fetch_buckets``). Failed key
lookups are remembered briefly (``KeyCache.fail``).

Whose key is it: a key belongs to the actor that lists it *and* that the key
names as its owner — the actor document the key id dereferences to
(``…/actor#main-key``), or, for a standalone key document, its ``owner``.
A cached actor listing a key id that names someone else is never taken for
the key's owner (key-id squatting, docs/ARCHITECTURE.md, security).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import ipaddress
import logging
import re
from collections.abc import Awaitable, Iterator, Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from sqlmodel import col, select

from node.core.cache import BatchedReads
from node.core.jsonsafe import as_id, as_list
from node.federation import keys
from node.federation.fetch import FetchError, Scheme
from node.federation.runtime import Node
from node.storage.db import dialect_insert, utcnow
from node.storage.models import RemoteActor

log = logging.getLogger("hambastegi.remote")

ACTOR_TYPES = frozenset({"Application", "Group", "Organization", "Person", "Service"})
ACTOR_TTL = timedelta(days=1)
HANDLE_RE = re.compile(r"^@?([^@\s/]+)@([^@\s/]+)$")
AS_TYPES = ("application/activity+json", "application/ld+json")
# Signed GETs one inbound request may cause (key document, its owner, one spare).
FETCHES_PER_REQUEST = 3

_budget: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "fetch_budget", default=None)


@contextlib.contextmanager
def fetch_budget(limit: int = FETCHES_PER_REQUEST) -> Iterator[None]:
    """Bound the outbound GETs of what runs inside (one inbound request)."""
    token = _budget.set([limit])
    try:
        yield
    finally:
        _budget.reset(token)


class RemoteError(Exception):
    """A remote actor or key could not be had; ``reason`` is a short code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def origin(uri: str) -> str:
    """scheme://host[:port], lowercased; "" for what does not parse as a URL
    (never the same origin as anything)."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return ""
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_origin(a: str, b: str) -> bool:
    first = origin(a)
    return first != "" and first == origin(b)


def strip_fragment(uri: str) -> str:
    return uri.split("#", 1)[0]


def parse_actor(doc: dict[str, Any]) -> RemoteActor:
    """Turn an actor document into a RemoteActor row, or raise RemoteError."""
    actor_id = as_id(doc.get("id"))
    types = set(as_list(doc.get("type")))
    if actor_id is None or not types & ACTOR_TYPES:
        raise RemoteError("not_an_actor")
    inbox = as_id(doc.get("inbox"))
    if inbox is None:
        raise RemoteError("not_an_actor", "no inbox")
    endpoints = doc.get("endpoints")
    shared = as_id(endpoints.get("sharedInbox")) if isinstance(endpoints, dict) else None
    key_id = key_pem = None
    for key in as_list(doc.get("publicKey")):
        # Only a key the actor itself owns counts (owner == id).
        if isinstance(key, dict) and key.get("owner") == actor_id:
            pem = key.get("publicKeyPem")
            kid = as_id(key.get("id"))
            if isinstance(pem, str) and kid and same_origin(kid, actor_id):
                key_id, key_pem = kid, pem
                break
    assertion: list[dict[str, str]] = []
    for method in as_list(doc.get("assertionMethod")):
        if (
            isinstance(method, dict)
            and method.get("type") == "Multikey"
            and method.get("controller") == actor_id
            and isinstance(method.get("publicKeyMultibase"), str)
            and as_id(method.get("id"))
            and same_origin(method["id"], actor_id)
        ):
            assertion.append({"id": method["id"], "multibase": method["publicKeyMultibase"]})
    username = doc.get("preferredUsername")
    name = doc.get("name")
    return RemoteActor(
        uri=actor_id,
        actor_type=next(iter(sorted(types & ACTOR_TYPES))),
        username=username[:256] if isinstance(username, str) else None,
        domain=urlsplit(actor_id).netloc.lower(),
        display_name=name[:400] if isinstance(name, str) else None,
        inbox=inbox,
        shared_inbox=shared,
        url=as_id(doc.get("url")),
        public_key_id=key_id,
        public_key_pem=key_pem,
        assertion_keys=assertion[:10],
        # outbox: peer sync (outbox_sync.py); followers: FEP-8fcf (followers_sync.py).
        raw={**{k: doc[k] for k in ("id", "type", "preferredUsername", "name") if k in doc},
             **{k: v for k in ("outbox", "followers") if (v := as_id(doc.get(k)))}},
        fetched_at=utcnow(),
    )


ACTOR_COLUMNS = (
    "uri", "actor_type", "username", "domain", "display_name", "inbox", "shared_inbox", "url",
    "public_key_id", "public_key_pem", "assertion_keys", "raw", "fetched_at", "deleted",
)


def actor_values(actor: RemoteActor) -> dict[str, Any]:
    """The columns of a parsed actor, as the upsert takes them (here and in the
    inbox's group commit, inbox_queue.InboxWriter)."""
    return {c: getattr(actor, c) for c in ACTOR_COLUMNS}


async def store_actor(node: Node, actor: RemoteActor) -> RemoteActor:
    """Insert or refresh the cached row (concurrent inbox requests may race here)."""
    values = actor_values(actor)
    node.key_cache.forget_actor(actor.uri)
    insert = dialect_insert(node.db.is_sqlite)
    stmt = insert(RemoteActor).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["uri"], set_={k: v for k, v in values.items() if k != "uri"}
    )
    async with node.db.write() as session:
        await session.exec(stmt)
        stored = (
            await session.exec(select(RemoteActor).where(RemoteActor.uri == actor.uri))
        ).one()
    return stored


def metered_signer(node: Node) -> Any:
    """The instance signer, charging each GET it signs to the budgets: the
    guarded client signs every hop and every knock, so this counts them all.
    The budgets are charged here, on the event loop; the RSA signature is made
    in the node's signing threads (the library releases the GIL), so a burst
    of first contacts does not queue every request behind a millisecond of
    signing per fetch."""
    signer = node.instance_signer

    def sign(method: str, url: str, body: bytes | None,
             scheme: Scheme) -> Awaitable[Mapping[str, str]]:
        budget = _budget.get()
        if budget is not None:
            if budget[0] <= 0:
                raise FetchError("fetch_budget", "this request may cause no more fetches")
            budget[0] -= 1
        if not node.fetch_buckets.take(urlsplit(url).netloc.lower()):
            raise FetchError("host_rate_limited", "too many fetches from this host just now")
        return asyncio.get_running_loop().run_in_executor(
            node.signing_threads, signer, method, url, body, scheme)

    return sign


async def fetch_document(node: Node, uri: str) -> dict[str, Any]:
    try:
        fetched = await node.client.fetch_activity(uri, signer=metered_signer(node))
    except FetchError as exc:
        raise RemoteError("fetch_failed", exc.reason) from exc
    return fetched.data


async def get_actor(node: Node, uri: str, *, refresh: bool = False) -> RemoteActor:
    async with node.db.read() as session:
        cached = (await session.exec(select(RemoteActor).where(RemoteActor.uri == uri))).first()
    if cached is not None and not refresh and cached.fetched_at > utcnow() - ACTOR_TTL:
        return cached
    doc = await fetch_document(node, uri)
    actor = parse_actor(doc)
    if actor.uri != uri:
        raise RemoteError("id_mismatch", "actor document has another id")
    return await store_actor(node, actor)


def names_actor(key_id: str, actor_uri: str) -> bool:
    """Whether the key id itself points at the actor: ``actor#main-key``
    (Mastodon and most others) or a path below it (``actor/main-key``)."""
    return strip_fragment(key_id) == actor_uri or key_id.startswith(actor_uri.rstrip("/") + "/")


async def _stored_owner(node: Node, key_id: str) -> RemoteActor | None:
    """The cached actor that owns the key, or None (fetch it then); concurrent
    lookups share one query (``_stored_owners``)."""
    if node.owner_reads is None:
        node.owner_reads = BatchedReads(lambda key_ids: _stored_owners(node, key_ids))
    owner: RemoteActor | None = await node.owner_reads.get(key_id)
    return owner


async def _stored_owners(node: Node, key_ids: list[str]) -> dict[str, RemoteActor]:
    """Only an actor the key id names may answer for it; any other row listing
    the same key id (an actor can put anything in its own document) is ignored.
    The most specific name wins (…/users/a over …/users when both exist)."""
    documents = {strip_fragment(key_id) for key_id in key_ids}
    async with node.db.read() as session:
        rows = (await session.exec(select(RemoteActor).where(
            col(RemoteActor.uri).in_(documents) | col(RemoteActor.public_key_id).in_(key_ids)
        ))).all()
    by_uri = {row.uri: row for row in rows}
    by_key: dict[str, list[RemoteActor]] = {}
    for row in rows:
        if row.public_key_id is not None:
            by_key.setdefault(row.public_key_id, []).append(row)
    owners: dict[str, RemoteActor] = {}
    for key_id in key_ids:
        document = by_uri.get(strip_fragment(key_id))
        listed = by_key.get(key_id, [])
        named = [row for row in ([document] if document is not None else []) + listed
                 if names_actor(key_id, row.uri)]
        best = max(named, key=lambda row: len(row.uri), default=None)
        if best is not None:
            owners[key_id] = best
    return owners


async def lookup_key(
    node: Node, key_id: str, *, refresh: bool = False
) -> tuple[RemoteActor, keys.PublicKey]:
    """The public key behind a signature's keyId, and the actor owning it.

    The cache is tried first; ``refresh`` refetches the actor once, which is
    how rotation of a key under the same id reaches us (a failed check retries
    with refresh=True). A known actor signing with a key id it does not list
    (rotation to a new key id) is refetched, at most once a minute per actor.
    Failures are remembered for a minute: the same unknown key id costs no
    second fetch. Requests arriving while a key id is being fetched wait for
    that fetch (single-flight): a burst from one new actor costs one GET.

    A freshly fetched actor is not stored here: its ``id`` is None until the
    inbox stores it in the same group commit as the activity it signed
    (``actor_values``, inbox_queue.InboxWriter), so first contact costs no
    write transaction of its own, and a request refused after the lookup
    stores nothing. Its key is cached meanwhile.
    """
    if not refresh:
        cached: tuple[RemoteActor, keys.PublicKey] | None = node.key_cache.get(key_id)
        if cached is not None:
            return cached
        failed = node.key_cache.failure(key_id)
        if failed is not None:
            raise RemoteError(failed, "failed moments ago")
    found: tuple[RemoteActor, keys.PublicKey] = await node.key_fetches.run(
        (key_id, refresh), lambda: _find_key(node, key_id, refresh))
    return found


async def _find_key(node: Node, key_id: str,
                    refresh: bool) -> tuple[RemoteActor, keys.PublicKey]:
    """The stored owner, else a fetch; runs once per key id at a time."""
    if not refresh:
        # Someone may have stored or cached it while this waited to start.
        cached: tuple[RemoteActor, keys.PublicKey] | None = node.key_cache.get(key_id)
        if cached is not None:
            return cached
        actor = await _stored_owner(node, key_id)
        if actor is not None:
            if _lists_key(actor, key_id):
                found = actor, _key_from_actor(actor, key_id)
                node.key_cache.put(key_id, found)
                return found
            if not node.key_cache.may_refetch(actor.uri):
                node.key_cache.fail(key_id, "unknown_key")
                raise RemoteError("unknown_key", "the actor does not list this key")
    try:
        found = await _fetch_key(node, key_id)
    except RemoteError as exc:
        node.key_cache.fail(key_id, exc.reason)
        raise
    node.key_cache.forget_actor(found[0].uri)  # keys of its older document
    node.key_cache.put(key_id, found)
    return found


async def _fetch_key(node: Node, key_id: str) -> tuple[RemoteActor, keys.PublicKey]:
    """The key's owner as its documents say now (not stored: see lookup_key)."""
    doc = await fetch_document(node, strip_fragment(key_id))
    if not set(as_list(doc.get("type"))) & ACTOR_TYPES:
        # A standalone key document: it names its owner, who must list it.
        owner = as_id(doc.get("owner")) or as_id(doc.get("controller"))
        if owner is None or not same_origin(owner, key_id) \
                or as_id(doc) not in (key_id, strip_fragment(key_id)):
            raise RemoteError("bad_key", "key document without a same-origin owner")
        doc = await fetch_document(node, owner)
        parsed = parse_actor(doc)
        if parsed.uri != owner:
            raise RemoteError("bad_key", "the key's owner document has another id")
    else:
        parsed = parse_actor(doc)
        if not same_origin(parsed.uri, key_id):
            raise RemoteError("bad_key", "key and actor on different origins")
    key = _key_from_actor(parsed, key_id)  # the owner must list the key
    return parsed, key


def _lists_key(actor: RemoteActor, key_id: str) -> bool:
    return actor.public_key_id == key_id or any(
        method.get("id") == key_id for method in actor.assertion_keys)


def _key_from_actor(actor: RemoteActor, key_id: str) -> keys.PublicKey:
    try:
        if actor.public_key_id == key_id and actor.public_key_pem:
            return keys.load_public_pem(actor.public_key_pem)
        for method in actor.assertion_keys:
            if method.get("id") == key_id:
                return keys.multibase_to_public(method["multibase"])
    except keys.KeyFormatError as exc:
        raise RemoteError("bad_key", str(exc)) from exc
    raise RemoteError("unknown_key", "the actor does not list this key")


def _scheme_for_host(node: Node, host: str) -> str:
    """https, except loopback/IP hosts in development (HAMBASTEGI_ALLOW_PRIVATE_NETWORKS)."""
    if not node.settings.allow_private_networks:
        return "https"
    name = host.rsplit(":", 1)[0].strip("[]")
    try:
        ipaddress.ip_address(name)
        return "http"
    except ValueError:
        return "http" if name == "localhost" else "https"


def webfinger_url(node: Node, user: str, host: str) -> str:
    """The WebFinger query (RFC 7033) for ``acct:user@host``."""
    query = urlencode({"resource": f"acct:{user}@{host}"})
    return urlunsplit((_scheme_for_host(node, host), host, "/.well-known/webfinger", query, ""))


async def resolve_handle(node: Node, handle_or_url: str) -> RemoteActor:
    """``@user@host``, ``user@host`` or an actor URL → the cached actor."""
    if handle_or_url.startswith(("https://", "http://")):
        return await get_actor(node, handle_or_url)
    match = HANDLE_RE.fullmatch(handle_or_url.strip())
    if match is None:
        raise RemoteError("bad_handle", f"{handle_or_url!r} is not @user@host or a URL")
    user, host = match.groups()
    url = webfinger_url(node, user, host)
    try:
        jrd = await node.client.fetch_jrd(url)
    except FetchError as exc:
        raise RemoteError("webfinger_failed", exc.reason) from exc
    actor_uri = None
    for link in as_list(jrd.get("links")):
        if (
            isinstance(link, dict)
            and link.get("rel") == "self"
            and isinstance(link.get("type"), str)
            and link["type"].split(";")[0].strip() in AS_TYPES
        ):
            actor_uri = as_id(link.get("href"))
            break
    if actor_uri is None:
        raise RemoteError("webfinger_failed", "no ActivityPub self link")
    actor = await get_actor(node, actor_uri)
    # The handle must round-trip: the actor's name@domain is what we asked for.
    if (actor.username or "").lower() != user.lower():
        raise RemoteError("webfinger_failed", "actor's preferredUsername does not match")
    return actor
