"""Listing and revoking API tokens (created by ``operations.create_token``).

The API looks a token up in the database on every request (node/api/routes.py), never
in a per-process cache, so a revocation made by the CLI holds in every web process at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select

from node.federation.runtime import Node
from node.groups.operations import OperationError
from node.storage.db import utcnow
from node.storage.models import ApiToken, LocalActor


@dataclass(frozen=True)
class TokenInfo:
    id: int
    label: str
    group: str | None  # None: an admin token, for every group
    created_at: datetime
    revoked_at: datetime | None


async def list_tokens(node: Node) -> list[TokenInfo]:
    async with node.db.read() as session:
        rows = (await session.exec(
            select(ApiToken, LocalActor.username)
            .join(LocalActor, col(LocalActor.id) == col(ApiToken.local_actor_id), isouter=True)
            .order_by(col(ApiToken.id))
        )).all()
    return [TokenInfo(id=token.id or 0, label=token.label, group=username,
                      created_at=token.created_at, revoked_at=token.revoked_at)
            for token, username in rows]


async def revoke_token(node: Node, token_id: int) -> None:
    async with node.db.write() as session:
        token = await session.get(ApiToken, token_id)
        if token is None or token.revoked_at is not None:
            raise OperationError(f"no active token with id {token_id}", status=404)
        token.revoked_at = utcnow()
        session.add(token)
