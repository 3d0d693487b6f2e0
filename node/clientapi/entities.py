"""Mastodon's JSON entities (Account, Status, MediaAttachment, Notification) from
what we store. Both our objects and stored remote posts are rendered from their
ActivityStreams documents, so a call, a news item in several languages or a
campaign shows in an app as Mastodon shows such objects from other servers: a Note
whole, anything else as its name, summary and a link to its page, with its
images as attachments (INTEROP.md, "Posts")."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from node.clientapi.pagination import LOCAL, REMOTE, status_id
from node.core.cache import DocCache
from node.core.jsonsafe import as_id
from node.core.text import html_to_plain, sanitise_html
from node.core.urls import Urls
from node.federation.vocabulary import (
    PUBLIC_NAMES,
    actor_document,
    object_document,
)
from node.storage.models import (
    Activity,
    Follower,
    Following,
    Interaction,
    LocalActor,
    LocalObject,
    MediaFile,
    RemoteActor,
    RemoteObject,
)
from node.storage.states import FollowerState, FollowingState

REMOTE_ACCOUNT_BASE = 10**12  # remote actors' account ids: above every group's


def stamp(at: datetime | None) -> str | None:
    """Mastodon's timestamps: ISO 8601 in UTC with milliseconds and a Z."""
    if at is None:
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def _day(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT00:00:00.000Z")


def _url_of(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return _url_of(value.get("href") or value.get("url"))
    if isinstance(value, list):
        for item in value[:10]:
            if isinstance(item, dict) and item.get("mediaType", "text/html") != "text/html":
                continue
            found = _url_of(item)
            if found:
                return found
    return None


def _text(value: Any, limit: int = 2000) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _fields(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    attachments = doc.get("attachment")
    for item in attachments[:20] if isinstance(attachments, list) else []:
        if isinstance(item, dict) and item.get("type") == "PropertyValue":
            out.append({"name": html_to_plain(_text(item.get("name"), 255)),
                        "value": sanitise_html(_text(item.get("value"), 2048)),
                        "verified_at": None})
    return out


def account_from_document(doc: dict[str, Any], *, account_id: int, acct: str,
                          counts: tuple[int, int, int] = (0, 0, 0),
                          last_status_at: datetime | None = None) -> dict[str, Any]:
    uri = as_id(doc) or ""
    username = _text(doc.get("preferredUsername"), 256) or acct.split("@")[0]
    icon = _url_of(doc.get("icon")) or ""
    header = _url_of(doc.get("image")) or ""
    published = doc.get("published")
    try:
        created = datetime.fromisoformat(published.replace("Z", "+00:00")) \
            if isinstance(published, str) else datetime(2020, 1, 1, tzinfo=UTC)
    except ValueError:
        created = datetime(2020, 1, 1, tzinfo=UTC)
    kind = doc.get("type")
    return {
        "id": str(account_id), "username": username, "acct": acct,
        "display_name": html_to_plain(_text(doc.get("name"), 400)),
        "locked": bool(doc.get("manuallyApprovesFollowers")),
        "bot": kind in {"Service", "Application"}, "group": kind == "Group",
        "discoverable": bool(doc.get("discoverable", False)),
        "indexable": bool(doc.get("indexable", False)),
        "noindex": not doc.get("indexable", False),
        "created_at": _day(created),
        "note": sanitise_html(_text(doc.get("summary"), 10_000)),
        "url": _url_of(doc.get("url")) or uri, "uri": uri,
        "avatar": icon, "avatar_static": icon, "header": header, "header_static": header,
        "followers_count": counts[0], "following_count": counts[1],
        "statuses_count": counts[2],
        "last_status_at": last_status_at.strftime("%Y-%m-%d") if last_status_at else None,
        "hide_collections": False, "emojis": [], "fields": _fields(doc), "roles": [],
    }


def remote_account(actor: RemoteActor) -> dict[str, Any]:
    acct = f"{actor.username or 'unknown'}@{actor.domain}"
    doc = dict(actor.raw) if isinstance(actor.raw, dict) else {}
    doc.setdefault("id", actor.uri)
    doc.setdefault("type", actor.actor_type)
    if actor.display_name and not doc.get("name"):
        doc["name"] = actor.display_name
    return account_from_document(doc, account_id=REMOTE_ACCOUNT_BASE + (actor.id or 0),
                                 acct=acct)


def unknown_account(uri: str) -> dict[str, Any]:
    """An actor we never fetched: what its URI says."""
    parts = urlsplit(uri)
    name = parts.path.rstrip("/").rsplit("/", 1)[-1] or "unknown"
    return account_from_document({"id": uri, "type": "Person"},
                                 account_id=REMOTE_ACCOUNT_BASE, acct=f"{name}@{parts.hostname}")


async def group_counts(session: AsyncSession, actor: LocalActor
                       ) -> tuple[tuple[int, int, int], datetime | None]:
    followers = (await session.exec(select(func.count()).select_from(Follower).where(
        Follower.local_actor_id == actor.id, Follower.state == FollowerState.ACCEPTED))).one()
    following = (await session.exec(select(func.count()).select_from(Following).where(
        Following.local_actor_id == actor.id,
        Following.state == FollowingState.ACCEPTED))).one()
    statuses, last = (await session.exec(
        select(func.count(), func.max(LocalObject.published)).where(
            LocalObject.local_actor_id == actor.id,
            col(LocalObject.deleted_at).is_(None)))).one()
    return (int(followers), int(following), int(statuses)), last


async def group_account(session: AsyncSession, urls: Urls, actor: LocalActor, *,
                        with_source: bool = False, follow_requests: int = 0,
                        cache: DocCache | None = None) -> dict[str, Any]:
    """A group's Account. ``cache``: the node's document cache, which the change
    counter empties when a post, follower or the profile changes (ARCHITECTURE §1),
    so every status of a page does not count the group's posts again."""
    key = ("clientapi-account", actor.id, actor.updated_at)
    cached = cache.get(key) if cache is not None else None
    if cached is not None:
        out: dict[str, Any] = orjson.loads(cached)
    else:
        counts, last = await group_counts(session, actor)
        out = account_from_document(actor_document(actor, urls), account_id=actor.id or 0,
                                    acct=actor.username, counts=counts, last_status_at=last)
        out["created_at"] = _day(actor.created_at)
        if cache is not None:
            cache.put(key, out, ttl=60)
    if with_source:
        summary = actor.summaries.get(actor.language) or next(iter(actor.summaries.values()), "")
        out["source"] = {
            "privacy": "public", "sensitive": False, "language": actor.language,
            "note": html_to_plain(summary or ""),
            "fields": [{"name": link["name"], "value": link["url"], "verified_at": None}
                       for link in actor.links],
            "follow_requests_count": follow_requests,
        }
    return out


# --- statuses ---------------------------------------------------------------------


def media_entity(media: MediaFile, urls: Urls, *, preview: MediaFile | None = None,
                 description: str | None = None) -> dict[str, Any]:
    url = urls.media(f"uploads/{media.name}")
    small = preview or media
    meta: dict[str, Any] = {
        "original": {"width": media.width, "height": media.height,
                     "size": f"{media.width}x{media.height}",
                     "aspect": media.width / media.height if media.height else 1},
        "small": {"width": small.width, "height": small.height,
                  "size": f"{small.width}x{small.height}",
                  "aspect": small.width / small.height if small.height else 1},
    }
    if media.focus_x is not None and media.focus_y is not None:
        meta["focus"] = {"x": media.focus_x, "y": media.focus_y}
    return {"id": str(media.id), "type": "image", "url": url,
            "preview_url": urls.media(f"uploads/{small.name}"), "remote_url": None,
            "preview_remote_url": None, "text_url": None, "meta": meta,
            "description": description if description is not None else media.description,
            "blurhash": media.blurhash}


def _attachments(doc: dict[str, Any], media_ids: dict[str, int]) -> list[dict[str, Any]]:
    out = []
    items = doc.get("attachment")
    for index, item in enumerate(items[:8] if isinstance(items, list) else []):
        if not isinstance(item, dict) or item.get("type") == "PropertyValue":
            continue
        url = _url_of(item.get("url"))
        if not url:
            continue
        media_type = _text(item.get("mediaType"), 100)
        kind = ("image" if media_type.startswith("image/") or item.get("type") == "Image"
                else "video" if media_type.startswith("video/")
                else "audio" if media_type.startswith("audio/") else "unknown")
        meta: dict[str, Any] = {}
        width, height = item.get("width"), item.get("height")
        if isinstance(width, int) and isinstance(height, int) and height > 0:
            meta["original"] = {"width": width, "height": height, "size": f"{width}x{height}",
                                "aspect": width / height}
        focal = item.get("focalPoint")
        if isinstance(focal, list) and len(focal) == 2 and all(
                isinstance(v, int | float) for v in focal):
            meta["focus"] = {"x": focal[0], "y": focal[1]}
        out.append({"id": str(media_ids.get(url, index + 1)), "type": kind, "url": url,
                    "preview_url": url, "remote_url": url, "preview_remote_url": None,
                    "text_url": None, "meta": meta,
                    "description": html_to_plain(_text(item.get("name"), 1500)) or None,
                    "blurhash": _text(item.get("blurhash"), 100) or None})
    return out


def _visibility(doc: dict[str, Any]) -> str:
    def names(key: str) -> list[Any]:
        value = doc.get(key)
        return value[:100] if isinstance(value, list) else [value]

    if any(v in PUBLIC_NAMES for v in names("to")):
        return "public"
    if any(v in PUBLIC_NAMES for v in names("cc")):
        return "unlisted"
    if any(isinstance(v, str) and v.endswith("/followers") for v in names("to") + names("cc")):
        return "private"
    return "direct"


def _content(doc: dict[str, Any], language: str | None) -> tuple[str, str]:
    """(content, spoiler_text). A Note is shown whole with its summary as the content
    warning; an Article, Event or Page as Mastodon shows them: title, summary, link."""
    def pick(key: str) -> str:
        mapped = doc.get(f"{key}Map")
        if isinstance(mapped, dict) and language and isinstance(mapped.get(language), str):
            return str(mapped[language])
        return _text(doc.get(key), 100_000)

    if doc.get("type") in {"Note", "Question", None}:
        return sanitise_html(pick("content")), html_to_plain(pick("summary"))
    parts = []
    if pick("name"):
        parts.append(f"<p><strong>{html.escape(html_to_plain(pick('name')))}</strong></p>")
    summary = pick("summary")
    if summary:
        parts.append(f"<p>{html.escape(html_to_plain(summary))}</p>")
    link = _url_of(doc.get("url")) or as_id(doc)
    if link:
        shown = html.escape(link)
        parts.append(f'<p><a href="{shown}" rel="nofollow noopener" target="_blank">'
                     f"{shown}</a></p>")
    return "".join(parts), ""


@dataclass
class Batch:
    """What rendering a page of statuses needs, looked up once for the page."""

    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    media_ids: dict[str, int] = field(default_factory=dict)
    ids_by_uri: dict[str, int] = field(default_factory=dict)
    counts: dict[str, tuple[int, int, int]] = field(default_factory=dict)


def status_entity(doc: dict[str, Any], *, number: int, account: dict[str, Any],
                  batch: Batch, language: str | None, pinned: bool = False,
                  replies: tuple[int, int, int] = (0, 0, 0)) -> dict[str, Any]:
    content, spoiler = _content(doc, language)
    reply_to = as_id(doc.get("inReplyTo"))
    reply_id = batch.ids_by_uri.get(reply_to) if reply_to else None
    mentions = []
    tags = []
    raw_tags = doc.get("tag")
    for tag in raw_tags[:50] if isinstance(raw_tags, list) else []:
        if not isinstance(tag, dict):
            continue
        if tag.get("type") == "Mention" and isinstance(tag.get("href"), str):
            known = batch.accounts.get(tag["href"])
            handle = _text(tag.get("name"), 300).lstrip("@")
            mentions.append({"id": known["id"] if known else str(REMOTE_ACCOUNT_BASE),
                             "username": handle.split("@")[0], "acct": handle,
                             "url": tag["href"]})
        elif tag.get("type") == "Hashtag" and isinstance(tag.get("name"), str):
            tags.append({"name": tag["name"].lstrip("#"), "url": _text(tag.get("href"), 2048)})
    uri = as_id(doc) or ""
    updated = doc.get("updated")
    return {
        "id": str(number), "uri": uri, "url": _url_of(doc.get("url")) or uri,
        "created_at": stamp(_parse_time(doc.get("published"))),
        "edited_at": stamp(_parse_time(updated)) if isinstance(updated, str) else None,
        "account": account, "content": content, "spoiler_text": spoiler,
        "sensitive": bool(doc.get("sensitive")) or bool(spoiler),
        "visibility": _visibility(doc), "language": language,
        "in_reply_to_id": str(reply_id) if reply_id else None,
        "in_reply_to_account_id": None,
        "replies_count": replies[0], "reblogs_count": replies[1],
        "favourites_count": replies[2],
        "favourited": False, "reblogged": False, "muted": False, "bookmarked": False,
        "pinned": pinned, "reblog": None, "application": None,
        "media_attachments": _attachments(doc, batch.media_ids),
        "mentions": mentions, "tags": tags, "emojis": [], "card": None, "poll": None,
        "filtered": [],
    }


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def local_number(obj: LocalObject) -> int:
    return status_id(LOCAL, obj.id or 0, obj.published)


def remote_time(row: RemoteObject) -> datetime:
    """A stored post's time for its id and order: its ``published`` (timelines leave
    out those dated in the future: timelines.remote_at), else its arrival."""
    moment = row.published_at or row.received_at
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def remote_number(row: RemoteObject) -> int:
    return status_id(REMOTE, row.id or 0, remote_time(row))


async def render_statuses(session: AsyncSession, urls: Urls,
                          local: list[tuple[LocalObject, LocalActor]],
                          remote: list[RemoteObject], *, cache: DocCache | None = None
                          ) -> dict[int, dict[str, Any]]:
    """Entities for a page of our objects and stored posts, keyed by their id."""
    batch = Batch()
    actors = {actor.id: actor for _, actor in local}
    for actor in actors.values():
        batch.accounts[urls.actor(actor.username)] = await group_account(
            session, urls, actor, cache=cache)
    docs_local = [(obj, object_document(obj, actor, urls, with_context=False))
                  for obj, actor in local]
    docs = [doc for _, doc in docs_local] + [row.data for row in remote]
    # Authors and mentioned actors in one query.
    wanted = {row.actor_uri for row in remote}
    for doc in docs:
        for tag in doc.get("tag") or []:
            if isinstance(tag, dict) and tag.get("type") == "Mention":
                href = tag.get("href")
                if isinstance(href, str) and not urls.is_local(href):
                    wanted.add(href)
    if wanted:
        for remote_actor in (await session.exec(select(RemoteActor).where(
                col(RemoteActor.uri).in_(list(wanted)[:500])))).all():
            batch.accounts[remote_actor.uri] = remote_account(remote_actor)
    # Media ids of our own uploads (apps send them back when editing).
    names = {}
    prefix = urls.media("uploads/")
    for doc in docs:
        for item in doc.get("attachment") or []:
            url = _url_of(item.get("url")) if isinstance(item, dict) else None
            if url and url.startswith(prefix):
                names[url[len(prefix):]] = url
    if names:
        for media in (await session.exec(select(MediaFile).where(
                col(MediaFile.name).in_(list(names))))).all():
            batch.media_ids[names[media.name]] = media.id or 0
    # What the posts reply to, as status ids.
    parents = {as_id(doc.get("inReplyTo")) for doc in docs} - {None}
    await _ids_of(session, urls, {p for p in parents if p}, batch)
    counts = await _interaction_counts(session, [urls.object(obj.uuid) for obj, _ in local])
    out: dict[int, dict[str, Any]] = {}
    for obj, doc in docs_local:
        actor_uri = urls.actor(actors[obj.local_actor_id].username)
        number = local_number(obj)
        out[number] = status_entity(
            doc, number=number, account=batch.accounts[actor_uri], batch=batch,
            language=obj.language, pinned=obj.pinned_at is not None,
            replies=counts.get(urls.object(obj.uuid), (0, 0, 0)))
        # Milliseconds, as Mastodon gives them (the document has whole seconds).
        out[number]["created_at"] = stamp(obj.published)
        out[number]["edited_at"] = stamp(obj.updated)
    for row in remote:
        number = remote_number(row)
        account = batch.accounts.get(row.actor_uri) or unknown_account(row.actor_uri)
        language = _language_of(row.data)
        out[number] = status_entity(row.data, number=number, account=account, batch=batch,
                                    language=language)
    return out


def _language_of(doc: dict[str, Any]) -> str | None:
    mapped = doc.get("contentMap")
    if isinstance(mapped, dict) and mapped:
        first = next(iter(mapped))
        return first[:16] if isinstance(first, str) else None
    return None


async def _ids_of(session: AsyncSession, urls: Urls, uris: set[str], batch: Batch) -> None:
    uuids = {urls.local_object_uuid(u): u for u in uris}
    uuids.pop(None, None)
    if uuids:
        for obj in (await session.exec(select(LocalObject).where(
                col(LocalObject.uuid).in_(list(uuids))))).all():
            batch.ids_by_uri[urls.object(obj.uuid)] = local_number(obj)
    others = [u for u in uris if urls.local_object_uuid(u) is None]
    if others:
        for row in (await session.exec(select(RemoteObject).where(
                col(RemoteObject.uri).in_(others[:200])))).all():
            batch.ids_by_uri[row.uri] = remote_number(row)


async def _interaction_counts(session: AsyncSession, uris: list[str]
                              ) -> dict[str, tuple[int, int, int]]:
    if not uris:
        return {}
    replies = dict((await session.exec(
        select(RemoteObject.in_reply_to, func.count()).where(
            col(RemoteObject.in_reply_to).in_(uris), col(RemoteObject.deleted).is_(False),
            RemoteObject.moderation_state != "hidden")
        .group_by(RemoteObject.in_reply_to))).all())
    interactions: dict[tuple[str, str], int] = {
        (uri, kind): int(count) for uri, kind, count in (await session.exec(
            select(Interaction.object_uri, Interaction.interaction_type, func.count())
            .where(col(Interaction.object_uri).in_(uris))
            .group_by(Interaction.object_uri, Interaction.interaction_type))).all()}
    return {uri: (int(replies.get(uri, 0)), interactions.get((uri, "Announce"), 0),
                  interactions.get((uri, "Like"), 0)) for uri in uris}


# --- what the calling group did to a status -------------------------------------------


async def standing(session: AsyncSession, group_id: int, kind: str,
                   uris: list[str]) -> dict[str, Activity]:
    """The group's live ``kind`` (Like, Announce) of each of ``uris``: recorded and
    not followed by an Undo of it (node/clientapi/interactions.py)."""
    if not uris:
        return {}
    done = (await session.exec(select(Activity).where(
        Activity.local_actor_id == group_id, Activity.activity_type == kind,
        col(Activity.object_uri).in_(uris)).order_by(col(Activity.id)))).all()
    if not done:
        return {}
    undone = set((await session.exec(select(Activity.object_uri).where(
        Activity.local_actor_id == group_id, Activity.activity_type == "Undo",
        col(Activity.object_uri).in_([activity_url(a) for a in done])))).all())
    return {a.object_uri or "": a for a in done if activity_url(a) not in undone}


def activity_url(activity: Activity) -> str:
    return str(orjson.loads(activity.body).get("id", ""))


async def mark_own(node: Any, group_id: int, statuses: list[dict[str, Any]]) -> None:
    """``favourited`` and ``reblogged`` as the calling group sees them."""
    if not statuses:
        return
    uris = [s["uri"] for s in statuses]
    async with node.db.read() as session:
        liked = await standing(session, group_id, "Like", uris)
        boosted = await standing(session, group_id, "Announce", uris)
    for status in statuses:
        status["favourited"] = status["uri"] in liked
        status["reblogged"] = status["uri"] in boosted
