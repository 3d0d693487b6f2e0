"""What every workspace request passes: the session, the CSRF check, the role check.

- Session: the ``hb_session`` cookie (HttpOnly, SameSite=Lax, Secure when the base
  URL is https), looked up in node/accounts/sessions.py.
- CSRF: every form carries ``csrf``, an HMAC with the node's key of the cookie the
  form is bound to (the session; before login, the ``hb_login`` cookie). A page of
  another site can neither read it nor compute it, so its cross-site post gets 403
  before anything changes. A request whose ``Origin`` is another site's is refused too.
- Roles: an editor acts only for the groups given to them; an admin for every group.
  Any other group's pages answer 403.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

# Starlette parses multipart forms (uploads) with it; imported here so a missing
# install fails when the node starts, not at an editor's first upload.
import python_multipart  # noqa: F401
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from node.accounts import sessions
from node.accounts.keys import keyed_hash, node_key
from node.accounts.users import User
from node.federation import local_actors
from node.federation.inbox import BodyTooLarge, read_body
from node.federation.runtime import Node
from node.groups.errors import OperationError
from node.storage.db import utcnow
from node.storage.models import LocalActor
from node.web import i18n, pages
from node.web.i18n import N_

SESSION_COOKIE = "hb_session"
LOGIN_COOKIE = "hb_login"
MAX_SMALL_FORM = 64 * 1024  # login and password forms
MAX_FORM = 12 * 1024 * 1024  # a form with one image (uploads.MAX_UPLOAD) and texts


@dataclass
class Ctx:
    """One workspace request: who, for which group, with which form."""

    node: Node
    user: User
    session_token: str
    csrf: str
    request: Request
    group: LocalActor | None = None
    form: FormData | None = None

    def field(self, name: str, default: str = "") -> str:
        value = self.form.get(name) if self.form is not None else None
        return value if isinstance(value, str) else default

    @property
    def group_name(self) -> str:
        assert self.group is not None
        return self.group.username


def node_of(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


def now(request: Request) -> datetime:
    """The workspace's clock: tests set ``app.state.admin_clock`` to move time."""
    clock: Callable[[], datetime] = getattr(request.app.state, "admin_clock", utcnow)
    return clock()


def policy(request: Request) -> sessions.SessionPolicy:
    found: sessions.SessionPolicy = getattr(request.app.state, "admin_sessions",
                                            sessions.SessionPolicy())
    return found


def set_cookie(response: Response, node: Node, name: str, value: str) -> None:
    response.set_cookie(name, value, path="/", httponly=True, samesite="lax",
                        secure=node.settings.base_url.startswith("https://"))


def clear_cookie(response: Response, node: Node, name: str) -> None:
    response.delete_cookie(name, path="/", httponly=True, samesite="lax",
                           secure=node.settings.base_url.startswith("https://"))


async def csrf_for(node: Node, binding: str) -> str:
    return keyed_hash(await node_key(node.db, "csrf"), "csrf", binding)


def same_origin(request: Request) -> bool:
    """No Origin header (older browsers, curl), or ``null`` (what browsers send for a
    page with ``Referrer-Policy: no-referrer``, as ours are) passes here; the token still
    decides."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    settings = node_of(request).settings
    theirs = urlsplit(origin)
    # The onion address is this node too (node/core/onion.py): a form posted there
    # carries the onion origin.
    return any((theirs.scheme, theirs.netloc) == (ours.scheme, ours.netloc)
               for ours in map(urlsplit, filter(None, (settings.base_url,
                                                       settings.onion_origin))))


async def csrf_ok(request: Request, binding: str | None, given: object) -> bool:
    if not binding or not isinstance(given, str) or not same_origin(request):
        return False
    expected = await csrf_for(node_of(request), binding)
    return hmac.compare_digest(expected.encode(), given.encode())


def login_binding(request: Request) -> tuple[str, bool]:
    """The value the login form's token is bound to, and whether it is new (to set)."""
    existing = request.cookies.get(LOGIN_COOKIE)
    if existing and 20 <= len(existing) <= 100:
        return existing, False
    return secrets.token_urlsafe(24), True


async def small_form(request: Request) -> dict[str, str] | None:
    """An urlencoded form of at most 64 KiB (login, passwords); None if larger."""
    try:
        raw = await read_body(request, MAX_SMALL_FORM)
    except BodyTooLarge:
        return None
    return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))


# Values of these names are our own sentences (or an operation's message), shown in
# the reader's language when the catalogue has them; anything else passes as given.
TRANSLATED = ("message", "notice")


def page(ctx: Ctx | None, template: str, status_code: int = 200, *,
         request: Request | None = None, **context: Any) -> Response:
    """A workspace page in the reader's language (?lang=, cookie, Accept-Language:
    pages.render_for; docs/ARCHITECTURE.md#8-the-public-site). Pages before login
    pass ``request``; the others have it in ``ctx``."""
    request = ctx.request if ctx is not None else request
    language, remember = (pages.reader_language(request) if request is not None
                          else (i18n.DEFAULT, False))
    values: dict[str, Any] = {
        "lang": language, "user": ctx.user if ctx is not None else None,
        "csrf": ctx.csrf if ctx is not None else "",
        "group": ctx.group if ctx is not None else None,
        "host": ctx.node.settings.host if ctx is not None else "", "input_dir": input_dir}
    values.update(context)
    names = TRANSLATED + (("title",) if template == "message.html" else ())
    with i18n.using(language):
        for name in names:
            if isinstance(values.get(name), str) and values[name]:
                values[name] = i18n.gettext_(values[name])
    response = pages.render(f"admin/{template}", status_code=status_code, language=language,
                            set_language_cookie=remember, **values)
    # Nothing of the workspace may be kept by a browser or proxy cache.
    response.headers["Cache-Control"] = "no-store"
    return response


def input_dir(language: str) -> str:
    """dir of an input for text in ``language``: rtl for right-to-left scripts, else
    auto (the browser follows the first strong character)."""
    return "rtl" if i18n.direction(language) == "rtl" else "auto"


def forbidden(ctx: Ctx | None, message: str) -> Response:
    return page(ctx, "message.html", 403, title=N_("Forbidden"), message=message)


Handler = Callable[[Request, Ctx], Awaitable[Response]]


async def signed_in(request: Request) -> Ctx | None:
    node = node_of(request)
    token = request.cookies.get(SESSION_COOKIE)
    user = await sessions.current(node, token, now(request), policy(request))
    if user is None or token is None:
        return None
    return Ctx(node=node, user=user, session_token=token, csrf=await csrf_for(node, token),
               request=request)


def workspace(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A workspace route: signed in, CSRF-checked on POST, role-checked for a group."""

    async def wrapped(request: Request) -> Response:
        ctx = await signed_in(request)
        if ctx is None:
            if request.method == "POST":
                return page(None, "message.html", 403, request=request, title=N_("Forbidden"),
                            message=N_("Your session has ended; log in again."))
            return RedirectResponse("/login", status_code=303)
        if request.method == "POST":
            length = request.headers.get("content-length", "")
            if length.isdigit() and int(length) > MAX_FORM:
                return page(ctx, "message.html", 413, title=N_("Too large"),
                            message=N_("The form was larger than 12 MB."))
            ctx.form = await request.form(max_files=4, max_fields=200,
                                          max_part_size=256 * 1024)
            if not await csrf_ok(request, ctx.session_token, ctx.form.get("csrf")):
                return forbidden(ctx, N_("The form's security token is missing or wrong. "
                                         "Reload the page and try again."))
        name = request.path_params.get("group")
        if name is not None:
            if not (ctx.user.is_admin or name in ctx.user.groups):
                return forbidden(ctx, N_("You do not work for this group."))
            async with ctx.node.db.read() as session:
                ctx.group = await local_actors.get_group(session, name)
            if ctx.group is None:
                return page(ctx, "message.html", 404, title=N_("Not found"),
                            message=N_("No such group."))
        try:
            return await handler(request, ctx)
        except OperationError as exc:
            return page(ctx, "message.html", exc.status, title=N_("Not done"),
                        message=str(exc))
        finally:
            if ctx.form is not None:
                await ctx.form.close()

    return wrapped


def back_to_group(ctx: Ctx, notice: str = "") -> Response:
    from urllib.parse import quote

    suffix = f"?notice={quote(notice)}" if notice else ""
    return RedirectResponse(f"/admin/groups/{ctx.group_name}{suffix}", status_code=303)
