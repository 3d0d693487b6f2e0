"""Checking a login: throttle first, then the password (the same work and the same
answer whether the account exists or not: passwords.verify)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import select

from node.accounts import passwords, throttle
from node.federation.runtime import Node
from node.groups.errors import OperationError
from node.storage.models import Account

WRONG = "wrong user name or password"
TOO_MANY = "too many failed logins; wait 15 minutes and try again"


async def authenticate(node: Node, username: str, password: str, client: str,
                       now: datetime) -> Account:
    """The account, or OperationError 401 (wrong name or password) / 429 (throttled)."""
    username = username.strip()[:200]
    if await throttle.blocked(node, username, client, now):
        raise OperationError(TOO_MANY, status=429)
    async with node.db.read() as session:
        account = (await session.exec(select(Account).where(
            Account.username == username.lower()))).first()
    stored = account.password_hash if account is not None else None
    if not await passwords.verify(stored, password) or account is None:
        await throttle.record_failure(node, username, client, now)
        raise OperationError(WRONG, status=401)
    await throttle.clear_account(node, username)
    return account
