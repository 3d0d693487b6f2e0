"""The streaming API: ``/api/v1/streaming`` over WebSocket, as Elk and Phanpy use it.

Streams: ``user`` (the group's home timeline and its notifications) and
``public:local`` (every group's posts). The token comes as ``?access_token=``, as
the ``Sec-WebSocket-Protocol`` (what browsers can set) or as a bearer header; the
client may ``subscribe`` and ``unsubscribe`` by message. Events are Mastodon's:
``update`` and ``notification`` with the entity as a JSON string in ``payload``.

A connection waits on the node's cross-process wake-up (storage/wakeup.py) or at
most ``POLL_SECONDS``, then reads what is newer than what it sent, so a post made
by another process or the CLI arrives too; the token is checked again at each
round, so a revoked one ends the stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

# uvicorn speaks WebSocket through it; imported here so a missing install fails when
# the node starts, not at an app's first stream (as python_multipart in web/admin/guard).
import websockets  # noqa: F401
from sqlalchemy import func
from sqlmodel import col, select
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from node.clientapi import apps, notifications, timelines
from node.clientapi.pagination import Window, status_id
from node.federation.runtime import Node
from node.storage.db import utcnow
from node.storage.models import ClientNotification

log = logging.getLogger("hambastegi.clientapi")
POLL_SECONDS = 2.0
STREAMS = ("user", "public:local", "public")
MAX_MESSAGE = 4096


def _token(ws: WebSocket) -> tuple[str | None, str | None]:
    """(token, subprotocol to answer with)."""
    given = ws.query_params.get("access_token")
    if given:
        return given, None
    protocol = ws.headers.get("sec-websocket-protocol")
    if protocol:
        return protocol.split(",")[0].strip(), protocol.split(",")[0].strip()
    scheme, _, value = ws.headers.get("authorization", "").partition(" ")
    return (value.strip() or None, None) if scheme.lower() == "bearer" else (None, None)


def _allowed(caller: apps.Caller | None, stream: str) -> bool:
    if stream == "user":
        return caller is not None and caller.group is not None and apps.allows(
            caller.scopes, "read:statuses")
    return stream in STREAMS


class Connection:
    def __init__(self, node: Node, ws: WebSocket, token: str | None,
                 caller: apps.Caller | None) -> None:
        self.node = node
        self.ws = ws
        self.token = token
        self.caller = caller
        self.streams: set[str] = set()
        now = status_id(1, 0, utcnow())
        self.home_cursor = now
        self.public_cursor = now
        self.notification_cursor = 0
        self.changed = asyncio.Event()

    async def start_notifications(self) -> None:
        if self.caller is None or self.caller.group is None:
            return
        async with self.node.db.read() as session:
            newest = (await session.exec(select(func.max(ClientNotification.id)).where(
                ClientNotification.local_actor_id == self.caller.group.id))).one()
        self.notification_cursor = int(newest or 0)

    async def send(self, streams: list[str], event: str, payload: Any) -> None:
        await self.ws.send_text(json.dumps({"stream": streams, "event": event,
                                            "payload": json.dumps(payload)}))

    async def round(self) -> bool:
        """Send what is new; False when the token no longer holds."""
        if self.token is not None:
            self.caller = await apps.caller_of(self.node, self.token)
            if self.caller is None:
                return False
        if "user" in self.streams and self.caller is not None and self.caller.group:
            local, remote = timelines.home_queries(self.caller.group.id)
            window = Window(None, self.home_cursor, 20, ascending=True)
            for status in reversed(await timelines.page_of(self.node, window, local=local,
                                                           remote=remote)):
                self.home_cursor = max(self.home_cursor, int(status["id"]))
                await self.send(["user"], "update", status)
            async with self.node.db.read() as session:
                rows = list((await session.exec(select(ClientNotification).where(
                    ClientNotification.local_actor_id == self.caller.group.id,
                    col(ClientNotification.id) > self.notification_cursor)
                    .order_by(col(ClientNotification.id)).limit(20))).all())
            for entity in await notifications.render(self.node, rows):
                await self.send(["user", "notification"], "notification", entity)
            if rows:
                self.notification_cursor = rows[-1].id or self.notification_cursor
        for stream in sorted({"public:local", "public"} & self.streams):
            window = Window(None, self.public_cursor, 20, ascending=True)
            for status in reversed(await timelines.page_of(
                    self.node, window, local=timelines.local_query(), remote=None)):
                self.public_cursor = max(self.public_cursor, int(status["id"]))
                await self.send([stream], "update", status)
        return True

    async def read(self) -> None:
        """Subscribe and unsubscribe messages; anything else is ignored."""
        while True:
            text = await self.ws.receive_text()
            if len(text) > MAX_MESSAGE:
                continue
            try:
                message = json.loads(text)
            except ValueError:
                continue
            if not isinstance(message, dict) or not isinstance(message.get("stream"), str):
                continue
            stream = message["stream"]
            if message.get("type") == "subscribe" and _allowed(self.caller, stream):
                self.streams.add(stream)
                self.changed.set()
            elif message.get("type") == "unsubscribe":
                self.streams.discard(stream)


async def streaming(ws: WebSocket) -> None:
    node: Node = ws.app.state.node
    token, protocol = _token(ws)
    caller = await apps.caller_of(node, token) if token else None
    wanted = ws.query_params.get("stream")
    if (token and caller is None) or (wanted is not None and not _allowed(caller, wanted)):
        await ws.close(code=1008)  # before accept: the handshake answers 403
        return
    await ws.accept(subprotocol=protocol)
    connection = Connection(node, ws, token, caller)
    await connection.start_notifications()
    if wanted:
        connection.streams.add(wanted)
    reader = asyncio.create_task(connection.read())
    waiter = node.wakeup.waiter()
    try:
        while not reader.done():
            if not await connection.round():
                await ws.close(code=1008)
                break
            changed = asyncio.ensure_future(connection.changed.wait())
            idle = asyncio.ensure_future(waiter.wait(POLL_SECONDS))
            await asyncio.wait({changed, idle, reader}, timeout=POLL_SECONDS,
                               return_when=asyncio.FIRST_COMPLETED)
            changed.cancel()
            idle.cancel()
            connection.changed.clear()
    except (WebSocketDisconnect, RuntimeError):
        pass  # the client went away
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
            await reader


routes = [
    WebSocketRoute("/api/v1/streaming", streaming),
    WebSocketRoute("/api/v1/streaming/", streaming),
]
