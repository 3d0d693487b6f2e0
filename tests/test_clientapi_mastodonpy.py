"""Issue 29, what it must show: the real Mastodon.py client library logs into a
group through the node's own authorize page and posts, edits and deletes; a follow
and a reply from another server arrive as notifications."""

from __future__ import annotations

import asyncio
import io
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from mastodon import Mastodon
from sqlmodel import select

from node.storage.models import LocalObject, NewsItem
from tests.clientapi_helpers import REDIRECT, group_with_editor
from tests.conftest import LiveNode, wait_for
from tests.fediverse import FakeRemote, signed_post
from tests.workspace_helpers import PASSWORD, csrf_of, png

TEXT = "کارگران نیشکر هفت‌تپه امروز دوباره دست از کار کشیدند."
ALT = "کارگران با پلاکارد جلوی کارخانه"


async def run(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Mastodon.py is synchronous: its calls run in a thread while the node serves."""
    return await asyncio.to_thread(fn, *args, **kwargs)


async def follow_from(live: LiveNode, remote: FakeRemote, name: str) -> str:
    actor = remote.add_actor(name)
    group = live.node.urls.actor("tehran")
    activity = {"@context": "https://www.w3.org/ns/activitystreams",
                "id": f"{actor.id}/follows/1", "type": "Follow", "actor": actor.id,
                "object": group}
    response = await signed_post(f"{group}/inbox", activity, actor)
    assert response.status_code == 202, response.text
    return actor.id


async def test_mastodon_py_logs_in_posts_a_persian_status_with_an_image_edits_and_deletes(
        live_node: LiveNode, remote: FakeRemote) -> None:
    await group_with_editor(live_node)
    base = live_node.base_url
    client_id, client_secret = await run(
        Mastodon.create_app, "Hambastegi test", scopes=["read", "write", "follow"],
        redirect_uris=REDIRECT, api_base_url=base)
    api = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=base)
    url = await run(api.auth_request_url, redirect_uris=REDIRECT,
                    scopes=["read", "write", "follow"], allow_http=True)
    assert url.startswith(f"{base}/oauth/authorize?")  # from RFC 8414 metadata
    async with httpx.AsyncClient(timeout=30) as browser:
        page = await browser.get(url)
        assert page.status_code == 200 and "Hambastegi test" in page.text
        form = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        answer = await browser.post(f"{base}/oauth/authorize", data={
            **form, "csrf": csrf_of(page.text), "username": "sara", "password": PASSWORD,
            "decision": "allow"})
    assert answer.status_code == 302
    location = answer.headers["location"]
    assert location.startswith(REDIRECT + "?")
    code = parse_qs(urlsplit(location).query)["code"][0]
    await run(api.log_in, code=code, redirect_uri=REDIRECT,
              scopes=["read", "write", "follow"], allow_http=True)

    me = await run(api.account_verify_credentials)
    assert me["acct"] == "tehran" and me["group"] is True
    instance = await run(api.instance)
    assert str(instance["version"]).startswith("4.5.0 (compatible; Hambastegi")

    # A follower on another server, before the post: it must be delivered there.
    follower = await follow_from(live_node, remote, "reader")

    media = await run(api.media_post, io.BytesIO(png(200)), mime_type="image/png",
                      description=ALT)
    status = await run(api.status_post, TEXT, media_ids=[media], language="fa")
    assert TEXT in status["content"]
    assert status["media_attachments"][0]["description"] == ALT
    assert status["language"] == "fa"

    # A real news item, with one Persian version and the photo's alt text.
    async with live_node.node.db.read() as session:
        items = (await session.exec(select(NewsItem))).all()
    assert len(items) == 1 and set(items[0].versions) == {"fa"}
    assert items[0].photos[0]["alt"] == {"fa": ALT}

    home = await run(api.timeline_home)
    assert [s["id"] for s in home] == [status["id"]]
    async with httpx.AsyncClient(timeout=30) as browser:
        group_page = await browser.get(f"{base}/groups/tehran",
                                       headers={"Accept": "text/html"})
    assert TEXT in group_page.text

    async def delivered() -> list[Any]:
        return [r for r in remote.received_of_type("Create")
                if TEXT in str(r.body.get("object", {}).get("content", ""))]

    create = (await wait_for(delivered, what="the status delivered to the follower"))[0]
    assert create.body["object"]["attachment"][0]["name"] == ALT

    # The follow and a reply from that server, as the app's notifications.
    reply_id = f"{follower}/statuses/1"
    actor = remote.actors["reader"]
    reply = {"@context": "https://www.w3.org/ns/activitystreams",
             "id": f"{reply_id}/activity", "type": "Create", "actor": follower,
             "object": {"id": reply_id, "type": "Note", "attributedTo": follower,
                        "inReplyTo": status["uri"], "content": "<p>همبستگی!</p>",
                        "to": ["https://www.w3.org/ns/activitystreams#Public"],
                        "published": "2026-01-01T00:00:00Z"}}
    response = await signed_post(f"{live_node.node.urls.actor('tehran')}/inbox", reply, actor)
    assert response.status_code == 202

    async def both() -> list[Any] | None:
        found = await run(api.notifications)
        kinds = {n["type"] for n in found}
        return found if {"follow", "mention"} <= kinds else None

    notes = await wait_for(both, what="follow and mention notifications")
    follow_note = next(n for n in notes if n["type"] == "follow")
    mention = next(n for n in notes if n["type"] == "mention")
    assert follow_note["account"]["acct"] == f"reader@{remote.authority}"
    assert "همبستگی" in mention["status"]["content"]
    assert mention["status"]["in_reply_to_id"] == status["id"]

    edited = await run(api.status_update, status["id"], status=TEXT + " (اصلاح)",
                       media_ids=[media])
    assert "(اصلاح)" in edited["content"] and edited["edited_at"] is not None
    assert edited["id"] == status["id"]

    async def updated() -> list[Any]:
        return [r for r in remote.received_of_type("Update")
                if "(اصلاح)" in str(r.body.get("object", {}).get("content", ""))]

    await wait_for(updated, what="the edit delivered")

    deleted = await run(api.status_delete, status["id"])
    assert deleted["text"].startswith(TEXT)
    async with live_node.node.db.read() as session:
        obj = (await session.exec(select(LocalObject).where(
            LocalObject.uuid == status["uri"].rsplit("/", 1)[1]))).one()
    assert obj.deleted_at is not None

    async def gone() -> list[Any]:
        return [r for r in remote.received_of_type("Delete")
                if r.body.get("object", {}).get("id") == status["uri"]
                or r.body.get("object") == status["uri"]]

    await wait_for(gone, what="the delete delivered")
    assert await run(api.timeline_home) == []
