"""Users of the workspace: create, list, delete, their groups, their passwords and
one-time set-password links (issue 14, point 3)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from node.accounts import passwords
from node.accounts.keys import token_hash
from node.federation import local_actors
from node.federation.runtime import Node
from node.groups.errors import OperationError
from node.storage.db import utcnow
from node.storage.models import (
    Account,
    AccountGroup,
    AccountSession,
    ClientMarker,
    Draft,
    LocalActor,
    OAuthCode,
    OAuthToken,
    PasswordLink,
)

USERNAME_RE = re.compile(r"[a-z0-9_][a-z0-9_.-]{0,63}")
ROLES = ("admin", "editor")
LINK_LIFETIME = timedelta(hours=48)


@dataclass(frozen=True)
class User:
    """An account as the front ends show it."""

    id: int
    username: str
    role: str
    groups: tuple[str, ...]
    has_password: bool

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def check_username(name: str) -> str:
    if not USERNAME_RE.fullmatch(name):
        raise OperationError("a user name is 1 to 64 of a-z, 0-9, _ . - (lower case)")
    return name


async def group_names(session: AsyncSession, account_id: int) -> tuple[str, ...]:
    rows = await session.exec(
        select(LocalActor.username).join(
            AccountGroup, AccountGroup.local_actor_id == LocalActor.id)  # type: ignore[arg-type]
        .where(AccountGroup.account_id == account_id).order_by(LocalActor.username))
    return tuple(rows.all())


async def as_user(session: AsyncSession, account: Account) -> User:
    assert account.id is not None
    return User(account.id, account.username, account.role,
                await group_names(session, account.id), account.password_hash is not None)


async def create_user(node: Node, username: str, *, admin: bool = False,
                      groups: tuple[str, ...] = ()) -> User:
    check_username(username)
    if admin and groups:
        raise OperationError("an admin acts for every group; give --group to editors only")
    if not admin and not groups:
        raise OperationError("an editor needs at least one --group")
    async with node.db.write() as session:
        if (await session.exec(select(Account).where(Account.username == username))).first():
            raise OperationError(f"a user named {username!r} exists already", status=409)
        actors = []
        for name in dict.fromkeys(groups):
            actor = await local_actors.get_group(session, name)
            if actor is None:
                raise OperationError(f"no group named {name!r}", status=404)
            actors.append(actor)
        account = Account(username=username, role="admin" if admin else "editor")
        session.add(account)
        await session.flush()
        assert account.id is not None
        session.add_all([AccountGroup(account_id=account.id, local_actor_id=a.id or 0)
                         for a in actors])
        await session.flush()
        return await as_user(session, account)


async def list_users(node: Node) -> list[User]:
    async with node.db.read() as session:
        accounts = (await session.exec(select(Account).order_by(Account.username))).all()
        return [await as_user(session, a) for a in accounts]


async def _account(session: AsyncSession, username: str) -> Account:
    account = (await session.exec(select(Account).where(Account.username == username))).first()
    if account is None:
        raise OperationError(f"no user named {username!r}", status=404)
    return account


async def delete_user(node: Node, username: str) -> None:
    async with node.db.write() as session:
        account = await _account(session, username)
        await session.exec(delete(AccountSession).where(
            col(AccountSession.account_id) == account.id))
        await session.exec(delete(PasswordLink).where(
            col(PasswordLink.account_id) == account.id))
        await session.exec(delete(AccountGroup).where(
            col(AccountGroup.account_id) == account.id))
        # Its app authorisations end with it (node/clientapi): codes and markers go,
        # tokens stay revoked (their Idempotency-Keys point to them).
        await session.exec(delete(OAuthCode).where(col(OAuthCode.account_id) == account.id))
        await session.exec(delete(ClientMarker).where(
            col(ClientMarker.account_id) == account.id))
        await session.exec(update(OAuthToken).where(
            col(OAuthToken.account_id) == account.id).values(
            account_id=None, revoked_at=utcnow()))
        for draft in (await session.exec(select(Draft).where(
                Draft.created_by == account.id))).all():
            draft.created_by = None
            session.add(draft)
        await session.delete(account)


async def end_sessions(session: AsyncSession, account_id: int) -> None:
    """Log the account out everywhere (logout, password change)."""
    await session.exec(delete(AccountSession).where(
        col(AccountSession.account_id) == account_id))


async def set_password(node: Node, username: str, password: str) -> None:
    """Set a password and end every session of the account."""
    hashed = await passwords.hash_password(password)
    async with node.db.write() as session:
        account = await _account(session, username)
        await _store_password(session, account, hashed)


async def _store_password(session: AsyncSession, account: Account, hashed: str) -> None:
    assert account.id is not None
    account.password_hash = hashed
    account.password_changed_at = utcnow()
    session.add(account)
    await end_sessions(session, account.id)
    await session.exec(delete(PasswordLink).where(
        col(PasswordLink.account_id) == account.id))


async def create_link(node: Node, username: str, *, now: datetime | None = None) -> str:
    """A one-time set-password token, valid 48 hours; only its hash is stored."""
    token = secrets.token_urlsafe(32)
    async with node.db.write() as session:
        account = await _account(session, username)
        session.add(PasswordLink(token_hash=token_hash(token), account_id=account.id or 0,
                                 expires_at=(now or utcnow()) + LINK_LIFETIME))
    return token


def link_url(node: Node, token: str) -> str:
    return f"{node.settings.base_url}/admin/set-password/{token}"


async def link_account(node: Node, token: str, *, now: datetime | None = None
                       ) -> Account | None:
    """The account a still valid link is for, else None."""
    if not 20 <= len(token) <= 100:
        return None
    async with node.db.read() as session:
        link = (await session.exec(select(PasswordLink).where(
            PasswordLink.token_hash == token_hash(token)))).first()
        if link is None or link.expires_at <= (now or utcnow()):
            return None
        return await session.get(Account, link.account_id)


async def use_link(node: Node, token: str, password: str, *,
                   now: datetime | None = None) -> Account:
    """Set the password through a link; the link (and every other) is used up."""
    hashed = await passwords.hash_password(password)
    async with node.db.write() as session:
        link = (await session.exec(select(PasswordLink).where(
            PasswordLink.token_hash == token_hash(token)))).first()
        account = await session.get(Account, link.account_id) if link else None
        if link is None or account is None or link.expires_at <= (now or utcnow()):
            raise OperationError("this link has expired or was used; ask an admin for a "
                                 "new one", status=404)
        await _store_password(session, account, hashed)
        return account


async def visible_groups(node: Node, user: User) -> list[LocalActor]:
    """The groups the user works for: every group for an admin."""
    async with node.db.read() as session:
        groups = await local_actors.list_groups(session)
    return [g for g in groups if user.is_admin or g.username in user.groups]
