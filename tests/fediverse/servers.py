"""Loopback servers that stand in for remote hosts: ``LoopbackServer`` (aiohttp;
records every request, canned routes, holds) and ``RawServer`` (a socket server for
what a framework would hide: the raw request-target, no answer at all, lying lengths)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import ClientSession, web

AS_JSON = "application/activity+json"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_BODY = 2 * 1024 * 1024


# --- what arrived -----------------------------------------------------------------------


@dataclass
class Request:
    """One request as the server saw it; ``status`` is set once it was answered."""

    method: str
    path: str  # the raw path and query, as on the wire
    headers: dict[str, str]
    body: bytes
    peer_port: int = 0
    route: str | None = None  # the pattern it matched, None if none did
    status: int | None = None

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Hold:
    """Requests matching ``match`` wait (up to ``times`` of them; None: all) until
    ``release()``; ``held`` is set when the first one is waiting."""

    match: Callable[[Request], bool]
    times: int | None = 1
    held: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def release(self) -> None:
        self.released.set()

    def takes(self, request: Request) -> bool:
        if self.released.is_set() or self.times == 0 or not self.match(request):
            return False
        if self.times is not None:
            self.times -= 1
        return True


def _compile(pattern: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", pattern)
    regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^/]+)"
                    for i, p in enumerate(parts))
    return re.compile(regex + r"\Z")


# --- the loopback server ------------------------------------------------------------------


class LoopbackServer:
    """A real aiohttp server on one loopback address.

    Routes are ``(method, pattern)`` pairs, ``*`` for any method and ``{name}`` for a
    path segment (in ``request.match_info``); setting one again replaces it in place; unmatched
    requests get 404. Every request is recorded in ``requests`` before it is held or
    handled."""

    def __init__(self, host: str = "127.0.0.1", *, backlog: int = 128) -> None:
        self.host = host
        self.port = 0
        self.backlog = backlog
        self.requests: list[Request] = []
        self.holds: list[Hold] = []
        self.stopping = asyncio.Event()  # handlers that hang wait for this
        self._routes: dict[tuple[str, str], tuple[re.Pattern[str], Handler]] = {}
        self._fallback: Handler | None = None
        self._sessions: list[ClientSession] = []
        self._runner: web.AppRunner | None = None

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def authority(self) -> str:
        return f"{self.host}:{self.port}"

    def url(self, path: str = "/", host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}{path}"

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0, backlog=self.backlog)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        self.stopping.set()
        for hold in self.holds:
            hold.release()
        if self._runner is not None:
            await self._runner.cleanup()
        for session in self._sessions:
            await session.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- routes ---

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes[(method.upper(), pattern)] = (_compile(pattern), handler)

    def document(self, path: str, data: Any = None, *, content_type: str = AS_JSON) -> None:
        """``path`` answers ``data`` as JSON (default: ``{"id": <its URL>}``)."""
        body = json.dumps(data if data is not None else {"id": self.url(path)}).encode()
        self.raw(path, body, content_type=content_type)

    def raw(self, path: str, body: bytes, *, content_type: str = AS_JSON, status: int = 200,
            headers: Mapping[str, str] | None = None, method: str = "*") -> None:
        async def handler(request: web.Request) -> web.StreamResponse:
            response = web.Response(body=body, status=status, headers=headers)
            response.headers["Content-Type"] = content_type
            return response
        self.route(method, path, handler)

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        async def handler(request: web.Request) -> web.StreamResponse:
            return web.Response(status=status, headers={"Location": location})
        self.route("*", path, handler)

    def hang(self, path: str, *, after_headers: bool = False) -> None:
        """Never answer ``path`` (or stall after the headers and a little of the body)."""
        async def handler(request: web.Request) -> web.StreamResponse:
            if after_headers:
                response = web.StreamResponse(headers={"Content-Type": AS_JSON})
                await response.prepare(request)
                await response.write(b'{"id": ')
            await self.stopping.wait()
            return web.Response(status=500)
        self.route("*", path, handler)

    def fallback(self, handler: Handler) -> None:
        """Answer every request no route matches with ``handler`` (instead of 404)."""
        self._fallback = handler

    def proxy_to(self, upstream: str) -> None:
        """Forward every request no route matches to ``upstream``, as a reverse proxy
        (Caddy) in front of a node would."""
        async def forward(request: web.Request) -> web.StreamResponse:
            if not self._sessions:
                self._sessions.append(ClientSession(auto_decompress=False))
            session = self._sessions[0]
            body = await request.read()
            headers = {k: v for k, v in request.headers.items()
                       if k.lower() not in {"content-length", "transfer-encoding"}}
            async with session.request(request.method, upstream + request.raw_path,
                                       data=body, headers=headers,
                                       allow_redirects=False) as answer:
                payload = await answer.read()
                kept = {k: v for k, v in answer.headers.items()
                        if k.lower() in {"content-type", "etag", "vary"}}
                return web.Response(status=answer.status, body=payload, headers=kept)

        self.fallback(forward)

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    def hold(self, match: Callable[[Request], bool], times: int | None = 1) -> Hold:
        hold = Hold(match, times)
        self.holds.append(hold)
        return hold

    # --- serving ---

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        record = Request(request.method, request.raw_path, dict(request.headers),
                         await request.read(), peer[1] if peer else 0)
        self.requests.append(record)
        handler = self._fallback
        for (method, pattern), (regex, candidate) in self._routes.items():
            found = regex.match(request.path)
            if found and method in ("*", request.method):
                request.match_info.update(found.groupdict())
                record.route, handler = pattern, candidate
                break
        for hold in self.holds:
            if hold.takes(record):
                hold.held.set()
                await hold.released.wait()
        if handler is None:
            record.status = 404
            raise web.HTTPNotFound()
        response = await handler(request)
        record.status = response.status
        return response


# --- a raw socket server ------------------------------------------------------------------


@dataclass
class RawRequest:
    method: str
    target: str  # the request-target exactly as it arrived on the socket
    headers: dict[str, str]
    body: bytes


# What a RawServer answers a request with: bytes to write, or None to never answer.
RawRespond = Callable[["RawServer", RawRequest], bytes | None]


class RawServer:
    """A socket server that parses requests itself, so nothing normalises the
    request-target before a test looks at it, and that can answer anything (or
    nothing). ``respond`` returns the bytes of the whole answer, or None to keep the
    connection open unanswered until ``hang_up()``; with ``close=True`` it closes
    the connection after answering (for bodies that end when the connection does)."""

    def __init__(self, respond: RawRespond | None = None, *, close: bool = False) -> None:
        self.respond = respond
        self.close = close
        self.requests: list[RawRequest] = []
        self.connections: list[asyncio.StreamWriter] = []
        self.hung_up = False
        self.port = 0
        self._server: asyncio.Server | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def hang_up(self) -> None:
        """Close every connection, and from now on every new one at once."""
        self.hung_up = True
        for writer in self.connections:
            writer.close()

    async def stop(self) -> None:
        self.hang_up()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections.append(writer)
        try:
            while not self.hung_up:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                        ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    if line:
                        name, _, value = line.partition(":")
                        headers[name.strip()] = value.strip()
                lowered = {k.lower(): v for k, v in headers.items()}
                body = await reader.readexactly(int(lowered.get("content-length", "0")))
                request = RawRequest(method, target, headers, body)
                self.requests.append(request)
                answer = self.respond(self, request) if self.respond else None
                if answer is None:
                    await reader.read()  # until the client gives up or we hang up
                    return
                writer.write(answer)
                await writer.drain()
                if self.close:
                    return
        finally:
            writer.close()
