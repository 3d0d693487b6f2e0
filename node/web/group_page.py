"""A group's public page: profile, how to follow it, upcoming and past calls, news,
and its posts twenty a page (``?page=2`` …).

The first page is cached per (group, reader's language) like the JSON documents
(node/core/cache.py): a change anywhere clears it, and a short lifetime moves a call
from "upcoming" to "past" as the clock passes (docs/ARCHITECTURE.md#7-the-read-path).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from node.federation import local_actors as groups
from node.federation.runtime import Node
from node.mail import subscriptions
from node.networks import members as networks
from node.web import listings, pages
from node.web import networks as network_views
from node.web.i18n import N_, direction, resolve

CALLS_SHOWN = 20
PAST_SHOWN = 10
NEWS_SHOWN = 10
PAGE_TTL = 30.0


def page_number(raw: str | None) -> int | None:
    """``?page=`` as 1…MAX_PAGE; None for anything else (answered 404)."""
    if raw is None or raw == "":
        return 1
    if not raw.isascii() or not raw.isdigit() or len(raw) > 4:
        return None
    number = int(raw)
    return number if 1 <= number <= listings.MAX_PAGE else None


async def respond(request: Request, username: str) -> Response:
    node: Node = request.app.state.node
    number = page_number(request.query_params.get("page"))
    if number is None:
        return pages.render_error(request, 404, N_("no such page"))
    preferred, remember = pages.reader_preference(request)
    # Only the first page is cached: deeper ones are rarely read, and a crawler walking
    # a thousand of them must not fill the cache with pages (MAX_ENTRIES, cache.py).
    key = ("actor-page", username, preferred)
    body = node.doc_cache.get(key) if number == 1 else None
    if body is None:
        response = await _render(request, node, username, preferred, number)
        if response.status_code != 200:
            return response
        body = bytes(response.body)
        if number == 1:
            node.doc_cache.put_raw(key, body, ttl=PAGE_TTL)
    out = pages.html_response(body)
    if remember and preferred:
        pages.remember_language(out, preferred)
    return out


async def _render(request: Request, node: Node, username: str, preferred: str | None,
                  number: int) -> Response:
    async with node.db.read() as session:
        actor = await groups.get_actor(session, username)
        if actor is None or actor.id is None:
            return pages.render_error(request, 404, N_("no such group"))
        network = await networks.network_of(session, username)
    if network is not None:  # a network's page is its member directory (web/networks.py)
        return await network_views.page(request, *network)
    async with node.db.read() as session:
        language = resolve(preferred, actor.language)
        posts, more = await listings.posts_page(session, actor.id, number)
        if number > 1 and not posts:
            return pages.render_error(request, 404, N_("no such page"))
        upcoming = await listings.upcoming_calls(session, actor.id, limit=CALLS_SHOWN) \
            if number == 1 else []
        past = await listings.past_calls(session, actor.id, limit=PAST_SHOWN) \
            if number == 1 else []
        news = await listings.latest_news(session, actor.id, limit=NEWS_SHOWN) \
            if number == 1 else []
        mail_lists = await subscriptions.languages_of(session, actor) \
            if number == 1 and node.settings.mail_enabled else []
    actor_url = node.urls.actor(actor.username)
    summary = listings.pick(actor.summaries, language, actor.language)
    name = listings.pick(actor.names, language, actor.language)
    from markupsafe import Markup

    return pages.render(
        "actor.html", language=language,
        group=pages.group_entry(node, actor), actor=actor, actor_url=actor_url,
        handle=f"@{actor.username}@{node.settings.host}",
        name=name[1] if name else actor.display_name,
        name_lang=name[0] if name else actor.language,
        summary=Markup(summary[1]) if summary else None,  # noqa: S704 - sanitised on the way in
        summary_lang=summary[0] if summary else actor.language,
        summary_dir=direction(summary[0] if summary else actor.language),
        upcoming=[listings.call_entry(node, o, e, actor, language) for o, e in upcoming],
        past=[listings.call_entry(node, o, e, actor, language) for o, e in past],
        news=[listings.post_entry(node, o, language, actor, kind=k) for o, k in news],
        posts=[listings.post_entry(node, o, language, actor) for o in posts],
        mail_lists=mail_lists,
        page=number, older=f"{actor_url}?page={number + 1}" if more else None,
        newer=(f"{actor_url}?page={number - 1}" if number > 2 else actor_url)
        if number > 1 else None,
        host=node.settings.host, page_url=actor_url,
        og_image=pages.group_entry(node, actor)["avatar"],
    )
