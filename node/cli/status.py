"""``hambastegi status``: the queues now, what finished recently, history, failing hosts.

The delivery queue is shown as lanes (one per host) behind the fan-out log and failed
deliveries by when they failed; the inbox queue as rows, what is queued apart from what
finished in the last hour and day and from the all-time totals: a node that has sent a
million activities and has five queued should not look busy.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select

from node.federation import delivery
from node.federation.delivery import invariants
from node.federation.runtime import Node
from node.storage.db import utcnow
from node.storage.models import DeliveryFailure, HostState, InboxItem

SHOWN_HOSTS = 20
INBOX_QUEUED = ("pending",)


def counts(values: Mapping[str, int], *, total: bool = False) -> str:
    values = {k: v for k, v in values.items() if v}
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
        depth = await delivery.queue_depth(session)
        # The queue's invariants (docs/ARCHITECTURE.md §2, "Invariants"): both 0.
        stale = await invariants.stale_leases(
            session, timedelta(seconds=node.settings.delivery_lease_seconds), now=now)
        unexplained = await invariants.unexplained_failures(session)
        failed_at = col(DeliveryFailure.at)
        f_recent = [int((await session.exec(select(func.count()).select_from(DeliveryFailure)
                                            .where(failed_at >= since))).one())
                    for _, since in windows]
        f_all = int((await session.exec(select(func.count()).select_from(DeliveryFailure)))
                    .one())
        i_state, i_done = col(InboxItem.state), col(InboxItem.processed_at)
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
    # Deliveries: lanes (one per host) behind the fan-out log, not rows per inbox.
    lanes = {"behind": depth.behind - depth.retrying, "retrying": depth.retrying,
             "sending": depth.sending}
    queued = counts(lanes)
    if queued != "none":
        queued += f" (hosts); log positions behind, summed over hosts: {depth.positions_behind}"
    print(f"deliveries queued: {queued}")
    print(f"delivery lanes (hosts): {depth.lanes}")
    for (label, _), failed in zip(windows, f_recent, strict=True):
        print(f"deliveries failed in the {label}: {failed}")
    print(f"deliveries failed all time: {f_all}")
    print(f"delivery lanes sending that no walk renews (should be 0): {stale}")
    print(f"deliveries ended for no remote reason (should be 0): {unexplained}")
    print(f"inbox queued: {counts(i_queue)}")
    for (label, _), finished in zip(windows, i_recent, strict=True):
        print(f"inbox finished in the {label}: {counts(finished)}")
    print(f"inbox all time: {counts(i_all, total=True)}")
    await _print_outside(node)
    if not failing:
        print("failing hosts: none")
        return
    shown = (f" (the {SHOWN_HOSTS} with most failures below)"
             if failing_count > SHOWN_HOSTS else "")
    print(f"failing hosts: {failing_count}{shown}")
    for host in failing:
        until = host.next_attempt_at.isoformat() if host.attempts else "-"
        print(f"  {host.host}\tfailures={host.consecutive_failures}"
              f"\tnext_attempt={until}\tlast_error={host.last_error or '-'}")


async def _print_outside(node: Node) -> None:
    """Telegram channels and Bluesky accounts (issue 27): each connection, then the posts
    waiting or failed there, per destination, with why."""
    from node.crosspost import status as outside
    from node.crosspost.connections import list_connections

    connections = await list_connections(node)
    if not connections:
        return
    print("outside services:")
    for c in connections:
        state = c.state + (f" ({c.paused_reason})" if c.paused_reason else "")
        print(f"  {c.service} {c.target} ← {c.actor}: {state}; posts: {counts(c.items)}")
    async with node.db.read() as session:
        total, rows = await outside.unsettled(session, SHOWN_HOSTS)
    print(f"outside posts waiting or failed: {total}")
    for row in rows:
        print(f"  {row.object_uri}\t{row.service} {row.target}\t{row.state}\t{row.why}")


async def print_post(node: Node, id_or_uuid: str) -> None:
    """One post, per destination: each fediverse host per activity, each outside one."""
    from node.crosspost import status as outside
    from node.federation import publishing
    from node.groups.operations import object_uuid_from
    from node.storage.models import Activity

    uuid = object_uuid_from(node, id_or_uuid)
    async with node.db.read() as session:
        obj = await publishing.get_object(session, uuid)
        if obj is None:
            from node.groups.errors import OperationError

            raise OperationError("no such post", 404)
        activities = (await session.exec(select(Activity).where(
            Activity.object_uri == node.urls.object(uuid)).order_by(col(Activity.id)))).all()
        for activity in activities:
            print(f"{activity.activity_type} {activity.published.isoformat()}:")
            hosts = await delivery.delivery_status(session, activity.id or 0)
            for h in hosts:
                extra = f"\t{h.last_error}" if h.last_error else ""
                print(f"  fediverse {h.host}\t{h.state}{extra}")
            if not hosts:
                print("  fediverse: no followers' servers")
        for d in await outside.of_post(session, node.urls, obj):
            when = f" (next {d.next_attempt_at.isoformat()})" if d.next_attempt_at else ""
            print(f"  {d.service} {d.target}\t{d.state}{when}\t{d.why}")
