"""Other nodes' campaigns in our lists (issue 16, point 5): campaign ``Article``s of
actors our groups or networks follow, as ``federation/remote_posts.py`` stored them
(bounded, sanitised, the campaign terms checked there), turned into list rows.

Only objects addressed to the public are rows: a campaign another node sent to a
network's members only (``network_only``) or to us alone is kept in the store but
never listed, whoever asks. An Update of the owner changes the stored row, a Delete
tombstones it (remote_posts), so the list follows both at its next read.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from node.campaigns import detention, render
from node.core.jsonsafe import as_id, as_list
from node.core.text import html_to_plain
from node.federation.vocabulary import addressed_to_public, iso
from node.storage.models import Following, RemoteActor, RemoteObject
from node.storage.states import FollowingState

# Newest remote Articles looked through per list: their campaign terms live in the
# row's JSON, which no index covers (a peer cannot make a list read more than this).
SCAN = 2000
SUMMARY_CHARS = 300


def _text(data: dict[str, Any], key: str, language: str | None) -> tuple[str, str | None]:
    """Plain text of ``key`` (or its map) and its language: ``language`` first."""
    mapping = data.get(key + "Map")
    if isinstance(mapping, dict) and mapping:
        lang = language if language in mapping else next(iter(mapping))
        value = mapping.get(lang)
        if isinstance(value, str):
            return value, lang
    value = data.get(key)
    return (value, None) if isinstance(value, str) else ("", None)


def row(remote: RemoteObject, actor: RemoteActor | None, *, today: date,
        language: str | None = None) -> dict[str, Any] | None:
    """A list row from a stored remote campaign, or None when it is not one we list."""
    data = remote.data
    status = data.get("campaignStatus")
    if remote.deleted or status not in render.STATUS_LABELS["en"] or not addressed_to_public(data) \
            or data.get("consent") == "network_only":  # fail closed, whatever the addressing
        return None
    uri = as_id(data.get("id")) or remote.uri
    name, name_lang = _text(data, "name", language)
    summary, _ = _text(data, "summary", name_lang or language)
    lang = name_lang or "und"
    record = [p for p in as_list(data.get("detention")) if isinstance(p, dict)]
    try:
        days = detention.days_in_detention(record, today=today)
    except (KeyError, TypeError, ValueError):  # stored before the terms were checked
        days = 0
    host = urlsplit(remote.actor_uri).netloc
    group_name = (actor.display_name or actor.username) if actor is not None else None
    country = data.get("country")
    return {
        "id": uri, "url": as_id(data.get("url")) or uri,
        "name": " ".join(html_to_plain(name).split())[:200] or uri,
        "language": lang, "status": status,
        "status_label": render.status_label(str(status), lang),
        "country": country if isinstance(country, str) else None,
        "group": None, "group_name": group_name or host,
        "group_url": remote.actor_uri, "host": host, "remote": True,
        "days": days,
        "summary": " ".join(html_to_plain(summary).split())[:SUMMARY_CHARS],
        "updated": iso(remote.received_at),
    }


async def followed(session: AsyncSession) -> set[str]:
    """Actors one of our groups or networks follows now (the follow accepted)."""
    rows = await session.exec(select(Following.target_uri).where(
        col(Following.state) == FollowingState.ACCEPTED))
    return set(rows.all())


async def rows(session: AsyncSession, actor_uris: Collection[str], *, today: date,
               language: str | None = None) -> list[dict[str, Any]]:
    """Public campaign rows of these remote actors, newest stored first."""
    if not actor_uris:
        return []
    found = (await session.exec(select(RemoteObject).where(
        col(RemoteObject.actor_uri).in_(list(actor_uris)),
        RemoteObject.object_type == "Article", col(RemoteObject.in_reply_to).is_(None),
        col(RemoteObject.deleted).is_(False), RemoteObject.moderation_state == "approved",
    ).order_by(col(RemoteObject.id).desc()).limit(SCAN))).all()
    authors = {r.actor_uri for r in found}
    actors = {a.uri: a for a in (await session.exec(select(RemoteActor).where(
        col(RemoteActor.uri).in_(list(authors))))).all()} if authors else {}
    out = []
    for remote in found:
        made = row(remote, actors.get(remote.actor_uri), today=today, language=language)
        if made is not None:
            out.append(made)
    return out
