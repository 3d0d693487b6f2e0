"""ActivityStreams documents the node publishes: actors, posts, activities, collections.

Field choices follow what Mastodon reads (INTEROP.md): embedded Image icons,
``attachment`` as an array of PropertyValue, ``publicKey`` with
``owner == id``, and FEP-521a Multikeys in ``assertionMethod``.
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any
from urllib.parse import quote

from node.core.urls import INSTANCE_USERNAME, Urls
from node.media.uploads import media_type_for
from node.storage.models import LocalActor, LocalObject

AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
SECURITY_CONTEXT = "https://w3id.org/security/v1"
MULTIKEY_CONTEXT = "https://w3id.org/security/multikey/v1"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
# The public collection as peers write it: compacted forms are valid JSON-LD
# (ActivityStreams 2.0 §5.6 "Public Addressing").
PUBLIC_NAMES = frozenset({PUBLIC, "as:Public", "Public"})
AS_MEDIA_TYPE = "application/activity+json"
LD_MEDIA_TYPE = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'


def is_public_name(value: Any) -> bool:
    return isinstance(value, str) and value in PUBLIC_NAMES


def addressed_to_public(doc: dict[str, Any]) -> bool:
    """``as:Public`` in ``to`` or ``cc`` (a bare string or a list), in any spelling."""
    for key in ("to", "cc"):
        value = doc.get(key)
        values = value[:100] if isinstance(value, list) else [value]
        if any(is_public_name(v) for v in values):
            return True
    return False

# Extension terms we use beyond ActivityStreams, defined so JSON-LD processors
# expand them to the IRIs Mastodon and schema.org readers expect.
EXTENSION_TERMS: dict[str, Any] = {
    "toot": "http://joinmastodon.org/ns#",
    "schema": "http://schema.org#",
    "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
    "sensitive": "as:sensitive",
    "discoverable": "toot:discoverable",
    "indexable": "toot:indexable",
    "featured": {"@id": "toot:featured", "@type": "@id"},
    "PropertyValue": "schema:PropertyValue",
    "value": "schema:value",
    # Not in the ActivityStreams context; Mastodon defines it the same way.
    "Hashtag": "as:Hashtag",
    # News items (node/news/items.py, FEDERATION.md "News items").
    "hb": "https://hambastegi.org/ns#",
    "country": "hb:country",
    "sectors": "hb:sector",
    "sources": {"@id": "hb:source", "@type": "@id"},
    # A network actor's members collection (node/networks/, FEDERATION.md "Networks").
    "members": {"@id": "hb:members", "@type": "@id"},
    # Campaigns (node/campaigns/render.py, FEDERATION.md "Campaigns").
    "campaignStatus": "hb:campaignStatus",
    "consent": "hb:consent",
    "detention": "hb:detention",
    "arrested": {"@id": "hb:arrested", "@type": "http://www.w3.org/2001/XMLSchema#date"},
    "released": {"@id": "hb:released", "@type": "http://www.w3.org/2001/XMLSchema#date"},
    "personName": {"@id": "hb:personName", "@container": "@language"},
    "trade": {"@id": "hb:trade", "@container": "@language"},
    "workplace": {"@id": "hb:workplace", "@container": "@language"},
    "organisation": {"@id": "hb:organisation", "@container": "@language"},
    "city": {"@id": "hb:city", "@container": "@language"},
    "arrestPlace": {"@id": "hb:arrestPlace", "@container": "@language"},
    "charges": {"@id": "hb:charges", "@container": "@language"},
    "court": {"@id": "hb:court", "@container": "@language"},
    "sentence": {"@id": "hb:sentence", "@container": "@language"},
    "prison": {"@id": "hb:prison", "@container": "@language"},
    "health": {"@id": "hb:health", "@container": "@language"},
    "petition": {"@id": "hb:petition", "@type": "@id"},
    "writeTo": "hb:writeTo",
}

CONTEXT: list[Any] = [AS_CONTEXT, SECURITY_CONTEXT, MULTIKEY_CONTEXT, EXTENSION_TERMS]


def iso(dt: datetime) -> str:
    """xsd:dateTime in UTC with a Z, second precision (what every reader parses)."""
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _first(mapping: dict[str, str], language: str) -> str | None:
    if language in mapping:
        return mapping[language]
    return next(iter(mapping.values()), None)


def _ordered_map(mapping: dict[str, str], language: str) -> dict[str, str]:
    """The object's own language first: Mastodon reads the first key only."""
    ordered = {language: mapping[language]} if language in mapping else {}
    ordered.update((k, v) for k, v in mapping.items() if k != language)
    return ordered


def property_value(name: str, url: str) -> dict[str, str]:
    safe = html.escape(url, quote=True)
    shown = html.escape(url.split("://", 1)[-1])
    return {
        "type": "PropertyValue",
        "name": name,
        "value": f'<a href="{safe}" rel="me nofollow noopener noreferrer" '
        f'target="_blank">{shown}</a>',
    }


def actor_document(actor: LocalActor, urls: Urls) -> dict[str, Any]:
    username = actor.username
    actor_id = urls.actor(username)
    doc: dict[str, Any] = {
        "@context": CONTEXT,
        "id": actor_id,
        "type": actor.actor_type,
        "preferredUsername": username,
        "name": actor.display_name,
        "url": actor_id,
        "inbox": urls.inbox(username),
        "outbox": urls.outbox(username),
        "followers": urls.followers(username),
        "following": urls.following(username),
        "endpoints": {"sharedInbox": urls.shared_inbox},
        "publicKey": {
            "id": urls.key_id(username),
            "owner": actor_id,
            "publicKeyPem": actor.rsa_public_pem,
        },
        "assertionMethod": [
            {
                "id": urls.ed25519_key_id(username),
                "type": "Multikey",
                "controller": actor_id,
                "publicKeyMultibase": actor.ed25519_public_multibase,
            }
        ],
        "manuallyApprovesFollowers": actor.manually_approves_followers,
        "discoverable": actor.discoverable,
        "indexable": actor.indexable,
        "published": iso(actor.created_at),
    }
    if actor.names:
        doc["nameMap"] = _ordered_map(actor.names, actor.language)
    summary = _first(actor.summaries, actor.language)
    if summary:
        doc["summary"] = summary
        doc["summaryMap"] = _ordered_map(actor.summaries, actor.language)
    if username != INSTANCE_USERNAME:
        doc["featured"] = urls.featured(username)
        icon = actor.icon_path or f"avatars/{username}.png"
        image = actor.image_path or f"headers/{username}.png"
        # The type of the file we wrote (an uploaded avatar may be a JPEG).
        doc["icon"] = {"type": "Image", "mediaType": media_type_for(icon),
                       "url": urls.media(icon)}
        doc["image"] = {"type": "Image", "mediaType": media_type_for(image),
                        "url": urls.media(image)}
        doc["attachment"] = [property_value(link["name"], link["url"]) for link in actor.links]
    return doc


def audience(urls: Urls, actor: LocalActor) -> tuple[list[str], list[str]]:
    """Public in ``to`` → Mastodon shows it as public (INTEROP.md, visibility)."""
    return [PUBLIC], [urls.followers(actor.username)]


def tag_url(urls: Urls, tag: str) -> str:
    """Where a hashtag links: this node's page of its posts with that tag."""
    return f"{urls.base}/tags/{quote(tag.lower(), safe='')}"


def mentioned_actors(obj: LocalObject) -> list[str]:
    tags = obj.extra.get("tag")
    return [t["href"] for t in tags if isinstance(t, dict) and t.get("type") == "Mention"
            and isinstance(t.get("href"), str)] if isinstance(tags, list) else []


def object_document(
    obj: LocalObject, actor: LocalActor, urls: Urls, *, with_context: bool = True
) -> dict[str, Any]:
    if obj.deleted_at is not None:
        return tombstone(obj, urls, with_context=with_context)
    object_id = urls.object(obj.uuid)
    to, cc = audience(urls, actor)
    cc = cc + [uri for uri in mentioned_actors(obj) if uri not in cc]
    doc: dict[str, Any] = {}
    if with_context:
        doc["@context"] = CONTEXT
    doc.update(
        {
            "id": object_id,
            "type": obj.object_type,
            "attributedTo": urls.actor(actor.username),
            "published": iso(obj.published),
            "url": object_id,
            "to": to,
            "cc": cc,
            "sensitive": False,
        }
    )
    if obj.updated is not None:
        doc["updated"] = iso(obj.updated)
    if obj.names:
        doc["name"] = _first(obj.names, obj.language)
        doc["nameMap"] = _ordered_map(obj.names, obj.language)
    if obj.summaries:
        doc["summary"] = _first(obj.summaries, obj.language)
        doc["summaryMap"] = _ordered_map(obj.summaries, obj.language)
    if obj.contents:
        doc["content"] = _first(obj.contents, obj.language)
        doc["contentMap"] = _ordered_map(obj.contents, obj.language)
    if obj.in_reply_to:
        doc["inReplyTo"] = obj.in_reply_to
    doc.update(obj.extra)
    return doc


def tombstone(obj: LocalObject, urls: Urls, *, with_context: bool = True) -> dict[str, Any]:
    doc: dict[str, Any] = {"@context": CONTEXT} if with_context else {}
    doc.update({"id": urls.object(obj.uuid), "type": "Tombstone", "formerType": obj.object_type})
    if obj.deleted_at is not None:
        doc["deleted"] = iso(obj.deleted_at)
    return doc


def activity_document(
    *,
    activity_id: str,
    activity_type: str,
    actor_id: str,
    obj: Any,
    to: list[str],
    cc: list[str] | None = None,
    published: datetime | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "@context": CONTEXT,
        "id": activity_id,
        "type": activity_type,
        "actor": actor_id,
        "object": obj,
        "to": to,
    }
    if cc:
        doc["cc"] = cc
    if published is not None:
        doc["published"] = iso(published)
    if extra:
        doc.update(extra)
    return doc


def _present(**links: str | None) -> dict[str, str]:
    """Only the links that exist: an absent ``first``/``next`` is left out, not null."""
    return {name: value for name, value in links.items() if value is not None}


def ordered_collection(
    collection_id: str, total: int, *, first: str | None, last: str | None = None
) -> dict[str, Any]:
    return {"@context": AS_CONTEXT, "id": collection_id, "type": "OrderedCollection",
            "totalItems": total, **_present(first=first, last=last)}


def ordered_collection_page(
    page_id: str,
    collection_id: str,
    items: list[Any],
    *,
    next_page: str | None,
    prev_page: str | None,
    total: int,
) -> dict[str, Any]:
    return {"@context": CONTEXT, "id": page_id, "type": "OrderedCollectionPage",
            "partOf": collection_id, "totalItems": total, "orderedItems": items,
            **_present(next=next_page, prev=prev_page)}
