"""The blocked and allowed domains of this process, in memory (docs/ARCHITECTURE.md §9).

Every inbox POST, every outbound request and every authorized-fetch GET asks
``refusal(host)``: a few set lookups on a frozen snapshot (core/domains.py),
never a query. The snapshot is reloaded (one small SELECT) only after the
database's change counter moved (``mark_stale`` is the ChangeWatcher's
callback, runtime.Node) and someone asks for a fresh one (``refresh``): the
inbox, the delivery worker before it claims lanes, the inbox worker before a
handler runs. ``domain_rule`` has the change-counter triggers (migration
0013_peer_policy), so a block made by the CLI is seen by the next request of
the server.
"""

from __future__ import annotations

import asyncio

from sqlmodel import select

from node.core.domains import DomainRules
from node.storage.db import Database
from node.storage.models import DomainRule


class PeerPolicy:
    def __init__(self, *, allowlist: bool, own_host: str) -> None:
        self._allowlist = allowlist
        self._own_host = own_host
        self.rules = DomainRules(allowlist=allowlist, own_host=own_host)
        self._stale = True
        self._lock: asyncio.Lock | None = None

    @property
    def allowlist(self) -> bool:
        return self._allowlist

    def mark_stale(self) -> None:
        self._stale = True

    def refusal(self, host: str) -> str | None:
        """The guarded client's check (fetch.GuardedClient ``host_check``)."""
        return self.rules.refusal(host)

    def refusal_uri(self, uri: str) -> str | None:
        return self.rules.refusal_uri(uri)

    def is_blocked(self, host: str) -> bool:
        return self.rules.is_blocked(host)

    async def refresh(self, db: Database) -> None:
        """Reload the rules if the counter moved since they were read."""
        if not self._stale:
            return
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if not self._stale:
                return  # another caller reloaded while this one waited
            # Cleared before reading: a change committed during the read marks
            # the snapshot stale again, so it is never missed.
            self._stale = False
            try:
                async with db.read() as session:
                    rows = (await session.exec(select(DomainRule.domain, DomainRule.kind))).all()
            except Exception:
                self._stale = True
                raise
        self.rules = DomainRules(
            blocked=frozenset(d for d, kind in rows if kind == "block"),
            allowed=frozenset(d for d, kind in rows if kind == "allow"),
            allowlist=self._allowlist, own_host=self._own_host)
