"""The one middleware in front of every request (node/core/middleware.py) and the
guarded server protocols (node/core/server.py): every protection the five stacked
layers gave, kept in one layer, on httptools and on the h11 fallback."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from node.core.middleware import NodeMiddleware
from node.core.server import guarded_protocol
from tests.conftest import free_port, wait_for

Message = dict[str, Any]


class Boom(RuntimeError):
    pass


async def thing(request: Request) -> Response:
    return JSONResponse({"id": request.path_params["id"]})


async def page(request: Request) -> Response:
    return HTMLResponse("<p>hi</p>", headers={
        "Content-Security-Policy": "default-src 'self'", "X-Frame-Options": "SAMEORIGIN"})


async def broken(request: Request) -> Response:
    raise Boom("handler failed")


async def upload(request: Request) -> Response:
    return JSONResponse({"size": len(await request.body())}, status_code=202)


class Harness:
    """A NodeMiddleware around a small router, called the way a server calls it."""

    def __init__(self, *, body_timeout: float = 5.0, sync_fails: bool = False) -> None:
        self.observed: list[tuple[str, float]] = []
        self.sent: list[Message] = []
        self.synced = 0
        self.sync_fails = sync_fails
        router = Starlette(routes=[
            Route("/things/{id}", thing), Route("/page", page), Route("/broken", broken),
            Route("/upload", upload, methods=["POST"]),
        ]).router
        self.app = NodeMiddleware(ExceptionMiddleware(router), body_timeout=body_timeout,
                                  before_read=self.sync,
                                  observe=lambda route, s: self.observed.append((route, s)))

    async def sync(self) -> None:
        self.synced += 1
        if self.sync_fails:
            raise OSError("database gone")

    async def call(self, method: str, path: str, query: bytes = b"",
                   body_parts: list[bytes | None] | None = None) -> list[Message]:
        """``body_parts``: chunks of the body; None stands for a sender that stalls."""
        scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(),
                 "query_string": query, "headers": [], "http_version": "1.1",
                 "scheme": "http", "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1),
                 "root_path": "", "state": {}, "app": None}
        parts = list(body_parts or [b""])
        sent = self.sent = []

        async def receive() -> Message:
            if not parts:
                await asyncio.Event().wait()  # only a disconnect would come now
            part = parts.pop(0)
            if part is None:
                await asyncio.Event().wait()
            return {"type": "http.request", "body": part, "more_body": bool(parts)}

        async def send(message: Message) -> None:
            sent.append(message)

        await self.app(scope, receive, send)
        return sent


def start_of(messages: list[Message]) -> tuple[int, dict[bytes, bytes]]:
    start = messages[0]
    assert start["type"] == "http.response.start"
    return start["status"], {k.lower(): v for k, v in start["headers"]}


def assert_secured(headers: dict[bytes, bytes]) -> None:
    assert headers[b"x-content-type-options"] == b"nosniff"
    assert headers[b"referrer-policy"] == b"no-referrer"
    assert headers[b"x-frame-options"] == b"DENY"
    csp = headers[b"content-security-policy"].decode()
    for directive in ("frame-ancestors 'none'", "base-uri 'none'", "object-src 'none'"):
        assert directive in csp


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/things/7", 200), ("GET", "/nowhere", 404), ("POST", "/things/7", 405),
])
async def test_every_status_carries_the_security_headers(method: str, path: str,
                                                         status: int) -> None:
    got, headers = start_of(await Harness().call(method, path))
    assert got == status
    assert_secured(headers)


async def test_a_handler_that_raises_gets_a_500_with_the_headers_and_the_error_goes_on() -> None:
    harness = Harness()
    with pytest.raises(Boom):  # on to the server, which logs it
        await harness.call("GET", "/broken")
    status, headers = start_of(harness.sent)
    assert status == 500
    assert_secured(headers)
    assert harness.sent[1]["body"] == b"Internal Server Error"
    assert [route for route, _ in harness.observed] == ["/broken"]


async def test_a_page_keeps_its_own_policy_completed_and_cannot_weaken_framing() -> None:
    status, headers = start_of(await Harness().call("GET", "/page"))
    assert status == 200
    assert_secured(headers)  # its X-Frame-Options SAMEORIGIN was replaced
    csp = headers[b"content-security-policy"].decode()
    assert csp.startswith("default-src 'self'")
    assert "form-action 'self'" in csp


@pytest.mark.parametrize(("path", "query"), [
    ("/things/a\x00b", b""), ("/things/7", b"x=%00"), ("/things/7", b"x=a\x00"),
])
async def test_nul_bytes_in_path_or_query_are_400_before_any_handler(path: str,
                                                                     query: bytes) -> None:
    harness = Harness()
    messages = await harness.call("GET", path, query)
    status, headers = start_of(messages)
    assert status == 400
    assert_secured(headers)
    assert b"NUL byte" in messages[1]["body"]
    assert harness.synced == 0  # refused before the change check or the router


async def test_latency_is_counted_per_route_template_never_per_url() -> None:
    harness = Harness()
    await harness.call("GET", "/things/1")
    await harness.call("GET", "/things/2")
    await harness.call("GET", "/nowhere")
    assert [route for route, _ in harness.observed] == ["/things/{id}", "/things/{id}", "other"]
    assert all(seconds >= 0 for _, seconds in harness.observed)


async def test_reads_check_for_changes_first_and_writes_do_not() -> None:
    harness = Harness()
    await harness.call("GET", "/things/1")
    await harness.call("HEAD", "/things/1")
    await harness.call("POST", "/upload", body_parts=[b"x"])
    assert harness.synced == 2


async def test_an_unreadable_change_counter_still_serves_the_request() -> None:
    harness = Harness(sync_fails=True)
    status, _ = start_of(await harness.call("GET", "/things/1"))
    assert harness.synced == 1
    assert status == 200


async def test_a_body_that_stalls_past_the_deadline_is_408_and_closed() -> None:
    harness = Harness(body_timeout=0.3)
    started = time.monotonic()
    messages = await harness.call("POST", "/upload", body_parts=[b"abc", None])
    status, headers = start_of(messages)
    assert status == 408
    assert headers[b"connection"] == b"close"
    assert_secured(headers)
    assert time.monotonic() - started < 3


async def test_a_body_in_parts_within_the_deadline_is_read_whole() -> None:
    messages = await Harness(body_timeout=2).call("POST", "/upload",
                                                  body_parts=[b"ab", b"cd", b"e"])
    assert start_of(messages)[0] == 202
    assert messages[1]["body"] == b'{"size":5}'


def test_the_node_app_has_one_middleware_layer(tmp_path: Path) -> None:
    from node.app import create_app
    from node.core.settings import Settings

    settings = Settings.load(environ={"HAMBASTEGI_BASE_URL": "http://127.0.0.1:9",
                                      "HAMBASTEGI_DATA_DIR": str(tmp_path)})
    app = create_app(settings)
    stack = app.build_middleware_stack()
    assert isinstance(stack, NodeMiddleware)
    assert isinstance(stack.app, ExceptionMiddleware)
    assert stack.observe is None  # no metrics token: nothing can read latencies


# --- the server protocols ------------------------------------------------------------------


@contextlib.asynccontextmanager
async def guarded_server(http: str, *, header_timeout: float,
                         max_connections: int) -> AsyncIterator[int]:
    port = free_port()
    app = Starlette(routes=[Route("/things/{id}", thing)])
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                            access_log=False, lifespan="off",
                            http=guarded_protocol(header_timeout, max_connections, http=http))
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        if task.done():
            task.result()
        return bool(server.started)

    await wait_for(started, what="guarded server start")
    try:
        yield port
    finally:
        server.should_exit = True
        await task


def test_httptools_is_the_default_protocol_and_h11_the_fallback() -> None:
    from uvicorn.protocols.http.h11_impl import H11Protocol
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    assert issubclass(guarded_protocol(1, 10), HttpToolsProtocol)
    assert issubclass(guarded_protocol(1, 10, http="h11"), H11Protocol)


@pytest.mark.parametrize("http", ["httptools", "h11"])
async def test_a_silent_connection_is_closed_at_the_head_deadline_and_a_kept_alive_one_after(
        http: str) -> None:
    async with guarded_server(http, header_timeout=0.5, max_connections=100) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.monotonic()
        async with asyncio.timeout(5):
            assert await reader.read() == b""
        assert time.monotonic() - started < 4
        writer.close()
        # A request answered, then silence: the next head has its own deadline.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /things/1 HTTP/1.1\r\nHost: x\r\n\r\n")
        async with asyncio.timeout(5):
            answer = await reader.read()
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b'{"id":"1"}')
        writer.close()


@pytest.mark.parametrize("http", ["httptools", "h11"])
async def test_connections_beyond_the_cap_are_dropped_at_once(http: str) -> None:
    async with guarded_server(http, header_timeout=30, max_connections=2) as port:
        kept = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        async with asyncio.timeout(5):
            with contextlib.suppress(ConnectionError):
                assert await reader.read() == b""
        writer.close()
        for _, kept_writer in kept:
            kept_writer.close()
