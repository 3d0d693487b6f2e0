"""HTML pages for people with browsers. Jinja2 autoescapes every value, so
remote names and our own titles are always shown as plain text; post bodies
are already sanitised HTML.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from node.federation import local_actors as groups
from node.federation.runtime import Node
from node.storage.models import LocalActor, LocalObject

if TYPE_CHECKING:
    from jinja2 import Environment

RTL_LANGUAGES = frozenset({"fa", "ar", "ckb", "he", "ur", "ps", "yi", "sd", "ug", "dv"})


@functools.cache
def _environment() -> Environment:
    # Built on the first page, not at import: jinja2 is ~2 MB a node that serves only
    # federation traffic never needs (idle RSS, docs/ARCHITECTURE.md#7-the-read-path).
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=select_autoescape(["html"]),
        enable_async=False,
    )
    env.filters["when"] = when
    # Interface strings are wrapped in _(); the gettext catalogues replace this identity.
    env.globals.setdefault("_", lambda text, **values: text % values if values else text)
    return env


def direction(language: str) -> str:
    return "rtl" if language.split("-")[0] in RTL_LANGUAGES else "ltr"


def when(moment: datetime, language: str) -> str:
    """A date and time in the reader's language and script where Babel knows it
    (``1 دسامبر 2026، 14:05``), else ISO-like; always UTC, and said so."""
    from babel.core import UnknownLocaleError
    from babel.dates import format_datetime

    try:
        shown = format_datetime(moment, "medium", tzinfo=UTC,
                                locale=language.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        shown = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    return f"{shown} UTC"



def _versions(mapping: dict[str, str], primary: str) -> list[dict[str, Any]]:
    ordered = sorted(mapping.items(), key=lambda kv: kv[0] != primary)
    return [{"lang": k, "dir": direction(k), "html": Markup(v)} for k, v in ordered]  # noqa: S704 - sanitised on the way in


def render(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    html = _environment().get_template(template).render(direction=direction, **context)
    return html_response(html.encode(), status_code)


def html_response(body: bytes, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status_code, headers={
        "Vary": "Accept",
        "Content-Security-Policy": "default-src 'self'; img-src 'self' https: data:; "
                                   "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    })


def render_error(request: Request, status_code: int, message: str) -> Response:
    node: Node = request.app.state.node
    return render("error.html", status_code=status_code, message=message,
                  host=node.settings.host)


async def actor_page(request: Request, actor: LocalActor) -> Response:
    node: Node = request.app.state.node
    from sqlmodel import col, select

    async with node.db.read() as session:
        rows = await session.exec(
            select(LocalObject)
            .where(LocalObject.local_actor_id == actor.id, col(LocalObject.deleted_at).is_(None))
            .order_by(col(LocalObject.published).desc())
            .limit(20)
        )
        posts = list(rows.all())
    return render(
        "actor.html",
        actor=actor,
        handle=f"@{actor.username}@{node.settings.host}",
        actor_url=node.urls.actor(actor.username),
        names=actor.names,
        summaries=_versions(actor.summaries, actor.language),
        posts=[{"obj": p, "url": node.urls.object(p.uuid),
                "versions": _versions(p.contents, p.language)} for p in posts],
        host=node.settings.host,
    )


async def object_page(request: Request, actor: LocalActor, obj: LocalObject,
                      details: dict[str, str] | None = None) -> Response:
    node: Node = request.app.state.node
    return render(
        "object.html",
        actor=actor,
        actor_url=node.urls.actor(actor.username),
        obj=obj,
        titles=[{"lang": k, "dir": direction(k), "text": v}
                for k, v in sorted(obj.names.items(), key=lambda kv: kv[0] != obj.language)],
        details=[{"lang": k, "dir": direction(k), "text": v} for k, v in (details or {}).items()],
        ics_url=node.urls.object(obj.uuid) + "/calendar.ics" if details is not None else None,
        versions=_versions(obj.contents, obj.language),
        host=node.settings.host,
    )


async def index(request: Request) -> Response:
    node: Node = request.app.state.node
    async with node.db.read() as session:
        all_groups = await groups.list_groups(session)
    return render(
        "index.html",
        groups=[{"actor": g, "url": node.urls.actor(g.username),
                 "handle": f"@{g.username}@{node.settings.host}"} for g in all_groups],
        host=node.settings.host,
    )


# How many recent posts the tag page looks through: tags live inside each
# post's JSON (``tag``, or the event's hashtags), which no index covers.
TAG_SCAN = 2000
TAG_SHOWN = 50


def _tags_of(obj: LocalObject, event_tags: Sequence[str] | None) -> set[str]:
    tags = {t.lower() for t in event_tags or []}
    for item in obj.extra.get("tag") or []:
        if isinstance(item, dict) and item.get("type") == "Hashtag":
            tags.add(str(item.get("name", "")).removeprefix("#").lower())
    return tags


async def tag_page(request: Request) -> Response:
    """Local public posts with a hashtag, newest first (hashtag links point here)."""
    from sqlmodel import col, select

    from node.storage.models import Event

    node: Node = request.app.state.node
    tag = request.path_params["tag"]
    if not re.fullmatch(r"\w{1,100}", tag):
        return render_error(request, 404, "no such tag")
    wanted = tag.lower()
    async with node.db.read() as session:
        objects = list((await session.exec(
            select(LocalObject).where(col(LocalObject.deleted_at).is_(None))
            .order_by(col(LocalObject.published).desc()).limit(TAG_SCAN))).all())
        ids = [o.id for o in objects if o.object_type == "Event"]
        event_tags = dict((await session.exec(
            select(Event.object_id, Event.hashtags).where(col(Event.object_id).in_(ids))
        )).all()) if ids else {}
        found = [o for o in objects
                 if wanted in _tags_of(o, event_tags.get(o.id or 0))][:TAG_SHOWN]
        actors = {a.id: a for a in await groups.list_groups(session)}
    posts = [{"obj": o, "actor": actors[o.local_actor_id],
              "actor_url": node.urls.actor(actors[o.local_actor_id].username),
              "url": node.urls.object(o.uuid),
              "titles": [{"lang": k, "dir": direction(k), "text": v}
                         for k, v in sorted(o.names.items(), key=lambda kv: kv[0] != o.language)],
              "versions": _versions(o.contents, o.language)}
             for o in found if o.local_actor_id in actors]
    return render("tag.html", tag=tag, posts=posts, host=node.settings.host)
