"""Registered apps, authorisation codes and access tokens (RFC 6749, RFC 7636, as
Mastodon answers them). Everything random is stored as its SHA-256 only; a token is
looked up in the database at every request, never cached, so a revocation holds at
the next request in every process (like node/groups/tokens.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from node.accounts.keys import token_hash
from node.federation.runtime import Node
from node.storage.db import utcnow
from node.storage.models import Account, AccountGroup, LocalActor, OAuthApp, OAuthCode, OAuthToken

OOB = "urn:ietf:wg:oauth:2.0:oob"
CODE_LIFETIME = timedelta(minutes=10)
MAX_REDIRECT_URIS = 10
# Mastodon's scopes (docs: api/oauth-scopes): the top ones and their granular parts.
TOP_SCOPES = ("read", "write", "follow", "push", "profile")
GRANULAR = {
    "read": ("accounts", "blocks", "bookmarks", "favourites", "filters", "follows", "lists",
             "mutes", "notifications", "search", "statuses"),
    "write": ("accounts", "blocks", "bookmarks", "conversations", "favourites", "filters",
              "follows", "lists", "media", "mutes", "notifications", "reports", "statuses"),
}
# The old "follow" scope stands for these (Mastodon keeps it for old apps).
FOLLOW_COVERS = frozenset({"read:follows", "write:follows", "read:blocks", "write:blocks",
                           "read:mutes", "write:mutes"})
ALL_SCOPES = frozenset(TOP_SCOPES) | {f"{top}:{part}" for top, parts in GRANULAR.items()
                                     for part in parts}


class OAuthError(Exception):
    """An RFC 6749 §5.2 error: ``code`` is its ``error`` value."""

    def __init__(self, code: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.code = code
        self.status = status


def parse_scopes(text: str | None, default: str = "read") -> tuple[str, ...]:
    """Space-separated scopes (``+`` too, as some apps send them); unknown → OAuthError."""
    words = (text or default).replace("+", " ").split()
    if not words or len(words) > 40:
        raise OAuthError("invalid_scope", "no scope, or too many")
    unknown = [w for w in words if w not in ALL_SCOPES]
    if unknown:
        raise OAuthError("invalid_scope", f"unknown scope {unknown[0][:40]!r}")
    return tuple(dict.fromkeys(words))


def allows(granted: frozenset[str], needed: str) -> bool:
    """Whether ``granted`` covers ``needed`` (``read:statuses`` is covered by ``read``)."""
    if needed in granted:
        return True
    if needed == "profile":  # Mastodon 4.3: verify_credentials with read:accounts too
        return allows(granted, "read:accounts")
    top, _, _ = needed.partition(":")
    if top in granted and top in GRANULAR:
        return True
    return needed in FOLLOW_COVERS and "follow" in granted


def check_redirect_uri(uri: str) -> str:
    """An https URL, the out-of-band URN, or an app's own scheme (``com.app:/cb``).
    Plain http only for loopback (RFC 8252 §7.3). Fragments never (RFC 6749 §3.1.2)."""
    if len(uri) > 2048 or any(c.isspace() or not c.isprintable() for c in uri):
        raise OAuthError("invalid_redirect_uri", "a redirect URI is one line of at most 2048 "
                         "characters")
    if uri == OOB:
        return uri
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if not scheme or "#" in uri:
        raise OAuthError("invalid_redirect_uri", f"not an absolute URI without fragment: "
                         f"{uri[:80]!r}")
    if scheme == "https":
        if not parts.hostname:
            raise OAuthError("invalid_redirect_uri", "an https redirect URI needs a host")
        return uri
    if scheme == "http":
        if parts.hostname in {"127.0.0.1", "localhost", "::1"}:
            return uri
        raise OAuthError("invalid_redirect_uri", "redirect URIs use https (http only for "
                         "localhost)")
    if scheme in {"javascript", "data", "file", "vbscript", "about", "blob"}:
        raise OAuthError("invalid_redirect_uri", f"{scheme}: is no redirect URI")
    return uri  # an app's own scheme: phones open the app with it


def _secret_hash(value: str) -> str:
    return token_hash(value)


@dataclass(frozen=True)
class NewApp:
    app: OAuthApp
    client_secret: str


async def register_app(node: Node, *, name: str, redirect_uris: list[str], scopes: str | None,
                       website: str | None) -> NewApp:
    name = name.strip()
    if not name or len(name) > 200:
        raise OAuthError("invalid_client_metadata", "client_name is 1 to 200 characters")
    uris = [check_redirect_uri(u.strip()) for u in redirect_uris if u.strip()]
    if not uris:
        raise OAuthError("invalid_redirect_uri", "redirect_uris is required")
    if len(uris) > MAX_REDIRECT_URIS:
        raise OAuthError("invalid_redirect_uri", f"at most {MAX_REDIRECT_URIS} redirect URIs")
    if website is not None and (len(website) > 2048 or
                                urlsplit(website).scheme not in {"http", "https"}):
        website = None
    secret = secrets.token_urlsafe(32)
    app = OAuthApp(client_id=secrets.token_urlsafe(32), client_secret_hash=_secret_hash(secret),
                   name=name, website=website, redirect_uris=list(dict.fromkeys(uris)),
                   scopes=" ".join(parse_scopes(scopes)))
    async with node.db.write() as session:
        session.add(app)
        await session.flush()
        await session.refresh(app)
    return NewApp(app, secret)


async def find_app(node: Node, client_id: str | None) -> OAuthApp | None:
    if not client_id or len(client_id) > 64:
        return None
    async with node.db.read() as session:
        return (await session.exec(select(OAuthApp).where(
            OAuthApp.client_id == client_id))).first()


def secret_matches(app: OAuthApp, secret: str | None) -> bool:
    return secret is not None and len(secret) <= 200 and hmac.compare_digest(
        app.client_secret_hash.encode(), _secret_hash(secret).encode())


def requested_scopes(app: OAuthApp, text: str | None) -> tuple[str, ...]:
    """The scopes asked for, each within what the app registered (Mastodon's rule)."""
    registered = frozenset(app.scopes.split())
    asked = parse_scopes(text, default=app.scopes)
    outside = [s for s in asked if not allows(registered, s)]
    if outside:
        raise OAuthError("invalid_scope", f"scope {outside[0]!r} was not registered by the app")
    return asked


async def may_act_for(session: AsyncSession, account: Account, group_id: int) -> bool:
    """The workspace's rule (node/web/admin/guard.py): an admin for every group, an
    editor for the groups given to them."""
    if account.role == "admin":
        return True
    row = (await session.exec(select(AccountGroup).where(
        AccountGroup.account_id == account.id,
        AccountGroup.local_actor_id == group_id))).first()
    return row is not None


async def issue_code(node: Node, *, app: OAuthApp, account_id: int, group_id: int,
                     scopes: tuple[str, ...], redirect_uri: str, challenge: str | None,
                     now: datetime | None = None) -> str:
    code = secrets.token_urlsafe(32)
    async with node.db.write() as session:
        session.add(OAuthCode(code_hash=_secret_hash(code), app_id=app.id or 0,
                              account_id=account_id, local_actor_id=group_id,
                              scopes=" ".join(scopes), redirect_uri=redirect_uri,
                              code_challenge=challenge,
                              expires_at=(now or utcnow()) + CODE_LIFETIME))
    return code


def pkce_matches(challenge: str, verifier: str | None) -> bool:
    """RFC 7636 §4.6, S256: BASE64URL(SHA256(verifier)) without padding."""
    if verifier is None or not 43 <= len(verifier) <= 128:
        return False
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return hmac.compare_digest(computed.encode(), challenge.encode())


@dataclass(frozen=True)
class Issued:
    token: str
    row: OAuthToken


async def exchange_code(node: Node, *, app: OAuthApp, code: str | None,
                        redirect_uri: str | None, verifier: str | None,
                        now: datetime | None = None) -> Issued:
    """RFC 6749 §4.1.3: the code is used up by the first exchange, whatever its
    outcome; every mismatch is ``invalid_grant`` and issues nothing."""
    now = now or utcnow()
    if not code or len(code) > 200:
        raise OAuthError("invalid_grant", "the code is missing or wrong")
    async with node.db.write() as session:
        row = (await session.exec(select(OAuthCode).where(
            OAuthCode.code_hash == _secret_hash(code)))).first()
        if row is None or row.app_id != app.id:
            raise OAuthError("invalid_grant", "the code is missing or wrong")
        # Used up atomically: of two racing exchanges only one updates the row.
        used = await session.exec(update(OAuthCode).where(
            col(OAuthCode.id) == row.id, col(OAuthCode.used_at).is_(None)).values(used_at=now))
        if not used.rowcount:
            raise OAuthError("invalid_grant", "the code was used already")
    # Checked after it is used up: a failed exchange burns the code (RFC 6749 §10.5).
    if row.expires_at <= now:
        raise OAuthError("invalid_grant", "the code has expired")
    if redirect_uri != row.redirect_uri:
        raise OAuthError("invalid_grant", "redirect_uri differs from the authorisation's")
    if row.code_challenge is not None and not pkce_matches(row.code_challenge, verifier):
        raise OAuthError("invalid_grant", "the PKCE code_verifier does not match")
    async with node.db.write() as session:
        account = await session.get(Account, row.account_id)
        if account is None or not await may_act_for(session, account, row.local_actor_id):
            raise OAuthError("invalid_grant", "the user may no longer act for that group")
        return await _new_token(session, app, row.account_id, row.local_actor_id, row.scopes)


async def app_token(node: Node, app: OAuthApp, scopes: tuple[str, ...]) -> Issued:
    """client_credentials: a token of the app alone (verify_credentials, instance)."""
    async with node.db.write() as session:
        return await _new_token(session, app, None, None, " ".join(scopes))


async def _new_token(session: AsyncSession, app: OAuthApp, account_id: int | None,
                     group_id: int | None, scopes: str) -> Issued:
    token = secrets.token_urlsafe(32)
    row = OAuthToken(token_hash=_secret_hash(token), app_id=app.id or 0, account_id=account_id,
                     local_actor_id=group_id, scopes=scopes)
    session.add(row)
    await session.flush()
    await session.refresh(row)
    return Issued(token, row)


async def revoke(node: Node, app: OAuthApp, token: str | None) -> None:
    """RFC 7009 §2.2: an unknown token is no error; another app's token stays."""
    if not token or len(token) > 200:
        return
    async with node.db.write() as session:
        await session.exec(update(OAuthToken).where(
            col(OAuthToken.token_hash) == _secret_hash(token), col(OAuthToken.app_id) == app.id,
            col(OAuthToken.revoked_at).is_(None)).values(revoked_at=utcnow()))


@dataclass(frozen=True)
class Caller:
    """Who a request's bearer token speaks for."""

    token: OAuthToken
    app: OAuthApp
    account: Account | None
    group: LocalActor | None
    scopes: frozenset[str]


_CALLERS: weakref.WeakKeyDictionary[Node, dict[str, Caller | None]] = \
    weakref.WeakKeyDictionary()


async def caller_of(node: Node, token: str, *, cached: bool = False) -> Caller | None:
    """The live token's caller, else None: unknown, revoked, its user deleted, or the
    user no longer allowed the group (the role limits the token as in the workspace).

    ``cached`` (reads only): the answer is kept while a marker stays in the node's
    document cache, which the change counter empties when a token, account or
    group membership changes in any process (migration 0017), checked before every
    read (core/middleware.py). A write always asks the database."""
    if not token or len(token) > 200:
        return None
    digest = _secret_hash(token)
    key = ("clientapi-caller", digest)
    callers = _CALLERS.setdefault(node, {})
    if cached and node.doc_cache.get(key) is not None and digest in callers:
        return callers[digest]
    found = await _caller_query(node, token)
    if len(callers) > 10_000:
        callers.clear()
    callers[digest] = found
    node.doc_cache.put_raw(key, b"1", ttl=60)
    return found


async def _caller_query(node: Node, token: str) -> Caller | None:
    async with node.db.read() as session:
        found = (await session.exec(
            select(OAuthToken, OAuthApp, Account, LocalActor)
            .join(OAuthApp, col(OAuthApp.id) == col(OAuthToken.app_id))
            .join(Account, col(Account.id) == col(OAuthToken.account_id), isouter=True)
            .join(LocalActor, col(LocalActor.id) == col(OAuthToken.local_actor_id),
                  isouter=True)
            .where(OAuthToken.token_hash == _secret_hash(token),
                   col(OAuthToken.revoked_at).is_(None)))).first()
        if found is None:
            return None
        row, app, account, group = found
        if row.account_id is not None:
            if account is None or group is None:
                return None
            if account.role != "admin" and not await may_act_for(session, account,
                                                                 group.id or 0):
                return None
    return Caller(row, app, account, group, frozenset(row.scopes.split()))


# --- what a user has authorised (the workspace and `hambastegi user apps`) ------------


@dataclass(frozen=True)
class Authorised:
    id: int
    app: str
    website: str | None
    group: str
    scopes: str
    created_at: datetime


async def authorised_apps(node: Node, username: str) -> list[Authorised]:
    async with node.db.read() as session:
        rows = (await session.exec(
            select(OAuthToken, OAuthApp, LocalActor)
            .join(OAuthApp, col(OAuthApp.id) == col(OAuthToken.app_id))
            .join(LocalActor, col(LocalActor.id) == col(OAuthToken.local_actor_id))
            .join(Account, col(Account.id) == col(OAuthToken.account_id))
            .where(Account.username == username, col(OAuthToken.revoked_at).is_(None))
            .order_by(col(OAuthToken.id)))).all()
    return [Authorised(token.id or 0, app.name, app.website, group.username, token.scopes,
                       token.created_at) for token, app, group in rows]


async def revoke_for_user(node: Node, username: str, token_id: int) -> bool:
    """Revoke one of the user's authorisations; False if they have none with that id."""
    async with node.db.write() as session:
        account = (await session.exec(select(Account).where(
            Account.username == username))).first()
        if account is None:
            return False
        result = await session.exec(update(OAuthToken).where(
            col(OAuthToken.id) == token_id, col(OAuthToken.account_id) == account.id,
            col(OAuthToken.revoked_at).is_(None)).values(revoked_at=utcnow()))
        return bool(result.rowcount)
