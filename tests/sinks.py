"""Inbox sinks for delivery tests and benchmarks: loopback HTTP servers that
count what they receive per (inbox, activity) and can verify signatures."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import web

from node.federation import signatures
from node.federation.keys import PublicKey


@dataclass
class SinkStats:
    received: Counter[tuple[str, str]] = field(default_factory=Counter)
    verified: int = 0
    bad_signatures: int = 0

    @property
    def duplicates(self) -> int:
        return sum(n - 1 for n in self.received.values() if n > 1)


class Sinks:
    """``count`` servers on 127.0.0.1, each a distinct host:port."""

    def __init__(self, count: int, *, delay: float = 0.0, verify_every: int = 0,
                 public_key: PublicKey | None = None) -> None:
        self.count = count
        self.delay = delay
        self.verify_every = verify_every
        self.public_key = public_key
        self.stats = SinkStats()
        self.ports: list[int] = []
        self._runners: list[web.AppRunner] = []
        self._seen = 0

    async def start(self) -> None:
        app = web.Application(client_max_size=2 * 1024 * 1024)
        app.router.add_post("/{tail:.*}", self._inbox)
        for _ in range(self.count):
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
            await site.start()
            self.ports.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
            self._runners.append(runner)

    async def stop(self) -> None:
        for runner in self._runners:
            await runner.cleanup()

    def inboxes(self, per_host: int) -> list[str]:
        return [f"http://127.0.0.1:{port}/inbox/{i}" for port in self.ports
                for i in range(per_host)]

    async def _inbox(self, request: web.Request) -> web.Response:
        body = await request.read()
        activity_id = json.loads(body).get("id", "")
        self.stats.received[(f"{request.host}{request.path}", activity_id)] += 1
        self._seen += 1
        if self.verify_every and self.public_key is not None \
                and self._seen % self.verify_every == 0:
            try:
                parsed = signatures.parse_request_signature(
                    method="POST", target_uri=f"http://{request.host}{request.path_qs}",
                    headers=request.headers, now=datetime.now(UTC), require_digest=True)
                signatures.verify_body_digest(request.headers, body)
                signatures.verify_signature(parsed, self.public_key)
                self.stats.verified += 1
            except signatures.SignatureError:
                self.stats.bad_signatures += 1
        if self.delay:
            await asyncio.sleep(self.delay)  # a slow remote server, not test synchronisation
        return web.Response(status=202)
