"""``hambastegi status``: the delivery queue and the hosts that are failing."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import col, select

from node.federation.runtime import Node
from node.storage.models import Delivery, HostState, InboxItem


async def print_status(node: Node) -> None:
    async with node.db.read() as session:
        deliveries = dict((await session.exec(
            select(Delivery.state, func.count()).group_by(Delivery.state)
        )).all())
        inbox = dict((await session.exec(
            select(InboxItem.state, func.count()).group_by(InboxItem.state)
        )).all())
        failing = (await session.exec(
            select(HostState).where(HostState.consecutive_failures > 0)
            .order_by(col(HostState.consecutive_failures).desc()).limit(20)
        )).all()
    print("deliveries: " + ", ".join(f"{k}={v}" for k, v in sorted(deliveries.items())) or "none")
    print("inbox: " + ", ".join(f"{k}={v}" for k, v in sorted(inbox.items())) or "none")
    if failing:
        print("failing hosts:")
        for host in failing:
            until = host.circuit_open_until.isoformat() if host.circuit_open_until else "-"
            print(f"  {host.host}\tfailures={host.consecutive_failures}"
                  f"\tcircuit_open_until={until}")
    else:
        print("failing hosts: none")
