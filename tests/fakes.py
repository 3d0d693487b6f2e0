"""A fake remote server (another fediverse host) for tests: it serves actor
documents with keys the test controls, records what its inboxes receive, and
signs requests as its actors. It stands in for the far internet only."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from node.federation import keys, signatures

AS_JSON = "application/activity+json"


@dataclass
class FakeActor:
    username: str
    rsa: RSAPrivateKey
    ed: Ed25519PrivateKey
    base: str
    doc_override: dict[str, Any] | None = None

    @property
    def id(self) -> str:
        return f"{self.base}/users/{self.username}"

    @property
    def key_id(self) -> str:
        return self.id + "#main-key"

    @property
    def inbox(self) -> str:
        return self.id + "/inbox"

    def document(self) -> dict[str, Any]:
        if self.doc_override is not None:
            return self.doc_override
        return {
            "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
            "id": self.id,
            "type": "Person",
            "preferredUsername": self.username,
            "name": self.username.title(),
            "inbox": self.inbox,
            "outbox": self.id + "/outbox",
            "endpoints": {"sharedInbox": f"{self.base}/inbox"},
            "publicKey": {"id": self.key_id, "owner": self.id,
                          "publicKeyPem": keys.public_to_pem(self.rsa.public_key())},
            "assertionMethod": [{
                "id": self.id + "#ed25519-key", "type": "Multikey", "controller": self.id,
                "publicKeyMultibase": keys.ed25519_to_multibase(self.ed.public_key()),
            }],
        }


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeRemote:
    host: str = "127.0.0.1"
    port: int = 0
    actors: dict[str, FakeActor] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    fetches: Counter[str] = field(default_factory=Counter)
    inbox_status: int = 202
    _runner: web.AppRunner | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        app = web.Application(client_max_size=2 * 1024 * 1024)
        app.router.add_get("/users/{name}", self._actor)
        app.router.add_get("/.well-known/webfinger", self._webfinger)
        app.router.add_post("/users/{name}/inbox", self._inbox)
        app.router.add_post("/inbox", self._inbox)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        sockets = site._server.sockets  # type: ignore[union-attr]
        self.port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def add_actor(self, username: str) -> FakeActor:
        actor = FakeActor(username, keys.generate_rsa(), keys.generate_ed25519(), self.base)
        self.actors[username] = actor
        return actor

    async def _actor(self, request: web.Request) -> web.Response:
        self.fetches[request.path] += 1
        actor = self.actors.get(request.match_info["name"])
        if actor is None:
            return web.json_response({"error": "gone"}, status=410)
        return web.Response(body=json.dumps(actor.document()), content_type=AS_JSON)

    async def _webfinger(self, request: web.Request) -> web.Response:
        resource = request.query.get("resource", "")
        name = resource.removeprefix("acct:").split("@")[0]
        actor = self.actors.get(name)
        if actor is None:
            return web.json_response({}, status=404)
        return web.json_response({"subject": resource, "links": [
            {"rel": "self", "type": AS_JSON, "href": actor.id}]},
            content_type="application/jrd+json")

    async def _inbox(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append(Received(request.path, dict(request.headers), json.loads(body)))
        self.arrived.set()
        return web.Response(status=self.inbox_status)

    def received_of_type(self, activity_type: str) -> list[Received]:
        return [r for r in self.received if r.body.get("type") == activity_type]

    def activity(self, actor: FakeActor, activity_type: str, obj: Any,
                 **extra: Any) -> dict[str, Any]:
        return {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{actor.id}/activities/{secrets.token_hex(8)}",
            "type": activity_type,
            "actor": actor.id,
            "object": obj,
            **extra,
        }


def sign_headers(actor: FakeActor, url: str, body: bytes,
                 scheme: Literal["cavage", "rfc9421"] = "cavage",
                 key: RSAPrivateKey | Ed25519PrivateKey | None = None,
                 key_id: str | None = None, **kwargs: Any) -> dict[str, str]:
    if scheme == "cavage":
        private = key or actor.rsa
        assert isinstance(private, RSAPrivateKey)
        return signatures.sign_cavage(method="POST", url=url, body=body,
                                      key_id=key_id or actor.key_id, private_key=private,
                                      **kwargs)
    return signatures.sign_rfc9421(method="POST", url=url, body=body,
                                   key_id=key_id or actor.key_id,
                                   private_key=key or actor.rsa, **kwargs)


async def signed_post(url: str, activity: dict[str, Any] | bytes, actor: FakeActor,
                      **kwargs: Any) -> httpx.Response:
    body = activity if isinstance(activity, bytes) else json.dumps(activity).encode()
    headers = {"Content-Type": AS_JSON, **sign_headers(actor, url, body, **kwargs)}
    async with httpx.AsyncClient() as client:
        return await client.post(url, content=body, headers=headers, timeout=15)
