"""What must always hold of the delivery queue, checked against the database
(docs/ARCHITECTURE.md §2, "Invariants"). Tests run them during and after a
worker's run; ``hambastegi status`` shows them.

- A lane ``sending`` to a worker is walked by that worker. A lane leased to a
  live worker that holds no walk for it stalls its host until the lease runs
  out (issue 24's first defect). The worker knows what it holds
  (``orphaned_lanes`` with its set); another process sees the symptom: the
  lease is no longer renewed (``stale_leases``).
- A delivery ends only on the remote's answer (a final HTTP status, or the
  retries used up on its failures), on an address that is never delivered to,
  or because its activity is really gone. Anything else (an activity the worker
  failed to load, an unusable key, an internal error) is a delivery the node
  dropped (``unexplained_failures``).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, not_, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from node.federation.delivery.fanout import HOST_STATE
from node.federation.delivery.lanes import FAILURE
from node.federation.delivery.sending import PERMANENT_FETCH_ERRORS
from node.storage.db import utcnow
from node.storage.models import Activity

L = HOST_STATE.c
F = FAILURE.c
ACTIVITY = Activity.metadata.tables["activity"]
# The reason a delivery ends when its activity is gone (worker.py).
ACTIVITY_GONE = "activity_gone"
# Prefix of the reason of a delivery whose retries were used up (worker.py).
ATTEMPTS_USED_UP = "attempts_used_up"


@dataclass(frozen=True, slots=True)
class Invariants:
    """Violations found; every field is 0 on a sound queue."""

    orphaned_lanes: int  # sending to the checking worker, which walks none of them
    unexplained_failures: int  # deliveries ended for no remote reason

    @property
    def ok(self) -> bool:
        return self.orphaned_lanes == 0 and self.unexplained_failures == 0


async def orphaned_lanes(session: AsyncSession, worker_id: str,
                         held: Collection[str]) -> list[str]:
    """Lanes ``sending`` to ``worker_id`` that are not in ``held`` (the hosts
    the worker walks or has unwritten progress of)."""
    conn = await session.connection()
    rows = (await conn.execute(
        select(L.host).where(L.state == "sending", L.worker_id == worker_id)
        .order_by(L.host))).all()
    return [host for (host,) in rows if host not in held]


async def stale_leases(session: AsyncSession, lease: timedelta, *,
                       now: datetime | None = None) -> int:
    """Lanes ``sending`` whose lease was not renewed for two thirds of a lease:
    a worker renews its lanes every third of one, so these are walked by no
    live worker (orphaned, or their worker died and the lease runs out)."""
    now = now or utcnow()
    conn = await session.connection()
    return int((await conn.execute(
        select(func.count()).select_from(HOST_STATE)
        .where(L.state == "sending", L.lease_until < now + lease / 3))).scalar_one())


async def unexplained_failures(session: AsyncSession) -> int:
    """Recorded failed deliveries whose reason is neither the remote's answer,
    nor an address never delivered to, nor an activity that is really gone."""
    conn = await session.connection()
    gone = ~select(ACTIVITY.c.id).where(ACTIVITY.c.id == F.activity_id).exists()
    explained = or_(
        F.status.is_not(None),
        F.error.like(f"{ATTEMPTS_USED_UP}:%"),
        F.error.in_(sorted(PERMANENT_FETCH_ERRORS)),
        and_(F.error == ACTIVITY_GONE, gone),
    )
    return int((await conn.execute(
        select(func.count()).select_from(FAILURE).where(not_(explained)))).scalar_one())
