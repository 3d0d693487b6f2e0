"""The pages of the mailing lists (node/mail/subscriptions.py; docs/ARCHITECTURE.md
#8-the-public-site): the subscription form's answer, confirmation and unsubscribe.

- ``POST /groups/{username}/subscribe``: the same answer ("check your inbox")
  whether the address is new, pending, confirmed or suppressed (no enumeration);
  400 with the form again for a bad address or choice, 429 over a rate limit.
  No session and no CSRF token: the worst a forged POST can do is send one
  confirmation mail, which is rate-limited per target address.
- ``GET /mail/confirm/{token}`` and ``GET /mail/unsubscribe/{token}``: a page with
  a button and nothing changed (mail scanners follow links); ``POST`` acts. The
  unsubscribe POST is also the one-click POST of RFC 8058 (body
  ``List-Unsubscribe=One-Click``): it acts whatever the body says.
- A token that names nothing: 404, on GET and POST.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from node.federation import local_actors as groups
from node.federation.runtime import Node
from node.groups.operations import OperationError
from node.mail import subscriptions
from node.mail.addresses import AddressError
from node.storage.models import LocalActor
from node.web import pages
from node.web.admin.auth import client_of
from node.web.i18n import N_

MAX_FORM_BYTES = 4096
MAX_TOKEN = 48


def _node(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


async def _form(request: Request) -> dict[str, list[str]] | None:
    """The urlencoded form (None: too large). Bytes past the limit are not read."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)


async def subscribe(request: Request) -> Response:
    node = _node(request)
    if not node.settings.mail_enabled:
        return pages.render_error(request, 404, N_("This node sends no mail."))
    async with node.db.read() as session:
        actor = await groups.get_group(session, request.path_params["username"])
        offered = await subscriptions.languages_of(session, actor) if actor else []
    if actor is None:
        return pages.render_error(request, 404, N_("no such group"))
    language, _ = pages.reader_language(request, actor.language)
    common = _common(node, actor, language)
    form = await _form(request)
    if form is None:
        return pages.render("mail.html", 413, title=N_("Subscribe"),
                            error=N_("The form is too large."), lists=offered, **common)
    addresses_given = form.get("address", [])
    raw = addresses_given[0] if len(addresses_given) == 1 else ""
    try:
        if len(addresses_given) > 1:
            raise AddressError("Please enter one address.")
        request_ = subscriptions.check_request(raw, form.get("lang", []),
                                               form.get("kind", []), offered)
        await subscriptions.subscribe(node, actor, request_, client_of(request))
    except subscriptions.Throttled:
        return pages.render("mail.html", 429, title=N_("Subscribe"),
                            error=N_("Too many requests; please try again later."), **common)
    except (AddressError, OperationError) as exc:
        shown = raw if raw.isprintable() and len(raw) <= 254 else ""
        return pages.render("mail.html", 400, title=N_("Subscribe"), error=str(exc),
                            lists=offered, address=shown,
                            chosen=[c for c in form.get("lang", []) if c in offered],
                            kinds=[k for k in form.get("kind", []) if k in subscriptions.KINDS],
                            **common)
    return pages.render("mail.html", 200, title=N_("Check your inbox"), message=N_(
        "If this address can receive our mailings, a confirmation mail is on its way. "
        "Open the link in it and press the button to confirm."), **common)


def _common(node: Node, group: LocalActor, language: str) -> dict[str, Any]:
    return {"actor_url": node.urls.actor(group.username), "group_name": group.display_name,
            "host": node.settings.host, "language": language}


def _token(request: Request) -> str:
    token = str(request.path_params["token"])
    return token if len(token) <= MAX_TOKEN else ""


INVALID_LINK = N_("This link is not valid (any more).")


async def _token_page(request: Request, purpose: str,
                      act: Callable[[Node, str], Awaitable[object]],
                      ask: tuple[str, str, str], done: tuple[str, str]) -> Response:
    """A confirmation or unsubscribe link: GET shows a page with a button (mail scanners
    follow links), only POST acts; an unknown, forged or used token is a 404."""
    node = _node(request)
    token = _token(request)
    found = await subscriptions.look(node, purpose, token)
    if found is None:
        return pages.render_error(request, 404, INVALID_LINK)
    row, group = found
    common = _common(node, group, row.language)
    if request.method == "GET":
        title, message, button = ask
        return pages.render("mail.html", title=title, message=message,
                            action=str(request.url.path), button=button, **common)
    await _form(request)  # for unsubscribe "List-Unsubscribe=One-Click" or the button: both act
    try:
        await act(node, token)
    except subscriptions.NotFound:
        return pages.render_error(request, 404, INVALID_LINK)
    return pages.render("mail.html", title=done[0], message=done[1], **common)


async def confirm(request: Request) -> Response:
    return await _token_page(
        request, "confirm", subscriptions.confirm,
        (N_("Confirm your subscription"),
         N_("Press the button to receive the mailings you asked for."), N_("Confirm")),
        (N_("Subscribed"), N_("Thank you: you will receive our mailings. Every mail has "
                              "a link to unsubscribe.")))


async def unsubscribe(request: Request) -> Response:
    return await _token_page(
        request, "unsubscribe", subscriptions.unsubscribe,
        (N_("Unsubscribe"), N_("Press the button to stop receiving our mailings. "
                               "Your address is then deleted."), N_("Unsubscribe")),
        (N_("Unsubscribed"), N_("Your address has been deleted from our lists.")))


routes = [
    Route("/groups/{username}/subscribe", subscribe, methods=["POST"]),
    Route("/mail/confirm/{token}", confirm, methods=["GET", "POST"]),
    Route("/mail/unsubscribe/{token}", unsubscribe, methods=["GET", "POST"]),
]
