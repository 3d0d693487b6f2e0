"""Peer policy operations: block, unblock, allow, disallow, list (docs/ARCHITECTURE.md §9).

One code path for the CLI (node/cli/policy.py), the JSON API (node/api/policy.py)
and the admin workspace's moderation form (node/web/admin/moderation.py).

What a block does, at once and in one transaction: the domain's followers of our
groups are removed (they would get nothing more anyway), and our groups'
follows of its actors are cancelled (rows deleted; no Undo is sent, since
nothing goes to a blocked domain). From then on the inbox refuses its
activities (403), the guarded client refuses every request to it (fetches and
deliveries: a delivery is recorded failed ``blocked_domain``), and queued inbox
items from it are dropped unhandled. Subdomains are included.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import delete, or_
from sqlmodel import col, select

from node.core.domains import BLOCKED, DomainRules, host_of, normalise_domain
from node.storage.models import DomainRule, Follower, Following

if TYPE_CHECKING:
    from node.federation.runtime import Node

log = logging.getLogger("hambastegi.policy")

MAX_NOTE = 500
Kind = str  # "block" | "allow"


class PolicyError(ValueError):
    """A domain or note the admin gave is unusable; the message says why."""


@dataclass(frozen=True)
class RuleChange:
    domain: str
    changed: bool  # False: the rule was already there (or, removing, was not)
    followers_removed: int = 0
    follows_cancelled: int = 0


@dataclass(frozen=True)
class Rule:
    domain: str
    kind: str
    note: str | None
    created_at: datetime


def _domain(text: str) -> str:
    try:
        return normalise_domain(text)
    except ValueError as exc:
        raise PolicyError(str(exc)) from exc


def _note(note: str | None) -> str | None:
    if note is None:
        return None
    note = note.strip()
    if len(note) > MAX_NOTE:
        raise PolicyError(f"the note is longer than {MAX_NOTE} characters")
    return note or None


async def _add(node: Node, text: str, kind: Kind, note: str | None) -> tuple[str, bool]:
    domain, note = _domain(text), _note(note)
    async with node.db.write() as session:
        existing = (await session.exec(select(DomainRule).where(
            DomainRule.domain == domain, DomainRule.kind == kind))).first()
        if existing is None:
            session.add(DomainRule(domain=domain, kind=kind, note=note))
    return domain, existing is None


async def _remove(node: Node, text: str, kind: Kind) -> RuleChange:
    domain = _domain(text)
    async with node.db.write() as session:
        result = await session.exec(delete(DomainRule).where(
            col(DomainRule.domain) == domain, col(DomainRule.kind) == kind))
    node.peer_policy.mark_stale()
    await node.peer_policy.refresh(node.db)
    return RuleChange(domain, bool(result.rowcount))


async def block_domain(node: Node, domain: str, note: str | None = None) -> RuleChange:
    """Block ``domain`` and its subdomains; remove its followers, cancel our follows."""
    normal, created = await _add(node, domain, "block", note)
    rules = DomainRules(blocked=frozenset({normal}))
    # The candidates are narrowed in SQL by the domain's text; the exact rule
    # (a label boundary: blocking ample.com must not touch example.com) in Python.
    async with node.db.write() as session:
        followers = (await session.exec(select(Follower.id, Follower.actor_uri).where(or_(
            col(Follower.actor_uri).contains(normal), col(Follower.host).contains(normal)))
        )).all()
        gone = [fid for fid, uri in followers if rules.is_blocked(host_of(uri))]
        if gone:
            await session.exec(delete(Follower).where(col(Follower.id).in_(gone)))
        follows = (await session.exec(select(Following.id, Following.target_uri).where(
            col(Following.target_uri).contains(normal)))).all()
        cancelled = [fid for fid, uri in follows if rules.is_blocked(host_of(uri))]
        if cancelled:
            await session.exec(delete(Following).where(col(Following.id).in_(cancelled)))
    node.peer_policy.mark_stale()
    await node.peer_policy.refresh(node.db)
    node.changed()
    log.info("domain blocked", extra={"followers_removed": len(gone),
                                      "follows_cancelled": len(cancelled)})
    return RuleChange(normal, created, len(gone), len(cancelled))


async def unblock_domain(node: Node, domain: str) -> RuleChange:
    """Lift a block. Removed followers do not come back: they follow again."""
    return await _remove(node, domain, "block")


async def allow_domain(node: Node, domain: str, note: str | None = None) -> RuleChange:
    """List ``domain`` (and its subdomains) as a peer for allowlist mode."""
    normal, created = await _add(node, domain, "allow", note)
    node.peer_policy.mark_stale()
    await node.peer_policy.refresh(node.db)
    return RuleChange(normal, created)


async def disallow_domain(node: Node, domain: str) -> RuleChange:
    return await _remove(node, domain, "allow")


async def list_rules(node: Node, kind: Kind | None = None) -> list[Rule]:
    async with node.db.read() as session:
        query = select(DomainRule).order_by(col(DomainRule.kind), col(DomainRule.domain))
        if kind is not None:
            query = query.where(DomainRule.kind == kind)
        rows = (await session.exec(query)).all()
    return [Rule(r.domain, r.kind, r.note, r.created_at) for r in rows]


def is_blocked(node: Node, uri_or_host: str) -> bool:
    """Whether a URL's host (or a bare host) is blocked, subdomains included.
    For callers outside the request paths already guarded, e.g. the network
    relay: a blocked domain's posts are not relayed even via a member. Uses
    the in-memory rules; call ``await node.current_policy()`` first where a
    block made by another process moments ago must be seen."""
    host = host_of(uri_or_host if "://" in uri_or_host else "//" + uri_or_host)
    return node.peer_policy.is_blocked(host)


def refusal(node: Node, uri: str) -> str | None:
    """Why we would not federate with a URL's host (blocked, or not on the
    allowlist in allowlist mode), None when we would."""
    return node.peer_policy.refusal_uri(uri)


__all__ = ["BLOCKED", "PolicyError", "Rule", "RuleChange", "allow_domain", "block_domain",
           "disallow_domain", "is_blocked", "list_rules", "refusal", "unblock_domain"]
