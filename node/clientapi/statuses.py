"""Statuses: post, show, context, edit, delete, source, history.

A status without ``in_reply_to_id`` is a news item with one version in the status's
language (the group's when none is given), made by the same operation as
``hambastegi publish news`` (node/news/operations.py): on the group's page, feeds,
language channel and next bulletin, federated as any item. A reply is a Note in the
thread (node/groups/operations.publish_note). ``spoiler_text`` is the content
warning (the version's summary)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from node.clientapi.context import Call, endpoint
from node.clientapi.entities import mark_own, render_statuses
from node.clientapi.pagination import LOCAL, REMOTE, decode
from node.clientapi.params import NOT_FOUND, ApiError
from node.core.text import hashtags_in, html_to_plain
from node.federation import publishing
from node.groups import operations
from node.news import items
from node.news import operations as news
from node.storage.models import (
    IdempotencyKey,
    LocalActor,
    LocalObject,
    MediaFile,
    NewsItem,
    RemoteObject,
)

MAX_CHARACTERS = 5000  # configuration.statuses.max_characters (publishing.MAX_NOTE_CHARS)
MAX_MEDIA = 4  # configuration.statuses.max_media_attachments (items.MAX_PHOTOS)
VISIBILITIES = ("public", "unlisted", "private", "direct")
# What a news item's Markdown would read as markup in an app's plain text.
_MARKDOWN = re.compile(r"([\\`*_\[\]<>|~])")


def plain_as_markdown(text: str) -> str:
    """An app's plain text as Markdown that renders as that text: markup characters
    escaped, and each line break kept (a hard break, CommonMark §6.7)."""
    escaped = _MARKDOWN.sub(r"\\\1", text.strip())
    return "\n\n".join(para.replace("\n", "\\\n") for para in re.split(r"\n{2,}", escaped))


def markdown_as_plain(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text).replace("\\\n", "\n")


# --- finding a status by id ------------------------------------------------------------


async def find(session: AsyncSession, value: str
               ) -> tuple[LocalObject, LocalActor] | RemoteObject | None:
    decoded = decode(value)
    if decoded is None:
        return None
    if decoded.kind == LOCAL:
        rows = (await session.exec(select(LocalObject).where(
            LocalObject.published >= decoded.start, LocalObject.published < decoded.end,
            col(LocalObject.deleted_at).is_(None)))).all()
        for obj in rows:
            if (obj.id or 0) % 100_000 == decoded.low:
                actor = await session.get(LocalActor, obj.local_actor_id)
                return (obj, actor) if actor is not None else None
        return None
    candidates = (await session.exec(select(RemoteObject).where(
        col(RemoteObject.deleted).is_(False),
        ((col(RemoteObject.published_at) >= decoded.start)
         & (col(RemoteObject.published_at) < decoded.end))
        | ((col(RemoteObject.received_at) >= decoded.start)
           & (col(RemoteObject.received_at) < decoded.end))))).all()
    from node.clientapi.entities import remote_number

    for row in candidates:
        if remote_number(row) == int(value) and decoded.kind == REMOTE:
            return row
    return None


async def own(call: Call, value: str) -> tuple[LocalObject, LocalActor]:
    """One of the calling group's own posts, else 404 (another group's too: the
    same answer, so a token learns nothing of other groups)."""
    async with call.node.db.read() as session:
        found = await find(session, value)
    if not isinstance(found, tuple) or found[1].id != call.group.id:
        raise ApiError(NOT_FOUND, 404)
    return found


async def entity(call: Call, found: tuple[LocalObject, LocalActor] | RemoteObject
                 ) -> dict[str, Any]:
    async with call.node.db.read() as session:
        if isinstance(found, tuple):
            fresh = await session.get(LocalObject, found[0].id)
            assert fresh is not None
            rendered = await render_statuses(session, call.node.urls, [(fresh, found[1])], [])
        else:
            rendered = await render_statuses(session, call.node.urls, [], [found])
    return next(iter(rendered.values()))


async def _by_uri(call: Call, uri: str) -> dict[str, Any]:
    uuid = call.node.urls.local_object_uuid(uri)
    async with call.node.db.read() as session:
        obj = await publishing.get_object(session, uuid or "")
        actor = await session.get(LocalActor, obj.local_actor_id) if obj else None
    if obj is None or actor is None:
        raise ApiError(NOT_FOUND, 404)
    return await entity(call, (obj, actor))


# --- posting ------------------------------------------------------------------------


async def _media(call: Call, ids: list[str]) -> list[MediaFile]:
    if len(ids) > MAX_MEDIA:
        raise ApiError(f"Validation failed: at most {MAX_MEDIA} media attachments")
    found: list[MediaFile] = []
    async with call.node.db.read() as session:
        for value in ids:
            media = await session.get(MediaFile, int(value)) if value.isdigit() and \
                len(value) < 18 else None
            # Another group's upload answers as an unknown one.
            if media is None or media.variant_of is not None or \
                    media.local_actor_id != call.group.id:
                raise ApiError(f"Validation failed: no media attachment {value[:20]!r}")
            found.append(media)
    return found


def _language(call: Call) -> str:
    given = call.params.text("language", limit=40)
    try:
        return items.language(given, "language") if given else call.group.language
    except items.NewsError as exc:
        raise ApiError(f"Validation failed: {exc}") from exc


def _news_body(text: str, spoiler: str, language: str, media: list[MediaFile]) -> dict[str, Any]:
    version: dict[str, str] = {"text": plain_as_markdown(text)}
    if spoiler:
        version["summary"] = spoiler
    # The text's #tags become the item's hashtags (tag pages, Mastodon's tag index).
    tags = [t for t in hashtags_in(text) if items.HASHTAG_RE.match(t)][:items.MAX_HASHTAGS]
    return {"language": language, "versions": {language: version}, "hashtags": tags,
            "photos": [{"media": m.name, "alt": {language: m.description or ""}}
                       for m in media]}


async def _check_status(call: Call) -> tuple[str, str, list[MediaFile]]:
    text = call.params.text("status", limit=MAX_CHARACTERS * 4) or ""
    spoiler = call.params.text("spoiler_text", limit=items.MAX_SUMMARY) or ""
    if len(text) > MAX_CHARACTERS:
        raise ApiError(f"Validation failed: Text character limit of {MAX_CHARACTERS} exceeded")
    visibility = call.params.text("visibility", limit=40) or "public"
    if visibility not in VISIBILITIES:
        raise ApiError(f"Validation failed: Visibility {visibility[:20]!r} is not one of "
                       f"{', '.join(VISIBILITIES)}")
    if visibility != "public":
        raise ApiError("Validation failed: a group's posts are public here; choose "
                       "visibility public")
    media = await _media(call, call.params.items("media_ids", limit=MAX_MEDIA * 4))
    if not text.strip() and not media:
        raise ApiError("Validation failed: Text can't be blank")
    return text, spoiler, media


async def create(call: Call) -> Response:
    """POST /api/v1/statuses"""
    key = call.request.headers.get("idempotency-key")
    if key is not None and (not key or len(key) > 200):
        raise ApiError("Validation failed: Idempotency-Key is 1 to 200 characters")
    text, spoiler, media = await _check_status(call)
    language = _language(call)
    reply_to = call.params.text("in_reply_to_id", limit=40)
    parent_uri = None
    if reply_to:
        async with call.node.db.read() as session:
            parent = await find(session, reply_to)
        if parent is None:
            raise ApiError("Validation failed: the status replied to is not known here", 422)
        parent_uri = (call.node.urls.object(parent[0].uuid) if isinstance(parent, tuple)
                      else parent.uri)
        if media:
            raise ApiError("Validation failed: a reply is a note, without media here")
    token_id = call.caller.token.id if call.caller is not None else None
    claim = await _claim(call, token_id, key)
    if isinstance(claim, str):
        return JSONResponse(await _by_uri(call, claim))
    try:
        if parent_uri is not None:
            uri = await operations.publish_note(call.node, call.group.username, text=text,
                                                language=language, in_reply_to=parent_uri)
        else:
            uri = await news.create_item(call.node, call.group.username,
                                         _news_body(text, spoiler, language, media))
    except BaseException:
        await _release(call, claim)
        raise
    await _settle(call, claim, uri)
    return JSONResponse(await _by_uri(call, uri))


async def _claim(call: Call, token_id: int | None, key: str | None) -> int | str | None:
    """Take the key before posting (the unique row), so two requests racing with one
    key post once. An earlier post's URI if the key was used; else the row's id."""
    if key is None or token_id is None:
        return None
    try:
        async with call.node.db.write() as session:
            row = IdempotencyKey(token_id=token_id, key=key, object_uri="")
            session.add(row)
            await session.flush()
            return row.id
    except IntegrityError:
        pass
    async with call.node.db.read() as session:
        existing = (await session.exec(select(IdempotencyKey).where(
            IdempotencyKey.token_id == token_id, IdempotencyKey.key == key))).first()
    if existing is None or not existing.object_uri:
        raise ApiError("a request with this Idempotency-Key is still running", 409)
    return existing.object_uri


async def _release(call: Call, claim: int | str | None) -> None:
    if isinstance(claim, int):
        async with call.node.db.write() as session:
            row = await session.get(IdempotencyKey, claim)
            if row is not None:
                await session.delete(row)


async def _settle(call: Call, claim: int | str | None, uri: str) -> None:
    if isinstance(claim, int):
        async with call.node.db.write() as session:
            row = await session.get(IdempotencyKey, claim)
            if row is not None:
                row.object_uri = uri
                session.add(row)


# --- reading ------------------------------------------------------------------------


async def readable(call: Call, value: str) -> tuple[LocalObject, LocalActor] | RemoteObject:
    """A status this token may read: our groups' posts and approved stored posts are
    public (as on the pages); a reply held for moderation only for the group it
    answers (another group's token gets 404)."""
    async with call.node.db.read() as session:
        found = await find(session, value)
        if isinstance(found, RemoteObject) and found.moderation_state != "approved":
            uuid = call.node.urls.local_object_uuid(found.in_reply_to)
            parent = await publishing.get_object(session, uuid) if uuid else None
            if parent is None or call.caller is None or call.caller.group is None or \
                    parent.local_actor_id != call.caller.group.id:
                found = None
    if found is None:
        raise ApiError(NOT_FOUND, 404)
    return found


async def show(call: Call) -> Response:
    """GET /api/v1/statuses/:id"""
    status = await entity(call, await readable(call, call.request.path_params["id"]))
    await mark_own(call.node, call.group.id or 0, [status])
    return JSONResponse(status)


async def _item_of(call: Call, obj: LocalObject) -> NewsItem | None:
    async with call.node.db.read() as session:
        return (await session.exec(select(NewsItem).where(
            NewsItem.object_id == obj.id))).first()


async def source(call: Call) -> Response:
    """GET /api/v1/statuses/:id/source: the text as written (for editing)."""
    obj, _ = await own(call, call.request.path_params["id"])
    item = await _item_of(call, obj)
    if item is not None:
        version = item.versions.get(obj.language) or next(iter(item.versions.values()))
        text, spoiler = markdown_as_plain(version.get("text", "")), version.get("summary", "")
    else:
        text = html_to_plain(obj.contents.get(obj.language, ""))
        spoiler = html_to_plain(obj.summaries.get(obj.language, ""))
    return JSONResponse({"id": call.request.path_params["id"], "text": text,
                         "spoiler_text": spoiler})


async def history(call: Call) -> Response:
    """GET /api/v1/statuses/:id/history: we keep no earlier versions; the current
    one is the only entry (what Mastodon shows for a status never edited)."""
    status = await entity(call, await readable(call, call.request.path_params["id"]))
    return JSONResponse([{key: status[key] for key in (
        "content", "spoiler_text", "sensitive", "account", "media_attachments", "emojis")}
        | {"created_at": status["edited_at"] or status["created_at"], "poll": None}])


async def context(call: Call) -> Response:
    """GET /api/v1/statuses/:id/context: the stored thread around a status."""
    found = await readable(call, call.request.path_params["id"])
    async with call.node.db.read() as session:
        uri = call.node.urls.object(found[0].uuid) if isinstance(found, tuple) else found.uri
        replies = list((await session.exec(select(RemoteObject).where(
            RemoteObject.in_reply_to == uri, col(RemoteObject.deleted).is_(False),
            RemoteObject.moderation_state != "hidden").limit(60))).all())
        local = list((await session.exec(
            select(LocalObject, LocalActor).join(
                LocalActor, col(LocalActor.id) == col(LocalObject.local_actor_id))
            .where(LocalObject.in_reply_to == uri, col(LocalObject.deleted_at).is_(None))
            .limit(60))).all())
        ancestors_local: list[tuple[LocalObject, LocalActor]] = []
        ancestors_remote: list[RemoteObject] = []
        parent = (found[0].in_reply_to if isinstance(found, tuple) else found.in_reply_to
                  or _reply_of(found.data))
        for _ in range(20):
            if not parent:
                break
            uuid = call.node.urls.local_object_uuid(parent)
            if uuid is not None:
                obj = await publishing.get_object(session, uuid)
                actor = await session.get(LocalActor, obj.local_actor_id) if obj else None
                if obj is None or actor is None or obj.deleted_at is not None:
                    break
                ancestors_local.append((obj, actor))
                parent = obj.in_reply_to
            else:
                row = (await session.exec(select(RemoteObject).where(
                    RemoteObject.uri == parent, col(RemoteObject.deleted).is_(False)))).first()
                if row is None:
                    break
                ancestors_remote.append(row)
                parent = row.in_reply_to or _reply_of(row.data)
        before = await render_statuses(session, call.node.urls, ancestors_local,
                                       ancestors_remote)
        after = await render_statuses(session, call.node.urls, local, replies)
    return JSONResponse({"ancestors": [before[k] for k in sorted(before)],
                         "descendants": [after[k] for k in sorted(after)]})


def _reply_of(data: dict[str, Any]) -> str | None:
    value = data.get("inReplyTo")
    return value if isinstance(value, str) else None


# --- changing -----------------------------------------------------------------------


async def edit(call: Call) -> Response:
    """PUT /api/v1/statuses/:id: a news item's version in the status's language (its
    photos replaced when the item has that one version), or a reply's text."""
    obj, _ = await own(call, call.request.path_params["id"])
    text, spoiler, media = await _check_status(call)
    item = await _item_of(call, obj)
    uri = call.node.urls.object(obj.uuid)
    if item is None:
        if media:
            raise ApiError("Validation failed: a reply is a note, without media here")
        await operations.edit_note(call.node, uri, text=text, allowed_actor=call.group.id)
    else:
        language = call.params.text("language", limit=40)
        language = _language(call) if language else obj.language
        await _apply_alt_texts(call, media)
        if set(item.versions) <= {language}:
            await news.replace_item(call.node, uri, _news_body(text, spoiler, language, media),
                                    allowed_actor=call.group.id)
        else:
            version: dict[str, str] = {"text": plain_as_markdown(text)}
            if spoiler:
                version["summary"] = spoiler
            await news.edit_version(call.node, uri, language, version,
                                    allowed_actor=call.group.id)
    return JSONResponse(await _by_uri(call, uri))


async def _apply_alt_texts(call: Call, media: list[MediaFile]) -> None:
    """``media_attributes[][id|description]`` of an edit (Mastodon 4.1+), as JSON."""
    given = call.params.values.get("media_attributes")
    if not isinstance(given, list):
        return
    by_id = {str(m.id): m for m in media}
    async with call.node.db.write() as session:
        for attrs in given[:MAX_MEDIA]:
            if isinstance(attrs, dict) and str(attrs.get("id")) in by_id and isinstance(
                    attrs.get("description"), str):
                row = await session.get(MediaFile, by_id[str(attrs["id"])].id)
                if row is not None:
                    row.description = attrs["description"][:items.MAX_ALT]
                    by_id[str(attrs["id"])].description = row.description
                    session.add(row)


async def delete(call: Call) -> Response:
    """DELETE /api/v1/statuses/:id: answers the status with its ``text`` (what
    "delete and redraft" puts back in the composer)."""
    found = await own(call, call.request.path_params["id"])
    status = await entity(call, found)
    uri = call.node.urls.object(found[0].uuid)
    item = await _item_of(call, found[0])
    if item is not None:
        version = item.versions.get(found[0].language) or {}
        status["text"] = markdown_as_plain(version.get("text", ""))
        await news.delete_item(call.node, uri, allowed_actor=call.group.id)
    else:
        status["text"] = html_to_plain(found[0].contents.get(found[0].language, ""))
        await operations.delete_post(call.node, uri, allowed_actor=call.group.id)
    return JSONResponse(status)


def _pin(pinned: bool) -> Any:
    async def pin(call: Call) -> Response:
        obj, _ = await own(call, call.request.path_params["id"])
        await operations.pin(call.node, call.node.urls.object(obj.uuid), pinned=pinned,
                             allowed_actor=call.group.id)
        return JSONResponse(await _by_uri(call, call.node.urls.object(obj.uuid)))

    return pin


routes = [
    Route("/api/v1/statuses", endpoint(create, scope="write:statuses"), methods=["POST"]),
    Route("/api/v1/statuses/{id}", endpoint(show, scope="read:statuses"), methods=["GET"]),
    Route("/api/v1/statuses/{id}", endpoint(edit, scope="write:statuses"), methods=["PUT"]),
    Route("/api/v1/statuses/{id}", endpoint(delete, scope="write:statuses"),
          methods=["DELETE"]),
    Route("/api/v1/statuses/{id}/context", endpoint(context, scope="read:statuses"),
          methods=["GET"]),
    Route("/api/v1/statuses/{id}/source", endpoint(source, scope="read:statuses"),
          methods=["GET"]),
    Route("/api/v1/statuses/{id}/history", endpoint(history, scope="read:statuses"),
          methods=["GET"]),
    Route("/api/v1/statuses/{id}/pin", endpoint(_pin(True), scope="write:accounts"),
          methods=["POST"]),
    Route("/api/v1/statuses/{id}/unpin", endpoint(_pin(False), scope="write:accounts"),
          methods=["POST"]),
]
