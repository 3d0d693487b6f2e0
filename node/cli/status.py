"""``hambastegi status``: the queues now, what finished recently, history, failing hosts.

The queue (rows still to do) is shown apart from what finished in the last hour and day,
and from the all-time totals: a node that has sent a million activities and has five
queued should not look busy.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select

from node.federation.runtime import Node
from node.storage.db import utcnow
from node.storage.models import Delivery, HostState, InboxItem

SHOWN_HOSTS = 20
DELIVERY_QUEUED = ("pending", "sending")
INBOX_QUEUED = ("pending",)


def counts(values: Mapping[str, int], *, total: bool = False) -> str:
    if not values:
        return "none"
    text = ", ".join(f"{k}={v}" for k, v in sorted(values.items()))
    return f"{text} (total {sum(values.values())})" if total else text


async def _by_state(session: Any, state: Any, *where: Any) -> dict[str, int]:
    rows = (await session.exec(select(state, func.count()).where(*where).group_by(state))).all()
    return {str(k): int(v) for k, v in rows}


async def print_status(node: Node) -> None:
    now = utcnow()
    windows: list[tuple[str, datetime]] = [("last hour", now - timedelta(hours=1)),
                                           ("last day", now - timedelta(days=1))]
    async with node.db.read() as session:
        d_state, d_done = col(Delivery.state), col(Delivery.finished_at)
        i_state, i_done = col(InboxItem.state), col(InboxItem.processed_at)
        d_queue = await _by_state(session, d_state, d_state.in_(DELIVERY_QUEUED))
        d_recent = [await _by_state(session, d_state, d_done >= since) for _, since in windows]
        d_all = await _by_state(session, d_state)
        i_queue = await _by_state(session, i_state, i_state.in_(INBOX_QUEUED))
        i_recent = [await _by_state(session, i_state, i_done >= since) for _, since in windows]
        i_all = await _by_state(session, i_state)
        failing_where = col(HostState.consecutive_failures) > 0
        failing_count = int((await session.exec(
            select(func.count()).select_from(HostState).where(failing_where))).one())
        failing = (await session.exec(
            select(HostState).where(failing_where)
            .order_by(col(HostState.consecutive_failures).desc(), col(HostState.host))
            .limit(SHOWN_HOSTS)
        )).all()
    for name, queue, recent, history in (("deliveries", d_queue, d_recent, d_all),
                                         ("inbox", i_queue, i_recent, i_all)):
        print(f"{name} queued: {counts(queue)}")
        for (label, _), finished in zip(windows, recent, strict=True):
            print(f"{name} finished in the {label}: {counts(finished)}")
        print(f"{name} all time: {counts(history, total=True)}")
    if not failing:
        print("failing hosts: none")
        return
    shown = (f" (the {SHOWN_HOSTS} with most failures below)"
             if failing_count > SHOWN_HOSTS else "")
    print(f"failing hosts: {failing_count}{shown}")
    for host in failing:
        until = host.circuit_open_until.isoformat() if host.circuit_open_until else "-"
        print(f"  {host.host}\tfailures={host.consecutive_failures}"
              f"\tcircuit_open_until={until}")
