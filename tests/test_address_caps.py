"""One client cannot take every connection (issue 25, defect 5), against a real
`hambastegi serve`: other loopback addresses (127.0.0.2, 127.0.0.3, … all reach lo on
Linux) are distinct clients."""

from __future__ import annotations

import asyncio

import httpx

from node.core.middleware import client_address
from node.core.server import AddressCounts
from tests.conftest import NodeFactory, NodeProcess, wait_for
from tests.test_slow_clients import closed_after

CAP = 20


async def _status(node: NodeProcess, *, source: str = "127.0.0.1",
                  headers: dict[str, str] | None = None) -> int | None:
    """GET /health from ``source``; None if the connection was refused or dropped."""
    transport = httpx.AsyncHTTPTransport(local_address=source)
    try:
        async with httpx.AsyncClient(transport=transport, timeout=5) as client:
            return (await client.get(f"{node.base_url}/health", headers=headers)).status_code
    except httpx.HTTPError:
        return None


async def test_one_address_at_its_cap_is_refused_while_another_is_served(
        nodes: NodeFactory) -> None:
    node = await nodes.create("peraddr", extra_env={
        "HAMBASTEGI_MAX_CONNECTIONS_PER_ADDRESS": str(CAP),
        "HAMBASTEGI_HEADER_TIMEOUT": "60"})
    held = [await asyncio.open_connection("127.0.0.1", node.port, local_addr=("127.0.0.2", 0))
            for _ in range(CAP)]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", node.port,
                                                       local_addr=("127.0.0.2", 0))
        assert await closed_after(reader, 5) < 5  # refused at once, not held for 60 s
        writer.close()
        assert await _status(node, source="127.0.0.2") is None
        # Other clients are served while 127.0.0.2 sits at its cap.
        assert await _status(node, source="127.0.0.3") == 200
        assert await _status(node, source="127.0.0.1") == 200
        for _, w in held[:5]:
            w.close()

        async def served_again() -> bool:
            return await _status(node, source="127.0.0.2") == 200

        await wait_for(served_again, timeout=10, what="127.0.0.2 below its cap again")
    finally:
        for _, w in held:
            w.close()


async def test_behind_a_proxy_the_cap_counts_requests_in_flight_per_header_address(
        nodes: NodeFactory) -> None:
    node = await nodes.create("proxied", extra_env={
        "HAMBASTEGI_MAX_CONNECTIONS_PER_ADDRESS": "3",
        "HAMBASTEGI_CLIENT_ADDRESS_HEADER": "X-Real-IP",
        "HAMBASTEGI_HEADER_TIMEOUT": "60", "HAMBASTEGI_BODY_TIMEOUT": "60",
        "HAMBASTEGI_KEEPALIVE_TIMEOUT": "60"})
    # Every connection comes from the proxy's one address: more than the cap are open
    # at once, and each is served.
    proxy = [await asyncio.open_connection("127.0.0.1", node.port) for _ in range(10)]
    try:
        for n, (_, writer) in enumerate(proxy):
            writer.write(f"GET /health HTTP/1.1\r\nHost: {node.host}\r\n"
                         f"X-Real-IP: 198.51.100.{n}\r\n\r\n".encode())
            await writer.drain()
        for reader, _ in proxy:
            assert (await asyncio.wait_for(reader.readline(), 5)).startswith(b"HTTP/1.1 200")
        # One client holds three requests in flight (bodies that never come).
        for _, writer in proxy[:3]:
            writer.write(f"POST /inbox HTTP/1.1\r\nHost: {node.host}\r\n"
                         f"X-Real-IP: 203.0.113.7\r\nContent-Length: 100\r\n\r\n{{".encode())
            await writer.drain()

        async def at_cap() -> bool:
            return await _status(node, headers={"X-Real-IP": "203.0.113.7"}) == 429

        await wait_for(at_cap, timeout=10, what="203.0.113.7 answered 429 at its cap")
        # The proxy's own forwarding chain is not the key: the last entry, which it set.
        assert await _status(node, headers={"X-Real-IP": "203.0.113.8, 203.0.113.7"}) == 429
        # Another client, and the proxy's own requests without the header, are served.
        assert await _status(node, headers={"X-Real-IP": "203.0.113.8"}) == 200
        assert await _status(node) == 200
        for _, writer in proxy[:3]:
            writer.close()

        async def served_again() -> bool:
            return await _status(node, headers={"X-Real-IP": "203.0.113.7"}) == 200

        await wait_for(served_again, timeout=10, what="203.0.113.7 served again")
    finally:
        for _, writer in proxy:
            writer.close()
    assert "203.0.113" not in node.log_path.read_text()  # never logged


def test_address_counts_keep_only_addresses_with_something_open() -> None:
    counts = AddressCounts(2)
    assert counts.take("a") and counts.take("a") and not counts.take("a")
    assert counts.take("b")
    counts.give_back("a")
    assert counts.take("a")
    for address in ("a", "a", "b"):
        counts.give_back(address)
    assert counts.open == {}
    counts.give_back("never-taken")  # a stray release never goes below zero
    assert counts.open == {}


def test_client_address_is_the_last_header_entry_else_the_peer() -> None:
    assert client_address("198.51.100.1, 203.0.113.9", "10.0.0.1") == "203.0.113.9"
    assert client_address(" 2001:db8::1 ", "10.0.0.1") == "2001:db8::1"
    assert client_address("", "10.0.0.1") == "10.0.0.1"
    assert client_address(", ", "10.0.0.1") == "10.0.0.1"
    assert client_address(None, None) == "unknown"
    assert client_address("x" * 500, None) == "x" * 100
