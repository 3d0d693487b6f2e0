"""Another fediverse host: actors whose keys the test holds, their documents,
WebFinger and inboxes, and signed POSTs made as them."""

from __future__ import annotations

import json
import secrets
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from node.federation import keys, signatures
from tests.fediverse.servers import AS_JSON, LoopbackServer

# --- fake actors on a fake remote -----------------------------------------------------------


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


def new_actor(username: str, base: str) -> FakeActor:
    return FakeActor(username, keys.generate_rsa(), keys.generate_ed25519(), base)


def activity(actor: FakeActor, activity_type: str, obj: Any, **extra: Any) -> dict[str, Any]:
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{actor.id}/activities/{secrets.token_hex(8)}",
        "type": activity_type,
        "actor": actor.id,
        "object": obj,
        **extra,
    }


@dataclass
class Received:
    """An activity one of the remote's inboxes received."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]


ACTOR_ROUTE = "/users/{name}"


class FakeRemote(LoopbackServer):
    """Another fediverse host: actor documents with keys the test controls,
    WebFinger, and inboxes (personal and shared) answering ``inbox_status``."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        super().__init__(host)
        self.actors: dict[str, FakeActor] = {}
        self.inbox_status = 202
        self.route("GET", ACTOR_ROUTE, self._actor)
        self.route("GET", "/.well-known/webfinger", self._webfinger)
        self.route("POST", "/users/{name}/inbox", self._inbox)
        self.route("POST", "/inbox", self._inbox)

    def add_actor(self, username: str) -> FakeActor:
        actor = new_actor(username, self.base)
        self.actors[username] = actor
        return actor

    @property
    def received(self) -> list[Received]:
        return [Received(r.path, r.headers, r.json()) for r in self.requests
                if r.route in ("/users/{name}/inbox", "/inbox")]

    def received_of_type(self, activity_type: str) -> list[Received]:
        return [r for r in self.received if r.body.get("type") == activity_type]

    @property
    def fetches(self) -> Counter[str]:
        """Actor document GETs per path."""
        return Counter(r.path for r in self.requests if r.route == ACTOR_ROUTE)

    def activity(self, actor: FakeActor, activity_type: str, obj: Any,
                 **extra: Any) -> dict[str, Any]:
        return activity(actor, activity_type, obj, **extra)

    async def _actor(self, request: web.Request) -> web.Response:
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
        return web.Response(status=self.inbox_status)


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
