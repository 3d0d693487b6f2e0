"""Outbound delivery: the fan-out log (``fanout``: what publishing writes),
per-host lanes over it (``lanes``: claim, flush, status), the rules of where
deliveries go (``targets``), one send on the wire (``sending``) and the worker
(``worker``). docs/ARCHITECTURE.md §2. The names other modules use are
re-exported here."""

from node.federation.delivery.fanout import fan_out, lock_log, log_head, prepare_follower
from node.federation.delivery.lanes import (
    HostDelivery,
    LaneClaim,
    QueueDepth,
    claim_lanes,
    delivery_status,
    flush,
    queue_depth,
    renew_lanes,
)
from node.federation.delivery.targets import (
    MAX_INBOXES_PER_HOST,
    bound_inboxes,
    deliver_to,
    inbox_host,
    log_host,
)
from node.federation.delivery.worker import DeliveryWorker

__all__ = [
    "MAX_INBOXES_PER_HOST", "DeliveryWorker", "HostDelivery", "LaneClaim", "QueueDepth",
    "bound_inboxes", "claim_lanes", "deliver_to", "delivery_status", "fan_out", "flush",
    "inbox_host", "lock_log", "log_head", "log_host", "prepare_follower", "queue_depth",
    "renew_lanes",
]
