"""Timelines, pagination, instance and the empty answers of the client API."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from node.federation import remote_posts
from node.storage.models import Following, LocalActor, RemoteActor
from tests.clientapi_helpers import group_with_editor, token_for
from tests.conftest import LiveNode
from tests.fediverse import FakeRemote

FOLLOWED = "https://remote.example/users/ali"
STRANGER = "https://remote.example/users/stranger"
LINK_RE = re.compile(r'<([^>]+)>; rel="(next|prev)"')


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def store_remote(live: LiveNode, author: str, index: int, at: datetime,
                       tags: list[str] | None = None) -> None:
    note: dict[str, Any] = {
        "id": f"{author}/statuses/{index}", "type": "Note", "attributedTo": author,
        "content": f"<p>remote {index}</p>", "published": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "to": ["https://www.w3.org/ns/activitystreams#Public"]}
    if tags:
        note["tag"] = [{"type": "Hashtag", "name": f"#{t}"} for t in tags]
    async with live.node.db.write() as session:
        await remote_posts.upsert(session, note, author, source="inbox")


async def follow(live: LiveNode, group: str, uri: str) -> None:
    async with live.node.db.write() as session:
        from sqlmodel import select

        actor = (await session.exec(select(LocalActor).where(
            LocalActor.username == group))).one()
        session.add(Following(local_actor_id=actor.id or 0, target_uri=uri,
                              follow_activity_id=f"{uri}#follow", state="accepted"))
        session.add(RemoteActor(uri=uri, username=uri.rsplit("/", 1)[1],
                                domain="remote.example", inbox=f"{uri}/inbox",
                                raw={"id": uri, "type": "Person", "name": "Ali"}))


def links(response: httpx.Response) -> dict[str, str]:
    return {rel: url for url, rel in LINK_RE.findall(response.headers.get("link", ""))}


async def test_home_pages_through_own_and_followed_posts_in_time_order(
        live_node: LiveNode) -> None:
    await group_with_editor(live_node)
    token = await token_for(live_node)
    await follow(live_node, "tehran", FOLLOWED)
    now = datetime.now(UTC)
    for i in range(3):
        await store_remote(live_node, FOLLOWED, i, now - timedelta(days=3 - i))
    await store_remote(live_node, STRANGER, 9, now - timedelta(hours=1))
    # A forged date in the future does not hold a post at the top: it waits.
    await store_remote(live_node, FOLLOWED, 7, now + timedelta(days=365))
    async with httpx.AsyncClient(base_url=live_node.base_url, timeout=30) as client:
        posted = []
        for text in ("یک", "دو", "سه"):
            answer = await client.post("/api/v1/statuses", headers=bearer(token),
                                       json={"status": text})
            posted.append(answer.json()["id"])
        seen: list[dict[str, Any]] = []
        url: str | None = "/api/v1/timelines/home?limit=2"
        pages = 0
        while url:
            page = await client.get(url, headers=bearer(token))
            assert page.status_code == 200
            if not page.json():
                break
            seen += page.json()
            url = links(page).get("next")
            pages += 1
        ids = [s["id"] for s in seen]
        assert len(ids) == len(set(ids)) == 6 and pages == 3
        assert ids == sorted(ids, key=int, reverse=True)
        assert ids[:3] == posted[::-1]  # the three posts, newest first
        assert all(s["content"] != "<p>remote 7</p>" for s in seen)
        assert all("stranger" not in s["uri"] for s in seen)
        assert seen[3]["account"]["acct"] == "ali@remote.example"
        # min_id: the posts right after it, still newest first; since_id: the newest.
        newer = await client.get(f"/api/v1/timelines/home?min_id={ids[4]}&limit=2",
                                 headers=bearer(token))
        assert [s["id"] for s in newer.json()] == ids[2:4]
        since = await client.get(f"/api/v1/timelines/home?since_id={ids[4]}&limit=2",
                                 headers=bearer(token))
        assert [s["id"] for s in since.json()] == ids[:2]
        single = await client.get(f"/api/v1/statuses/{ids[4]}", headers=bearer(token))
        assert single.json()["uri"] == seen[4]["uri"]
        bad = await client.get("/api/v1/timelines/home?max_id=abc", headers=bearer(token))
        assert bad.status_code == 400 and "error" in bad.json()
        local = await client.get("/api/v1/timelines/public?local=true")
        assert [s["id"] for s in local.json()] == posted[::-1]


async def test_tags_accounts_and_context(live_node: LiveNode) -> None:
    await group_with_editor(live_node)
    token = await token_for(live_node)
    async with httpx.AsyncClient(base_url=live_node.base_url, timeout=30) as client:
        tagged = (await client.post("/api/v1/statuses", headers=bearer(token), json={
            "status": "اعتصاب #هفت_تپه", "spoiler_text": "خبر"})).json()
        assert tagged["spoiler_text"] == "خبر" and tagged["sensitive"] is True
        await client.post("/api/v1/statuses", headers=bearer(token), json={"status": "بی‌برچسب"})
        by_tag = await client.get("/api/v1/timelines/tag/هفت_تپه")
        assert [s["id"] for s in by_tag.json()] == [tagged["id"]]
        me = (await client.get("/api/v1/accounts/verify_credentials",
                               headers=bearer(token))).json()
        assert me["statuses_count"] == 2 and me["source"]["language"] == "fa"
        statuses = await client.get(f"/api/v1/accounts/{me['id']}/statuses?limit=1",
                                    headers=bearer(token))
        assert len(statuses.json()) == 1 and "next" in links(statuses)
        pinned = await client.post(f"/api/v1/statuses/{tagged['id']}/pin",
                                   headers=bearer(token))
        assert pinned.json()["pinned"] is True
        only_pinned = await client.get(f"/api/v1/accounts/{me['id']}/statuses?pinned=true",
                                       headers=bearer(token))
        assert [s["id"] for s in only_pinned.json()] == [tagged["id"]]
        reply = (await client.post("/api/v1/statuses", headers=bearer(token), json={
            "status": "پاسخ", "in_reply_to_id": tagged["id"]})).json()
        assert reply["in_reply_to_id"] == tagged["id"]
        thread = (await client.get(f"/api/v1/statuses/{tagged['id']}/context",
                                   headers=bearer(token))).json()
        assert [s["id"] for s in thread["descendants"]] == [reply["id"]]
        up = (await client.get(f"/api/v1/statuses/{reply['id']}/context",
                               headers=bearer(token))).json()
        assert [s["id"] for s in up["ancestors"]] == [tagged["id"]]
        looked = await client.get("/api/v1/accounts/lookup?acct=tehran", headers=bearer(token))
        assert looked.json()["id"] == me["id"]
        assert (await client.get("/api/v1/accounts/lookup?acct=nobody",
                                 headers=bearer(token))).status_code == 404
        changed = await client.patch("/api/v1/accounts/update_credentials",
                                     headers=bearer(token), data={
                                         "display_name": "کارگران تهران", "locked": "true",
                                         "fields_attributes[0][name]": "وب",
                                         "fields_attributes[0][value]": "https://t.example"})
        assert changed.status_code == 200, changed.text
        assert changed.json()["display_name"] == "کارگران تهران"
        assert changed.json()["locked"] is True
        assert changed.json()["source"]["fields"][0]["value"] == "https://t.example"


async def test_instance_nodeinfo_and_what_answers_empty(live_node: LiveNode) -> None:
    await group_with_editor(live_node)
    token = await token_for(live_node)
    async with httpx.AsyncClient(base_url=live_node.base_url, timeout=30) as client:
        v2 = (await client.get("/api/v2/instance")).json()
        assert v2["version"].startswith("4.5.0 (compatible; Hambastegi ")
        assert v2["configuration"]["statuses"]["max_characters"] == 5000
        assert v2["configuration"]["urls"]["streaming"].startswith("ws://")
        assert "fa" in v2["languages"]
        v1 = (await client.get("/api/v1/instance")).json()
        assert v1["uri"] == live_node.host and v1["version"] == v2["version"]
        info = (await client.get("/nodeinfo/2.1")).json()
        assert info["metadata"]["upstream"]["name"] == "mastodon"
        for path in ("/api/v1/filters", "/api/v2/filters", "/api/v1/lists",
                     "/api/v1/bookmarks", "/api/v1/announcements", "/api/v1/trends/tags",
                     "/api/v2/suggestions", "/api/v1/conversations", "/api/v1/followed_tags",
                     "/api/v1/scheduled_statuses", "/api/v1/custom_emojis"):
            answer = await client.get(path, headers=bearer(token))
            assert answer.status_code == 200 and answer.json() == [], path
        push = await client.get("/api/v1/push/subscription", headers=bearer(token))
        assert push.status_code == 404 and push.json() == {"error": "Record not found"}
        prefs = (await client.get("/api/v1/preferences", headers=bearer(token))).json()
        assert prefs["posting:default:language"] == "fa"
        saved = await client.post("/api/v1/markers", headers=bearer(token),
                                  json={"notifications": {"last_read_id": "5"}})
        assert saved.json()["notifications"]["last_read_id"] == "5"
        read = await client.get("/api/v1/markers?timeline[]=notifications",
                                headers=bearer(token))
        assert read.json()["notifications"]["last_read_id"] == "5"
        unread = await client.get("/api/v1/notifications/unread_count", headers=bearer(token))
        assert unread.json() == {"count": 0}


async def test_search_resolves_handles_finds_posts_by_url_and_tags(
        live_node: LiveNode, remote: FakeRemote) -> None:
    await group_with_editor(live_node)
    token = await token_for(live_node)
    remote.add_actor("maryam")
    handle = f"@maryam@{remote.authority}"
    async with httpx.AsyncClient(base_url=live_node.base_url, timeout=30) as client:
        unresolved = await client.get("/api/v2/search", params={"q": handle},
                                      headers=bearer(token))
        assert unresolved.json()["accounts"] == []
        resolved = await client.get("/api/v2/search", params={"q": handle, "resolve": "true"},
                                    headers=bearer(token))
        assert resolved.json()["accounts"][0]["acct"] == f"maryam@{remote.authority}"
        posted = (await client.post("/api/v1/statuses", json={"status": "پیدا"},
                                    headers=bearer(token))).json()
        by_url = await client.get("/api/v2/search", params={"q": posted["uri"]},
                                  headers=bearer(token))
        assert [s["id"] for s in by_url.json()["statuses"]] == [posted["id"]]
        tags = await client.get("/api/v2/search", params={"q": "#اعتصاب", "type": "hashtags"},
                                headers=bearer(token))
        assert tags.json()["hashtags"][0]["name"] == "اعتصاب"
        group = await client.get("/api/v2/search", params={"q": "teh"}, headers=bearer(token))
        assert [a["acct"] for a in group.json()["accounts"]] == ["tehran"]
        huge = await client.get("/api/v2/search", params={"q": "x" * 3000},
                                headers=bearer(token))
        assert huge.status_code == 422 and "error" in huge.json()
        who = await client.get(f"/api/v1/statuses/{posted['id']}/favourited_by",
                               headers=bearer(token))
        assert who.status_code == 200 and who.json() == []


async def test_likes_boosts_and_follow_requests_arrive_as_notifications(
        live_node: LiveNode, remote: FakeRemote) -> None:
    from tests.conftest import wait_for
    from tests.fediverse import signed_post

    await group_with_editor(live_node)
    token = await token_for(live_node)
    actor = remote.add_actor("reader")
    group = live_node.node.urls.actor("tehran")
    async with httpx.AsyncClient(base_url=live_node.base_url, timeout=30) as client:
        locked = await client.patch("/api/v1/accounts/update_credentials",
                                    headers=bearer(token), data={"locked": "true"})
        assert locked.json()["locked"] is True
        posted = (await client.post("/api/v1/statuses", json={"status": "پسند"},
                                    headers=bearer(token))).json()
        for kind, suffix in (("Like", "like"), ("Announce", "boost"),
                             ("Follow", "follow")):
            target = group if kind == "Follow" else posted["uri"]
            answer = await signed_post(f"{group}/inbox", {
                "@context": "https://www.w3.org/ns/activitystreams",
                "id": f"{actor.id}/{suffix}/1", "type": kind, "actor": actor.id,
                "object": target}, actor)
            assert answer.status_code == 202

        async def three() -> list[dict[str, Any]] | None:
            found = (await client.get("/api/v1/notifications", headers=bearer(token))).json()
            return found if len(found) == 3 else None

        notes = await wait_for(three, what="three notifications")
        assert [n["type"] for n in notes] == ["follow_request", "reblog", "favourite"]
        assert notes[1]["status"]["id"] == posted["id"]
        only = await client.get("/api/v1/notifications?types[]=favourite",
                                headers=bearer(token))
        assert [n["type"] for n in only.json()] == ["favourite"]
        without = await client.get("/api/v1/notifications?exclude_types[]=favourite",
                                   headers=bearer(token))
        assert [n["type"] for n in without.json()] == ["follow_request", "reblog"]
        status = (await client.get(f"/api/v1/statuses/{posted['id']}",
                                   headers=bearer(token))).json()
        assert (status["favourites_count"], status["reblogs_count"]) == (1, 1)
        who = await client.get(f"/api/v1/statuses/{posted['id']}/favourited_by",
                               headers=bearer(token))
        assert [a["acct"] for a in who.json()] == [f"reader@{remote.authority}"]
        requests = (await client.get("/api/v1/follow_requests", headers=bearer(token))).json()
        assert [a["acct"] for a in requests] == [f"reader@{remote.authority}"]
        accepted = await client.post(f"/api/v1/follow_requests/{requests[0]['id']}/authorize",
                                     headers=bearer(token))
        assert accepted.json()["followed_by"] is True
        dismissed = await client.post(f"/api/v1/notifications/{notes[0]['id']}/dismiss",
                                      headers=bearer(token))
        assert dismissed.status_code == 200
        left = (await client.get("/api/v1/notifications", headers=bearer(token))).json()
        assert [n["type"] for n in left] == ["reblog", "favourite"]

        async def accept_sent() -> bool:
            return bool(remote.received_of_type("Accept"))

        await wait_for(accept_sent, what="the Accept delivered")


async def test_favourite_and_boost_from_the_app_reach_the_author_and_undo(
        live_node: LiveNode, remote: FakeRemote) -> None:
    from tests.conftest import wait_for

    await group_with_editor(live_node)
    token = await token_for(live_node)
    author = remote.add_actor("ali")
    await follow(live_node, "tehran", author.id)
    await store_remote(live_node, author.id, 1, datetime.now(UTC) - timedelta(hours=1))
    async with httpx.AsyncClient(base_url=live_node.base_url, timeout=30) as client:
        home = (await client.get("/api/v1/timelines/home", headers=bearer(token))).json()
        sid = home[0]["id"]
        assert home[0]["favourited"] is False
        liked = await client.post(f"/api/v1/statuses/{sid}/favourite", headers=bearer(token))
        assert liked.status_code == 200 and liked.json()["favourited"] is True
        again = await client.post(f"/api/v1/statuses/{sid}/favourite", headers=bearer(token))
        assert again.json()["favourited"] is True
        boosted = await client.post(f"/api/v1/statuses/{sid}/reblog", headers=bearer(token))
        assert boosted.json()["reblogged"] is True
        home = (await client.get("/api/v1/timelines/home", headers=bearer(token))).json()
        assert (home[0]["favourited"], home[0]["reblogged"]) == (True, True)

        async def sent() -> bool:
            return bool(remote.received_of_type("Like")) and bool(
                remote.received_of_type("Announce"))

        await wait_for(sent, what="the Like and the Announce at the author's server")
        assert len(remote.received_of_type("Like")) == 1  # the second favourite sent nothing
        assert remote.received_of_type("Like")[0].body["object"] == home[0]["uri"]
        undone = await client.post(f"/api/v1/statuses/{sid}/unfavourite",
                                   headers=bearer(token))
        assert undone.json()["favourited"] is False and undone.json()["reblogged"] is True

        async def undo_sent() -> bool:
            return bool(remote.received_of_type("Undo"))

        await wait_for(undo_sent, what="the Undo of the Like")
        read_only = await token_for(live_node, scope="read")
        refused = await client.post(f"/api/v1/statuses/{sid}/favourite",
                                    headers=bearer(read_only))
        assert refused.status_code == 403
