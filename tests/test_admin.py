"""What an admin does to a group: profile edits, pinned posts, received replies."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest

from node.federation.delivery import prepare_follower
from node.groups import operations
from node.storage.models import Follower, RemoteObject
from tests.conftest import LiveNode, wait_for

AS = {"Accept": "application/activity+json"}


def _png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 120, 40)).save(out, format="PNG")
    return out.getvalue()


async def test_group_edit_changes_the_profile_and_federates_an_update(
        live_node: LiveNode, remote: Any) -> None:
    node = live_node.node
    follower = remote.add_actor("ali")
    actor = await operations.create_group(node, "koeln", display_name="Köln", language="de")
    await operations.create_group(node, "paris", display_name="Paris", language="fr")
    async with node.db.write() as session:
        await prepare_follower(session, Follower(
            local_actor_id=actor.id or 0, actor_uri=follower.id, inbox=follower.inbox,
            follow_activity_id=follower.id + "#f", state="accepted"))
    avatar = await operations.upload_media(node, _png(), group="koeln")
    theirs = await operations.upload_media(node, _png(), group="paris")
    with pytest.raises(operations.OperationError):
        await operations.edit_group(node, "koeln", {"avatar": theirs})
    with pytest.raises(operations.OperationError):
        await operations.edit_group(node, "koeln", {"links": [{"name": "x",
                                                               "url": "javascript:alert(1)"}]})
    token = await operations.create_token(node, "k", "koeln")
    async with httpx.AsyncClient(base_url=live_node.base_url) as client:
        response = await client.patch(
            "/api/v1/groups/koeln", headers={"Authorization": f"Bearer {token}"},
            json={"display_name": "Solidarität Köln", "summary": "<p>Neu</p><script>x</script>",
                  "avatar": avatar, "links": [{"name": "Web", "url": "https://koeln.example"}],
                  "manually_approves_followers": True, "discoverable": False,
                  "indexable": False})
        assert response.status_code == 200, response.text
        other = await client.patch("/api/v1/groups/paris", json={"summary": "x"},
                                   headers={"Authorization": f"Bearer {token}"})
        assert other.status_code == 403
        bad = await client.patch("/api/v1/groups/koeln", json={"password": "x"},
                                 headers={"Authorization": f"Bearer {token}"})
        assert bad.status_code == 400
        doc = (await client.get("/groups/koeln", headers=AS)).json()
    assert doc["name"] == "Solidarität Köln" and doc["summary"] == "<p>Neu</p>"
    assert doc["icon"]["url"] == node.urls.media(f"uploads/{avatar}")
    assert doc["manuallyApprovesFollowers"] is True
    assert doc["discoverable"] is False and doc["indexable"] is False
    (field,) = doc["attachment"]
    assert field["type"] == "PropertyValue" and field["name"] == "Web"
    assert 'href="https://koeln.example"' in field["value"] and 'rel="me' in field["value"]

    async def updated() -> list[Any]:
        return [r for r in remote.received_of_type("Update")
                if r.body["object"].get("id") == node.urls.actor("koeln")]

    (update,) = await wait_for(updated, what="the actor Update at the follower")
    assert update.body["object"]["name"] == "Solidarität Köln"


async def test_pinned_posts_are_the_featured_collection(live_node: LiveNode) -> None:
    node = live_node.node
    await operations.create_group(node, "koeln", display_name="Köln", language="de")
    first = await operations.publish_note(node, "koeln", text="Erster")
    second = await operations.publish_note(node, "koeln", text="Zweiter")
    token = await operations.create_token(node, "k", "koeln")
    async with httpx.AsyncClient(base_url=live_node.base_url) as client:
        pinned = await client.post(f"/api/v1/objects/{second.rsplit('/', 1)[1]}/pin",
                                   headers={"Authorization": f"Bearer {token}"})
        assert pinned.status_code == 200
        page = (await client.get("/groups/koeln/featured?page=1", headers=AS)).json()
        assert [item["id"] for item in page["orderedItems"]] == [second]
        await operations.pin(node, first, pinned=True)
        await operations.pin(node, second, pinned=False)
        page = (await client.get("/groups/koeln/featured?page=1", headers=AS)).json()
        assert [item["id"] for item in page["orderedItems"]] == [first]


async def test_replies_are_listed_and_hidden(live_node: LiveNode) -> None:
    node = live_node.node
    await operations.create_group(node, "koeln", display_name="Köln", language="de")
    note = await operations.publish_note(node, "koeln", text="Aufruf")
    async with node.db.write() as session:
        reply = RemoteObject(uri="https://remote.example/notes/1",
                             actor_uri="https://remote.example/users/troll",
                             object_type="Note", in_reply_to=note,
                             data={"content": "<p>TROLLTEXT</p>"})
        session.add(reply)
        await session.flush()
        reply_id = reply.id or 0
    (listed,) = await operations.replies(node, "koeln")
    assert listed.id == reply_id and listed.moderation_state == "pending"
    await operations.hide_reply(node, reply_id)
    (listed,) = await operations.replies(node, "koeln")
    assert listed.moderation_state == "hidden"
    other = await operations.create_token(node, "p", None)
    assert other  # an admin token may act; a group token of another group may not:
    await operations.create_group(node, "paris", display_name="Paris", language="fr")
    paris = await operations.create_token(node, "p", "paris")
    async with httpx.AsyncClient(base_url=live_node.base_url) as client:
        refused = await client.post(f"/api/v1/replies/{reply_id}/unhide",
                                    headers={"Authorization": f"Bearer {paris}"})
        assert refused.status_code == 404
        for path in ("/groups/koeln", "/objects/" + note.rsplit("/", 1)[1]):
            assert "TROLLTEXT" not in (await client.get(path)).text
