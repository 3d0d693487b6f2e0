"""The guarded client against real HTTP servers on loopback addresses.

Loopback is "private" to the default policy, so most tests use a policy that
allows 127.0.0.1 only; a second server on 127.0.0.2 plays a refused address.
"""

from __future__ import annotations

import gzip
import ipaddress
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Literal

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from node.federation.fetch import (
    AS_ACCEPT,
    FetchError,
    ForbiddenAddressError,
    GuardedClient,
    GuardedResolver,
    IPAddress,
    allow_all_policy,
    public_address_policy,
    wire_url,
)
from tests.fediverse import LoopbackServer, RawServer

UA = "Hambastegi-test/1"
AP = "application/activity+json"
SchemeName = Literal["cavage", "rfc9421"]


def only_127_0_0_1(ip: IPAddress) -> bool:
    return ip == ipaddress.ip_address("127.0.0.1")


def only_127_0_0_2(ip: IPAddress) -> bool:
    return ip == ipaddress.ip_address("127.0.0.2")


ServerFactory = Callable[..., Awaitable[LoopbackServer]]
ClientFactory = Callable[..., Awaitable[GuardedClient]]


@pytest.fixture
async def servers() -> AsyncIterator[ServerFactory]:
    started: list[LoopbackServer] = []

    async def make(host: str = "127.0.0.1") -> LoopbackServer:
        server = LoopbackServer(host)
        await server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        await server.stop()


@pytest.fixture
async def server(servers: ServerFactory) -> LoopbackServer:
    return await servers()


@pytest.fixture
async def clients() -> AsyncIterator[ClientFactory]:
    made: list[GuardedClient] = []

    async def make(**options: Any) -> GuardedClient:
        options.setdefault("policy", only_127_0_0_1)
        client = GuardedClient(user_agent=UA, **options)
        await client.start()
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


@pytest.fixture
async def client(clients: ClientFactory) -> GuardedClient:
    return await clients()


class RecordingSigner:
    """Stands in for HTTP signatures: says which scheme it used, remembers calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, bytes | None, SchemeName]] = []

    def __call__(self, method: str, url: str, body: bytes | None,
                 scheme: SchemeName) -> Mapping[str, str]:
        self.calls.append((method, url, body, scheme))
        return {"X-Test-Scheme": scheme}


async def reason_of(call: Awaitable[object]) -> str:
    with pytest.raises(FetchError) as caught:
        await call
    return caught.value.reason


# --- the address policy --------------------------------------------------------------

PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700::1111", "2001:4860:4860::8888",
          "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"]
NOT_PUBLIC = {
    "127.0.0.1": "loopback", "127.0.0.2": "loopback", "10.0.0.1": "RFC 1918",
    "172.16.0.1": "RFC 1918", "192.168.1.1": "RFC 1918", "169.254.169.254": "metadata",
    "100.64.0.1": "CGNAT", "0.0.0.0": "unspecified", "0.1.2.3": "this network",
    "224.0.0.1": "multicast", "239.255.255.250": "multicast", "240.0.0.1": "reserved",
    "255.255.255.255": "broadcast", "192.0.2.1": "documentation",
    "198.51.100.1": "documentation", "203.0.113.1": "documentation",
    "198.18.0.1": "benchmarking", "192.0.0.9": "IETF protocol", "192.88.99.1": "6to4 relay",
    "::1": "v6 loopback", "::": "v6 unspecified", "fe80::1": "v6 link-local",
    "fc00::1": "ULA", "fd12:3456::1": "ULA", "fec0::1": "site-local", "ff02::1": "multicast",
    "ff0e::1": "global multicast", "2001:db8::1": "documentation", "3fff::1": "documentation",
    "::ffff:127.0.0.1": "mapped loopback", "::ffff:10.0.0.1": "mapped private",
    "::ffff:169.254.169.254": "mapped metadata", "::127.0.0.1": "compatible loopback",
    "::8.8.8.8": "compatible (deprecated)", "2002:7f00:1::1": "6to4 loopback",
    "2002:a9fe:a9fe::1": "6to4 metadata", "2002:a00:1::1": "6to4 private",
    "64:ff9b::7f00:1": "NAT64 loopback", "64:ff9b::a00:1": "NAT64 private",
    "64:ff9b::a9fe:a9fe": "NAT64 metadata", "64:ff9b:1::808:808": "local NAT64",
    "2001:0:4136:e378:8000:63bf:80ff:fffe": "Teredo of 127.0.0.1",
    "2001:0:4136:e378:8000:63bf:f7f7:f7f7": "Teredo (any)",
}


@pytest.mark.parametrize("address", PUBLIC)
def test_public_policy_allows_globally_routable_unicast(address: str) -> None:
    assert public_address_policy(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", NOT_PUBLIC, ids=[f"{a} {w}" for a, w in NOT_PUBLIC.items()])
def test_public_policy_refuses_non_public_and_embedded_forms(address: str) -> None:
    assert not public_address_policy(ipaddress.ip_address(address))


def test_allow_all_policy_allows_private_addresses() -> None:
    assert allow_all_policy(ipaddress.ip_address("10.0.0.1"))


class FixedResolver(AbstractResolver):
    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses
        self.closed = False

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        return [ResolveResult(hostname=host, host=a, port=port, family=family, proto=0,
                              flags=0) for a in self.addresses]

    async def close(self) -> None:
        self.closed = True


async def test_resolver_keeps_only_the_addresses_the_policy_allows() -> None:
    inner = FixedResolver("10.0.0.1", "93.184.216.34", "::1", "2606:4700::1111")
    resolved = await GuardedResolver(public_address_policy, inner).resolve("example.org", 443)
    assert [r["host"] for r in resolved] == ["93.184.216.34", "2606:4700::1111"]


async def test_resolver_refuses_a_name_with_only_refused_addresses() -> None:
    resolver = GuardedResolver(public_address_policy, FixedResolver("127.0.0.1", "fd00::1"))
    with pytest.raises(ForbiddenAddressError):
        await resolver.resolve("rebind.example", 80)


async def test_resolver_close_closes_the_inner_resolver() -> None:
    inner = FixedResolver()
    await GuardedResolver(public_address_policy, inner).close()
    assert inner.closed


# --- URLs and addresses refused before any request -----------------------------------


@pytest.mark.parametrize("url", [
    "ftp://127.0.0.1:{port}/", "file:///etc/passwd", "gopher://127.0.0.1:{port}/",
    "http://user:secret@127.0.0.1:{port}/", "http://user@127.0.0.1:{port}/",
    "http:///no-host", "not a url", "http://[::1/",
])
async def test_non_http_and_credential_urls_are_refused_without_a_request(
        server: LoopbackServer, client: GuardedClient, url: str) -> None:
    url = url.format(port=server.port)
    assert await reason_of(client.fetch_activity(url)) == "bad_scheme"
    signer = RecordingSigner()
    assert await reason_of(client.post_activity(url, b"{}", signer=signer,
                                                scheme="cavage")) == "bad_scheme"
    assert server.requests == []


@pytest.mark.parametrize("host", [
    "127.0.0.1", "localhost", "[::1]", "[::ffff:127.0.0.1]", "169.254.169.254", "10.0.0.1",
    "100.64.0.1", "0.0.0.0", "127.1", "2130706433", "0x7f.0.0.1", "127.0.0.1.",
])
async def test_default_policy_refuses_local_targets_without_a_request(
        server: LoopbackServer, clients: ClientFactory, host: str) -> None:
    # A small connect timeout so a failing guard shows up as a wrong reason, not a hang.
    client = await clients(policy=public_address_policy, connect_timeout=0.5)
    url = f"http://{host}:{server.port}/actor"
    server.document("/actor")
    assert await reason_of(client.fetch_activity(url)) == "forbidden_address"
    assert await reason_of(client.post_signed(url, b"{}", {})) == "forbidden_address"
    assert server.requests == []


async def test_names_are_judged_by_what_they_resolve_to(
        server: LoopbackServer, clients: ClientFactory) -> None:
    server.document("/actor", {"id": server.url("/actor", host="localhost")})
    allowed = await clients(policy=only_127_0_0_1)
    document = await allowed.fetch_activity(server.url("/actor", host="localhost"))
    assert document.data["id"] == server.url("/actor", host="localhost")
    refused = await clients(policy=only_127_0_0_2)
    assert await reason_of(refused.fetch_activity(server.url("/actor", host="localhost"))) \
        == "forbidden_address"
    assert len(server.requests) == 1


async def test_unresolvable_name_is_a_dns_failure(client: GuardedClient) -> None:
    assert await reason_of(client.fetch_activity("http://nowhere.invalid/")) == "dns_failure"


async def test_closed_port_is_a_connect_error(client: GuardedClient) -> None:
    # Bound but not listening: the port is ours and refuses connections.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        assert await reason_of(client.fetch_activity(f"http://127.0.0.1:{port}/")) \
            == "connect_error"


async def test_environment_proxy_is_not_used(
        server: LoopbackServer, client: GuardedClient, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9/")
    server.document("/actor")
    await client.fetch_activity(server.url("/actor"))
    assert [s.path for s in server.requests] == ["/actor"]


# --- redirects -----------------------------------------------------------------------


async def test_redirect_to_a_refused_address_is_blocked_on_the_hop(
        servers: ServerFactory, client: GuardedClient) -> None:
    allowed, refused = await servers("127.0.0.1"), await servers("127.0.0.2")
    refused.document("/secret")
    allowed.redirect("/actor", refused.url("/secret"))
    assert await reason_of(client.fetch_activity(allowed.url("/actor"))) == "forbidden_address"
    assert [s.path for s in allowed.requests] == ["/actor"]
    assert refused.requests == []


async def test_redirect_to_a_name_resolving_to_a_refused_address_is_blocked(
        servers: ServerFactory, clients: ClientFactory) -> None:
    allowed, refused = await servers("127.0.0.2"), await servers("127.0.0.1")
    refused.document("/secret")
    allowed.redirect("/actor", refused.url("/secret", host="localhost"))
    client = await clients(policy=only_127_0_0_2)
    assert await reason_of(client.fetch_activity(allowed.url("/actor"))) == "forbidden_address"
    assert refused.requests == []


@pytest.mark.parametrize("location", ["ftp://127.0.0.1/x", "file:///etc/passwd",
                                      "http://user:pw@127.0.0.1/x"])
async def test_redirect_to_a_refused_url_is_blocked(
        server: LoopbackServer, client: GuardedClient, location: str) -> None:
    server.redirect("/actor", location)
    assert await reason_of(client.fetch_activity(server.url("/actor"))) == "bad_scheme"
    assert len(server.requests) == 1


async def test_three_redirects_are_followed(server: LoopbackServer, client: GuardedClient) -> None:
    for hop in range(3):
        server.redirect(f"/r{hop}", f"/r{hop + 1}", status=(301, 307, 308)[hop])
    server.document("/r3")
    document = await client.fetch_activity(server.url("/r0"))
    assert document.url == server.url("/r3")
    assert [s.path for s in server.requests] == ["/r0", "/r1", "/r2", "/r3"]


async def test_a_fourth_redirect_is_refused(server: LoopbackServer, client: GuardedClient) -> None:
    for hop in range(4):
        server.redirect(f"/r{hop}", server.url(f"/r{hop + 1}"))
    server.document("/r4")
    assert await reason_of(client.fetch_activity(server.url("/r0"))) == "too_many_redirects"
    assert "/r4" not in [s.path for s in server.requests]


async def test_redirect_without_location_is_a_bad_status(
        server: LoopbackServer, client: GuardedClient) -> None:
    server.raw("/actor", b"", status=302)
    with pytest.raises(FetchError) as caught:
        await client.fetch_activity(server.url("/actor"))
    assert (caught.value.reason, caught.value.status) == ("bad_status", 302)


async def test_same_origin_redirect_checks_the_id_against_the_final_url(
        server: LoopbackServer, client: GuardedClient) -> None:
    server.redirect("/old", "/new")
    server.document("/new")
    document = await client.fetch_activity(server.url("/old"))
    assert document.url == server.url("/new")
    assert document.data["id"] == server.url("/new")


async def test_cross_origin_redirect_needs_the_id_on_the_final_origin(
        servers: ServerFactory, client: GuardedClient) -> None:
    first, second = await servers(), await servers()
    first.redirect("/good", second.url("/good"))
    second.document("/good")
    document = await client.fetch_activity(first.url("/good"))
    assert document.url == second.url("/good")

    # The second server may not vouch for an object of the first origin.
    first.redirect("/forged", second.url("/forged"))
    second.document("/forged", {"id": first.url("/forged")})
    assert await reason_of(client.fetch_activity(first.url("/forged"))) == "id_mismatch"


# --- what a document must look like --------------------------------------------------


async def test_fetch_sends_accept_and_user_agent(
        server: LoopbackServer, client: GuardedClient) -> None:
    server.document("/actor", {"id": server.url("/actor"), "type": "Person"})
    document = await client.fetch_activity(server.url("/actor"))
    assert document.data == {"id": server.url("/actor"), "type": "Person"}
    assert server.requests[0].headers["Accept"] == AS_ACCEPT
    assert server.requests[0].headers["User-Agent"] == UA


@pytest.mark.parametrize("content_type", [
    "application/activity+json", "application/activity+json; charset=utf-8",
    'application/ld+json; profile="https://www.w3.org/ns/activitystreams"',
    "Application/LD+JSON",
])
async def test_activity_content_types_are_accepted(
        server: LoopbackServer, client: GuardedClient, content_type: str) -> None:
    server.document("/actor", content_type=content_type)
    assert (await client.fetch_activity(server.url("/actor"))).url == server.url("/actor")


@pytest.mark.parametrize("content_type", ["text/html", "application/json", "text/plain"])
async def test_other_content_types_are_refused(
        server: LoopbackServer, client: GuardedClient, content_type: str) -> None:
    server.document("/actor", content_type=content_type)
    assert await reason_of(client.fetch_activity(server.url("/actor"))) == "bad_content_type"


@pytest.mark.parametrize("doc_id", [
    "http://127.0.0.1:1/actor", "https://127.0.0.1:{port}/actor", "http://example.org/actor",
    "/actor", None, 42,
])
async def test_an_id_off_the_origin_fetched_is_refused(
        server: LoopbackServer, client: GuardedClient, doc_id: object) -> None:
    if isinstance(doc_id, str):
        doc_id = doc_id.format(port=server.port)
    server.document("/actor", {"id": doc_id} if doc_id is not None else {"type": "Note"})
    assert await reason_of(client.fetch_activity(server.url("/actor"))) == "id_mismatch"


async def test_an_id_elsewhere_on_the_same_origin_is_accepted(
        server: LoopbackServer, client: GuardedClient) -> None:
    server.document("/actor", {"id": server.url("/users/someone")})
    document = await client.fetch_activity(server.url("/actor"))
    assert document.url == server.url("/actor")


@pytest.mark.parametrize("body", [b"<html>nope</html>", b"[1, 2]", b'"text"', b"", b"\xff"])
async def test_bodies_that_are_not_json_objects_are_refused(
        server: LoopbackServer, client: GuardedClient, body: bytes) -> None:
    server.raw("/actor", body)
    assert await reason_of(client.fetch_activity(server.url("/actor"))) == "bad_json"


def nested(depth: int, doc_id: str) -> bytes:
    """A document whose nesting (the document itself counting 1) is `depth`."""
    return (b'{"id": "' + doc_id.encode() + b'", "x": ' + b"[" * (depth - 1)
            + b"]" * (depth - 1) + b"}")


async def test_nesting_up_to_64_is_accepted(server: LoopbackServer, client: GuardedClient) -> None:
    server.raw("/actor", nested(64, server.url("/actor")))
    await client.fetch_activity(server.url("/actor"))


@pytest.mark.parametrize("depth", [65, 1000, 100_000])
async def test_deeper_nesting_is_refused(
        server: LoopbackServer, client: GuardedClient, depth: int) -> None:
    server.raw("/actor", nested(depth, server.url("/actor")))
    assert await reason_of(client.fetch_activity(server.url("/actor"))) == "bad_json"


@pytest.mark.parametrize("status", [404, 410, 500])
async def test_error_statuses_carry_their_status(
        server: LoopbackServer, client: GuardedClient, status: int) -> None:
    server.raw("/actor", b"gone", status=status, content_type="text/plain")
    with pytest.raises(FetchError) as caught:
        await client.fetch_activity(server.url("/actor"))
    assert (caught.value.reason, caught.value.status) == ("bad_status", status)


# --- size ----------------------------------------------------------------------------


async def test_declared_length_over_the_limit_is_too_large(
        server: LoopbackServer, clients: ClientFactory) -> None:
    client = await clients(max_bytes=1000)
    server.raw("/actor", b" " * 5000)
    assert await reason_of(client.fetch_activity(server.url("/actor"))) == "too_large"


async def test_chunked_body_over_the_limit_is_too_large(
        server: LoopbackServer, clients: ClientFactory) -> None:
    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": AP})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(64):
            await response.write(b" " * 1024)
        return response

    server.route("GET", "/actor", chunked)
    client = await clients(max_bytes=10_000)
    assert await reason_of(client.fetch_activity(server.url("/actor"))) == "too_large"


async def test_body_until_close_without_length_is_too_large(clients: ClientFactory) -> None:
    answer = (b"HTTP/1.0 200 OK\r\nContent-Type: application/activity+json\r\n\r\n"
              + b" " * 50_000)
    async with RawServer(lambda server, request: answer, close=True) as raw:
        client = await clients(max_bytes=10_000)
        assert await reason_of(client.fetch_activity(raw.base + "/")) == "too_large"


async def test_understated_length_cannot_hide_a_large_body(
        server: LoopbackServer, clients: ClientFactory) -> None:
    # Content-Length (the gzip size) is under the limit; what it expands to is not.
    bomb = gzip.compress(b" " * 5_000_000)
    server.raw("/actor", bomb, headers={"Content-Encoding": "gzip"})
    client = await clients(max_bytes=100_000)
    assert len(bomb) < 100_000
    assert await reason_of(client.fetch_activity(server.url("/actor"))) == "too_large"


async def test_overstated_length_is_refused_before_reading(clients: ClientFactory) -> None:
    answer = (b"HTTP/1.1 200 OK\r\nContent-Type: application/activity+json\r\n"
              b"Content-Length: 5000000\r\n\r\n{}")
    async with RawServer(lambda server, request: answer, close=True) as raw:
        client = await clients(max_bytes=10_000)
        assert await reason_of(client.fetch_activity(raw.base + "/")) == "too_large"


# --- time ----------------------------------------------------------------------------


async def test_server_that_never_answers_times_out(
        server: LoopbackServer, clients: ClientFactory) -> None:
    server.hang("/actor")
    client = await clients(read_timeout=0.2)
    assert await reason_of(client.fetch_activity(server.url("/actor"))) == "timeout"


async def test_body_that_stalls_times_out(server: LoopbackServer, clients: ClientFactory) -> None:
    server.hang("/actor", after_headers=True)
    client = await clients(read_timeout=0.2)
    assert await reason_of(client.fetch_activity(server.url("/actor"))) == "timeout"


async def test_total_time_is_limited(server: LoopbackServer, clients: ClientFactory) -> None:
    server.hang("/actor")
    client = await clients(total_timeout=0.2, read_timeout=30)
    assert await reason_of(client.fetch_activity(server.url("/actor"))) == "timeout"


async def test_post_times_out(server: LoopbackServer, clients: ClientFactory) -> None:
    server.hang("/inbox")
    client = await clients(read_timeout=0.2)
    assert await reason_of(client.post_signed(server.url("/inbox"), b"{}", {})) == "timeout"


# --- signed GETs: double-knocking ----------------------------------------------------


def rfc9421_only(server: LoopbackServer, path: str) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        if request.headers.get("X-Test-Scheme") != "rfc9421":
            return web.Response(status=401)
        return web.json_response({"id": server.url(path)}, content_type=AP)
    server.route("*", path, handler)


async def test_double_knock_retries_with_rfc9421_and_remembers_it(
        server: LoopbackServer, client: GuardedClient) -> None:
    rfc9421_only(server, "/actor")
    signer = RecordingSigner()
    await client.fetch_activity(server.url("/actor"), signer=signer)
    assert [s.headers["X-Test-Scheme"] for s in server.requests] == ["cavage", "rfc9421"]
    assert signer.calls == [("GET", server.url("/actor"), None, "cavage"),
                            ("GET", server.url("/actor"), None, "rfc9421")]

    server.requests.clear()
    await client.fetch_activity(server.url("/actor"), signer=signer)
    assert [s.headers["X-Test-Scheme"] for s in server.requests] == ["rfc9421"]


async def test_cavage_server_is_asked_once(server: LoopbackServer, client: GuardedClient) -> None:
    server.document("/actor")
    await client.fetch_activity(server.url("/actor"), signer=RecordingSigner())
    assert [s.headers["X-Test-Scheme"] for s in server.requests] == ["cavage"]


async def test_refused_by_both_schemes_is_a_bad_status(
        server: LoopbackServer, client: GuardedClient) -> None:
    server.raw("/actor", b"", status=403)
    with pytest.raises(FetchError) as caught:
        await client.fetch_activity(server.url("/actor"), signer=RecordingSigner())
    assert (caught.value.reason, caught.value.status) == ("bad_status", 403)
    assert [s.headers["X-Test-Scheme"] for s in server.requests] == ["cavage", "rfc9421"]


async def test_unsigned_fetch_does_not_knock_again(
        server: LoopbackServer, client: GuardedClient) -> None:
    server.raw("/actor", b"", status=401)
    with pytest.raises(FetchError) as caught:
        await client.fetch_activity(server.url("/actor"))
    assert caught.value.status == 401
    assert len(server.requests) == 1
    assert "X-Test-Scheme" not in server.requests[0].headers


async def test_every_hop_is_signed_for_its_own_url(
        server: LoopbackServer, client: GuardedClient) -> None:
    server.redirect("/old", "/new")
    server.document("/new")
    signer = RecordingSigner()
    await client.fetch_activity(server.url("/old"), signer=signer)
    assert [call[1] for call in signer.calls] == [server.url("/old"), server.url("/new")]


# --- POST ----------------------------------------------------------------------------


async def test_post_sends_signed_activity_and_returns_status_and_retry_after(
        server: LoopbackServer, client: GuardedClient) -> None:
    server.raw("/inbox", b"slow down", status=429, content_type="text/plain",
               headers={"Retry-After": "120"})
    signer = RecordingSigner()
    result = await client.post_activity(server.url("/inbox"), b'{"type": "Create"}',
                                        signer=signer, scheme="rfc9421")
    assert (result.status, result.retry_after) == (429, "120")
    assert result.elapsed >= 0
    assert signer.calls == [("POST", server.url("/inbox"), b'{"type": "Create"}', "rfc9421")]
    seen = server.requests[0]
    assert (seen.method, seen.body) == ("POST", b'{"type": "Create"}')
    assert seen.headers["Content-Type"] == AP
    assert seen.headers["X-Test-Scheme"] == "rfc9421"
    assert seen.headers["User-Agent"] == UA


async def test_post_without_retry_after_reports_none(
        server: LoopbackServer, client: GuardedClient) -> None:
    server.raw("/inbox", b"", status=202)
    result = await client.post_signed(server.url("/inbox"), b"{}", {"Signature": "x"})
    assert (result.status, result.retry_after) == (202, None)
    assert server.requests[0].headers["Signature"] == "x"


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_post_never_follows_a_redirect(
        server: LoopbackServer, client: GuardedClient, status: int) -> None:
    server.redirect("/inbox", server.url("/elsewhere"), status=status)
    server.raw("/elsewhere", b"", status=202)
    result = await client.post_signed(server.url("/inbox"), b"{}", {})
    assert result.status == status
    assert [s.path for s in server.requests] == ["/inbox"]


async def test_post_ignores_a_large_answer(server: LoopbackServer, client: GuardedClient) -> None:
    server.raw("/inbox", b"x" * 5_000_000, status=200, content_type="text/plain")
    result = await client.post_signed(server.url("/inbox"), b"{}", {})
    assert result.status == 200


async def test_post_connection_failure_raises(client: GuardedClient) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/inbox"
        assert await reason_of(client.post_signed(url, b"{}", {})) == "connect_error"


# --- connection pool and life cycle ---------------------------------------------------


async def test_connections_to_a_host_are_reused(
        server: LoopbackServer, client: GuardedClient) -> None:
    server.document("/actor")
    server.raw("/inbox", b"", status=202)
    await client.fetch_activity(server.url("/actor"))
    await client.post_signed(server.url("/inbox"), b"{}", {})
    await client.post_signed(server.url("/inbox"), b"{}", {})
    assert len({s.peer_port for s in server.requests}) == 1


async def test_client_works_as_a_context_manager_and_starts_lazily(server: LoopbackServer) -> None:
    server.document("/actor")
    async with GuardedClient(policy=only_127_0_0_1, user_agent=UA) as client:
        await client.fetch_activity(server.url("/actor"))
    lazy = GuardedClient(policy=only_127_0_0_1, user_agent=UA)
    try:
        await lazy.fetch_activity(server.url("/actor"))
    finally:
        await lazy.close()
    assert len(server.requests) == 2


async def test_jrd_fetch_accepts_json_without_an_id(
        server: LoopbackServer, client: GuardedClient) -> None:
    server.document("/.well-known/webfinger", {"subject": "acct:a@b"},
                    content_type="application/jrd+json")
    assert await client.fetch_jrd(server.url("/.well-known/webfinger")) == {"subject": "acct:a@b"}
    server.document("/html", {"subject": "x"}, content_type="text/html")
    assert await reason_of(client.fetch_jrd(server.url("/html"))) == "bad_content_type"


def test_wire_url_keeps_an_encoded_url_byte_for_byte() -> None:
    """What is signed is str(wire_url(...)) and what is sent is its raw path: an
    already-encoded URL keeps its escapes (yarl alone would turn %7E into ~)."""
    cases = {
        "https://Social.Example:443/users/%7Ealice/inbox?x=%7e":
            ("https://social.example/users/%7Ealice/inbox?x=%7e", "/users/%7Ealice/inbox?x=%7e"),
        "http://h.example:8080/inbox/a%2Fb": ("http://h.example:8080/inbox/a%2Fb",
                                              "/inbox/a%2Fb"),
        # Not encoded yet: escaped; dot segments resolved; an empty path goes as "/"
        # (and is signed as "/": signatures.common.path_and_query).
        "https://h.example/users/ä/inbox?q=a b": ("https://h.example/users/%C3%A4/inbox?q=a+b",
                                                  "/users/%C3%A4/inbox?q=a+b"),
        "https://h.example/a/../inbox": ("https://h.example/inbox", "/inbox"),
        "https://bücher.example": ("https://xn--bcher-kva.example", "/"),
    }
    for raw, (signed, on_the_wire) in cases.items():
        url = wire_url(raw)
        assert (str(url), url.raw_path_qs) == (signed, on_the_wire), raw

