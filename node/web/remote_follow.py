"""Follow a group from the reader's own server (Mastodon's "remote follow").

The reader types their handle; we ask their server's WebFinger for the
``http://ostatus.org/schema/1.0/subscribe`` template (OStatus remote follow, which
Mastodon, Pleroma/Akkoma, Misskey and GoToSocial answer) and send the browser there
with the group's actor id filled in. Their server then shows its own follow button:
nothing changes here, so the form needs no session (docs/ARCHITECTURE.md#8-the-public-site).

The handle is never logged or stored; the lookup goes through the guarded client
(public addresses only, bounded size and time).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from node.core.jsonsafe import as_list
from node.federation import local_actors as groups
from node.federation.fetch import FetchError
from node.federation.remote_actors import HANDLE_RE, webfinger_url
from node.federation.runtime import Node
from node.web import pages
from node.web.i18n import N_

SUBSCRIBE_REL = "http://ostatus.org/schema/1.0/subscribe"
MAX_HANDLE = 320  # a local part and a domain name, generously
MAX_FORM_BYTES = 2048
MAX_TEMPLATE = 2048
HOST_RE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-:[]")


class FollowError(ValueError):
    """Said to the reader as it is."""


def parse_handle(raw: str) -> tuple[str, str]:
    """``@user@host`` or ``user@host`` → (user, host); FollowError with a message else."""
    handle = raw.strip()
    if not handle:
        raise FollowError(N_("Please enter your handle, such as @you@mastodon.social."))
    if len(handle) > MAX_HANDLE:
        raise FollowError(N_("That handle is too long."))
    match = HANDLE_RE.fullmatch(handle)
    if match is None:
        raise FollowError(N_("That is not a handle: write it as @you@your.server."))
    user, host = match.groups()
    host = host.lower()
    if not set(host) <= HOST_RE_CHARS or ("." not in host and ":" not in host):
        raise FollowError(N_("That server name is not valid."))
    if any(c in user for c in "<>\"'&?#%\\ ") or not user.isprintable():
        raise FollowError(N_("That is not a handle: write it as @you@your.server."))
    return user, host


def subscribe_url(jrd: dict[str, Any], actor_url: str) -> str:
    """The reader's server's follow page for ``actor_url``, from its WebFinger answer."""
    for link in as_list(jrd.get("links")):
        if isinstance(link, dict) and link.get("rel") == SUBSCRIBE_REL:
            template = link.get("template")
            if isinstance(template, str) and "{uri}" in template \
                    and len(template) <= MAX_TEMPLATE:
                url = template.replace("{uri}", quote(actor_url, safe=""))
                parts = urlsplit(url)
                # Only a web page may be where we send the browser: never javascript:,
                # data: or anything else a hostile server could answer.
                if parts.scheme in ("https", "http") and parts.netloc:
                    return url
    raise FollowError(N_("Your server does not offer following from another site. "
                      "Search for the group's handle in your app instead."))


async def remote_follow(request: Request) -> Response:
    node: Node = request.app.state.node
    username = request.path_params["username"]
    async with node.db.read() as session:
        actor = await groups.get_group(session, username)
    if actor is None:
        return pages.render_error(request, 404, N_("no such group"))
    language, _ = pages.reader_language(request, actor.language)
    body = await request.body()
    handle = ""
    if len(body) <= MAX_FORM_BYTES:
        from urllib.parse import parse_qs

        handle = (parse_qs(body.decode("utf-8", "replace")).get("handle") or [""])[0]
    actor_url = node.urls.actor(actor.username)
    try:
        if len(body) > MAX_FORM_BYTES:
            raise FollowError(N_("That handle is too long."))
        user, host = parse_handle(handle)
        try:
            jrd = await node.client.fetch_jrd(webfinger_url(node, user, host))
        except FetchError as exc:
            raise FollowError(N_("Your server could not be reached, or does not know "
                              "this handle.")) from exc
        target = subscribe_url(jrd, actor_url)
    except FollowError as exc:
        return pages.render("follow_error.html", status_code=400, language=language,
                            message=str(exc), handle=handle[:MAX_HANDLE],
                            group=pages.group_entry(node, actor), actor=actor,
                            actor_url=actor_url, host=node.settings.host, page_url=actor_url)
    return RedirectResponse(target, status_code=303)
