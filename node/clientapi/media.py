"""Media: ``POST /api/v2/media`` and ``/api/v1/media``, ``GET|PUT /api/v1/media/:id``.

An upload goes through the one pipeline every image takes (node/media/uploads.py:
re-encoded without metadata, variants, blurhash) and belongs to the token's group;
its ``description`` (alt text) goes into the post that uses it."""

from __future__ import annotations

from sqlmodel import col, select
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from node.clientapi.context import Call, endpoint
from node.clientapi.entities import media_entity
from node.clientapi.params import NOT_FOUND, ApiError
from node.groups import operations
from node.media import uploads
from node.news.items import MAX_ALT
from node.storage.models import MediaFile


def _description(call: Call) -> str | None:
    text = call.params.text("description", limit=MAX_ALT * 4)
    if text is not None and len(text) > MAX_ALT:
        raise ApiError(f"Validation failed: Description is longer than {MAX_ALT} characters")
    return text.strip() if text is not None else None


def _focus(call: Call) -> tuple[float, float] | None:
    text = call.params.text("focus", limit=100)
    if not text:
        return None
    try:
        return uploads.parse_focus(text)
    except uploads.UploadError as exc:
        raise ApiError(f"Validation failed: {exc}") from exc


async def _entity(call: Call, media: MediaFile) -> dict[str, object]:
    async with call.node.db.read() as session:
        preview = (await session.exec(select(MediaFile).where(
            MediaFile.variant_of == media.id).order_by(col(MediaFile.width)))).first()
    return media_entity(media, call.node.urls, preview=preview)


async def upload(call: Call) -> Response:
    upload_file = call.params.file("file")
    if upload_file is None:
        raise ApiError("Validation failed: File can't be blank")
    data = await upload_file.read(uploads.MAX_UPLOAD + 1)
    description, focus = _description(call), _focus(call)
    original, _ = await operations.upload_media_files(call.node, data, group=call.group.username,
                                                      focus=focus)
    if description:
        async with call.node.db.write() as session:
            row = await session.get(MediaFile, original.id)
            assert row is not None
            row.description = description
            session.add(row)
        original.description = description
    # Processed at once: 200 (Mastodon answers 202 while it still converts).
    return JSONResponse(await _entity(call, original))


async def _own(call: Call) -> MediaFile:
    value = call.request.path_params["id"]
    async with call.node.db.read() as session:
        media = await session.get(MediaFile, int(value)) if value.isdigit() and \
            len(value) < 18 else None
    if media is None or media.variant_of is not None or media.local_actor_id != call.group.id:
        raise ApiError(NOT_FOUND, 404)
    return media


async def show(call: Call) -> Response:
    return JSONResponse(await _entity(call, await _own(call)))


async def update(call: Call) -> Response:
    media = await _own(call)
    description, focus = _description(call), _focus(call)
    async with call.node.db.write() as session:
        row = await session.get(MediaFile, media.id)
        assert row is not None
        if description is not None:
            row.description = description
        if focus is not None:
            row.focus_x, row.focus_y = focus
        session.add(row)
    return JSONResponse(await _entity(call, await _own(call)))


routes = [
    Route("/api/v2/media", endpoint(upload, scope="write:media", uploads=True),
          methods=["POST"]),
    Route("/api/v1/media", endpoint(upload, scope="write:media", uploads=True),
          methods=["POST"]),
    Route("/api/v1/media/{id}", endpoint(show, scope="read:statuses"), methods=["GET"]),
    Route("/api/v1/media/{id}", endpoint(update, scope="write:media"), methods=["PUT"]),
]
