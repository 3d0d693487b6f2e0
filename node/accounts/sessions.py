"""Browser sessions: a random id in an HttpOnly cookie, its SHA-256 in the database.

A fresh id at every login (an id planted before login is worth nothing after it);
an idle timeout (no request for ``idle``) and an absolute one (``absolute`` after
login, however active); every session of an account ends at logout and at a password
change (users.end_sessions). The clock is a parameter, so tests move time without
sleeping."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import select

from node.accounts.keys import token_hash
from node.accounts.users import User, as_user, end_sessions
from node.federation.runtime import Node
from node.storage.models import Account, AccountSession

# Seen again within this much, a session's last_seen_at is not rewritten: one write
# per minute per editor, not one per page.
TOUCH_SPACING = timedelta(minutes=1)


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta = timedelta(hours=2)
    absolute: timedelta = timedelta(hours=12)


async def start(node: Node, account_id: int, now: datetime,
                replaces: str | None = None) -> str:
    """A new session for the account; the browser's previous one (if any) goes."""
    token = secrets.token_urlsafe(32)
    async with node.db.write() as session:
        if replaces:
            old = (await session.exec(select(AccountSession).where(
                AccountSession.token_hash == token_hash(replaces)))).first()
            if old is not None:
                await session.delete(old)
        session.add(AccountSession(token_hash=token_hash(token), account_id=account_id,
                                   created_at=now, last_seen_at=now))
    return token


async def current(node: Node, token: str | None, now: datetime,
                  policy: SessionPolicy) -> User | None:
    """The user a session cookie belongs to, if the session is alive; a timed-out
    session is deleted."""
    if not token or len(token) > 100:
        return None
    async with node.db.read() as session:
        row = (await session.exec(select(AccountSession).where(
            AccountSession.token_hash == token_hash(token)))).first()
        account = await session.get(Account, row.account_id) if row else None
        user = await as_user(session, account) if account is not None else None
    if row is None or user is None:
        return None
    if now - row.last_seen_at >= policy.idle or now - row.created_at >= policy.absolute:
        async with node.db.write() as session:
            stale = await session.get(AccountSession, row.id)
            if stale is not None:
                await session.delete(stale)
        return None
    if now - row.last_seen_at > TOUCH_SPACING:
        async with node.db.write() as session:
            fresh = await session.get(AccountSession, row.id)
            if fresh is not None:
                fresh.last_seen_at = now
                session.add(fresh)
    return user


async def end_all(node: Node, account_id: int) -> None:
    async with node.db.write() as session:
        await end_sessions(session, account_id)
