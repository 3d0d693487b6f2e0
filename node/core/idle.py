"""How a queue worker waits when it has nothing to do (both queues' workers).

It returns at the first of: an in-process wake (a publish or an inbox POST in
this process), ``stop``, the cross-process wake-up (``idle_wait``:
node/storage/wakeup.py, LISTEN/NOTIFY or the wal-index look), or ``poll_seconds``
— the poll that still finds retries coming due (docs/ARCHITECTURE.md, how
workers wake).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

IdleWait = Callable[[float], Awaitable[None]]


async def wait_for_work(wake: asyncio.Event, stop: asyncio.Event,
                        idle_wait: IdleWait | None, poll_seconds: float) -> None:
    waiters: set[asyncio.Future[Any]] = {asyncio.ensure_future(wake.wait()),
                                         asyncio.ensure_future(stop.wait())}
    if idle_wait is not None:
        waiters.add(asyncio.ensure_future(idle_wait(poll_seconds)))
    try:
        await asyncio.wait(waiters, timeout=poll_seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
