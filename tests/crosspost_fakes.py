"""Fake outside services for the crosspost tests: real HTTP on loopback, answering as
the Bot API (core.telegram.org/bots/api) documents, recording every call with the
time of the test's clock."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiohttp import BodyPartReader, web

from node.storage.db import utcnow
from tests.conftest import free_port

TOKEN = "123456789:AAE" + "x" * 32
BOT_ID = 123456789


class Clock:
    """The worker's and the fakes' time: moved by hand, never by sleeping."""

    def __init__(self) -> None:
        self.now = utcnow() + timedelta(seconds=1)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Call:
    method: str
    fields: dict[str, Any]
    files: dict[str, bytes]
    at: datetime


@dataclass
class FakeBotApi:
    clock: Clock
    # @channel → (chat id, the bot's status there, can_post_messages)
    channels: dict[str, tuple[int, str, bool]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    # method → how many more calls of it answer 429 (retry_after 10)
    too_many: dict[str, int] = field(default_factory=dict)
    # (method, n): the n-th call of that method (from 1) answers 429 (retry_after 10)
    too_many_at: tuple[str, int] | None = None
    refuse_delete: bool = False
    # channels whose sendMessage is accepted and never answered (a Telegram that hangs)
    hang: set[str] = field(default_factory=set)
    next_id: int = 100
    runner: web.AppRunner | None = None
    url: str = ""
    # chat id → the ids of the messages sent there, in order
    message_ids: dict[int, list[int]] = field(default_factory=dict)

    def chat_of(self, chat_id: Any) -> str | None:
        for name, (ident, _, _) in self.channels.items():
            if str(chat_id) in (name, str(ident)):
                return name
        return None

    def sent_to(self, channel: str) -> list[Call]:
        return [c for c in self.calls if self.chat_of(c.fields.get("chat_id")) == channel
                and c.method not in ("getChat", "getChatMember")]

    async def _handle(self, request: web.Request) -> web.Response:
        token, method = request.match_info["token"], request.match_info["method"]
        files: dict[str, bytes] = {}
        if request.content_type.startswith("multipart/"):
            fields: dict[str, Any] = {}
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                assert isinstance(part, BodyPartReader)
                data = await part.read()
                if part.filename:
                    files[part.name or ""] = bytes(data)
                else:
                    text = bytes(data).decode()
                    fields[part.name or ""] = (json.loads(text) if text[:1] in "[{"
                                               else text)
        else:
            fields = await request.json()
        call = Call(method, fields, files, self.clock())
        self.calls.append(call)
        if token != TOKEN:
            return _error(401, "Unauthorized")
        if self.too_many_at == (method, sum(c.method == method for c in self.calls)):
            self.too_many[method] = self.too_many.get(method, 0) + 1
        if self.too_many.get(method):
            self.too_many[method] -= 1
            return web.json_response({"ok": False, "error_code": 429,
                                      "description": "Too Many Requests: retry after 10",
                                      "parameters": {"retry_after": 10}}, status=429)
        chat = self.chat_of(fields.get("chat_id")) if "chat_id" in fields else None
        if method == "getMe":
            return _ok({"id": BOT_ID, "is_bot": True, "first_name": "Köln bot",
                        "username": "koeln_bot"})
        if chat is None:
            return _error(400, "Bad Request: chat not found")
        ident, status, can_post = self.channels[chat]
        if method == "getChat":
            return _ok({"id": ident, "type": "channel", "title": chat})
        if method == "getChatMember":
            return _ok({"status": status, "can_post_messages": can_post,
                        "user": {"id": BOT_ID, "is_bot": True, "first_name": "bot"}})
        if status != "administrator":
            return _error(403, "Forbidden: bot is not a member of the channel chat")
        if method in ("sendMessage", "sendPhoto"):
            if chat in self.hang:
                await asyncio.Event().wait()
            return _ok(self._message(ident))
        if method == "sendMediaGroup":
            return _ok([self._message(ident) for _ in fields["media"]])
        if method in ("editMessageText", "editMessageCaption"):
            return _ok(self._message(ident, fields["message_id"]))
        if method == "deleteMessage":
            if self.refuse_delete:
                return _error(400, "Bad Request: message can't be deleted")
            return _ok(True)
        return _error(404, "Not Found: method not found")

    def _message(self, chat: int, ident: int | None = None) -> dict[str, Any]:
        if ident is None:
            self.next_id += 1
            ident = self.next_id
            self.message_ids.setdefault(chat, []).append(ident)
        return {"message_id": ident, "chat": {"id": chat, "type": "channel"},
                "date": int(self.clock().timestamp())}

    async def start(self) -> str:
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_post("/bot{token}/{method}", self._handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _error(code: int, description: str) -> web.Response:
    return web.json_response({"ok": False, "error_code": code, "description": description},
                             status=code)


HANDLE = "koeln.bsky.example"
APP_PASSWORD = "abcd-efgh-ijkl-mnop"
DID = "did:plc:koelnsolidaritaet0000"
BLOB_CID = "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy"


@dataclass
class XrpcCall:
    nsid: str
    body: Any
    content_type: str
    at: datetime


@dataclass
class FakePds:
    """Answers as com.atproto.server.* and com.atproto.repo.* are documented
    (docs.bsky.app/docs/api): sessions, blobs, records; ``expire_after`` makes the
    access token expire (400 ExpiredToken) after that many authorised calls."""

    clock: Clock
    calls: list[XrpcCall] = field(default_factory=list)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    expire_after: int | None = None
    rate_limited: int = 0
    generation: int = 0
    authorised: int = 0
    next_rkey: int = 0
    runner: web.AppRunner | None = None
    url: str = ""

    def tokens(self) -> dict[str, str]:
        self.generation += 1
        self.authorised = 0
        return {"accessJwt": f"access-{self.generation}", "refreshJwt":
                f"refresh-{self.generation}", "did": DID, "handle": HANDLE}

    async def _handle(self, request: web.Request) -> web.Response:
        nsid = request.match_info["nsid"]
        data = await request.read()
        body: Any = data
        if request.content_type == "application/json" and data:
            body = json.loads(data)
        self.calls.append(XrpcCall(nsid, body, request.content_type, self.clock()))
        auth = request.headers.get("Authorization", "")
        if nsid == "com.atproto.server.createSession":
            if body.get("identifier") != HANDLE or body.get("password") != APP_PASSWORD:
                return web.json_response({"error": "AuthenticationRequired",
                                          "message": "Invalid identifier or password"},
                                         status=401)
            return web.json_response(self.tokens())
        if nsid == "com.atproto.server.refreshSession":
            if auth != f"Bearer refresh-{self.generation}":
                return web.json_response({"error": "ExpiredToken",
                                          "message": "Token has expired"}, status=400)
            return web.json_response(self.tokens())
        if auth != f"Bearer access-{self.generation}":
            return web.json_response({"error": "InvalidToken", "message": "bad token"},
                                     status=400)
        if self.expire_after is not None and self.authorised >= self.expire_after:
            self.expire_after = None
            return web.json_response({"error": "ExpiredToken", "message": "Token has expired"},
                                     status=400)
        self.authorised += 1
        if self.rate_limited:
            self.rate_limited -= 1
            reset = int(self.clock().timestamp()) + 30
            return web.json_response({"error": "RateLimitExceeded", "message": "slow down"},
                                     status=429, headers={"RateLimit-Reset": str(reset)})
        if nsid == "com.atproto.repo.uploadBlob":
            return web.json_response({"blob": {"$type": "blob", "ref": {"$link": BLOB_CID},
                                               "mimeType": request.content_type,
                                               "size": len(data)}})
        if nsid == "com.atproto.repo.createRecord":
            self.next_rkey += 1
            rkey = f"3lrkey{self.next_rkey:06d}"
            uri = f"at://{body['repo']}/{body['collection']}/{rkey}"
            self.records[uri] = body["record"]
            return web.json_response({"uri": uri, "cid": f"bafyrei{self.next_rkey:052d}"})
        if nsid == "com.atproto.repo.deleteRecord":
            uri = f"at://{body['repo']}/{body['collection']}/{body['rkey']}"
            self.records.pop(uri, None)
            return web.json_response({})
        return web.json_response({"error": "MethodNotImplemented"}, status=501)

    async def start(self) -> str:
        app = web.Application(client_max_size=5 * 1024 * 1024)
        app.router.add_route("*", "/xrpc/{nsid}", self._handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
