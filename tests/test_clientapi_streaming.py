"""The streaming API (WebSocket): a post and a follow arrive as Mastodon's events;
a revoked token ends the stream; a wrong token is refused at the handshake."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets

from node.clientapi import apps
from tests.clientapi_helpers import group_with_editor, token_for
from tests.conftest import LiveNode
from tests.fediverse import FakeRemote, signed_post


async def next_event(ws: Any, event: str) -> dict[str, Any]:
    async with asyncio.timeout(20):
        while True:
            message = json.loads(await ws.recv())
            if message["event"] == event:
                return {**message, "payload": json.loads(message["payload"])}


async def test_the_user_stream_carries_posts_and_notifications(
        live_node: LiveNode, remote: FakeRemote) -> None:
    await group_with_editor(live_node)
    token = await token_for(live_node)
    url = f"ws://{live_node.host}/api/v1/streaming?stream=user&access_token={token}"
    async with websockets.connect(url) as ws, \
            httpx.AsyncClient(base_url=live_node.base_url, timeout=30) as client:
        posted = await client.post("/api/v1/statuses", json={"status": "زنده"},
                                   headers={"Authorization": f"Bearer {token}"})
        update = await next_event(ws, "update")
        assert update["stream"] == ["user"]
        assert update["payload"]["id"] == posted.json()["id"]
        actor = remote.add_actor("reader")
        group = live_node.node.urls.actor("tehran")
        await signed_post(f"{group}/inbox", {
            "@context": "https://www.w3.org/ns/activitystreams", "id": f"{actor.id}/f/1",
            "type": "Follow", "actor": actor.id, "object": group}, actor)
        notification = await next_event(ws, "notification")
        assert notification["payload"]["type"] == "follow"
        assert notification["payload"]["account"]["acct"] == f"reader@{remote.authority}"
        # Revoked elsewhere: the stream ends at its next round.
        async with live_node.node.db.read() as session:
            from sqlmodel import select

            from node.storage.models import OAuthToken
            row = (await session.exec(select(OAuthToken))).one()
        assert await apps.revoke_for_user(live_node.node, "sara", row.id or 0)
        with pytest.raises(websockets.ConnectionClosed):
            async with asyncio.timeout(20):
                while True:
                    await ws.recv()


async def test_public_local_by_subscription_and_bad_tokens_refused(
        live_node: LiveNode) -> None:
    await group_with_editor(live_node)
    token = await token_for(live_node)
    async with websockets.connect(f"ws://{live_node.host}/api/v1/streaming") as ws, \
            httpx.AsyncClient(base_url=live_node.base_url, timeout=30) as client:
        await ws.send("not json")
        await ws.send(json.dumps({"type": "subscribe", "stream": "user"}))  # no token: ignored
        await ws.send(json.dumps({"type": "subscribe", "stream": "public:local"}))
        posted = await client.post("/api/v1/statuses", json={"status": "همگانی"},
                                   headers={"Authorization": f"Bearer {token}"})
        update = await next_event(ws, "update")
        assert update["stream"] == ["public:local"]
        assert update["payload"]["id"] == posted.json()["id"]
    for query in ("?stream=user&access_token=forged", "?stream=user", "?stream=direct"):
        with pytest.raises(websockets.InvalidStatus):
            async with websockets.connect(f"ws://{live_node.host}/api/v1/streaming{query}"):
                pass
