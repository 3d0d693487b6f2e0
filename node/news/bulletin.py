"""The bulletin: a numbered digest of a group's news items (issue 13, point 4).

``hambastegi bulletin publish GROUP`` gathers the items published since the
last bulletin into bulletin N+1: an ``Article`` with one version per language
the items are written in — "Bulletin no. 12 — 1-7 December 2026" and a linked
list of the titles in that language — published like any item, so each
language channel posts its language's version as an Article of its own, and
the bulletin has its page and its feed entry. Numbers come from the
``news_bulletin`` rows, which stay when a bulletin is deleted: a number is
never given twice (the unique constraint settles two publishers racing).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from node.core import calendars
from node.federation import publishing
from node.federation.runtime import Node
from node.groups.operations import OperationError
from node.news import channels
from node.news import operations as news
from node.news.items import Version, excerpt
from node.storage.db import utcnow
from node.storage.models import LocalActor, LocalObject, NewsBulletin, NewsItem

# "Bulletin no. {n}" in the network's languages; English otherwise.
HEADINGS = {
    "en": "Bulletin no. {n}", "de": "Bulletin Nr. {n}", "fr": "Bulletin nº {n}",
    "sv": "Nyhetsbrev nr {n}", "tr": "Bülten no. {n}", "fa": "خبرنامهٔ شمارهٔ {n}",
    "ar": "النشرة رقم {n}", "ckb": "بڵاوکراوەی ژمارە {n}", "kmr": "Bultena hejmar {n}",
}
MARKDOWN_PUNCTUATION_RE = re.compile(r"([!-/:-@\[-`{-~])")
MAX_ITEMS = 200


def heading(number: int, start: datetime, end: datetime, language: str) -> str:
    """"Bulletin no. 12 — 1-7 December 2026", number and dates in the reader's calendar
    and digits (Solar Hijri beside the Gregorian span in Persian: core/calendars.py)."""
    words = HEADINGS.get(language.split("-")[0], HEADINGS["en"])
    shown = calendars.format_number(number, language)
    return f"{words.format(n=shown)} — {calendars.format_period(start, end, language)}"


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


def _literal(text: str) -> str:
    """Plain text as Markdown that renders as exactly that text."""
    return MARKDOWN_PUNCTUATION_RE.sub(r"\\\1", " ".join(text.split()))


def versions_for(number: int, start: datetime, end: datetime, primary: str,
                 entries: list[tuple[str, NewsItem, str]]) -> dict[str, Version]:
    """One version per language of the items: the heading and the items written in it.
    ``entries``: (item id, item, item's primary language), oldest first."""
    languages: list[str] = []
    for _, item, item_primary in entries:
        for lang in [item_primary, *item.versions]:
            if lang not in languages:
                languages.append(lang)
    if primary in languages:
        languages.remove(primary)
        languages.insert(0, primary)
    versions = {}
    for lang in languages:
        lines = []
        for item_id, item, item_primary in entries:
            version = item.versions.get(lang)
            if version is None:
                continue
            title = version.get("title") or _short(excerpt(version["text"]))
            href = item_id if lang == item_primary else f"{item_id}#v-{lang}"
            lines.append(f"- [{_literal(title)}](<{href}>)")
        versions[lang] = Version(title=heading(number, start, end, lang),
                                 text="\n".join(lines))
    return versions


async def _last(session: AsyncSession, group: LocalActor) -> NewsBulletin | None:
    return (await session.exec(
        select(NewsBulletin).where(NewsBulletin.group_id == group.id)
        .order_by(col(NewsBulletin.number).desc()))).first()


async def _items_between(session: AsyncSession, group: LocalActor, start: datetime | None,
                         end: datetime) -> list[tuple[LocalObject, NewsItem]]:
    query = (select(LocalObject, NewsItem)
             .join(NewsItem, NewsItem.object_id == LocalObject.id)  # type: ignore[arg-type]
             .where(LocalObject.local_actor_id == group.id, NewsItem.kind == "item",
                    col(LocalObject.deleted_at).is_(None), col(LocalObject.published) <= end)
             .order_by(col(LocalObject.published), col(LocalObject.id)).limit(MAX_ITEMS))
    if start is not None:
        query = query.where(col(LocalObject.published) > start)
    return [(obj, item) for obj, item in (await session.exec(query)).all()]


def parse_since(value: Any) -> datetime | None:
    if value is None:
        return None
    from datetime import UTC

    try:
        since = datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise OperationError(f"--since must be an ISO 8601 date such as 2026-12-01, "
                             f"got {str(value)[:40]!r}") from exc
    return since.replace(tzinfo=UTC) if since.tzinfo is None else since.astimezone(UTC)


# Called inside the bulletin's transaction with (session, group, number, the
# versions {lang: {"title", "text"}}, the bulletin's URL): the mail layer queues its
# mails there (node/mail/queue.on_bulletin), so bulletin and mails commit together.
OnPublished = Callable[[AsyncSession, LocalActor, int, dict[str, Any], str], Awaitable[object]]


async def publish(node: Node, username: str, *, since: Any = None,
                  on_published: OnPublished | None = None) -> tuple[int, str]:
    """Bulletin N+1 of the items since the last one (or ``since``); (number, id)."""
    start_override = parse_since(since)
    async with node.db.write() as session:
        group = await channels.source_group(
            session, username, f"{username} is a language channel; publish from its group")
        last = await _last(session, group)
        end = utcnow()
        start = start_override or (last.period_end if last is not None else None)
        found = await _items_between(session, group, start, end)
        if not found:
            raise OperationError("no news items since the last bulletin: nothing to publish")
        number = (last.number if last is not None else 0) + 1
        period_start = start or found[0][0].published
        entries = [(node.urls.object(obj.uuid), item, obj.language) for obj, item in found]
        versions = versions_for(number, period_start, end, group.language, entries)
        primary = next(iter(versions))
        obj = LocalObject(uuid=publishing.new_uuid(), local_actor_id=group.id or 0,
                          language=primary)
        session.add(obj)
        await session.flush()
        item = NewsItem(object_id=obj.id or 0, kind="bulletin",
                        versions={k: v.as_json() for k, v in versions.items()})
        session.add(NewsBulletin(group_id=group.id or 0, number=number, object_id=obj.id or 0,
                                 period_start=period_start, period_end=end,
                                 item_ids=[o.id or 0 for o, _ in found]))
        await news.publish_new(session, node.urls, group, obj, item)
        if on_published is not None:
            await on_published(session, group, number, item.versions,
                               node.urls.object(obj.uuid))
    node.changed()
    return number, node.urls.object(obj.uuid)

