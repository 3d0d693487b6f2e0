"""Outbound delivery: the durable queue (``queue``) and the worker that sends it
(``worker``). The names other modules use are re-exported here."""

from node.federation.delivery.queue import (
    Claimed,
    ClaimResult,
    Outcome,
    Recorded,
    claim,
    claim_due,
    complete,
    enqueue,
    inbox_host,
    log_host,
    renew,
)
from node.federation.delivery.worker import BatchReport, DeliveryWorker

__all__ = [
    "BatchReport", "ClaimResult", "Claimed", "DeliveryWorker", "Outcome", "Recorded", "claim",
    "claim_due", "complete", "enqueue", "inbox_host", "log_host", "renew",
]
