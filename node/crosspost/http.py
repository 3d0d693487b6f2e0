"""The client of outside services (Telegram's Bot API, a Bluesky PDS).

Like the guarded client (federation/fetch.py), whose resolver it uses: addresses are
checked after DNS in the connector's own resolver (loopback and private networks only
with HAMBASTEGI_ALLOW_PRIVATE_NETWORKS, the tests' setting), IP literals before the
request; no redirects, no environment proxies, no cookies, bodies capped, time limits.
Its own session: a slow service never takes connections from fediverse delivery.

URLs of the Bot API carry the token (``/bot<token>/method``): nothing here puts a URL
into a log line or an exception message.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from yarl import URL

from node.federation.fetch import AddressPolicy, ForbiddenAddressError, GuardedResolver

if TYPE_CHECKING:
    import aiohttp
    from aiohttp.abc import AbstractResolver

MAX_ANSWER = 1_048_576


class ServiceUnreachable(Exception):
    """No answer (refused address, network error, timeout); the message names no URL."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class ServiceClient:
    def __init__(self, *, policy: AddressPolicy, user_agent: str,
                 total_timeout: float = 30.0, connect_timeout: float = 5.0) -> None:
        self.policy = policy
        self.user_agent = user_agent
        self._timeouts = (total_timeout, connect_timeout)
        self._session: aiohttp.ClientSession | None = None

    def _make_session(self) -> aiohttp.ClientSession:
        import aiohttp

        total, connect = self._timeouts
        connector = aiohttp.TCPConnector(
            resolver=cast("AbstractResolver", GuardedResolver(self.policy)), limit=32,
            limit_per_host=8, ttl_dns_cache=60)
        return aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=total, connect=connect, sock_connect=connect),
            trust_env=False, headers={"User-Agent": self.user_agent},
            cookie_jar=aiohttp.DummyCookieJar())

    def check(self, url: str) -> URL:
        parsed = URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host or parsed.user:
            raise ServiceUnreachable("not an http(s) URL without credentials")
        try:
            literal = ipaddress.ip_address(parsed.host)
        except ValueError:
            return parsed
        if not self.policy(literal):
            raise ServiceUnreachable("refused address")
        return parsed

    async def request(self, method: str, url: str, **kwargs: Any) -> Answer:
        """One request; ``kwargs`` as aiohttp takes them (json, data, headers)."""
        import aiohttp

        target = self.check(url)
        if self._session is None:
            self._session = self._make_session()
        try:
            async with self._session.request(method, target, allow_redirects=False,
                                             **kwargs) as response:
                body = await response.content.read(MAX_ANSWER + 1)
                if len(body) > MAX_ANSWER:
                    raise ServiceUnreachable("answer too large")
                return Answer(response.status, dict(response.headers), body)
        except ForbiddenAddressError:
            raise ServiceUnreachable("refused address") from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise ServiceUnreachable(f"network error ({type(exc).__name__})") from None

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
