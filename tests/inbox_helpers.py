"""Running a node's inbox queue from a test, without waiting for its loop."""

from __future__ import annotations

from typing import Any


async def process_pending(node: Any) -> int:
    """Process every due inbox item now; returns how many were claimed."""
    return int(await node.inbox_worker().run_once())
