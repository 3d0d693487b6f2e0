"""What remote actors publish, as this node keeps it: one store for the inbox
handlers (replies to our posts, posts of actors our groups follow) and the sync
code (backfill and catch-up, ``federation/outbox_sync.py``).

Rules kept here, whoever calls:
- only an object attributed to the actor that brought it, with its id on that
  actor's origin, is stored (``vouched_id``); the origin vouches for nothing
  else (docs/ARCHITECTURE.md §6, FEDERATION.md "Peer sync");
- what is stored is the sanitised subset we show (``clean_object``): HTML
  through the nh3 allowlist, every string and list bounded, so a hostile
  peer cannot make a row (or a page built from rows) large; a campaign
  ``Article`` keeps the few extension terms its list row needs
  (``campaign_terms``: status, consent, country, detention dates, person's
  name), each checked against its shape or dropped;
- a tombstoned row stays a tombstone: a late Create, an old outbox page or a
  backfill never brings back what its author deleted;
- an object is owned by the actor that first stored it: an Update or Delete
  signed by anyone else changes nothing.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any, Literal

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from node.core.jsonsafe import as_id, as_list
from node.core.text import sanitise_html
from node.federation.remote_actors import same_origin
from node.storage.db import dialect_insert, utcnow
from node.storage.models import Following, RemoteObject
from node.storage.states import FollowingState

Source = Literal["inbox", "backfill", "sync"]

# Posts a followed actor publishes that we keep (Create of these; Mastodon,
# Mobilizon, Gancio, Lemmy and our own node publish among them).
POST_TYPES = frozenset({"Note", "Article", "Event", "Page", "Question", "Audio", "Video",
                        "Image", "Document"})
# Plain fields kept as they are (strings bounded), and the HTML ones sanitised.
# ``name`` and ``summary`` stay plain text (escaped where shown), as replies always had.
PLAIN_FIELDS = ("id", "type", "attributedTo", "inReplyTo", "published", "updated", "url",
                "name", "summary", "to", "cc", "startTime", "endTime", "sensitive")
MAX_STRING = 2048
MAX_LIST = 20
MAX_HTML = 65_536
MAX_MAP_ENTRIES = 20
# Campaign terms (schemas/context.jsonld, FEDERATION.md "Campaigns"); the values
# are those of node/campaigns/dossier.py, repeated here because federation sits
# below campaigns (docs/ARCHITECTURE.md §1).
CAMPAIGN_STATUSES = frozenset({"detained", "on_trial", "sentenced", "on_bail", "released",
                               "died_in_custody"})
# ``network_only`` is kept so a list can refuse it even if its sender addressed it wrongly.
CAMPAIGN_CONSENTS = frozenset({"public", "name_withheld", "network_only"})
COUNTRY_RE = re.compile(r"^[A-Za-z]{2}$")
MAX_PERIODS = 20
MAX_PERSON_NAME = 200


def _bounded(value: Any) -> Any:
    """A JSON value cut to size: strings ≤ MAX_STRING, lists ≤ MAX_LIST, objects
    reduced to their id (nested objects are never shown as they are)."""
    if isinstance(value, str):
        return value[:MAX_STRING]
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, list):
        return [_bounded(v) for v in value[:MAX_LIST] if not isinstance(v, list)]
    if isinstance(value, dict):
        return as_id(value)
    return None


def _html(value: Any) -> str | None:
    return sanitise_html(value[:MAX_HTML]) if isinstance(value, str) else None


def clean_object(obj: dict[str, Any]) -> dict[str, Any]:
    """Keep the fields we show: HTML sanitised, everything bounded."""
    kept: dict[str, Any] = {}
    for key in PLAIN_FIELDS:
        if key in obj:
            kept[key] = _bounded(obj[key])
    html = _html(obj.get("content"))
    if html is not None:
        kept["content"] = html
    for key in ("contentMap", "summaryMap", "nameMap"):
        mapping = obj.get(key)
        if isinstance(mapping, dict):
            kept[key] = {
                str(lang)[:16]: (_html(text) if key == "contentMap" else text[:MAX_STRING])
                for lang, text in list(mapping.items())[:MAX_MAP_ENTRIES]
                if isinstance(text, str)
            }
    kept.update(campaign_terms(obj))
    return kept


def _day(value: Any) -> str | None:
    if not isinstance(value, str) or len(value) != 10:
        return None
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        return None


def _page_link(value: Any) -> str | None:
    """The HTML page of an object: ``url`` as a string or the first Link's ``href``."""
    for item in as_list(value)[:MAX_LIST]:
        link = as_id(item.get("href")) if isinstance(item, dict) else as_id(item)
        if link is not None:
            return link[:MAX_STRING]
    return None


def campaign_terms(obj: dict[str, Any]) -> dict[str, Any]:
    """What a campaign list shows of a remote campaign ``Article``, each term
    checked against its shape (a wrong one is dropped, never stored as sent);
    nothing for anything that is not a campaign."""
    status = obj.get("campaignStatus")
    if not isinstance(status, str) or status not in CAMPAIGN_STATUSES:
        return {}
    terms: dict[str, Any] = {"campaignStatus": status}
    if obj.get("consent") in CAMPAIGN_CONSENTS:
        terms["consent"] = obj["consent"]
    country = obj.get("country")
    if isinstance(country, str) and COUNTRY_RE.fullmatch(country):
        terms["country"] = country.upper()
    periods = []
    for period in as_list(obj.get("detention"))[:MAX_PERIODS]:
        arrested = _day(period.get("arrested")) if isinstance(period, dict) else None
        if arrested is None:
            continue
        released = _day(period.get("released"))
        if released is not None and released < arrested:
            released = None
        periods.append({"arrested": arrested, "released": released})
    terms["detention"] = periods
    names = obj.get("personName")
    if isinstance(names, dict):
        terms["personName"] = {str(lang)[:16]: text[:MAX_PERSON_NAME]
                               for lang, text in list(names.items())[:MAX_MAP_ENTRIES]
                               if isinstance(text, str)}
    link = _page_link(obj.get("url"))
    if link is not None:
        terms["url"] = link
    return terms


def attributed_to(obj: dict[str, Any]) -> set[str]:
    return {i for i in (as_id(a) for a in as_list(obj.get("attributedTo"))) if i}


def vouched_id(obj: Any, actor_uri: str, *, author_required: bool = True) -> str | None:
    """The object's id when ``actor_uri`` may vouch for it: the id is on the
    actor's origin and the object names the actor among its authors; else None.
    ``author_required=False`` (replies delivered to our inbox, as before this
    module) also takes an object that names no author at all."""
    if not isinstance(obj, dict):
        return None
    object_id = as_id(obj)
    if object_id is None or not same_origin(object_id, actor_uri):
        return None
    authors = attributed_to(obj)
    if actor_uri in authors or (not author_required and not authors
                                and obj.get("attributedTo") is None):
        return object_id
    return None


def is_post(obj: dict[str, Any]) -> bool:
    return any(t in POST_TYPES for t in as_list(obj.get("type")) if isinstance(t, str))


def object_type(obj: dict[str, Any]) -> str:
    for kind in as_list(obj.get("type")):
        if isinstance(kind, str):
            return kind[:32]
    return "Note"


def published_at(obj: dict[str, Any]) -> datetime | None:
    """``published`` as an aware datetime (None when absent or unparsable)."""
    raw = obj.get("published")
    if not isinstance(raw, str) or len(raw) > 64:
        return None
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


async def follows(session: AsyncSession, actor_uri: str) -> bool:
    """Whether a local actor follows ``actor_uri`` (the follow accepted)."""
    row = (await session.exec(
        select(Following.id).where(col(Following.target_uri) == actor_uri,
                                   col(Following.state) == FollowingState.ACCEPTED).limit(1)
    )).first()
    return row is not None


async def upsert(session: AsyncSession, obj: dict[str, Any], actor_uri: str, *,
                 source: Source, in_reply_to: str | None = None,
                 moderation_state: str = "approved") -> bool:
    """Store or refresh a vouched object (the caller checked ``vouched_id``).
    True when the row is new. Another actor's row and tombstones are left
    alone; the insert is idempotent, so two writers racing store it once."""
    object_id = as_id(obj)
    assert object_id is not None
    data = clean_object(obj)
    values: dict[str, Any] = {
        "uri": object_id, "actor_uri": actor_uri, "object_type": object_type(obj),
        "in_reply_to": in_reply_to, "data": data, "moderation_state": moderation_state,
        "received_at": utcnow(), "deleted": False, "published_at": published_at(obj),
        "source": source,
    }
    insert = dialect_insert(session.get_bind().dialect.name == "sqlite")
    result = await session.exec(
        insert(RemoteObject).values(**values).on_conflict_do_nothing(index_elements=["uri"]))
    if result.rowcount:
        return True
    await session.exec(
        update(RemoteObject)
        .where(col(RemoteObject.uri) == object_id, col(RemoteObject.actor_uri) == actor_uri,
               col(RemoteObject.deleted).is_(False))
        .values(data=data, object_type=values["object_type"])
    )
    return False


async def refresh(session: AsyncSession, obj: dict[str, Any], actor_uri: str) -> bool:
    """An Update of a stored object by its owner: the new text; False if not stored."""
    object_id = as_id(obj)
    result = await session.exec(
        update(RemoteObject)
        .where(col(RemoteObject.uri) == object_id, col(RemoteObject.actor_uri) == actor_uri,
               col(RemoteObject.deleted).is_(False))
        .values(data=clean_object(obj), object_type=object_type(obj))
    )
    return bool(result.rowcount)


async def tombstone(session: AsyncSession, object_id: str, actor_uri: str) -> None:
    """Its author deleted it: keep only a Tombstone (so no later copy revives it)."""
    await session.exec(
        update(RemoteObject)
        .where(col(RemoteObject.uri) == object_id, col(RemoteObject.actor_uri) == actor_uri)
        .values(deleted=True, data={"id": object_id, "type": "Tombstone"})
    )


async def known_ids(session: AsyncSession, ids: list[str]) -> set[str]:
    """Which of ``ids`` are stored (tombstones included)."""
    if not ids:
        return set()
    rows = await session.exec(select(RemoteObject.uri).where(col(RemoteObject.uri).in_(ids)))
    return set(rows.all())
