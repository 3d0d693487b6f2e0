"""Slow and silent connections against a real `hambastegi serve`: closed within the
configured timeouts, and the node keeps answering while many of them are open."""

from __future__ import annotations

import asyncio
import contextlib
import resource
import socket
import time

import httpx
import pytest

from tests.conftest import NodeFactory

LIMITS = {"HAMBASTEGI_HEADER_TIMEOUT": "1", "HAMBASTEGI_BODY_TIMEOUT": "2",
          "HAMBASTEGI_KEEPALIVE_TIMEOUT": "1"}
SLACK = 3.0  # scheduling on a loaded 2-core machine


async def closed_after(reader: asyncio.StreamReader, limit: float) -> float:
    """Seconds until the server closes the connection (fails after ``limit``)."""
    started = time.monotonic()
    async with asyncio.timeout(limit):
        while True:
            try:
                if not await reader.read(4096):
                    break
            except ConnectionError:
                break
    return time.monotonic() - started


async def trickle(writer: asyncio.StreamWriter, data: bytes, every: float) -> None:
    """Send ``data`` a byte at a time, ``every`` seconds apart, until refused."""
    try:
        for byte in data:
            writer.write(bytes([byte]))
            await writer.drain()
            # The attack's pace: the next byte after ``every`` seconds, unless the
            # server closes the connection first.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), timeout=every)
            if writer.transport.is_closing():
                return
    except ConnectionError:
        pass


async def test_silent_and_trickling_connections_are_closed_within_the_header_timeout(
        nodes: NodeFactory) -> None:
    node = await nodes.create("slow", extra_env=LIMITS)
    silent = [await asyncio.open_connection("127.0.0.1", node.port) for _ in range(20)]
    tricklers = [await asyncio.open_connection("127.0.0.1", node.port) for _ in range(50)]
    head = b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 200
    trickling = [asyncio.create_task(trickle(w, head, 0.1)) for _, w in tricklers]
    try:
        waits = await asyncio.gather(*(closed_after(r, 1 + SLACK)
                                       for r, _ in silent + tricklers))
    finally:
        for task in trickling:
            task.cancel()
        for _, writer in silent + tricklers:
            writer.close()
    assert max(waits) < 1 + SLACK
    async with httpx.AsyncClient() as client:  # and the node still answers
        assert (await client.get(f"{node.base_url}/health")).status_code == 200


async def test_idle_keep_alive_connection_is_closed(nodes: NodeFactory) -> None:
    node = await nodes.create("slow", extra_env=LIMITS)
    reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    assert b"200 OK" in await reader.readuntil(b"\r\n\r\n")
    # A second request head trickled after the first answer gets the same deadline.
    trickling = asyncio.create_task(trickle(writer, b"GET /health HTTP/1.1\r\n" * 10, 0.1))
    try:
        assert await closed_after(reader, 1 + SLACK) < 1 + SLACK
    finally:
        trickling.cancel()
        writer.close()


async def test_slow_inbox_bodies_get_408_and_are_closed(nodes: NodeFactory) -> None:
    node = await nodes.create("slow", extra_env=LIMITS)
    body = b'{"type": "Follow", "padding": "' + b"x" * 500 + b'"}'
    conns = [await asyncio.open_connection("127.0.0.1", node.port) for _ in range(20)]
    head = (f"POST /inbox HTTP/1.1\r\nHost: {node.host}\r\nContent-Type: "
            f"application/activity+json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    for _, writer in conns:
        writer.write(head + body[:10])
        await writer.drain()
    trickling = [asyncio.create_task(trickle(w, body[10:], 0.1)) for _, w in conns]
    started = time.monotonic()
    try:
        answers = await asyncio.gather(*(asyncio.wait_for(r.read(), 2 + SLACK)
                                         for r, _ in conns))
    finally:
        for task in trickling:
            task.cancel()
        for _, writer in conns:
            writer.close()
    assert time.monotonic() - started < 2 + SLACK
    assert all(answer.startswith(b"HTTP/1.1 408 ") for answer in answers), answers[0][:80]


@pytest.fixture
def systemd_default_open_files() -> tuple[int, int]:
    """This process's limits; the test starts the node under systemd's default soft
    limit (1,024) and restores them."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft, hard


async def test_health_answers_while_more_silent_sockets_than_1024_are_open(
        nodes: NodeFactory, systemd_default_open_files: tuple[int, int]) -> None:
    soft, hard = systemd_default_open_files
    assert hard >= 4096, "the test needs room for 1,100 sockets"
    # All 1,100 come from one address: this test is about descriptors, not the
    # per-address cap (tests/test_address_caps.py).
    node = await nodes.create("many", start=False,
                              extra_env={"HAMBASTEGI_HEADER_TIMEOUT": "60",
                                         "HAMBASTEGI_MAX_CONNECTIONS_PER_ADDRESS": "5000"})
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    try:
        await asyncio.to_thread(node.start)  # inherits the 1,024 soft limit
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    sockets: list[socket.socket] = []
    try:
        for _ in range(1100):
            sockets.append(socket.create_connection(("127.0.0.1", node.port), timeout=5))
        async with httpx.AsyncClient() as client:
            health = await client.get(f"{node.base_url}/health", timeout=10)
        assert health.status_code == 200
    finally:
        for sock in sockets:
            sock.close()


async def test_connections_beyond_the_cap_are_refused_at_once(nodes: NodeFactory) -> None:
    node = await nodes.create("cap", extra_env={"HAMBASTEGI_MAX_CONNECTIONS": "50",
                                                "HAMBASTEGI_HEADER_TIMEOUT": "60"})
    held = [await asyncio.open_connection("127.0.0.1", node.port) for _ in range(50)]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
        assert await closed_after(reader, 5) < 5  # not held for the header timeout
        writer.close()
    finally:
        for _, w in held:
            w.close()
    async def healthy() -> bool:
        try:
            async with httpx.AsyncClient() as client:
                return (await client.get(f"{node.base_url}/health")).status_code == 200
        except httpx.HTTPError:
            return False
    from tests.conftest import wait_for

    await wait_for(healthy, timeout=10, what="health once the held connections closed")
