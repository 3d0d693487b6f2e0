"""What the public pages list: upcoming and past calls, news, a group's posts by page,
and the small dicts templates draw them from (one version per post: the reader's
language, else the post's own; never every language stacked).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from node.core import calendars
from node.core.text import html_to_plain
from node.federation.runtime import Node
from node.storage.db import utcnow
from node.storage.models import Event, LocalActor, LocalObject, NewsItem
from node.web.i18n import direction

PAGE_SIZE = 20
MAX_PAGE = 1000  # deeper pages are refused: a crawler cannot make us OFFSET a million rows
EXCERPT = 280


def _visible(actor_id: int | None) -> list[Any]:
    clauses: list[Any] = [col(LocalObject.deleted_at).is_(None)]
    if actor_id is not None:
        clauses.append(LocalObject.local_actor_id == actor_id)
    return clauses


async def upcoming_calls(session: AsyncSession, actor_id: int | None, *, limit: int
                         ) -> list[tuple[LocalObject, Event]]:
    """Calls not over yet (their end, or their start when they have none), soonest first."""
    ends = func.coalesce(col(Event.end_time), col(Event.start_time))
    rows = await session.exec(
        select(LocalObject, Event).join(Event, col(Event.object_id) == col(LocalObject.id))
        .where(*_visible(actor_id), ends >= utcnow())
        .order_by(col(Event.start_time)).limit(limit))
    return [(obj, event) for obj, event in rows.all()]


async def past_calls(session: AsyncSession, actor_id: int | None, *, limit: int
                     ) -> list[tuple[LocalObject, Event]]:
    ends = func.coalesce(col(Event.end_time), col(Event.start_time))
    rows = await session.exec(
        select(LocalObject, Event).join(Event, col(Event.object_id) == col(LocalObject.id))
        .where(*_visible(actor_id), ends < utcnow())
        .order_by(col(Event.start_time).desc()).limit(limit))
    return [(obj, event) for obj, event in rows.all()]


async def latest_news(session: AsyncSession, actor_id: int | None, *, limit: int
                      ) -> list[tuple[LocalObject, str]]:
    """News items and bulletins, newest first: (object, "item" | "bulletin")."""
    rows = await session.exec(
        select(LocalObject, NewsItem.kind)
        .join(NewsItem, col(NewsItem.object_id) == col(LocalObject.id))
        .where(*_visible(actor_id))
        .order_by(col(LocalObject.published).desc()).limit(limit))
    return [(obj, kind) for obj, kind in rows.all()]


async def posts_page(session: AsyncSession, actor_id: int, page: int
                     ) -> tuple[list[LocalObject], bool]:
    """One page of a group's posts, newest first, and whether an older page exists."""
    rows = await session.exec(
        select(LocalObject).where(*_visible(actor_id))
        .order_by(col(LocalObject.published).desc(), col(LocalObject.id).desc())
        .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1))
    found = list(rows.all())
    return found[:PAGE_SIZE], len(found) > PAGE_SIZE


async def post_uuids(session: AsyncSession, actor_id: int) -> list[str]:
    """Every post's uuid in ``posts_page``'s order (page N holds items (N-1)*PAGE_SIZE
    onwards): one query where a static mirror would otherwise ask page by page."""
    rows = await session.exec(
        select(LocalObject.uuid).where(*_visible(actor_id))
        .order_by(col(LocalObject.published).desc(), col(LocalObject.id).desc()))
    return list(rows.all())


def pick(mapping: dict[str, str], language: str, primary: str) -> tuple[str, str] | None:
    for lang in (language, primary):
        if mapping.get(lang):
            return lang, mapping[lang]
    return next(((k, v) for k, v in mapping.items() if v), None)


BLOCK_END_RE = re.compile(r"</(?:p|h[1-6]|li|div|blockquote)>|<br\s*/?>", re.IGNORECASE)


def _short(html: str, title: str | None) -> str:
    # Block ends become spaces, or a heading and the next paragraph run together.
    text = " ".join(html_to_plain(BLOCK_END_RE.sub(" ", html)).split())
    if title and text.startswith(title):  # news content repeats its title (news/items.py)
        text = text[len(title):].lstrip()
    return text if len(text) <= EXCERPT else text[:EXCERPT].rsplit(" ", 1)[0] + " …"


def post_entry(node: Node, obj: LocalObject, language: str, actor: LocalActor | None,
               *, kind: str | None = None) -> dict[str, Any]:
    title = pick(obj.names, language, obj.language)
    body = pick(obj.contents, language, obj.language)
    lang = (title or body or (obj.language, ""))[0]
    return {
        "url": node.urls.object(obj.uuid), "lang": lang, "dir": direction(lang),
        "title": title[1] if title else None,
        "excerpt": _short(body[1], title[1] if title else None) if body else "",
        "published": obj.published, "kind": kind or obj.object_type.lower(),
        "group": actor.display_name if actor else None,
        "group_url": node.urls.actor(actor.username) if actor else None,
    }


def place_line(event: Event) -> str:
    if not event.place:
        return ""
    parts = [event.place.get(k) for k in ("name", "street", "city", "country")]
    return ", ".join(str(p) for p in parts if p)


def call_entry(node: Node, obj: LocalObject, event: Event, actor: LocalActor | None,
               language: str) -> dict[str, Any]:
    entry = post_entry(node, obj, language, actor, kind="call")
    entry.update({
        "when": calendars.format_datetime(event.start_time, language, event.timezone),
        "start": event.start_time, "timezone": event.timezone,
        "place": place_line(event), "status": event.status,
    })
    return entry
