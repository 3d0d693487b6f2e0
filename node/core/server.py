"""Connection-level limits uvicorn does not have on its own.

uvicorn closes idle keep-alive connections, but a connection that never finishes
its request head (silent, or trickling a header byte at a time) stays open for
ever, and a request body may arrive as slowly as the sender likes. Each such
connection holds a file descriptor; a few hundred of them are enough to stop a
node under systemd's default limit of 1,024. So:

- the request head must be complete within ``header_timeout`` of the connection
  opening or of the previous response (``HeadDeadline``, on httptools or h11);
- the body must be complete within ``body_timeout`` of the head (``node.core.middleware``,
  answered 408 and closed);
- connections beyond ``max_connections`` are closed at once, below the descriptor limit
  (``raise_open_files_limit`` lifts the soft limit to the hard one first);
- so are connections beyond ``max_per_address`` from one client address, so that one
  client cannot take every connection of the process (``AddressCounts``). Behind a
  reverse proxy every connection comes from the proxy, so there the count is off
  (``max_per_address=None``) and the cap applies per client to requests in flight
  instead, keyed by the proxy's client-address header (``node.core.middleware``);
  the proxy's own per-address connection limit is the one that holds silent
  connections back (deploy/README.md, "Slow clients"). Addresses are counted in
  memory only, never logged.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from typing import Any

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


class AddressCounts:
    """Open connections (or requests in flight) per client address, at most ``cap`` each.

    One event loop per process and no awaits between look and change, so no lock.
    Only addresses with something open are kept: the dict never outgrows the
    connection cap.
    """

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.open: dict[str, int] = {}

    def take(self, address: str) -> bool:
        """Count one more for ``address``; False (and nothing counted) at the cap."""
        held = self.open.get(address, 0)
        if held >= self.cap:
            return False
        self.open[address] = held + 1
        return True

    def give_back(self, address: str) -> None:
        held = self.open.get(address, 0) - 1
        if held > 0:
            self.open[address] = held
        else:
            self.open.pop(address, None)


def peer_address(transport: asyncio.BaseTransport) -> str | None:
    """The connection's remote IP address (None for a Unix socket)."""
    peer = transport.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else None


class HeadDeadline:
    """The head deadline and the connection caps, for either of uvicorn's HTTP/1.1 protocols.

    Mixed in before the protocol class; the protocol subclass calls ``_head_arrived``
    once a complete request head has been parsed.
    """

    header_timeout: float = 10.0
    max_connections: int = 1024
    # Shared by every connection of one server (``guarded_protocol``); None: not counted.
    address_counts: AddressCounts | None = None
    # Provided by uvicorn's protocol classes.
    connections: set[Any]
    cycle: Any
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    _head_timer: asyncio.TimerHandle | None = None
    _counted_address: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        if len(self.connections) > self.max_connections:
            # Refused before a byte is read: the descriptor is freed at once.
            self.transport.abort()
            return
        counts = self.address_counts
        if counts is not None:
            address = peer_address(transport)
            if address is not None:
                if not counts.take(address):
                    self.transport.abort()  # the same for one client at its own cap
                    return
                self._counted_address = address
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        if self._counted_address is not None and self.address_counts is not None:
            self.address_counts.give_back(self._counted_address)
            self._counted_address = None
        super().connection_lost(exc)  # type: ignore[misc]

    def on_response_complete(self) -> None:
        if not self.transport.is_closing():
            self._arm_head_timer()  # the next request on this connection gets a deadline too
        super().on_response_complete()  # type: ignore[misc]

    def _head_arrived(self) -> None:
        self._cancel_head_timer()  # a complete head arrived; the body has its own limit

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


def _h11_protocol() -> type[Any]:
    # Imported only when asked for: h11 is the fallback.
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11Protocol(HeadDeadline, H11Protocol):
        """uvicorn's pure-Python h11 protocol with the head deadline and the connection cap."""

        def handle_events(self) -> None:
            super().handle_events()
            if self.cycle is not None and not self.cycle.response_complete:
                self._head_arrived()

    return GuardedH11Protocol


def event_loop() -> str:
    """The event loop ``serve`` runs (uvicorn's "auto" picks the same): uvloop when
    installed; bench/readpath.py measures it against asyncio."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def _httptools_protocol() -> type[Any] | None:
    try:
        import httptools  # noqa: F401  # the C parser uvicorn's protocol below wraps
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # httptools missing: the h11 protocol serves (a fifth of the speed)
        return None

    class GuardedHttpToolsProtocol(HeadDeadline, HttpToolsProtocol):
        """uvicorn's httptools (C parser) protocol with the same limits.

        The server stack is chosen by measurement (bench/readpath.py, deploy/README.md):
        h11 parsing and writing took over half the CPU of a cached GET.
        """

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            self._head_arrived()

    return GuardedHttpToolsProtocol


def guarded_protocol(header_timeout: float, max_connections: int,
                     http: str = "httptools", *, max_per_address: int | None = None
                     ) -> type[Any]:
    """The protocol class for ``uvicorn.run(http=…)`` with these limits.

    ``http``: "httptools" (the default; h11 when httptools is not installed) or "h11".
    ``max_per_address``: connections one client address may hold open; None: no
    such cap (behind a proxy, where every connection is the proxy's).
    """
    base: type[Any] | None = _httptools_protocol() if http == "httptools" else None
    if base is None:
        base = _h11_protocol()
    counts = AddressCounts(max_per_address) if max_per_address is not None else None
    return type("Guarded", (base,), {
        "header_timeout": header_timeout, "max_connections": max_connections,
        "address_counts": counts})


# Requests whose bodies no handler reads (the head deadline already applied).
BODILESS = frozenset({"GET", "HEAD", "OPTIONS"})


class BodyTooSlow(Exception):
    """The request body did not arrive within the body timeout."""
