"""The shared layer of every HTML page: the Jinja environment (autoescape, gettext),
the response headers (CSP, no referrer), the reader's language, and the small pages
(front page, tags, errors, the stylesheet).

Jinja2 autoescapes every value, so remote names and our own titles are always shown
as plain text; post bodies are already sanitised HTML (node/core/text.py).
Templates translate with ``{{ _("…") }}`` / ``ngettext`` (node/web/i18n.py);
the page's language is set around each render (docs/ARCHITECTURE.md#8-the-public-site).
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from node.core import calendars
from node.core.languages import autonym
from node.core.urls import INSTANCE_USERNAME
from node.federation import local_actors as groups
from node.federation.runtime import Node
from node.storage.models import LocalActor, LocalObject
from node.web import i18n
from node.web.i18n import N_, direction

if TYPE_CHECKING:
    from jinja2 import Environment

STATIC_DIR = Path(__file__).parent / "static"
# Nothing inline and nothing from elsewhere: one stylesheet of ours, our own images,
# forms only to this node, no scripts at all (issue 14, point 1).
PAGE_CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
            "base-uri 'none'; frame-ancestors 'none'; object-src 'none'")
PAGE_HEADERS = {
    "Vary": "Accept, Accept-Language, Cookie",
    "Content-Security-Policy": PAGE_CSP,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


@dataclass(frozen=True)
class Site:
    """What every page's footer says about where else it can be read
    (docs/ARCHITECTURE.md#10-readers-behind-censorship): the original address, the onion
    address, the key that signs static mirrors, and whether this is a mirror's copy."""

    origin: str
    onion: str = ""
    mirror_key: str = ""
    mirror: bool = False


# Set by the app for each request (node/app.py): a page cached by one node is only ever
# served by that node, so the footer in a cached page stays right.
SITE: ContextVar[Site | None] = ContextVar("site", default=None)


@functools.cache
def _environment() -> Environment:
    # Built on the first page, not at import: jinja2 is ~2 MB a node that serves only
    # federation traffic never needs (idle RSS, docs/ARCHITECTURE.md#7-the-read-path).
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=select_autoescape(["html"]),
        enable_async=False,
        extensions=["jinja2.ext.i18n"],
    )
    # newstyle: ``_("%(n)s posts", n=3)`` formats and escapes like Jinja's own output.
    env.install_gettext_callables(  # type: ignore[attr-defined]
        i18n.gettext_, i18n.ngettext_, newstyle=True)
    env.filters["when"] = when
    env.filters["day"] = day
    env.filters["digits"] = local_digits
    env.globals["direction"] = direction
    env.globals["stylesheet"] = stylesheet_url()
    env.globals["autonym"] = autonym
    return env


@functools.cache
def _stylesheet() -> tuple[bytes, str]:
    body = (STATIC_DIR / "site.css").read_bytes()
    return body, hashlib.sha256(body).hexdigest()[:12]


def stylesheet_url() -> str:
    # The hash in the URL lets the file be cached for a year and still change.
    return f"/static/site.css?v={_stylesheet()[1]}"


async def stylesheet(request: Request) -> Response:
    body, _ = _stylesheet()
    return Response(body, media_type="text/css", headers={
        "Cache-Control": "public, max-age=31536000, immutable",
        "X-Content-Type-Options": "nosniff"})


async def favicon(request: Request) -> Response:
    # Browsers ask for it on every site; answered empty (and cached) rather than a 404
    # page rendered each time.
    return Response(status_code=204, headers={"Cache-Control": "public, max-age=86400"})


def when(moment: datetime, language: str | None = None, tz_name: str | None = None) -> str:
    """A date and time in the reader's calendar (core/calendars.py); UTC unless a zone
    is given, and said so."""
    lang = language or i18n.current()
    return f"{calendars.format_datetime(moment, lang, tz_name or 'UTC')} ({tz_name or 'UTC'})"


def day(moment: datetime, language: str | None = None, tz_name: str | None = None) -> str:
    return calendars.format_date(moment, language or i18n.current(), tz_name=tz_name)


def local_digits(value: object, language: str | None = None) -> str:
    """A number in the reader's digits (Persian ۴۰۰ on a Persian page)."""
    return calendars.digits(str(value), language or i18n.current())


def versions(mapping: dict[str, str], primary: str) -> list[dict[str, Any]]:
    ordered = sorted(mapping.items(), key=lambda kv: kv[0] != primary)
    return [{"lang": k, "dir": direction(k), "html": Markup(v)} for k, v in ordered]  # noqa: S704 - sanitised on the way in


def reader_language(request: Request, default: str | None = None) -> tuple[str, bool]:
    return i18n.choose(request.query_params, request.cookies,
                       request.headers.get("accept-language", ""), default)


def reader_preference(request: Request) -> tuple[str | None, bool]:
    """The reader's own choice before any page default (a cache key part)."""
    return i18n.preference(request.query_params, request.cookies,
                           request.headers.get("accept-language", ""))


def render(template: str, status_code: int = 200, *, language: str | None = None,
           set_language_cookie: bool = False, **context: Any) -> HTMLResponse:
    lang = language or i18n.DEFAULT
    with i18n.using(lang):
        # The caller's values win: the workspace's editor passes its own
        # ``languages`` (the post's versions), not the interface's.
        values: dict[str, Any] = {"ui_lang": lang, "ui_dir": direction(lang),
                                  "languages": i18n.available(), "site": SITE.get(),
                                  **context}
        html = _environment().get_template(template).render(**values)
    response = html_response(html.encode(), status_code)
    if set_language_cookie:
        remember_language(response, lang)
    return response


def render_for(request: Request, template: str, status_code: int = 200, *,
               default_language: str | None = None, **context: Any) -> HTMLResponse:
    """``render`` in the reader's language (choice > cookie > Accept-Language >
    ``default_language`` > English), remembering an explicit ``?lang=`` choice.
    The one call other HTML surfaces (the editors' workspace) need."""
    language, remember = reader_language(request, default_language)
    return render(template, status_code, language=language, set_language_cookie=remember,
                  **context)


def remember_language(response: Response, language: str) -> None:
    response.set_cookie(i18n.COOKIE, language, max_age=i18n.COOKIE_MAX_AGE, path="/",
                        samesite="lax", httponly=True)


def html_response(body: bytes, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status_code, headers=PAGE_HEADERS)


def render_error(request: Request, status_code: int, message: str) -> Response:
    node: Node = request.app.state.node
    language, _ = reader_language(request)
    return render("error.html", status_code=status_code, message=message,
                  host=node.settings.host, language=language)


def group_entry(node: Node, actor: LocalActor) -> dict[str, Any]:
    return {"actor": actor, "url": node.urls.actor(actor.username),
            "avatar": node.urls.media(actor.icon_path or f"avatars/{actor.username}.png"),
            "handle": f"@{actor.username}@{node.settings.host}"}


async def index(request: Request) -> Response:
    from node.web import listings

    node: Node = request.app.state.node
    language, remember = reader_language(request)
    key = ("front-page", language)
    cached = node.doc_cache.get(key)
    if cached is None:
        async with node.db.read() as session:
            all_groups = await groups.list_groups(session)
            by_id = {g.id: g for g in all_groups}
            upcoming = await listings.upcoming_calls(session, None, limit=10)
            news = await listings.latest_news(session, None, limit=10)
        response = render(
            "index.html", language=language,
            groups=[group_entry(node, g) for g in all_groups],
            calls=[listings.call_entry(node, obj, ev, by_id.get(obj.local_actor_id), language)
                   for obj, ev in upcoming],
            news=[listings.post_entry(node, obj, language, by_id.get(obj.local_actor_id),
                                      kind=kind) for obj, kind in news],
            host=node.settings.host, page_url=node.urls.base + "/",
            # The node itself as ActivityPub sees it: its instance actor.
            ap_url=node.urls.actor(INSTANCE_USERNAME),
        )
        # Short-lived: "upcoming" changes with the clock, not only with the database.
        node.doc_cache.put_raw(key, bytes(response.body), ttl=60)
        cached = bytes(response.body)
    out = html_response(cached)
    if remember:
        remember_language(out, language)
    return out


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
    from node.web import listings

    node: Node = request.app.state.node
    tag = request.path_params["tag"]
    if not re.fullmatch(r"\w{1,100}", tag):
        return render_error(request, 404, N_("no such tag"))
    language, remember = reader_language(request)
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
    posts = [listings.post_entry(node, o, language, actors[o.local_actor_id])
             for o in found if o.local_actor_id in actors]
    return render("tag.html", tag=tag, posts=posts, host=node.settings.host,
                  language=language, set_language_cookie=remember,
                  page_url=f"{node.urls.base}/tags/{tag}")
