"""News items: create, add or edit a version, replace, delete; shared by CLI and API.

Every change is one write transaction: the item's LocalObject (re-rendered from
the stored Markdown, items.py), the activity to the group's followers, and one
object per language channel (channels.py) with its own activity to that
channel's followers. A follower of ``koeln_fa`` receives only ``koeln_fa``'s
one-language copies, never the item with every version (FEDERATION.md).
"""

from __future__ import annotations

from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from node.core.urls import Urls
from node.federation import publishing
from node.federation.runtime import Node
from node.federation.vocabulary import PUBLIC, object_document
from node.groups.operations import OperationError, object_uuid_from, require_group, usable_media
from node.news import items
from node.news.items import NewsError, NewsInput, Version
from node.storage.db import utcnow
from node.storage.models import LocalActor, LocalObject, NewsChannel, NewsCopy, NewsItem


async def send_to_followers(session: AsyncSession, urls: Urls, actor: LocalActor,
                            activity_type: str, obj: LocalObject,
                            document: dict[str, Any] | None = None) -> None:
    """The one place news and channels address followers
    (docs/ARCHITECTURE.md#2-the-delivery-queue): Create/Update/Delete of ``obj``
    (a Tombstone once deleted; ``document`` if the caller built it, as for an
    Event) to ``actor``'s followers."""
    await publishing.record_activity(
        session, actor, urls, activity_type=activity_type,
        obj=document if document is not None and obj.deleted_at is None
        else object_document(obj, actor, urls, with_context=False),
        to=[PUBLIC], cc=[urls.followers(actor.username)],
        to_followers=True,
    )


def _error(exc: NewsError) -> OperationError:
    return OperationError(str(exc))


def versions_of(item: NewsItem) -> dict[str, Version]:
    return {lang: Version(text=v["text"], title=v.get("title"), summary=v.get("summary"))
            for lang, v in item.versions.items()}


def _page_anchor(urls: Urls, obj: LocalObject, lang: str) -> str:
    """Where one version is read on the item's page (its container's id)."""
    return f"{urls.object(obj.uuid)}#v-{lang}"


def _photos_in(item: NewsItem, lang: str) -> list[dict[str, Any]]:
    """Photos whose alt text is the one of ``lang`` (then the item's, then none)."""
    return [{**p, "alt": {lang: p["alt"].get(lang, "")}} for p in item.photos]


def render_item(urls: Urls, obj: LocalObject, item: NewsItem) -> None:
    versions = versions_of(item)
    primary = obj.language
    rendered = items.render(
        versions=versions, primary=primary, photos=item.photos, hashtags=item.hashtags,
        sources=item.sources, country=item.country, sectors=item.sectors, urls=urls,
        self_url=urls.object(obj.uuid),
        sibling_url={lang: _page_anchor(urls, obj, lang) for lang in versions},
        always_article=item.kind == "bulletin",
    )
    _apply(obj, rendered)


def render_copy(urls: Urls, source: LocalObject, item: NewsItem, copy: LocalObject) -> None:
    """A channel's object: the one version in ``copy.language``, the others only linked."""
    lang = copy.language
    versions = versions_of(item)
    rendered = items.render(
        versions={lang: versions[lang]}, primary=lang, photos=_photos_in(item, lang),
        hashtags=item.hashtags, sources=item.sources, country=item.country,
        sectors=item.sectors, urls=urls, self_url=urls.object(copy.uuid),
        sibling_url={other: _page_anchor(urls, source, other)
                     for other in items.ordered(versions, source.language) if other != lang},
        always_article=item.kind == "bulletin",
    )
    _apply(copy, rendered)


def _apply(obj: LocalObject, rendered: items.Rendered) -> None:
    obj.object_type = rendered.object_type
    obj.language = rendered.language
    obj.names = rendered.names
    obj.summaries = rendered.summaries
    obj.contents = rendered.contents
    obj.extra = rendered.extra


def _fingerprint(obj: LocalObject) -> tuple[Any, ...]:
    """What a channel's followers see change. The ``url`` links to the other
    languages are left out: a translation added elsewhere is saved into the
    copy's document but is no reason to send its followers an Update."""
    extra = {k: v for k, v in obj.extra.items() if k != "url"}
    return (obj.object_type, obj.language, obj.names, obj.summaries, obj.contents, extra)


async def _photo(session: AsyncSession, spec: dict[str, Any],
                 actor: LocalActor) -> dict[str, Any]:
    media = await usable_media(session, spec["media"], actor)  # the group's own uploads only
    focus = ([media.focus_x, media.focus_y]
             if media.focus_x is not None and media.focus_y is not None else None)
    return {"media": media.name, "path": f"uploads/{media.name}",
            "media_type": media.media_type, "width": media.width, "height": media.height,
            "blurhash": media.blurhash, "focalPoint": focus, "alt": dict(spec["alt"])}


async def _fill(session: AsyncSession, item: NewsItem, data: NewsInput,
                actor: LocalActor) -> None:
    item.versions = {lang: v.as_json() for lang, v in data.versions.items()}
    item.photos = [await _photo(session, spec, actor) for spec in data.photos]
    item.hashtags = data.hashtags
    item.sources = data.sources
    item.country = data.country
    item.sectors = data.sectors


async def _publisher(node: Node, username: str) -> LocalActor:
    actor = await require_group(node, username)
    async with node.db.read() as session:
        channel = (await session.exec(
            select(NewsChannel).where(NewsChannel.actor_id == actor.id))).first()
    if channel is not None:
        raise OperationError(f"{username} is a language channel; publish from its group "
                             "and the channel gets its language's version")
    return actor


async def create_item(node: Node, username: str, body: Any) -> str:
    """A new item from a group; returns its id (URL)."""
    actor = await _publisher(node, username)
    try:
        data = items.parse_input(body, actor.language)
    except NewsError as exc:
        raise _error(exc) from exc
    async with node.db.write() as session:
        obj = LocalObject(uuid=publishing.new_uuid(), local_actor_id=actor.id or 0,
                          language=data.language)
        session.add(obj)
        await session.flush()
        item = NewsItem(object_id=obj.id or 0)
        await _fill(session, item, data, actor)
        await publish_new(session, node.urls, actor, obj, item)
    node.changed()
    return node.urls.object(obj.uuid)


async def publish_new(session: AsyncSession, urls: Urls, actor: LocalActor, obj: LocalObject,
                      item: NewsItem) -> None:
    """Render a new item (or bulletin), Create it for the followers and the channels."""
    render_item(urls, obj, item)
    session.add_all([obj, item])
    await session.flush()
    await send_to_followers(session, urls, actor, "Create", obj)
    await sync_channels(session, urls, actor, obj, item)


async def load(session: AsyncSession, node: Node, object_id: str,
               allowed_actor: int | None) -> tuple[LocalActor, LocalObject, NewsItem]:
    obj = await publishing.get_object(session, object_uuid_from(node, object_id))
    item = (await session.exec(select(NewsItem).where(NewsItem.object_id == obj.id))).first() \
        if obj is not None else None
    if obj is None or item is None or obj.deleted_at is not None:
        raise OperationError("no such news item", status=404)
    actor = await session.get(LocalActor, obj.local_actor_id)
    if actor is None or (allowed_actor is not None and actor.id != allowed_actor):
        raise OperationError("no such news item", status=404)
    return actor, obj, item


async def item_language(node: Node, object_id: str) -> str:
    """The item's primary language (what an edit's untagged texts are written in)."""
    async with node.db.read() as session:
        _, obj, _ = await load(session, node, object_id, None)
    return obj.language


async def refuse_note_edit(node: Node, object_id: str) -> None:
    """`edit note` would replace a news item's versions (or a channel copy) with one
    plain text that the next change overwrites: point to the news commands instead."""
    async with node.db.read() as session:
        obj = await publishing.get_object(session, object_uuid_from(node, object_id))
        if obj is None:
            return
        copy = (await session.exec(
            select(NewsCopy.id).where(NewsCopy.object_id == obj.id))).first()
    if copy is not None:
        raise OperationError("that is a language channel's copy; change the original item "
                             "or call and the copy follows")
    if await is_item(node, object_id):
        raise OperationError("that is a news item; change it with `hambastegi news "
                             "edit-version` or `edit news` (PUT /api/v1/news/{uuid})")


async def is_item(node: Node, object_id: str) -> bool:
    async with node.db.read() as session:
        obj = await publishing.get_object(session, object_uuid_from(node, object_id))
        if obj is None:
            return False
        return (await session.exec(
            select(NewsItem.id).where(NewsItem.object_id == obj.id))).first() is not None


async def _changed(session: AsyncSession, node: Node, actor: LocalActor, obj: LocalObject,
                   item: NewsItem) -> None:
    """Re-render, then Update to the group's followers and sync every channel."""
    render_item(node.urls, obj, item)
    obj.updated = utcnow()
    session.add_all([obj, item])
    await session.flush()
    await send_to_followers(session, node.urls, actor, "Update", obj)
    await sync_channels(session, node.urls, actor, obj, item)


def _alts(item: NewsItem, lang: str, alts: list[str] | None) -> None:
    if alts is None:
        return
    if len(alts) > len(item.photos):
        raise OperationError(f"versions[{lang}].alt has more texts than the item has photos")
    photos = [dict(p, alt=dict(p["alt"])) for p in item.photos]
    for photo, text in zip(photos, alts, strict=False):
        photo["alt"][lang] = text.strip()
    item.photos = photos


async def add_version(node: Node, object_id: str, lang: Any, body: Any, *,
                      allowed_actor: int | None = None) -> str:
    """A new language; refused if the item has one in that language (edit it instead)."""
    return await _set_version(node, object_id, lang, body, allowed_actor, new=True)


async def edit_version(node: Node, object_id: str, lang: Any, body: Any, *,
                       allowed_actor: int | None = None) -> str:
    """Correct an existing version; federates as Update."""
    return await _set_version(node, object_id, lang, body, allowed_actor, new=False)


async def _set_version(node: Node, object_id: str, lang: Any, body: Any,
                       allowed_actor: int | None, *, new: bool) -> str:
    try:
        tag = items.language(lang, "language")
        version, alts = items.parse_version(body, tag)
    except NewsError as exc:
        raise _error(exc) from exc
    async with node.db.write() as session:
        actor, obj, item = await load(session, node, object_id, allowed_actor)
        if new and tag in item.versions:
            raise OperationError(f"the item already has a version in {tag}; correct it with "
                                 f"`hambastegi news edit-version` (PUT "
                                 f"/api/v1/news/{{uuid}}/versions/{tag})", status=409)
        if not new and tag not in item.versions:
            raise OperationError(f"the item has no version in {tag}; add one with "
                                 "`hambastegi news add-version`", status=404)
        if new and len(item.versions) >= items.MAX_LANGUAGES:
            raise OperationError(f"an item has at most {items.MAX_LANGUAGES} versions")
        item.versions = {**item.versions, tag: version.as_json()}
        _alts(item, tag, alts)
        await _changed(session, node, actor, obj, item)
    node.changed()
    return node.urls.object(obj.uuid)


async def replace_item(node: Node, object_id: str, body: Any, *,
                       allowed_actor: int | None = None) -> str:
    """The whole item anew (PUT, `hambastegi edit news`); versions left out are removed."""
    async with node.db.read() as session:
        _, obj, _ = await load(session, node, object_id, allowed_actor)
    try:
        data = items.parse_input(body, obj.language)
    except NewsError as exc:
        raise _error(exc) from exc
    async with node.db.write() as session:
        actor, obj, item = await load(session, node, object_id, allowed_actor)
        await _fill(session, item, data, actor)
        obj.language = data.language
        await _changed(session, node, actor, obj, item)
    node.changed()
    return node.urls.object(obj.uuid)


async def delete_item(node: Node, object_id: str, *, allowed_actor: int | None = None) -> str:
    """Delete → Tombstone, for the item and for every channel's copy of it."""
    async with node.db.write() as session:
        actor, obj, _ = await load(session, node, object_id, allowed_actor)
        for channel_actor, copy in await _copies(session, obj):
            await _delete(session, node.urls, channel_actor, copy)
        await _delete(session, node.urls, actor, obj)
    node.changed()
    return node.urls.object(obj.uuid)


async def _delete(session: AsyncSession, urls: Urls, actor: LocalActor,
                  obj: LocalObject) -> None:
    if obj.deleted_at is not None:
        return
    obj.deleted_at = utcnow()
    obj.pinned_at = None
    session.add(obj)
    await session.flush()
    await send_to_followers(session, urls, actor, "Delete", obj)


# --- language channels ------------------------------------------------------------------


async def channels_of(session: AsyncSession, group: LocalActor
                      ) -> list[tuple[NewsChannel, LocalActor]]:
    rows = await session.exec(select(NewsChannel, LocalActor).join(
        LocalActor, LocalActor.id == NewsChannel.actor_id  # type: ignore[arg-type]
    ).where(NewsChannel.group_id == group.id))
    return [(channel, actor) for channel, actor in rows.all()]


async def delete_copies(node: Node, object_id: str) -> None:
    """Delete every channel copy of one of our objects (a deleted action call)."""
    async with node.db.write() as session:
        source = await publishing.get_object(session, object_uuid_from(node, object_id))
        if source is None:
            return
        for channel_actor, copy in await _copies(session, source):
            await _delete(session, node.urls, channel_actor, copy)
    node.changed()


async def copies_of(session: AsyncSession, source: LocalObject
                    ) -> list[tuple[LocalActor, LocalObject]]:
    """(channel actor, copy) of every channel copy of ``source``."""
    return await _copies(session, source)


async def delete_copy(session: AsyncSession, urls: Urls, channel_actor: LocalActor,
                      copy: LocalObject) -> None:
    await _delete(session, urls, channel_actor, copy)


async def _copies(session: AsyncSession, source: LocalObject
                  ) -> list[tuple[LocalActor, LocalObject]]:
    rows = await session.exec(
        select(NewsCopy, LocalObject, LocalActor)
        .join(LocalObject, LocalObject.id == NewsCopy.object_id)  # type: ignore[arg-type]
        .join(LocalActor, LocalActor.id == LocalObject.local_actor_id)  # type: ignore[arg-type]
        .where(NewsCopy.source_object_id == source.id))
    return [(actor, obj) for _, obj, actor in rows.all()]


async def sync_channels(session: AsyncSession, urls: Urls, group: LocalActor,
                        source: LocalObject, item: NewsItem) -> None:
    """Bring every channel's copy in line with the item: Create where the channel's
    language is new, Update where its version changed, Delete where it was removed.
    A channel whose language the item lacks receives nothing."""
    existing = {copy.local_actor_id: copy for _, copy in await _copies(session, source)}
    for channel, channel_actor in await channels_of(session, group):
        copy = existing.get(channel_actor.id or 0)
        if channel.language not in item.versions:
            if copy is not None:
                await _delete(session, urls, channel_actor, copy)
            continue
        if copy is None or copy.deleted_at is not None:
            if copy is not None:
                continue  # a deleted copy's id never comes back (Mastodon keeps tombstones)
            copy = LocalObject(uuid=publishing.new_uuid(), local_actor_id=channel_actor.id or 0,
                               language=channel.language)
            render_copy(urls, source, item, copy)
            session.add(copy)
            await session.flush()
            session.add(NewsCopy(source_object_id=source.id or 0, channel_id=channel.id or 0,
                                 object_id=copy.id or 0))
            await send_to_followers(session, urls, channel_actor, "Create", copy)
            continue
        before, links = _fingerprint(copy), copy.extra.get("url")
        render_copy(urls, source, item, copy)
        if _fingerprint(copy) != before:
            copy.updated = utcnow()
            session.add(copy)
            await session.flush()
            await send_to_followers(session, urls, channel_actor, "Update", copy)
        elif copy.extra.get("url") != links:
            session.add(copy)
