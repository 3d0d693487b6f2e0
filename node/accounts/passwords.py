"""Password hashing with argon2id (argon2-cffi's RFC 9106 low-memory profile).

Hashing costs ~50 ms of CPU and 64 MiB, so it runs in a worker thread, never on the
event loop. A login for an unknown account verifies against a dummy hash, so the
answer takes as long whether the account exists or not."""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING

from node.groups.errors import OperationError

if TYPE_CHECKING:
    from argon2 import PasswordHasher

# argon2 is imported on the first login, not with the module: a node nobody has logged in
# to since it started does not carry it (#17, idle memory).

MIN_LENGTH = 10
MAX_LENGTH = 1024  # argon2 takes any length; a bound keeps a hostile form cheap


@functools.cache
def _hasher() -> PasswordHasher:
    from argon2 import PasswordHasher

    return PasswordHasher()  # argon2id, t=3, m=64 MiB, p=4 (RFC 9106 second choice)


@functools.cache
def _dummy_hash() -> str:
    return _hasher().hash("not a password of anyone")


def check_new(password: str) -> str:
    """Refuse passwords that are too short or too long; the message is for the user."""
    if len(password) < MIN_LENGTH:
        raise OperationError(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise OperationError(f"a password has at most {MAX_LENGTH} characters")
    return password


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher().hash, check_new(password))


def _verify(stored: str | None, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

    try:
        return _hasher().verify(stored or _dummy_hash(), password[:MAX_LENGTH]) \
            and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify(stored: str | None, password: str) -> bool:
    """True if ``password`` matches ``stored``; with no stored hash (no such account,
    or its password not set yet) the same work is done and the answer is False."""
    return await asyncio.to_thread(_verify, stored, password)
