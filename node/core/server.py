"""Connection-level limits uvicorn does not have on its own.

uvicorn closes idle keep-alive connections, but a connection that never finishes
its request head (silent, or trickling a header byte at a time) stays open for
ever, and a request body may arrive as slowly as the sender likes. Each such
connection holds a file descriptor; a few hundred of them are enough to stop a
node under systemd's default limit of 1,024. So:

- the request head must be complete within ``header_timeout`` of the connection
  opening or of the previous response (``GuardedH11Protocol``);
- the body must be complete within ``body_timeout`` of the head (``BodyTimeoutMiddleware``,
  answered 408 and closed);
- connections beyond ``max_connections`` are closed at once, below the descriptor limit
  (``raise_open_files_limit`` lifts the soft limit to the hard one first).
"""

from __future__ import annotations

import asyncio
import logging
import resource
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("hambastegi")

# Descriptors kept free for the database, media files and outbound requests.
RESERVED_FILES = 128


def raise_open_files_limit() -> int:
    """Lift the soft RLIMIT_NOFILE to the hard limit; returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            log.warning("could not raise the open files limit", extra={"soft": soft})
    return int(soft)


def connection_cap(max_connections: int, open_files: int) -> int:
    """At most ``max_connections``, and never so many that the descriptors run out."""
    return max(1, min(max_connections, open_files - RESERVED_FILES))


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request head and a connection cap."""

    header_timeout: float = 10.0
    max_connections: int = 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            # Refused before a byte is read: the descriptor is freed at once.
            transport.abort()
            return
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and not self.cycle.response_complete:
            self._cancel_head_timer()  # a complete head arrived; the body has its own limit

    def on_response_complete(self) -> None:
        if not self.transport.is_closing():
            self._arm_head_timer()  # the next request on this connection gets a deadline too
        super().on_response_complete()

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_too_slow)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        waiting = self.cycle is None or self.cycle.response_complete
        if waiting and not self.transport.is_closing():
            # A graceful close (FIN), like uvicorn's keep-alive timeout: an RST here made
            # clients that were about to reuse a pooled connection fail their request.
            self.transport.close()


def guarded_protocol(header_timeout: float, max_connections: int) -> type[H11Protocol]:
    """The protocol class for ``uvicorn.run(http=…)`` with these limits."""
    return type("GuardedH11", (GuardedH11Protocol,), {
        "header_timeout": header_timeout, "max_connections": max_connections})


# Requests whose bodies no handler reads (the head deadline already applied).
BODILESS = frozenset({"GET", "HEAD", "OPTIONS"})


class BodyTooSlow(Exception):
    """The request body did not arrive within the body timeout."""


class BodyTimeoutMiddleware:
    """The whole request body must arrive within ``timeout`` seconds of the request head.

    A per-read timeout would not do: a sender trickling a byte just inside it could
    hold the connection for ever. After the body, ``receive`` is passed through
    untouched (waiting for a disconnect is not reading a body).
    """

    def __init__(self, app: ASGIApp, timeout: float) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in BODILESS:
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        body_done = False
        response_started = False

        async def timed_receive() -> Message:
            nonlocal body_done
            if body_done:
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyTooSlow from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, timed_receive, tracking_send)
        except BodyTooSlow:
            if response_started:
                raise
            await send({"type": "http.response.start", "status": 408, "headers": [
                (b"content-type", b"application/json"), (b"connection", b"close")]})
            await send({"type": "http.response.body",
                        "body": b'{"error":"request body too slow"}'})
