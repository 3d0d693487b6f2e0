"""The one middleware every request passes: one pure ASGI layer instead of five.

Each layer of ASGI middleware costs a coroutine call, and a wrapped ``send`` and
``receive``, on every request; five of them (body deadline, security headers, NUL
bytes, latency, the change check) took a fifth of a cached GET's CPU
(docs/ARCHITECTURE.md#7-the-read-path). Here, in order:

1. NUL bytes in the path or query → 400 (``httpsecurity.has_nul_byte``);
2. GET/HEAD: ``before_read`` (the change check, so no cached document older than
   another process's commit is served);
3. requests with a body: the whole body within ``body_timeout`` of the head → else 408
   and close (``server.BodyTooSlow``);
4. every response start: the security headers (``httpsecurity.secure_headers``);
5. with an onion service: the onion treatment of HTML (``onion.OnionSite``: the
   Onion-Location of clearnet pages over HTTPS; links, redirects and cookies of
   requests to the onion ``Host``);
6. after the response: latency per route template (``observe``).

Before all of them, behind a reverse proxy (``client_header`` set), requests in flight
per client address (the header's, as ``client_address`` reads it) are capped: past
``max_per_address`` a client gets 429 at once (node/core/server.py says why this is
the per-address cap there, and not the connection count).

It is the outermost layer and stands in for Starlette's ServerErrorMiddleware
(``node.app.NodeApp``), so a 500 carries the headers too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from node.core.httpsecurity import has_nul_byte, secure_headers
from node.core.onion import ADVERTISE, ONION, OnionSite
from node.core.server import BODILESS, AddressCounts, BodyTooSlow

log = logging.getLogger("hambastegi")

READS = frozenset({"GET", "HEAD"})
NUL_BODY = b'{"error":"NUL byte in the request URL"}'
SLOW_BODY = b'{"error":"request body too slow"}'
ERROR_BODY = b"Internal Server Error"
BUSY_BODY = b'{"error":"too many requests in flight from one address"}'
JSON = (b"content-type", b"application/json")
TEXT = (b"content-type", b"text/plain; charset=utf-8")


ONION_CLIENT = "onion"


def client_address(header_value: str | None, peer: str | None, *, host: str | None = None,
                   onion_host: str = "") -> str:
    """The client's address: the last entry of the proxy's client-address header
    (HAMBASTEGI_CLIENT_ADDRESS_HEADER, the one the proxy itself set) when there is
    one, else the connection's peer. Used as a key only (login throttling hashes it,
    the in-flight cap counts it); never logged or stored as it is.

    A request for the onion ``Host`` is one client, whatever it says: Tor may
    forward straight to the node (deploy/tor/torrc-systemd), past the proxy that
    sets the header, so the header would be the reader's own and could claim a new
    address per request (no login throttle, no cap). Every onion reader arrives
    from Tor on loopback anyway."""
    if onion_host and host is not None:
        name = host.strip().lower().rstrip(".")
        if name.removesuffix(":80") == onion_host:
            return ONION_CLIENT
    if header_value:
        given = header_value.split(",")[-1].strip()
        if given:
            return given[:100]
    return peer or "unknown"


class NodeMiddleware:
    def __init__(self, app: ASGIApp, *, body_timeout: float,
                 before_read: Callable[[], Awaitable[None]] | None = None,
                 observe: Callable[[str, float], None] | None = None,
                 client_header: str = "", max_per_address: int | None = None,
                 onion: OnionSite | None = None) -> None:
        self.app = app
        self.onion = onion
        self.body_timeout = body_timeout
        self.before_read = before_read
        self.observe = observe
        self.client_header = client_header.lower().encode("latin-1")
        self.in_flight = (AddressCounts(max_per_address)
                          if client_header and max_per_address is not None else None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.in_flight is None:
            await self._handle(scope, receive, send)
            return
        address = self._client(scope)
        if not self.in_flight.take(address):
            await self._answer(self._secured(send), 429, BUSY_BODY,
                               extra=[(b"retry-after", b"1")])
            return
        try:
            await self._handle(scope, receive, send)
        finally:
            self.in_flight.give_back(address)

    def _client(self, scope: Scope) -> str:
        value: str | None = None
        host: str | None = None
        for key, raw in scope["headers"]:
            if key == self.client_header and value is None:
                value = raw.decode("latin-1")
            elif key == b"host" and host is None:
                host = raw.decode("latin-1")
        peer = scope.get("client")
        return client_address(value, peer[0] if peer else None, host=host,
                              onion_host=self.onion.onion_host if self.onion else "")

    @staticmethod
    def _secured(send: Send) -> Send:
        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = secure_headers(message.get("headers", ()))
            await send(message)

        return secured

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        response_started = False

        async def secured_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                message["headers"] = secure_headers(message.get("headers", ()))
            await send(message)

        out: Send = secured_send if self.onion is None else self._onion_send(scope, secured_send)

        try:
            if has_nul_byte(scope["path"], scope.get("query_string", b"")):
                await self._answer(out, 400, NUL_BODY)
                return
            method = scope["method"]
            if method in READS and self.before_read is not None:
                try:
                    await self.before_read()
                except Exception:  # the cache is cleared; the handler reports the database
                    log.warning("change counter unreadable")
            if method in BODILESS:
                await self.app(scope, receive, out)
                return
            try:
                await self.app(scope, self._timed(receive), out)
            except BodyTooSlow:
                if response_started:
                    raise
                await self._answer(out, 408, SLOW_BODY, close=True)
        except Exception:
            # In place of Starlette's ServerErrorMiddleware: a 500 if nothing was sent
            # yet, and the exception goes on to the server, which logs it.
            if not response_started:
                await self._answer(out, 500, ERROR_BODY, content_type=TEXT)
            raise
        finally:
            if self.observe is not None:
                route = scope.get("route")
                self.observe(getattr(route, "path", "other"), time.perf_counter() - started)

    def _onion_send(self, scope: Scope, send: Send) -> Send:
        """``send`` with the onion treatment of this request's response, if any."""
        assert self.onion is not None
        site = self.onion
        host = forwarded = None
        for name, value in scope.get("headers", ()):
            if name == b"host":
                host = value
            elif name == b"x-forwarded-proto":
                forwarded = value
        mode = site.mode(host, forwarded, scope.get("scheme", "http"))
        if mode is None:
            return send
        held: Message | None = None
        chunks: list[bytes] = []

        async def onion_send(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                if mode == ONION:
                    headers = site.onion_headers(headers)
                kind = next((v for n, v in headers if n.lower() == b"content-type"), b"")
                message["headers"] = headers
                if kind.startswith((b"text/html", b"application/atom+xml")) \
                        and scope["method"] != "HEAD" \
                        and (mode == ONION or kind.startswith(b"text/html")):
                    held = message  # the body is rewritten: hold the head until it is whole
                    return
                await send(message)
                return
            if held is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            headers = [(n, v) for n, v in held["headers"] if n.lower() != b"content-length"]
            if mode == ONION:
                body = site.onto_onion(body)
            elif mode == ADVERTISE:
                location = site.location(scope.get("raw_path") or scope["path"].encode(),
                                         scope.get("query_string", b""))
                body = site.advertise(body, location)
                headers.append((b"onion-location", location.encode("latin-1")))
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**held, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        return onion_send

    def _timed(self, receive: Receive) -> Receive:
        """``receive`` with one deadline for the whole body.

        A per-read timeout would not do: a sender trickling a byte just inside it could
        hold the connection for ever. After the body, ``receive`` is passed through
        untouched (waiting for a disconnect is not reading a body).
        """
        deadline = asyncio.get_running_loop().time() + self.body_timeout
        body_done = False

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

        return timed_receive

    @staticmethod
    async def _answer(send: Send, status: int, body: bytes, *, close: bool = False,
                      content_type: tuple[bytes, bytes] = JSON,
                      extra: list[tuple[bytes, bytes]] | None = None) -> None:
        headers = [content_type, (b"connection", b"close")] if close else [content_type]
        headers += extra or []
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
