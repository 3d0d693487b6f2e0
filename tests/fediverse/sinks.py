"""Inbox sinks for delivery tests: they verify signatures, count what they accept
per (activity, inbox) and answer as scripted."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web

from node.federation import keys, signatures
from tests.fediverse.servers import LoopbackServer

# --- inbox sinks for delivery ---------------------------------------------------------------


def signature_problem(method: str, target_uri: str, headers: Mapping[str, str], body: bytes,
                      public_key: keys.PublicKey, key_id: str | None = None) -> str | None:
    """Why a signed POST does not verify against ``public_key`` (and, if given,
    ``key_id``), as a receiver checking the scheme's required headers would; None
    when it verifies."""
    scheme = signature_scheme(headers)
    needed = (("Signature", "Signature-Input", "Content-Digest") if scheme == "rfc9421"
              else ("Signature", "Date", "Digest", "Host"))
    present = {k.lower() for k in headers}
    missing = [h for h in needed if h.lower() not in present]
    if missing:
        return f"missing {missing}"
    try:
        parsed = signatures.parse_request_signature(
            method=method, target_uri=target_uri, headers=headers, now=datetime.now(UTC),
            require_digest=True)
        signatures.verify_body_digest(headers, body)
        signatures.verify_signature(parsed, public_key)
    except signatures.SignatureError as exc:
        return exc.reason
    if (key_id is not None and parsed.key_id != key_id) or parsed.scheme != scheme:
        return f"unexpected key {parsed.key_id} / {parsed.scheme}"
    return None


def signature_scheme(headers: Mapping[str, str]) -> Literal["cavage", "rfc9421"]:
    lowered = {k.lower() for k in headers}
    return "rfc9421" if "signature-input" in lowered else "cavage"


# ``respond(scheme, nth)`` scripts a sink's answer to its nth request.
Respond = Callable[[str, int], tuple[int, dict[str, str]]]


def accept(scheme: str, nth: int) -> tuple[int, dict[str, str]]:
    return 202, {}


class InboxSink(LoopbackServer):
    """One inbox host taking POSTs on every path. With a ``public_key`` it verifies
    the signature of every ``verify_every``-th request (problems in ``problems``);
    ``received`` counts the accepted (2xx) ones per (activity id, path); ``delay``
    makes it a slow server."""

    def __init__(self, *, public_key: keys.PublicKey | None = None, key_id: str | None = None,
                 respond: Respond = accept, delay: float = 0.0, verify_every: int = 1,
                 backlog: int = 128) -> None:
        super().__init__(backlog=backlog)
        self.public_key = public_key
        self.key_id = key_id
        self.respond = respond
        self.delay = delay
        self.verify_every = verify_every
        self.received: Counter[tuple[str, str]] = Counter()
        self.schemes: list[str] = []
        self.problems: list[str] = []
        self.verified = 0
        self.in_flight = 0
        self.fallback(self._inbox)

    def inbox(self, name: str | int = "shared") -> str:
        return f"{self.base}/inbox/{name}"

    async def _inbox(self, request: web.Request) -> web.Response:
        body = await request.read()
        scheme = signature_scheme(request.headers)
        nth = len(self.schemes)
        self.schemes.append(scheme)
        if self.public_key is not None and (nth + 1) % self.verify_every == 0:
            problem = signature_problem("POST", f"http://{request.host}{request.raw_path}",
                                        request.headers, body, self.public_key, self.key_id)
            if problem is None:
                self.verified += 1
            else:
                self.problems.append(problem)
        status, headers = self.respond(scheme, nth)
        if 200 <= status < 300:
            self.received[(json.loads(body).get("id", ""), request.path)] += 1
        if self.delay:
            self.in_flight += 1
            try:
                await asyncio.sleep(self.delay)  # a slow remote server, not synchronisation
            finally:
                self.in_flight -= 1
        return web.Response(status=status, headers=headers)


class SinkFarm:
    """``count`` sinks, each a distinct host:port, counted together."""

    def __init__(self, count: int, **options: Any) -> None:
        self.sinks = [InboxSink(backlog=1024, **options) for _ in range(count)]

    async def start(self) -> None:
        for sink in self.sinks:
            await sink.start()

    async def stop(self) -> None:
        for sink in self.sinks:
            await sink.stop()

    def inboxes(self, per_host: int) -> list[str]:
        return [sink.inbox(i) for sink in self.sinks for i in range(per_host)]

    @property
    def received(self) -> Counter[tuple[str, str]]:
        """Accepted POSTs per (inbox URL, activity id)."""
        return Counter({(sink.base + path, activity): n for sink in self.sinks
                        for (activity, path), n in sink.received.items()})

    @property
    def duplicates(self) -> int:
        return sum(n - 1 for n in self.received.values() if n > 1)

    @property
    def verified(self) -> int:
        return sum(sink.verified for sink in self.sinks)

    @property
    def problems(self) -> list[str]:
        return [p for sink in self.sinks for p in sink.problems]
