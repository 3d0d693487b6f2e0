"""Safety of the client API (issue 29, "Bad input and safety"): a group's token
reaches nothing of another group (one table of routes), a read token writes
nothing, invalid statuses store and send nothing, an Idempotency-Key posts once,
a revocation made by another process holds at the next request, and no access
token reaches the logs."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func
from sqlmodel import select

from node.clientapi.entities import remote_number
from node.storage.models import (
    Activity,
    ClientNotification,
    LocalActor,
    LocalObject,
    MediaFile,
    RemoteObject,
)
from tests.clientapi_helpers import (
    REDIRECT,
    authorize,
    code_of,
    group_with_editor,
    register,
    token_for,
)
from tests.conftest import LiveNode, NodeFactory, run_cli
from tests.workspace_helpers import PASSWORD, png


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def counts(live: LiveNode) -> tuple[int, int, int]:
    async with live.node.db.read() as session:
        objects = (await session.exec(select(func.count()).select_from(LocalObject))).one()
        activities = (await session.exec(select(func.count()).select_from(Activity))).one()
        media = (await session.exec(select(func.count()).select_from(MediaFile))).one()
    return int(objects), int(activities), int(media)


async def upload(client: httpx.AsyncClient, token: str, description: str = "alt") -> str:
    answer = await client.post("/api/v2/media", headers=bearer(token),
                               files={"file": ("a.png", io.BytesIO(png(80)), "image/png")},
                               data={"description": description})
    assert answer.status_code == 200, answer.text
    media_id: str = answer.json()["id"]
    return media_id


async def post(client: httpx.AsyncClient, token: str, **body: Any) -> httpx.Response:
    return await client.post("/api/v1/statuses", headers=bearer(token), json=body)


async def test_a_groups_token_reaches_nothing_of_another_group(live_node: LiveNode) -> None:
    await group_with_editor(live_node, "tehran", "sara")
    await group_with_editor(live_node, "ahvaz", "reza")
    mine = await token_for(live_node, user="sara")
    theirs = await token_for(live_node, user="reza")
    async with httpx.AsyncClient(base_url=live_node.base_url, timeout=30) as client:
        their_media = await upload(client, theirs, "their alt text")
        their_status = (await post(client, theirs, status="اطلاعیه اهواز",
                                   media_ids=[their_media])).json()
        async with live_node.node.db.write() as session:
            ahvaz = (await session.exec(select(LocalActor).where(
                LocalActor.username == "ahvaz"))).one()
            note = ClientNotification(local_actor_id=ahvaz.id or 0, notification_type="follow",
                                      account_uri="https://remote.example/users/x")
            session.add(note)
            await session.flush()
            note_id = str(note.id)
            held = RemoteObject(uri="https://remote.example/notes/1",
                                actor_uri="https://remote.example/users/x", object_type="Note",
                                in_reply_to=their_status["uri"], moderation_state="pending",
                                data={"id": "https://remote.example/notes/1", "type": "Note",
                                      "content": "<p>held</p>"})
            session.add(held)
            await session.flush()
            held_id = str(remote_number(held))
        sid, mid = their_status["id"], their_media
        # One table of every route that names another group's thing.
        table: list[tuple[str, str, dict[str, Any] | None, int]] = [
            ("GET", f"/api/v1/statuses/{sid}/source", None, 404),
            ("GET", f"/api/v1/statuses/{held_id}", None, 404),
            ("GET", f"/api/v1/statuses/{held_id}/context", None, 404),
            ("PUT", f"/api/v1/statuses/{sid}", {"status": "hijacked"}, 404),
            ("DELETE", f"/api/v1/statuses/{sid}", None, 404),
            ("POST", f"/api/v1/statuses/{sid}/pin", None, 404),
            ("POST", f"/api/v1/statuses/{sid}/unpin", None, 404),
            ("GET", f"/api/v1/media/{mid}", None, 404),
            ("PUT", f"/api/v1/media/{mid}", {"description": "hijacked"}, 404),
            ("POST", "/api/v1/statuses", {"status": "x", "media_ids": [mid]}, 422),
            ("GET", f"/api/v1/notifications/{note_id}", None, 404),
            ("POST", f"/api/v1/notifications/{note_id}/dismiss", None, 404),
            ("GET", f"/api/v1/accounts/{ahvaz.id}/followers", None, 200),
            ("GET", f"/api/v1/accounts/{ahvaz.id}/following", None, 200),
        ]
        for method, path, body, status in table:
            answer = await client.request(method, path, headers=bearer(mine), json=body)
            assert answer.status_code == status, (method, path, answer.text)
            if status >= 400:
                assert set(answer.json()) == {"error"}, (method, path)
            else:
                assert answer.json() == [], (method, path)
        # Lists of one's own things show nothing of the other group's.
        notes = (await client.get("/api/v1/notifications", headers=bearer(mine))).json()
        home = (await client.get("/api/v1/timelines/home", headers=bearer(mine))).json()
        assert notes == [] and home == []
        cleared = await client.post("/api/v1/notifications/clear", headers=bearer(mine))
        assert cleared.status_code == 200
        # Their things are as they were.
        held_here = await client.get(f"/api/v1/statuses/{held_id}", headers=bearer(theirs))
        assert held_here.status_code == 200 and "held" in held_here.json()["content"]
        source = await client.get(f"/api/v1/statuses/{sid}/source", headers=bearer(theirs))
        assert source.json()["text"] == "اطلاعیه اهواز"
        media = await client.get(f"/api/v1/media/{mid}", headers=bearer(theirs))
        assert media.json()["description"] == "their alt text"
        their_notes = (await client.get("/api/v1/notifications",
                                        headers=bearer(theirs))).json()
        assert [n["id"] for n in their_notes] == [note_id]


async def test_a_read_token_cannot_write(live_node: LiveNode) -> None:
    await group_with_editor(live_node)
    writer = await token_for(live_node)
    reader = await token_for(live_node, scope="read")
    async with httpx.AsyncClient(base_url=live_node.base_url, timeout=30) as client:
        media = await upload(client, writer)
        status = (await post(client, writer, status="نوشته")).json()
        before = await counts(live_node)
        for method, path, body in (
                ("POST", "/api/v1/statuses", {"status": "no"}),
                ("PUT", f"/api/v1/statuses/{status['id']}", {"status": "no"}),
                ("DELETE", f"/api/v1/statuses/{status['id']}", None),
                ("PUT", f"/api/v1/media/{media}", {"description": "no"}),
                ("PATCH", "/api/v1/accounts/update_credentials", {"display_name": "no"}),
                ("POST", "/api/v1/notifications/clear", None),
                ("POST", "/api/v1/markers", {"home": {"last_read_id": "1"}})):
            answer = await client.request(method, path, headers=bearer(reader), json=body)
            assert answer.status_code == 403, (method, path, answer.text)
            assert answer.json() == {"error": "This action is outside the authorized scopes"}
        denied = await client.post("/api/v2/media", headers=bearer(reader),
                                   files={"file": ("a.png", io.BytesIO(png(80)), "image/png")})
        assert denied.status_code == 403
        assert (await client.get(f"/api/v1/statuses/{status['id']}",
                                 headers=bearer(reader))).status_code == 200
    assert await counts(live_node) == before


async def test_invalid_statuses_store_and_send_nothing(live_node: LiveNode) -> None:
    await group_with_editor(live_node, "tehran", "sara")
    await group_with_editor(live_node, "ahvaz", "reza")
    token = await token_for(live_node, user="sara")
    other = await token_for(live_node, user="reza")
    async with httpx.AsyncClient(base_url=live_node.base_url, timeout=30) as client:
        mine = [await upload(client, token) for _ in range(5)]
        theirs = await upload(client, other)
        before = await counts(live_node)
        for body in ({"status": "ک" * 5001},
                     {"status": "x", "media_ids": ["999999"]},
                     {"status": "x", "media_ids": [theirs]},
                     {"status": "x", "media_ids": ["not-a-number"]},
                     {"status": "x", "media_ids": mine},
                     {"status": "x", "visibility": "secret"},
                     {"status": "x", "visibility": "private"},
                     {"status": "   "},
                     {"status": "x", "language": "not a language"},
                     {"status": "x", "in_reply_to_id": "12345"},
                     {"status": ["a", "list"]}):
            answer = await post(client, token, **body)
            assert answer.status_code == 422, (body, answer.text)
            assert list(answer.json()) == ["error"]
        assert (await counts(live_node)) == before
        unauthorised = await client.post("/api/v1/statuses", json={"status": "x"})
        assert unauthorised.status_code == 401
        forged = await client.post("/api/v1/statuses", json={"status": "x"},
                                   headers=bearer("forged-token"))
        assert forged.status_code == 401
        huge = await client.post("/api/v1/statuses", headers={
            **bearer(token), "Content-Type": "application/json"}, content=b'{"status":"' +
            b"x" * 300_000 + b'"}')
        assert huge.status_code == 413
        broken = await client.post("/api/v1/statuses", headers={
            **bearer(token), "Content-Type": "application/json"}, content=b"{nope")
        assert broken.status_code == 400
        not_image = await client.post("/api/v2/media", headers=bearer(token), files={
            "file": ("a.png", io.BytesIO(b"%PDF-1.4 not an image"), "image/png")})
        assert not_image.status_code in (415, 422) and "error" in not_image.json()
    assert (await counts(live_node)) == before


async def test_an_idempotency_key_posts_once(live_node: LiveNode) -> None:
    await group_with_editor(live_node)
    token = await token_for(live_node)
    headers = {**bearer(token), "Idempotency-Key": "compose-42"}
    async with httpx.AsyncClient(base_url=live_node.base_url, timeout=30) as client:
        first = await client.post("/api/v1/statuses", headers=headers, json={"status": "یک"})
        second = await client.post("/api/v1/statuses", headers=headers, json={"status": "یک"})
        other = await client.post("/api/v1/statuses", headers={
            **bearer(token), "Idempotency-Key": "compose-43"}, json={"status": "دو"})
    assert first.status_code == second.status_code == other.status_code == 200
    assert first.json()["id"] == second.json()["id"] != other.json()["id"]
    async with live_node.node.db.read() as session:
        creates = (await session.exec(select(func.count()).select_from(Activity).where(
            Activity.activity_type == "Create"))).one()
    assert creates == 2


async def test_a_revocation_by_the_cli_holds_at_the_next_request(
        live_node: LiveNode, database_url: str, tmp_path: Path) -> None:
    await group_with_editor(live_node)
    token = await token_for(live_node)
    env = {**__import__("os").environ, "HAMBASTEGI_DATABASE_URL": database_url,
           "HAMBASTEGI_DATA_DIR": str(tmp_path / "cli"),
           "HAMBASTEGI_BASE_URL": live_node.base_url}
    async with httpx.AsyncClient(base_url=live_node.base_url, timeout=30) as client:
        assert (await client.get("/api/v1/timelines/home",
                                 headers=bearer(token))).status_code == 200
        listed = run_cli(env, "user", "apps", "sara")
        assert listed.returncode == 0, listed.stderr
        row = listed.stdout.splitlines()[1].split("\t")
        assert row[1:3] == ["Test app", "tehran"]
        assert token not in listed.stdout
        missing = run_cli(env, "user", "revoke-app", "sara", "999")
        assert missing.returncode != 0
        revoked = run_cli(env, "user", "revoke-app", "sara", row[0])
        assert revoked.returncode == 0, revoked.stderr
        answer = await client.get("/api/v1/timelines/home", headers=bearer(token))
        assert answer.status_code == 401
        assert run_cli(env, "user", "apps", "sara").stdout.splitlines()[1:] == []


async def test_access_tokens_never_reach_the_logs(nodes: NodeFactory) -> None:
    """`hambastegi serve` as admins run it, logging at DEBUG: its whole log after a
    login, posts and reads (a token in the header, in ?access_token=, a wrong one)
    holds no token."""
    node = await nodes.create("logged", extra_env={"HAMBASTEGI_LOG_LEVEL": "DEBUG"})
    node.cli("group", "create", "tehran", "--display-name", "Tehran", "--language", "fa")
    node.cli("user", "create", "sara", "--group", "tehran", "--password-stdin",
             input_text=PASSWORD + "\n")
    async with httpx.AsyncClient(base_url=node.base_url, timeout=30) as client:
        app = await register(client)
        code = code_of(await authorize(client, app))
        answer = await client.post("/oauth/token", data={
            "grant_type": "authorization_code", "code": code, "client_id": app["client_id"],
            "client_secret": app["client_secret"], "redirect_uri": REDIRECT})
        token = answer.json()["access_token"]
        assert (await post(client, token, status="سلام")).status_code == 200
        await client.get("/api/v1/timelines/home", headers=bearer(token))
        await client.get(f"/api/v1/timelines/home?access_token={token}")
        await client.get("/api/v1/timelines/home", headers=bearer(token + "x"))
    await asyncio.to_thread(node.stop)
    log = node.log_path.read_text()
    assert '"logger":"hambastegi' in log, "the node logged nothing: the check would be empty"
    for secret in (token, app["client_secret"], code):
        assert secret not in log
