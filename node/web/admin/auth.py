"""Logging in and out, changing a password, setting one through a one-time link
(issue 14, point 3). Sessions and throttling: node/accounts."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from node.accounts import login, passwords, sessions, users
from node.accounts.passwords import check_new
from node.core.middleware import client_address
from node.groups.errors import OperationError
from node.storage.models import Account
from node.web.admin.guard import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    Ctx,
    clear_cookie,
    csrf_for,
    csrf_ok,
    login_binding,
    node_of,
    now,
    page,
    set_cookie,
    small_form,
    workspace,
)
from node.web.i18n import N_

log = logging.getLogger("hambastegi")

# The login operation's messages (node/accounts/login.py, a layer below the
# catalogues), named here so extraction finds them; page() translates them.
LOGIN_MESSAGES = (N_("wrong user name or password"),
                  N_("too many failed logins; wait 15 minutes and try again"))


async def _login_page(request: Request, status_code: int = 200, message: str = "",
                      username: str = "") -> Response:
    node = node_of(request)
    binding, new = login_binding(request)
    response = page(None, "login.html", status_code, request=request,
                    csrf=await csrf_for(node, binding), message=message, username=username,
                    host=node.settings.host)
    if new:
        set_cookie(response, node, LOGIN_COOKIE, binding)
    return response


async def login_form(request: Request) -> Response:
    if request.method == "POST":
        return await login_submit(request)
    return await _login_page(request)


def client_of(request: Request) -> str:
    """The address throttling is keyed by (only as an HMAC: throttle.py). Behind a
    proxy, the header it sets (HAMBASTEGI_CLIENT_ADDRESS_HEADER): else every client
    would share the proxy's address, and five wrong passwords would lock out all."""
    settings = node_of(request).settings
    header = settings.client_address_header
    return client_address(request.headers.get(header) if header else None,
                          request.client.host if request.client is not None else None,
                          host=request.headers.get("host"), onion_host=settings.onion_hostname)


async def login_submit(request: Request) -> Response:
    node = node_of(request)
    form = await small_form(request)
    if form is None:
        return page(None, "message.html", 413, request=request, title=N_("Too large"),
                        message=N_("Form too large."))
    if not await csrf_ok(request, request.cookies.get(LOGIN_COOKIE), form.get("csrf")):
        return page(None, "message.html", 403, request=request, title=N_("Forbidden"),
                    message=N_("The form's security token is missing or wrong. "
                               "Reload the login page and try again."))
    username = form.get("username", "")
    try:
        account = await login.authenticate(node, username, form.get("password", ""),
                                           client_of(request), now(request))
    except OperationError as exc:
        # One message for a wrong name and a wrong password (login.WRONG).
        return await _login_page(request, exc.status, str(exc), username[:64])
    assert account.id is not None
    token = await sessions.start(node, account.id, now(request),
                                 replaces=request.cookies.get(SESSION_COOKIE))
    log.info("login", extra={"account": account.id})
    response = RedirectResponse("/admin", status_code=303)
    set_cookie(response, node, SESSION_COOKIE, token)
    clear_cookie(response, node, LOGIN_COOKIE)
    return response


async def _logout(request: Request, ctx: Ctx) -> Response:
    await sessions.end_all(ctx.node, ctx.user.id)
    response = RedirectResponse("/login", status_code=303)
    clear_cookie(response, ctx.node, SESSION_COOKIE)
    return response


logout = workspace(_logout)


async def _password(request: Request, ctx: Ctx) -> Response:
    if request.method != "POST":
        return page(ctx, "password.html")
    current, new, again = (ctx.field("current"), ctx.field("password"),
                           ctx.field("password_again"))
    async with ctx.node.db.read() as session:
        account = await session.get(Account, ctx.user.id)
    if account is None or not await passwords.verify(account.password_hash, current):
        return page(ctx, "password.html", 400, message=N_("The current password is wrong."))
    if new != again:
        return page(ctx, "password.html", 400, message=N_("The two new passwords differ."))
    try:
        check_new(new)
        await users.set_password(ctx.node, ctx.user.username, new)
    except OperationError as exc:
        return page(ctx, "password.html", 400, message=str(exc))
    # Every session ended with the change; this browser gets a fresh one.
    token = await sessions.start(ctx.node, ctx.user.id, now(request))
    response = RedirectResponse("/admin?notice=password", status_code=303)
    set_cookie(response, ctx.node, SESSION_COOKIE, token)
    return response


password = workspace(_password)


async def set_password(request: Request) -> Response:
    """/admin/set-password/{token}: the one-time link `hambastegi user create` prints."""
    node = node_of(request)
    token = request.path_params["token"]
    account = await users.link_account(node, token, now=now(request))
    if account is None:
        return page(None, "message.html", 404, request=request,
                    title=N_("Link not valid"),
                    message=N_("This link has expired or was used; ask an admin for a new one."))
    binding, new_binding = login_binding(request)
    message = ""
    status_code = 200
    if request.method == "POST":
        form = await small_form(request)
        if form is None:
            return page(None, "message.html", 413, request=request, title=N_("Too large"),
                        message=N_("Form too large."))
        if not await csrf_ok(request, request.cookies.get(LOGIN_COOKIE), form.get("csrf")):
            return page(None, "message.html", 403, request=request, title=N_("Forbidden"),
                        message=N_("The form's security token is missing or wrong."))
        if form.get("password", "") != form.get("password_again", ""):
            message, status_code = N_("The two passwords differ."), 400
        else:
            try:
                await users.use_link(node, token, form.get("password", ""), now=now(request))
            except OperationError as exc:
                message, status_code = str(exc), exc.status
            else:
                return RedirectResponse("/login", status_code=303)
    response = page(None, "set_password.html", status_code, request=request,
                    username=account.username, csrf=await csrf_for(node, binding), message=message)
    if new_binding:
        set_cookie(response, node, LOGIN_COOKIE, binding)
    return response
