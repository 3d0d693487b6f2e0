"""The JSON API: bearer tokens, scopes, and clear errors for bad requests."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from node.groups import operations
from tests.conftest import LiveNode


@pytest.fixture
async def admin_token(live_node: LiveNode) -> str:
    return await operations.create_token(live_node.node, "test")


async def call(live: LiveNode, method: str, path: str, token: str | None = None,
               **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    headers.update(kwargs.pop("headers", {}))
    async with httpx.AsyncClient(base_url=live.base_url) as client:
        return await client.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]


async def fetch(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(url, headers={"Accept": "application/activity+json"})


async def test_group_note_edit_delete_through_the_api(live_node: LiveNode,
                                                      admin_token: str) -> None:
    created = await call(live_node, "POST", "/api/v1/groups", admin_token,
                         json={"username": "paris", "display_name": "Comité de Paris",
                               "language": "fr"})
    assert created.status_code == 201
    note = await call(live_node, "POST", "/api/v1/groups/paris/notes", admin_token,
                      json={"text": "Rassemblement samedi", "lang": "fr"})
    assert note.status_code == 201
    note_id = note.json()["id"]
    uuid = note_id.rsplit("/", 1)[1]
    doc = (await fetch(note_id)).json()
    assert doc["contentMap"]["fr"] == "<p>Rassemblement samedi</p>"
    edited = await call(live_node, "PATCH", f"/api/v1/objects/{uuid}", admin_token,
                        json={"text": "Rassemblement dimanche"})
    assert edited.status_code == 200
    assert "dimanche" in (await fetch(note_id)).json()["content"]
    deleted = await call(live_node, "DELETE", f"/api/v1/objects/{uuid}", admin_token)
    assert deleted.status_code == 200
    assert (await fetch(note_id)).status_code == 410
    again = await call(live_node, "DELETE", f"/api/v1/objects/{uuid}", admin_token)
    assert again.status_code == 410


async def test_missing_or_wrong_token_is_401(live_node: LiveNode, admin_token: str) -> None:
    for token in (None, "hb_wrong", "x" * 500):
        response = await call(live_node, "POST", "/api/v1/groups/x/notes", token,
                              json={"text": "hi"})
        assert response.status_code == 401
    raw = await call(live_node, "POST", "/api/v1/groups/x/notes",
                     headers={"Authorization": admin_token}, json={"text": "hi"})
    assert raw.status_code == 401


async def test_group_token_cannot_act_for_another_group(live_node: LiveNode) -> None:
    for name in ("koeln", "hamburg"):
        await operations.create_group(live_node.node, name, display_name=name, language="de")
    token = await operations.create_token(live_node.node, "koeln editor", "koeln")
    allowed = await call(live_node, "POST", "/api/v1/groups/koeln/notes", token,
                         json={"text": "ok"})
    assert allowed.status_code == 201
    refused = await call(live_node, "POST", "/api/v1/groups/hamburg/notes", token,
                         json={"text": "no"})
    assert refused.status_code == 403
    create = await call(live_node, "POST", "/api/v1/groups", token,
                        json={"username": "x", "display_name": "x"})
    assert create.status_code == 403
    other_note = await operations.publish_note(live_node.node, "hamburg", text="theirs")
    uuid = other_note.rsplit("/", 1)[1]
    assert (await call(live_node, "DELETE", f"/api/v1/objects/{uuid}", token)).status_code == 404


async def test_bad_bodies_get_clear_errors(live_node: LiveNode, admin_token: str) -> None:
    await operations.create_group(live_node.node, "koeln", display_name="Köln", language="de")
    cases = [
        ({"content": b"{not json"}, 400),
        ({"content": b"[1]"}, 400),
        ({"json": {"text": 5}}, 400),
        ({"json": {}}, 400),
        ({"json": {"text": "   "}}, 400),
        ({"json": {"text": "x" * 6000}}, 400),
        ({"json": {"text": "ok", "lang": "not a language"}}, 400),
        ({"content": b'{"text": "' + b"x" * 300_000 + b'"}'}, 413),
    ]
    for kwargs, status in cases:
        response = await call(live_node, "POST", "/api/v1/groups/koeln/notes", admin_token,
                              **kwargs)
        assert response.status_code == status, (kwargs.keys(), response.text)
        assert "error" in response.json()
    missing = await call(live_node, "POST", "/api/v1/groups/nobody/notes", admin_token,
                         json={"text": "x"})
    assert missing.status_code == 404
    bad_group = await call(live_node, "POST", "/api/v1/groups", admin_token,
                           json={"username": "Bad Name!", "display_name": "x"})
    assert bad_group.status_code == 400 and "invalid group name" in bad_group.json()["error"]
    reserved = await call(live_node, "POST", "/api/v1/groups", admin_token,
                          json={"username": "instance", "display_name": "x"})
    assert reserved.status_code == 400


async def test_follow_of_unresolvable_handle_is_a_clear_error(live_node: LiveNode,
                                                              admin_token: str) -> None:
    await operations.create_group(live_node.node, "koeln", display_name="Köln", language="de")
    for target, status in (("not a handle", 400), (f"nobody@127.0.0.1:{live_node.port}", 404)):
        response = await call(live_node, "POST", "/api/v1/groups/koeln/follow", admin_token,
                              json={"target": target})
        assert response.status_code == status
        assert "cannot follow" in response.json()["error"]
