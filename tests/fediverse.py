"""The fake fediverse: canned remote servers on loopback for tests (in the spirit of
GoToSocial's testrig). They stand in for the far internet only; our own nodes are
always real (tests/conftest.py).

- ``LoopbackServer``: an aiohttp server on one loopback address that records every
  request (method, raw path, headers, body, the route it matched, the status it got),
  answers from per-path canned responses or handlers, and can hold requests until a
  test releases them.
- ``RawServer``: a socket server for what aiohttp would hide or refuse to do: the
  request-target exactly as it arrived, a server that never answers, a body that
  lies about its length.
- ``FakeRemote`` and ``FakeActor``: another fediverse host with actors whose keys
  the test holds (actor documents, WebFinger, inboxes), and ``signed_post`` to speak
  as them.
- ``InboxSink`` and ``SinkFarm``: inboxes for delivery tests that verify signatures,
  count what they accept per (activity, inbox) and answer as scripted.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Self

import httpx
from aiohttp import ClientSession, web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from node.federation import keys, signatures

AS_JSON = "application/activity+json"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_BODY = 2 * 1024 * 1024


# --- what arrived -----------------------------------------------------------------------


@dataclass
class Request:
    """One request as the server saw it; ``status`` is set once it was answered."""

    method: str
    path: str  # the raw path and query, as on the wire
    headers: dict[str, str]
    body: bytes
    peer_port: int = 0
    route: str | None = None  # the pattern it matched, None if none did
    status: int | None = None

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Hold:
    """Requests matching ``match`` wait (up to ``times`` of them; None: all) until
    ``release()``; ``held`` is set when the first one is waiting."""

    match: Callable[[Request], bool]
    times: int | None = 1
    held: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def release(self) -> None:
        self.released.set()

    def takes(self, request: Request) -> bool:
        if self.released.is_set() or self.times == 0 or not self.match(request):
            return False
        if self.times is not None:
            self.times -= 1
        return True


def _compile(pattern: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", pattern)
    regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^/]+)"
                    for i, p in enumerate(parts))
    return re.compile(regex + r"\Z")


# --- the loopback server ------------------------------------------------------------------


class LoopbackServer:
    """A real aiohttp server on one loopback address.

    Routes are ``(method, pattern)`` pairs, ``*`` for any method and ``{name}`` for a
    path segment (in ``request.match_info``); setting one again replaces it in place; unmatched
    requests get 404. Every request is recorded in ``requests`` before it is held or
    handled."""

    def __init__(self, host: str = "127.0.0.1", *, backlog: int = 128) -> None:
        self.host = host
        self.port = 0
        self.backlog = backlog
        self.requests: list[Request] = []
        self.holds: list[Hold] = []
        self.stopping = asyncio.Event()  # handlers that hang wait for this
        self._routes: dict[tuple[str, str], tuple[re.Pattern[str], Handler]] = {}
        self._fallback: Handler | None = None
        self._sessions: list[ClientSession] = []
        self._runner: web.AppRunner | None = None

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def authority(self) -> str:
        return f"{self.host}:{self.port}"

    def url(self, path: str = "/", host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}{path}"

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0, backlog=self.backlog)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        self.stopping.set()
        for hold in self.holds:
            hold.release()
        if self._runner is not None:
            await self._runner.cleanup()
        for session in self._sessions:
            await session.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- routes ---

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes[(method.upper(), pattern)] = (_compile(pattern), handler)

    def document(self, path: str, data: Any = None, *, content_type: str = AS_JSON) -> None:
        """``path`` answers ``data`` as JSON (default: ``{"id": <its URL>}``)."""
        body = json.dumps(data if data is not None else {"id": self.url(path)}).encode()
        self.raw(path, body, content_type=content_type)

    def raw(self, path: str, body: bytes, *, content_type: str = AS_JSON, status: int = 200,
            headers: Mapping[str, str] | None = None, method: str = "*") -> None:
        async def handler(request: web.Request) -> web.StreamResponse:
            response = web.Response(body=body, status=status, headers=headers)
            response.headers["Content-Type"] = content_type
            return response
        self.route(method, path, handler)

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        async def handler(request: web.Request) -> web.StreamResponse:
            return web.Response(status=status, headers={"Location": location})
        self.route("*", path, handler)

    def hang(self, path: str, *, after_headers: bool = False) -> None:
        """Never answer ``path`` (or stall after the headers and a little of the body)."""
        async def handler(request: web.Request) -> web.StreamResponse:
            if after_headers:
                response = web.StreamResponse(headers={"Content-Type": AS_JSON})
                await response.prepare(request)
                await response.write(b'{"id": ')
            await self.stopping.wait()
            return web.Response(status=500)
        self.route("*", path, handler)

    def fallback(self, handler: Handler) -> None:
        """Answer every request no route matches with ``handler`` (instead of 404)."""
        self._fallback = handler

    def proxy_to(self, upstream: str) -> None:
        """Forward every request no route matches to ``upstream``, as a reverse proxy
        (Caddy) in front of a node would."""
        async def forward(request: web.Request) -> web.StreamResponse:
            if not self._sessions:
                self._sessions.append(ClientSession(auto_decompress=False))
            session = self._sessions[0]
            body = await request.read()
            headers = {k: v for k, v in request.headers.items()
                       if k.lower() not in {"content-length", "transfer-encoding"}}
            async with session.request(request.method, upstream + request.raw_path,
                                       data=body, headers=headers,
                                       allow_redirects=False) as answer:
                payload = await answer.read()
                kept = {k: v for k, v in answer.headers.items()
                        if k.lower() in {"content-type", "etag", "vary"}}
                return web.Response(status=answer.status, body=payload, headers=kept)

        self.fallback(forward)

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    def hold(self, match: Callable[[Request], bool], times: int | None = 1) -> Hold:
        hold = Hold(match, times)
        self.holds.append(hold)
        return hold

    # --- serving ---

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        record = Request(request.method, request.raw_path, dict(request.headers),
                         await request.read(), peer[1] if peer else 0)
        self.requests.append(record)
        handler = self._fallback
        for (method, pattern), (regex, candidate) in self._routes.items():
            found = regex.match(request.path)
            if found and method in ("*", request.method):
                request.match_info.update(found.groupdict())
                record.route, handler = pattern, candidate
                break
        for hold in self.holds:
            if hold.takes(record):
                hold.held.set()
                await hold.released.wait()
        if handler is None:
            record.status = 404
            raise web.HTTPNotFound()
        response = await handler(request)
        record.status = response.status
        return response


# --- a raw socket server ------------------------------------------------------------------


@dataclass
class RawRequest:
    method: str
    target: str  # the request-target exactly as it arrived on the socket
    headers: dict[str, str]
    body: bytes


# What a RawServer answers a request with: bytes to write, or None to never answer.
RawRespond = Callable[["RawServer", RawRequest], bytes | None]


class RawServer:
    """A socket server that parses requests itself, so nothing normalises the
    request-target before a test looks at it, and that can answer anything (or
    nothing). ``respond`` returns the bytes of the whole answer, or None to keep the
    connection open unanswered until ``hang_up()``; with ``close=True`` it closes
    the connection after answering (for bodies that end when the connection does)."""

    def __init__(self, respond: RawRespond | None = None, *, close: bool = False) -> None:
        self.respond = respond
        self.close = close
        self.requests: list[RawRequest] = []
        self.connections: list[asyncio.StreamWriter] = []
        self.hung_up = False
        self.port = 0
        self._server: asyncio.Server | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def hang_up(self) -> None:
        """Close every connection, and from now on every new one at once."""
        self.hung_up = True
        for writer in self.connections:
            writer.close()

    async def stop(self) -> None:
        self.hang_up()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections.append(writer)
        try:
            while not self.hung_up:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                        ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    if line:
                        name, _, value = line.partition(":")
                        headers[name.strip()] = value.strip()
                lowered = {k.lower(): v for k, v in headers.items()}
                body = await reader.readexactly(int(lowered.get("content-length", "0")))
                request = RawRequest(method, target, headers, body)
                self.requests.append(request)
                answer = self.respond(self, request) if self.respond else None
                if answer is None:
                    await reader.read()  # until the client gives up or we hang up
                    return
                writer.write(answer)
                await writer.drain()
                if self.close:
                    return
        finally:
            writer.close()


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
