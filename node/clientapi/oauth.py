"""OAuth 2 for Mastodon apps: the authorize page, the token and revoke endpoints,
app registration and RFC 8414 metadata (as Mastodon 4.3+ answers them).

The authorize page is the workspace login (node/web/admin/auth.py): the same
argon2id check and throttling (node/accounts/login.py), the same CSRF token bound
to the ``hb_login`` cookie. A user with several groups chooses one in a second step,
carried by a ticket: an HMAC, with the node's key, of who logged in, until when,
and what the app asked for, so the step cannot be forged or moved to another app."""

from __future__ import annotations

import hmac
import logging
import time
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from node.accounts import login, users
from node.accounts.keys import keyed_hash, node_key
from node.clientapi import apps
from node.clientapi.apps import OAuthError
from node.clientapi.params import ApiError, Params, read_params
from node.federation.runtime import Node
from node.groups.errors import OperationError
from node.storage.models import Account, OAuthApp
from node.web.admin.auth import client_of
from node.web.admin.guard import (
    LOGIN_COOKIE,
    csrf_for,
    csrf_ok,
    login_binding,
    now,
    page,
    set_cookie,
    small_form,
)
from node.web.i18n import N_

log = logging.getLogger("hambastegi.clientapi")
TICKET_SECONDS = 600
# What the page carries from the app's request to its POST.
CARRIED = ("client_id", "redirect_uri", "scope", "state", "code_challenge",
           "code_challenge_method")


def _node(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


def oauth_error(exc: OAuthError) -> JSONResponse:
    return JSONResponse({"error": exc.code, "error_description": str(exc)},
                        status_code=exc.status, headers={"Cache-Control": "no-store"})


# --- app registration -------------------------------------------------------------


def app_entity(app: OAuthApp, secret: str | None = None) -> dict[str, object]:
    out: dict[str, object] = {
        "id": str(app.id), "name": app.name, "website": app.website,
        "scopes": app.scopes.split(), "redirect_uri": "\n".join(app.redirect_uris),
        "redirect_uris": list(app.redirect_uris),
    }
    if secret is not None:
        out.update(client_id=app.client_id, client_secret=secret, client_secret_expires_at=0)
    return out


async def create_app(request: Request) -> Response:
    """POST /api/v1/apps"""
    try:
        params = await read_params(request)
        uris_value = params.values.get("redirect_uris", params.values.get("redirect_uris[]"))
        if isinstance(uris_value, list):
            uris = [u for u in uris_value if isinstance(u, str)]
        elif isinstance(uris_value, str):
            uris = uris_value.splitlines()
        else:
            uris = []
        made = await apps.register_app(
            _node(request), name=params.text("client_name", limit=1000) or "",
            redirect_uris=uris, scopes=params.text("scopes", limit=2000),
            website=params.text("website", limit=4096))
    except ApiError as exc:
        return JSONResponse({"error": str(exc)}, status_code=exc.status)
    except OAuthError as exc:
        return JSONResponse({"error": f"Validation failed: {exc}"}, status_code=422)
    return JSONResponse(app_entity(made.app, made.client_secret))


# --- the authorize page -------------------------------------------------------------


class _Refused(Exception):
    """A request that must not redirect back (unknown app, unregistered redirect URI):
    RFC 6749 §4.1.2.1 says to tell the user instead."""


async def _checked(node: Node, values: dict[str, str]) -> OAuthApp:
    app = await apps.find_app(node, values.get("client_id"))
    if app is None:
        raise _Refused(N_("This app is not registered here."))
    if values.get("redirect_uri") not in app.redirect_uris:
        raise _Refused(N_("The app's return address is not one it registered."))
    return app


def _redirect(uri: str, **values: str) -> Response:
    if uri == apps.OOB:
        raise AssertionError("the out-of-band URI has no redirect")
    query = urlencode({k: v for k, v in values.items() if v})
    joiner = "&" if urlsplit(uri).query else "?"
    return RedirectResponse(f"{uri}{joiner}{query}", status_code=302,
                            headers={"Cache-Control": "no-store"})


def _error_back(request: Request, values: dict[str, str], exc: OAuthError) -> Response:
    uri = values["redirect_uri"]
    if uri == apps.OOB:
        return page(None, "message.html", 400, request=request, title=N_("Not authorised"),
                    message=str(exc))
    return _redirect(uri, error=exc.code, error_description=str(exc), state=values.get("state", ""))


def _form_action(uri: str) -> str:
    """The page may post to us and be redirected on to the app (CSP form-action
    applies to the redirect too)."""
    parts = urlsplit(uri)
    if uri == apps.OOB:
        return "'self'"
    if parts.scheme in {"http", "https"}:
        return f"'self' {parts.scheme}://{parts.netloc}"
    return f"'self' {parts.scheme}:"


async def _authorize_page(request: Request, node: Node, app: OAuthApp, values: dict[str, str],
                          scopes: tuple[str, ...], *, status: int = 200, message: str = "",
                          username: str = "", groups: list[str] | None = None,
                          ticket: str = "") -> Response:
    binding, new = login_binding(request)
    hidden = [(name, values[name]) for name in CARRIED if values.get(name)]
    if ticket:
        hidden += [("ticket", ticket), ("username", username)]
    response = page(None, "oauth_authorize.html", status, request=request,
                    csrf=await csrf_for(node, binding), app_name=app.name, website=app.website,
                    scopes=scopes, message=message, username=username, groups=groups or [],
                    hidden=hidden, host=node.settings.host)
    response.headers["Content-Security-Policy"] = response.headers[
        "Content-Security-Policy"].replace("form-action 'self'",
                                           f"form-action {_form_action(values['redirect_uri'])}")
    if new:
        set_cookie(response, node, LOGIN_COOKIE, binding)
    return response


def _values(source: Params | dict[str, str]) -> dict[str, str]:
    get = source.get if isinstance(source, dict) else source.values.get
    out = {}
    for name in CARRIED:
        value = get(name)
        if isinstance(value, str) and len(value) <= 2048:
            out[name] = value
    return out


async def _prepare(node: Node, values: dict[str, str]
                   ) -> tuple[OAuthApp, tuple[str, ...]]:
    """The app and scopes, or _Refused / OAuthError (the latter goes back to the app)."""
    app = await _checked(node, values)
    scopes = apps.requested_scopes(app, values.get("scope"))
    challenge = values.get("code_challenge")
    if challenge is not None:
        if values.get("code_challenge_method", "plain") != "S256":
            raise OAuthError("invalid_request", "only code_challenge_method=S256 is supported")
        if not 43 <= len(challenge) <= 128:
            raise OAuthError("invalid_request", "code_challenge must be 43 to 128 characters")
    return app, scopes


async def authorize(request: Request) -> Response:
    """GET|POST /oauth/authorize"""
    node = _node(request)
    if request.method == "POST":
        return await _authorize_post(request, node)
    values = _values(dict(request.query_params))
    try:
        if request.query_params.get("response_type", "code") != "code":
            await _checked(node, values)
            raise OAuthError("unsupported_response_type", "only response_type=code")
        app, scopes = await _prepare(node, values)
    except _Refused as exc:
        return page(None, "message.html", 400, request=request, title=N_("Not authorised"),
                    message=str(exc))
    except OAuthError as exc:
        return _error_back(request, values, exc)
    return await _authorize_page(request, node, app, values, scopes)


async def _ticket(node: Node, account_id: int, expires: int, values: dict[str, str]) -> str:
    key = await node_key(node.db, "oauth-ticket")
    digest = keyed_hash(key, str(account_id), str(expires),
                        *(values.get(name, "") for name in CARRIED))
    return f"{account_id}.{expires}.{digest}"


async def _ticket_account(node: Node, ticket: str, values: dict[str, str]) -> int | None:
    parts = ticket.split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    account_id, expires = int(parts[0]), int(parts[1])
    expected = await _ticket(node, account_id, expires, values)
    if not hmac.compare_digest(expected.encode(), ticket.encode()) or expires < time.time():
        return None
    return account_id


async def _authorize_post(request: Request, node: Node) -> Response:
    form = await small_form(request)
    if form is None:
        return page(None, "message.html", 413, request=request, title=N_("Too large"),
                    message=N_("Form too large."))
    values = _values(form)
    try:
        app, scopes = await _prepare(node, values)
    except _Refused as exc:
        return page(None, "message.html", 400, request=request, title=N_("Not authorised"),
                    message=str(exc))
    except OAuthError as exc:
        return _error_back(request, values, exc)
    if not await csrf_ok(request, request.cookies.get(LOGIN_COOKIE), form.get("csrf")):
        return page(None, "message.html", 403, request=request, title=N_("Forbidden"),
                    message=N_("The form's security token is missing or wrong. "
                               "Reload the login page and try again."))
    if form.get("decision") == "deny":
        return _error_back(request, values,
                           OAuthError("access_denied", "the user denied the request"))
    username = form.get("username", "")[:64]
    ticket = form.get("ticket")
    if ticket:
        account_id = await _ticket_account(node, ticket, values)
        async with node.db.read() as session:
            account = await session.get(Account, account_id) if account_id else None
        if account is None:
            return await _authorize_page(request, node, app, values, scopes, status=400,
                                         message=N_("That took too long; log in again."))
    else:
        try:
            account = await login.authenticate(node, username, form.get("password", ""),
                                               client_of(request), now(request))
        except OperationError as exc:
            return await _authorize_page(request, node, app, values, scopes,
                                         status=exc.status, message=str(exc),
                                         username=username)
    assert account.id is not None
    async with node.db.read() as session:
        user = await users.as_user(session, account)
    groups = [g for g in await users.visible_groups(node, user) if g.actor_type == "Group"]
    if not groups:
        return await _authorize_page(request, node, app, values, scopes, status=403,
                                     message=N_("You do not work for any group."))
    chosen = form.get("group")
    group = next((g for g in groups if g.username == chosen), None)
    if group is None and len(groups) == 1 and not ticket:
        group = groups[0]
    if group is None:
        expires = int(time.time()) + TICKET_SECONDS
        return await _authorize_page(
            request, node, app, values, scopes, username=account.username,
            groups=[g.username for g in groups],
            ticket=await _ticket(node, account.id, expires, values))
    code = await apps.issue_code(node, app=app, account_id=account.id, group_id=group.id or 0,
                                 scopes=scopes, redirect_uri=values["redirect_uri"],
                                 challenge=values.get("code_challenge"), now=now(request))
    log.info("app authorised", extra={"account": account.id, "app": app.id})
    if values["redirect_uri"] == apps.OOB:
        response = page(None, "oauth_code.html", request=request, code=code)
        return response
    return _redirect(values["redirect_uri"], code=code, state=values.get("state", ""))


# --- the token and revoke endpoints --------------------------------------------------


def _client_credentials(request: Request, params: Params) -> tuple[str | None, str | None]:
    """From the body, or HTTP Basic (RFC 6749 §2.3.1)."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        import base64
        import binascii
        from urllib.parse import unquote

        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None, None
        client_id, _, secret = decoded.partition(":")
        return unquote(client_id), unquote(secret)
    return params.text("client_id", limit=200), params.text("client_secret", limit=200)


async def token(request: Request) -> Response:
    """POST /oauth/token"""
    node = _node(request)
    try:
        params = await read_params(request)
    except ApiError as exc:
        return oauth_error(OAuthError("invalid_request", str(exc), exc.status))
    try:
        client_id, secret = _client_credentials(request, params)
        app = await apps.find_app(node, client_id)
        grant = params.text("grant_type", limit=100)
        if app is None:
            raise OAuthError("invalid_client", "unknown client", 401)
        # A public client (PKCE) may leave out its secret; one given must match.
        if secret is not None and not apps.secret_matches(app, secret):
            raise OAuthError("invalid_client", "wrong client secret", 401)
        if grant == "authorization_code":
            if secret is None and params.text("code_verifier", limit=200) is None:
                raise OAuthError("invalid_client", "client_secret or code_verifier needed", 401)
            issued = await apps.exchange_code(
                node, app=app, code=params.text("code", limit=200),
                redirect_uri=params.text("redirect_uri", limit=2048),
                verifier=params.text("code_verifier", limit=200))
        elif grant == "client_credentials":
            if secret is None:
                raise OAuthError("invalid_client", "client_secret needed", 401)
            issued = await apps.app_token(node, app, apps.requested_scopes(
                app, params.text("scope", limit=2000)))
        else:
            raise OAuthError("unsupported_grant_type",
                             "grant_type is authorization_code or client_credentials")
    except OAuthError as exc:
        return oauth_error(exc)
    except ApiError as exc:
        return oauth_error(OAuthError("invalid_request", str(exc)))
    return JSONResponse({"access_token": issued.token, "token_type": "Bearer",
                         "scope": issued.row.scopes,
                         "created_at": int(issued.row.created_at.timestamp())},
                        headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


async def revoke(request: Request) -> Response:
    """POST /oauth/revoke (RFC 7009)"""
    node = _node(request)
    try:
        params = await read_params(request)
    except ApiError as exc:
        return oauth_error(OAuthError("invalid_request", str(exc), exc.status))
    client_id, secret = _client_credentials(request, params)
    app = await apps.find_app(node, client_id)
    if app is None or not apps.secret_matches(app, secret):
        return oauth_error(OAuthError("invalid_client", "unknown client or wrong secret", 401))
    await apps.revoke(node, app, params.text("token", limit=200))
    return JSONResponse({})


async def server_metadata(request: Request) -> Response:
    """GET /.well-known/oauth-authorization-server (RFC 8414)"""
    base = _node(request).settings.base_url
    return JSONResponse({
        "issuer": base + "/",
        "service_documentation": "https://docs.joinmastodon.org/",
        "authorization_endpoint": f"{base}/oauth/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "app_registration_endpoint": f"{base}/api/v1/apps",
        "scopes_supported": sorted(apps.ALL_SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post",
                                                  "none"],
        "code_challenge_methods_supported": ["S256"],
    })
