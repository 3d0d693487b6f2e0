"""The one guarded client through which every outbound request of the node goes.

Our users are targeted by a state that would love to use this server as a probe
into networks it cannot reach, so every request is held to these rules:

* http(s) only, no credentials in URLs;
* the address is checked *after* DNS resolution, inside the resolver the
  connector itself uses, so the address checked is the address connected to
  (no DNS-rebinding gap); IP literals, which aiohttp never hands to a resolver,
  are checked before the request; every redirect hop goes through both again;
* redirects are followed by hand (GET only, at most ``max_redirects``);
* bodies are counted while streaming, whatever Content-Length claims;
* connect, read and total time limits; no environment proxies, no cookies.

Transport: aiohttp, measured 5-15x faster than plain httpx for many small
loopback POSTs on this machine, with one session and a bounded keep-alive pool.
It is imported with the first request, not with this module: an idle node that
has sent and fetched nothing does not carry its ~9 MB (docs/ARCHITECTURE.md#7-the-read-path).
"""

from __future__ import annotations

import inspect
import ipaddress
import logging
import os
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

from multidict import CIMultiDict
from yarl import URL

from node.core.jsonsafe import JsonError, parse_object
from node.storage.db import in_write_transaction

if TYPE_CHECKING:
    import aiohttp
    from aiohttp.abc import AbstractResolver, ResolveResult

log = logging.getLogger("hambastegi.fetch")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
AddressPolicy = Callable[[IPAddress], bool]
Scheme = Literal["cavage", "rfc9421"]
HostCheck = Callable[[str], str | None]
Signer = Callable[[str, str, bytes | None, Scheme], Mapping[str, str]]
# A GET's signer may answer later: RSA signing (about a millisecond) can then run
# off the event loop (remote_actors.metered_signer, docs/ARCHITECTURE.md §3).
GetSigner = Callable[[str, str, bytes | None, Scheme],
                     Mapping[str, str] | Awaitable[Mapping[str, str]]]

AS_ACCEPT = ('application/activity+json, '
             'application/ld+json; profile="https://www.w3.org/ns/activitystreams"')
AS_TYPES = ("application/activity+json", "application/ld+json")
JRD_ACCEPT = "application/jrd+json, application/json"
JRD_TYPES = ("application/jrd+json", "application/json")
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
KNOCK_STATUSES = frozenset({401, 403})
# Of an answer we do not need (a POST's, an error's) we read this much, so the
# connection can usually go back to the pool; beyond it aiohttp closes it.
DISCARD_LIMIT = 64 * 1024
# Activities are shallow; 64 leaves room for odd but honest documents while
# orjson (native, no Python recursion) already refuses anything past 1024.
MAX_JSON_DEPTH = 64
# Hosts known to want RFC 9421 for GETs; bounded so hostile fan-out of fresh
# host names cannot grow it without end.
SCHEME_MEMORY = 10_000
# Set (to 1) in tests and when debugging: a request made inside a write
# transaction raises instead of being logged (see GuardedClient.strict_transactions).
STRICT_TRANSACTIONS_ENV = "HAMBASTEGI_STRICT_TRANSACTIONS"

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network
# Ranges that Python's is_global lets through (or that differ between Python
# releases) but that must never be reached from here.
_FORBIDDEN_V4 = tuple(_V4(n) for n in (
    "0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24",
    "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
))
_FORBIDDEN_V6 = tuple(_V6(n) for n in (
    "::/96", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32",
    "3fff::/20", "5f00::/16", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
))
_NAT64 = _V6("64:ff9b::/96")
# A URI already in its encoded form (RFC 3986 section 2: unreserved, reserved and
# percent-encoded octets only), which can go on the wire byte for byte.
_ENCODED_URI = re.compile(r"(?:[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=-]|%[0-9A-Fa-f]{2})*")


class FetchError(Exception):
    """An outbound request that failed or was refused; ``reason`` is a stable code."""

    def __init__(self, reason: str, detail: str = "", status: int | None = None) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.status = status


class ForbiddenAddressError(OSError):
    """Raised inside the resolver (aiohttp wraps OSErrors); found again in the chain."""


# --- address policy ------------------------------------------------------------------


def _public_v4(ip: ipaddress.IPv4Address) -> bool:
    return ip.is_global and not any(ip in net for net in _FORBIDDEN_V4)


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a v6 form carries: mapped, compatible, NAT64, 6to4, Teredo."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client address, already de-obfuscated
    if ip in _NAT64 or (int(ip) >> 32 == 0 and int(ip) > 1):  # NAT64 or ::a.b.c.d
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def public_address_policy(ip: IPAddress) -> bool:
    """The default: True only for globally routable unicast addresses."""
    if isinstance(ip, ipaddress.IPv4Address):
        return _public_v4(ip)
    embedded = _embedded_v4(ip)
    if embedded is not None:
        if not _public_v4(embedded):
            return False
        # Mapped and NAT64 packets really go to that IPv4 host (an IPv6-only node
        # behind DNS64 sees every server this way), so its verdict is the verdict.
        # Compatible (deprecated), 6to4 and Teredo forms face the IPv6 checks,
        # which refuse the first and the last outright.
        if ip.ipv4_mapped is not None or ip in _NAT64:
            return True
    return (ip.is_global and not ip.is_multicast and not ip.is_reserved
            and not any(ip in net for net in _FORBIDDEN_V6))


def allow_all_policy(ip: IPAddress) -> bool:
    """HAMBASTEGI_ALLOW_PRIVATE_NETWORKS=1: development and tests only."""
    return True


class GuardedResolver:
    """Resolves, then keeps only the addresses the policy allows.

    The connector connects to exactly what this returns (and caches only
    that), so a name cannot be checked against one answer and connected
    to another. An aiohttp ``AbstractResolver`` in all but name: subclassing
    it would import aiohttp with this module.
    """

    def __init__(self, policy: AddressPolicy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        if inner is None:
            from aiohttp.resolver import ThreadedResolver

            inner = ThreadedResolver()
        self._inner = inner

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed = [r for r in results if self._allowed(r["host"])]
        if not allowed:
            raise ForbiddenAddressError("the name resolves only to refused addresses")
        return allowed

    def _allowed(self, address: str) -> bool:
        try:
            return self._policy(ipaddress.ip_address(address))
        except ValueError:  # not an address we can judge: refuse it
            return False

    async def close(self) -> None:
        await self._inner.close()


def wire_url(url: str) -> URL:
    """The URL as it will go on the wire: the one object to sign (``str()`` of it)
    and to send, so the signed request-target is the one the receiver reads.

    A URL already in encoded form keeps its path and query byte for byte (yarl
    would otherwise decode ``%7E`` to ``~`` and rewrite the query, and a
    signature over the original form would no longer verify); its authority is
    normalised (lower case, IDNA, default port dropped) as clients send Host.
    Anything else (raw non-ASCII, spaces, dot segments) is normalised by yarl.
    """
    normal = URL(url)
    if not normal.absolute or not _ENCODED_URI.fullmatch(url):
        return normal
    raw = URL(url, encoded=True)
    if any(segment in (".", "..") for segment in raw.raw_path.split("/")):
        return normal  # RFC 3986 section 5.2.4: dot segments are resolved before sending
    return URL.build(scheme=normal.scheme, authority=normal.raw_authority, path=raw.raw_path,
                     query_string=raw.raw_query_string, encoded=True)


# --- results -------------------------------------------------------------------------


@dataclass(frozen=True)
class PostResult:
    status: int
    retry_after: str | None
    elapsed: float


@dataclass(frozen=True)
class FetchedDocument:
    url: str  # the final URL, after redirects
    data: dict[str, Any]


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _same_origin(doc_id: object, final: URL) -> bool:
    if not isinstance(doc_id, str):
        return False
    try:
        return URL(doc_id).origin() == final.origin()  # scheme, host, port (defaults filled)
    except ValueError:  # relative or unparsable ids vouch for nothing
        return False


def _log_host(url: URL) -> str | None:
    """A URL's host as it may appear in logs: names yes, IP addresses never."""
    try:
        ipaddress.ip_address(url.host or "")
    except ValueError:
        return url.host
    return "ip-literal"


def _chain_has(exc: BaseException, kind: type[BaseException]) -> bool:
    from aiohttp import ClientConnectorError  # only reached after a request

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return True
        if isinstance(seen, ClientConnectorError) and isinstance(seen.os_error, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


# --- the client ----------------------------------------------------------------------


class GuardedClient:
    def __init__(self, *, policy: AddressPolicy = public_address_policy, user_agent: str,
                 max_bytes: int = 1_048_576, total_timeout: float = 30.0,
                 connect_timeout: float = 5.0, read_timeout: float = 10.0,
                 max_redirects: int = 3, limit: int = 256, limit_per_host: int = 8,
                 strict_transactions: bool | None = None,
                 host_check: HostCheck | None = None) -> None:
        self.policy = policy
        # Peer policy (federation/peer_rules.py): why a host may not be reached
        # (blocked domain, not on the allowlist), None when it may. Asked for every
        # URL and every redirect hop, before any connection.
        self.host_check = host_check
        # Network I/O inside Database.write() stalls every other write of the
        # process (SQLite has one writer) for as long as the remote takes. Strict:
        # raise RuntimeError, so a test catches any such call; otherwise log it.
        self.strict_transactions = (
            os.environ.get(STRICT_TRANSACTIONS_ENV, "") not in ("", "0")
            if strict_transactions is None else strict_transactions)
        self.user_agent = user_agent
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self._timeouts = (total_timeout, connect_timeout, read_timeout)
        self._limit = limit
        self._limit_per_host = limit_per_host
        self._session: aiohttp.ClientSession | None = None
        # "host:port" -> the scheme it accepted for signed GETs, when not cavage.
        self._get_schemes: dict[str, Scheme] = {}

    async def start(self) -> None:
        """Nothing to do yet: the session (and aiohttp) comes with the first request."""

    def _make_session(self) -> aiohttp.ClientSession:
        import aiohttp

        total, connect, read = self._timeouts
        connector = aiohttp.TCPConnector(
            resolver=cast("AbstractResolver", GuardedResolver(self.policy)), limit=self._limit,
            limit_per_host=self._limit_per_host, ttl_dns_cache=60,
        )
        return aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=total, connect=connect, sock_connect=connect,
                                          sock_read=read),
            trust_env=False,  # an environment proxy would connect for us, past the guard
            headers={"User-Agent": self.user_agent},
            cookie_jar=aiohttp.DummyCookieJar(),  # remote servers must not track us
        )

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def __aenter__(self) -> GuardedClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def check_url(self, url: str | URL) -> URL:
        """Scheme, credentials and literal-IP checks; returns the URL aiohttp will use
        (``wire_url``): sign ``str()`` of it and send that same object.

        We parse with yarl, as aiohttp does, so the host we judge is the host it
        connects to. aiohttp skips the resolver for anything that looks like an
        IP (helpers.is_ip_address, used in TCPConnector._resolve_host), so such
        hosts are judged here.
        """
        try:
            parsed = url if isinstance(url, URL) else wire_url(url)
        except (ValueError, TypeError) as exc:
            raise FetchError("bad_scheme", "unparsable URL") from exc
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise FetchError("bad_scheme", "only absolute http(s) URLs")
        if parsed.user is not None or parsed.password is not None:
            raise FetchError("bad_scheme", "URLs with credentials are refused")
        host = parsed.host
        if self.host_check is not None:
            refused = self.host_check(parsed.raw_host or host)
            if refused is not None:
                raise FetchError(refused, "peer policy refuses this host")
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            if ":" in host or host.replace(".", "").isdigit():
                # Legacy numeric forms (127.1, 2130706433) that sockets would
                # still map onto an address: refuse rather than interpret.
                raise FetchError("forbidden_address", "non-canonical address") from None
            return parsed
        if not self.policy(literal):
            raise FetchError("forbidden_address", "refused address")
        return parsed

    async def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = self._make_session()
        return self._session

    @asynccontextmanager
    async def _exchange(self, method: str, url: URL, headers: Mapping[str, str],
                        body: bytes | None = None) -> AsyncIterator[aiohttp.ClientResponse]:
        """One request, never following redirects; transport errors become FetchErrors."""
        self._check_not_in_transaction(url)
        session = await self._ensure_session()
        import aiohttp  # imported by _ensure_session already: a dictionary lookup

        try:
            async with session.request(method, url, headers=headers, data=body,
                                       allow_redirects=False) as response:
                yield response
        except FetchError as exc:
            log.debug("fetch refused", extra={"host": _log_host(url), "reason": exc.reason})
            raise
        except TimeoutError as exc:
            raise FetchError("timeout", "request took too long") from exc
        except aiohttp.InvalidURL as exc:
            raise FetchError("bad_scheme", "invalid URL") from exc
        except (aiohttp.ClientError, OSError) as exc:
            if _chain_has(exc, ForbiddenAddressError):
                raise FetchError("forbidden_address", "refused address") from exc
            if isinstance(exc, aiohttp.ClientConnectorDNSError):
                raise FetchError("dns_failure", "name does not resolve") from exc
            # The exception's text names the address; only its type is safe to keep.
            raise FetchError("connect_error", type(exc).__name__) from exc

    def _check_not_in_transaction(self, url: URL) -> None:
        if not in_write_transaction():
            return
        if self.strict_transactions:
            raise RuntimeError("network I/O inside a write transaction")
        log.error("network I/O inside a write transaction", stack_info=True,
                  extra={"host": _log_host(url)})

    async def _read_capped(self, response: aiohttp.ClientResponse) -> bytes:
        declared = response.content_length
        if declared is not None and declared > self.max_bytes:
            raise FetchError("too_large", "declared length over the limit", response.status)
        chunks: list[bytes] = []
        size = 0
        # Counted after decompression, so a small gzip body cannot expand past us.
        async for chunk in response.content.iter_chunked(65536):
            size += len(chunk)
            if size > self.max_bytes:
                raise FetchError("too_large", "body over the limit", response.status)
            chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    async def _discard(response: aiohttp.ClientResponse) -> None:
        read = 0
        while read < DISCARD_LIMIT:
            chunk = await response.content.read(DISCARD_LIMIT - read)
            if not chunk:
                return
            read += len(chunk)

    # --- signed GETs with double-knocking ---------------------------------------------

    def _knock_order(self, key: str) -> tuple[Scheme, Scheme]:
        if self._get_schemes.get(key) == "rfc9421":
            return ("rfc9421", "cavage")
        return ("cavage", "rfc9421")

    def _remember(self, key: str, scheme: Scheme) -> None:
        self._get_schemes.pop(key, None)
        if scheme == "cavage":
            return  # the default needs no memory
        self._get_schemes[key] = scheme
        if len(self._get_schemes) > SCHEME_MEMORY:
            del self._get_schemes[next(iter(self._get_schemes))]  # oldest first

    async def _get_hop(self, url: URL, accept: str, types: tuple[str, ...],
                       signer: GetSigner | None) -> tuple[str | None, bytes]:
        """One hop: (Location, b"") for a redirect, (None, body) for a good 200."""
        key = f"{url.host}:{url.port}"
        schemes: tuple[Scheme | None, ...] = (None,) if signer is None else self._knock_order(key)
        for attempt, scheme in enumerate(schemes):
            headers = CIMultiDict({"Accept": accept})
            if signer is not None and scheme is not None:
                signed = signer("GET", str(url), None, scheme)
                headers.update(await signed if inspect.isawaitable(signed) else signed)
            async with self._exchange("GET", url, headers) as response:
                status = response.status
                if status in KNOCK_STATUSES and attempt + 1 < len(schemes):
                    await self._discard(response)
                    continue  # knock again with the other scheme, once
                if scheme is not None and status not in KNOCK_STATUSES:
                    self._remember(key, scheme)
                if status in REDIRECT_STATUSES:
                    location = response.headers.get("Location")
                    if not location:
                        raise FetchError("bad_status", "redirect without Location", status)
                    return location, b""
                if status != 200:
                    raise FetchError("bad_status", f"HTTP {status}", status)
                content_type = response.headers.get("Content-Type", "")
                if _media_type(content_type) not in types:
                    # Judged before reading, so we never download the wrong thing.
                    raise FetchError("bad_content_type", content_type[:80], status)
                return None, await self._read_capped(response)
        raise AssertionError("unreachable: the last knock always returns or raises")

    async def _get(self, url: str, accept: str, types: tuple[str, ...],
                   signer: GetSigner | None) -> tuple[URL, bytes]:
        """GET following at most max_redirects redirects, every hop checked again."""
        current = self.check_url(url)
        for _hop in range(self.max_redirects + 1):
            location, body = await self._get_hop(current, accept, types, signer)
            if location is None:
                return current, body
            try:
                target = current.join(URL(location))
            except ValueError as exc:
                raise FetchError("bad_status", "unparsable Location") from exc
            current = self.check_url(target)
        raise FetchError("too_many_redirects", f"more than {self.max_redirects}")

    # --- public operations ------------------------------------------------------------

    async def fetch_activity(self, url: str, *,
                             signer: GetSigner | None = None) -> FetchedDocument:
        """GET an ActivityStreams document; its id must be on the origin it came from."""
        final, body = await self._get(url, AS_ACCEPT, AS_TYPES, signer)
        try:
            data = parse_object(body, max_depth=MAX_JSON_DEPTH)
        except JsonError as exc:
            raise FetchError("bad_json", str(exc)) from exc
        # Mastodon's rule: a server vouches only for its own origin's objects,
        # so a redirect elsewhere cannot make another origin's id ours to trust.
        if not _same_origin(data.get("id"), final):
            raise FetchError("id_mismatch", "document id is not on the origin it came from")
        return FetchedDocument(str(final), data)

    async def fetch_jrd(self, url: str) -> dict[str, Any]:
        """WebFinger (RFC 7033) answers: JRD JSON, unsigned, no id rule."""
        _, body = await self._get(url, JRD_ACCEPT, JRD_TYPES, None)
        try:
            return parse_object(body, max_depth=MAX_JSON_DEPTH)
        except JsonError as exc:
            raise FetchError("bad_json", str(exc)) from exc

    async def post_activity(self, url: str, body: bytes, *, signer: Signer,
                            scheme: Scheme) -> PostResult:
        """POST to an inbox; 3xx answers are returned, never followed."""
        target = self.check_url(url)
        return await self._post(target, body, signer("POST", str(target), body, scheme))

    async def post_signed(self, url: str | URL, body: bytes,
                          signature_headers: Mapping[str, str]) -> PostResult:
        """POST with headers already signed (the delivery worker signs off the loop)
        to ``url`` as returned by ``check_url``, whose ``str()`` was signed."""
        return await self._post(self.check_url(url), body, signature_headers)

    async def _post(self, url: URL, body: bytes,
                    signature_headers: Mapping[str, str]) -> PostResult:
        started = time.perf_counter()
        headers = CIMultiDict({"Content-Type": "application/activity+json"})
        headers.update(signature_headers)  # case-insensitively: the signed value wins
        async with self._exchange("POST", url, headers, body) as response:
            await self._discard(response)
            return PostResult(response.status, response.headers.get("Retry-After"),
                              time.perf_counter() - started)
