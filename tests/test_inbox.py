"""The inbox against real signed HTTP: what it accepts, and everything it refuses."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func
from sqlmodel import select

from node.federation import signatures
from node.groups import operations
from node.storage.db import utcnow
from node.storage.models import (
    Fanout,
    Follower,
    InboxItem,
    Interaction,
    RemoteActor,
    RemoteObject,
)
from tests.conftest import LiveNode, wait_for
from tests.fediverse import FakeActor, FakeRemote, sign_headers, signed_post
from tests.inbox_helpers import process_pending


async def count(live: LiveNode, model: Any, *where: Any) -> int:
    async with live.node.db.read() as session:
        query = select(func.count()).select_from(model)
        for cond in where:
            query = query.where(cond)
        return int((await session.exec(query)).one())


async def setup_group(live: LiveNode, name: str = "koeln", manual: bool = False) -> str:
    await operations.create_group(live.node, name, display_name=name.title(), language="de",
                                  manually_approves=manual)
    return live.node.urls.actor(name)


async def follow(live: LiveNode, remote: FakeRemote, actor: FakeActor, group_uri: str
                 ) -> dict[str, Any]:
    activity = remote.activity(actor, "Follow", group_uri)
    response = await signed_post(f"{group_uri}/inbox", activity, actor)
    assert response.status_code == 202, response.text
    return activity


async def nothing_stored_or_queued(live: LiveNode) -> None:
    assert await count(live, InboxItem) == 0
    assert await count(live, Fanout) == 0


# --- the happy paths ---------------------------------------------------------------------


async def test_follow_is_accepted_with_a_signed_accept(live_node: LiveNode,
                                                       remote: FakeRemote) -> None:
    group = await setup_group(live_node)
    alice = remote.add_actor("alice")
    follow_activity = await follow(live_node, remote, alice, group)

    accepts = await wait_for(lambda: _received(remote, "Accept"), what="Accept")
    accept = accepts[0]
    assert accept.body["actor"] == group
    assert accept.body["object"]["id"] == follow_activity["id"]
    # The Accept is signed by the group's key, verifiable as Mastodon would.
    async with httpx.AsyncClient() as client:
        actor_doc = (await client.get(group, headers={"Accept": "application/activity+json"})
                     ).json()
    parsed = signatures.parse_request_signature(
        method="POST", target_uri=remote.base + accept.path, headers=accept.headers,
        now=utcnow(), require_digest=True)
    assert parsed.key_id == actor_doc["publicKey"]["id"]
    from node.federation.keys import load_public_pem
    signatures.verify_signature(parsed, load_public_pem(actor_doc["publicKey"]["publicKeyPem"]))
    assert await count(live_node, Follower, Follower.state == "accepted") == 1


async def _received(remote: FakeRemote, kind: str) -> list[Any]:
    return remote.received_of_type(kind)


async def test_manual_approval_queues_the_follow_until_an_editor_accepts(
        live_node: LiveNode, remote: FakeRemote) -> None:
    group = await setup_group(live_node, manual=True)
    alice = remote.add_actor("alice")
    await follow(live_node, remote, alice, group)

    async def pending() -> list[Any]:
        return await operations.follow_requests(live_node.node, "koeln")

    requests = await wait_for(pending, what="pending follow request")
    assert remote.received_of_type("Accept") == []
    await operations.decide_follow_request(live_node.node, "koeln", requests[0].id, accept=True)
    await wait_for(lambda: _received(remote, "Accept"), what="Accept after approval")
    assert await count(live_node, Follower, Follower.state == "accepted") == 1


async def test_undo_follow_removes_the_follower(live_node: LiveNode, remote: FakeRemote) -> None:
    group = await setup_group(live_node)
    alice = remote.add_actor("alice")
    follow_activity = await follow(live_node, remote, alice, group)
    await wait_for(lambda: count(live_node, Follower), what="follower")
    undo = remote.activity(alice, "Undo", follow_activity)
    assert (await signed_post(f"{group}/inbox", undo, alice)).status_code == 202

    async def gone() -> bool:
        return await count(live_node, Follower) == 0

    await wait_for(gone, what="follower removed")


async def test_same_activity_twice_is_stored_once(live_node: LiveNode,
                                                  remote: FakeRemote) -> None:
    group = await setup_group(live_node)
    alice = remote.add_actor("alice")
    like = remote.activity(alice, "Like", group)
    for _ in range(3):
        assert (await signed_post(f"{live_node.base_url}/inbox", like, alice)).status_code == 202
    assert await count(live_node, InboxItem) == 1


async def test_rfc9421_signed_post_is_accepted(live_node: LiveNode, remote: FakeRemote) -> None:
    group = await setup_group(live_node)
    alice = remote.add_actor("alice")
    activity = remote.activity(alice, "Follow", group)
    response = await signed_post(f"{group}/inbox", activity, alice, scheme="rfc9421")
    assert response.status_code == 202, response.text
    response = await signed_post(f"{group}/inbox", remote.activity(alice, "Like", group), alice,
                                 scheme="rfc9421", key=alice.ed,
                                 key_id=alice.id + "#ed25519-key")
    assert response.status_code == 202, response.text


async def test_like_and_announce_are_counted_and_undone(live_node: LiveNode,
                                                        remote: FakeRemote) -> None:
    await setup_group(live_node)
    note_id = await operations.publish_note(live_node.node, "koeln", text="Solidarität!")
    alice = remote.add_actor("alice")
    like = remote.activity(alice, "Like", note_id)
    announce = remote.activity(alice, "Announce", note_id)
    for activity in (like, announce):
        assert (await signed_post(f"{live_node.base_url}/inbox", activity, alice)
                ).status_code == 202

    async def counted() -> bool:
        return await count(live_node, Interaction) == 2

    await wait_for(counted, what="interactions")
    undo = remote.activity(alice, "Undo", like)
    assert (await signed_post(f"{live_node.base_url}/inbox", undo, alice)).status_code == 202

    async def undone() -> bool:
        return await count(live_node, Interaction, Interaction.interaction_type == "Like") == 0

    await wait_for(undone, what="like undone")
    assert await count(live_node, Interaction) == 1


async def test_reply_is_stored_sanitised_for_moderation(live_node: LiveNode,
                                                        remote: FakeRemote) -> None:
    await setup_group(live_node)
    note_id = await operations.publish_note(live_node.node, "koeln", text="Aufruf")
    alice = remote.add_actor("alice")
    reply = {"id": alice.id + "/notes/1", "type": "Note", "attributedTo": alice.id,
             "inReplyTo": note_id,
             "content": '<p>hi<script>alert(1)</script><img src=x onerror=alert(1)></p>'}
    create = remote.activity(alice, "Create", reply)
    assert (await signed_post(f"{live_node.base_url}/inbox", create, alice)).status_code == 202
    await wait_for(lambda: count(live_node, RemoteObject), what="reply stored")
    async with live_node.node.db.read() as session:
        stored = (await session.exec(select(RemoteObject))).one()
    assert stored.moderation_state == "pending"
    assert "script" not in stored.data["content"] and "onerror" not in stored.data["content"]
    assert "hi" in stored.data["content"]


async def test_actor_update_rotates_the_key(live_node: LiveNode, remote: FakeRemote) -> None:
    from node.federation import keys

    group = await setup_group(live_node)
    alice = remote.add_actor("alice")
    await follow(live_node, remote, alice, group)
    await wait_for(lambda: count(live_node, Follower), what="follower")
    old_key = alice.rsa
    alice.rsa = keys.generate_rsa()
    # Update(actor) carrying the new key, signed by the old one (Mastodon's rule).
    update = remote.activity(alice, "Update", alice.document())
    response = await signed_post(f"{live_node.base_url}/inbox", update, alice, key=old_key)
    assert response.status_code == 202

    async def rotated() -> bool:
        async with live_node.node.db.read() as session:
            row = (await session.exec(select(RemoteActor).where(RemoteActor.uri == alice.id))
                   ).one()
        return row.public_key_pem == keys.public_to_pem(alice.rsa.public_key())

    await wait_for(rotated, what="key rotation")
    like = remote.activity(alice, "Like", group)
    assert (await signed_post(f"{live_node.base_url}/inbox", like, alice)).status_code == 202


async def test_actor_delete_drops_its_follows(live_node: LiveNode, remote: FakeRemote) -> None:
    group = await setup_group(live_node)
    alice = remote.add_actor("alice")
    await follow(live_node, remote, alice, group)
    await wait_for(lambda: count(live_node, Follower), what="follower")
    delete = remote.activity(alice, "Delete", alice.id)
    assert (await signed_post(f"{live_node.base_url}/inbox", delete, alice)).status_code == 202

    async def dropped() -> bool:
        return await count(live_node, Follower) == 0

    await wait_for(dropped, what="follows dropped")


async def test_unknown_activity_type_is_stored_and_ignored(live_node: LiveNode,
                                                           remote: FakeRemote) -> None:
    await setup_group(live_node)
    alice = remote.add_actor("alice")
    odd = remote.activity(alice, "Dance", {"id": alice.id + "/d/1", "type": "Note"})
    assert (await signed_post(f"{live_node.base_url}/inbox", odd, alice)).status_code == 202
    await process_pending(live_node.node)

    async def done() -> bool:
        return await count(live_node, InboxItem, InboxItem.state == "done") == 1

    await wait_for(done, what="processed")


# --- refusals: right status, nothing stored, nothing queued, no fetch -----------------------


async def test_unsigned_post_is_refused_without_a_fetch(live_node: LiveNode,
                                                        remote: FakeRemote) -> None:
    group = await setup_group(live_node)
    alice = remote.add_actor("alice")
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{group}/inbox",
                                     json=remote.activity(alice, "Follow", group))
    assert response.status_code == 401
    assert response.json()["reason"] == "missing_signature"
    await nothing_stored_or_queued(live_node)
    assert sum(remote.fetches.values()) == 0


async def test_wrong_digest_is_refused(live_node: LiveNode, remote: FakeRemote) -> None:
    group = await setup_group(live_node)
    alice = remote.add_actor("alice")
    body = json.dumps(remote.activity(alice, "Follow", group)).encode()
    headers = sign_headers(alice, f"{group}/inbox", body)
    tampered = body.replace(b"Follow", b"Block")
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{group}/inbox", content=tampered, headers=headers)
    assert response.status_code == 401
    assert response.json()["reason"] == "digest_mismatch"
    await nothing_stored_or_queued(live_node)
    assert sum(remote.fetches.values()) == 0


async def test_signature_that_leaves_out_the_digest_is_refused(live_node: LiveNode,
                                                               remote: FakeRemote) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    group = await setup_group(live_node)
    alice = remote.add_actor("alice")
    body = json.dumps(remote.activity(alice, "Follow", group)).encode()
    headers = sign_headers(alice, f"{group}/inbox", body)
    signing_string = (f"(request-target): post /groups/koeln/inbox\nhost: {headers['Host']}\n"
                      f"date: {headers['Date']}")
    raw = alice.rsa.sign(signing_string.encode(), padding.PKCS1v15(), hashes.SHA256())
    headers["Signature"] = (f'keyId="{alice.key_id}",algorithm="rsa-sha256",'
                            f'headers="(request-target) host date",'
                            f'signature="{base64.b64encode(raw).decode()}"')
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{group}/inbox", content=body, headers=headers)
    assert response.status_code == 401
    assert response.json()["reason"] == "header_not_signed"
    await nothing_stored_or_queued(live_node)


async def test_stale_and_future_dates_are_refused(live_node: LiveNode,
                                                  remote: FakeRemote) -> None:
    group = await setup_group(live_node)
    alice = remote.add_actor("alice")
    for shift, reason in ((timedelta(hours=-2), "stale_date"), (timedelta(hours=2),
                                                                "future_date")):
        response = await signed_post(f"{group}/inbox", remote.activity(alice, "Follow", group),
                                     alice, now=utcnow() + shift)
        assert response.status_code == 401
        assert response.json()["reason"] == reason
    await nothing_stored_or_queued(live_node)
    assert sum(remote.fetches.values()) == 0


async def test_forged_signature_is_refused(live_node: LiveNode, remote: FakeRemote) -> None:
    from node.federation import keys

    group = await setup_group(live_node)
    alice = remote.add_actor("alice")
    await follow(live_node, remote, alice, group)
    await wait_for(lambda: count(live_node, Follower), what="follower")
    items, deliveries = await count(live_node, InboxItem), await count(live_node, Fanout)
    fetches = sum(remote.fetches.values())
    forged = remote.activity(alice, "Undo", {"id": "x", "type": "Follow"})
    response = await signed_post(f"{group}/inbox", forged, alice, key=keys.generate_rsa())
    assert response.status_code == 401
    assert response.json()["reason"] == "bad_signature"
    assert await count(live_node, InboxItem) == items
    assert await count(live_node, Fanout) == deliveries
    assert sum(remote.fetches.values()) == fetches  # key fetched moments ago: no refetch


async def test_signature_replayed_to_another_inbox_is_refused(live_node: LiveNode,
                                                              remote: FakeRemote) -> None:
    group = await setup_group(live_node)
    other = await setup_group(live_node, "hamburg")
    alice = remote.add_actor("alice")
    for scheme in ("cavage", "rfc9421"):
        body = json.dumps(remote.activity(alice, "Follow", group)).encode()
        headers = sign_headers(alice, f"{group}/inbox", body, scheme=scheme)
        async with httpx.AsyncClient() as client:
            response = await client.post(f"{other}/inbox", content=body, headers=headers)
        assert response.status_code == 401, scheme
    await nothing_stored_or_queued(live_node)


async def test_key_of_another_actor_is_refused(live_node: LiveNode, remote: FakeRemote) -> None:
    group = await setup_group(live_node)
    alice = remote.add_actor("alice")
    mallory = remote.add_actor("mallory")
    activity = remote.activity(alice, "Follow", group)
    activity["id"] = alice.id + "/activities/forged"
    response = await signed_post(f"{group}/inbox", activity, mallory)
    assert response.status_code == 401
    assert response.json()["reason"] == "key_owner_mismatch"
    await nothing_stored_or_queued(live_node)


async def test_ids_on_another_origin_are_refused(live_node: LiveNode, remote: FakeRemote) -> None:
    await setup_group(live_node)
    alice = remote.add_actor("alice")
    foreign_activity = remote.activity(alice, "Like", "https://elsewhere.example/notes/1")
    foreign_activity["id"] = "https://elsewhere.example/activities/1"
    foreign_object = remote.activity(alice, "Create", {
        "id": "https://elsewhere.example/notes/2", "type": "Note", "attributedTo": alice.id,
        "content": "x"})
    stolen_note = remote.activity(alice, "Create", {
        "id": alice.id + "/notes/3", "type": "Note",
        "attributedTo": remote.base + "/users/bob", "content": "x"})
    for activity, reason in ((foreign_activity, "foreign_id"),
                             (foreign_object, "foreign_object"),
                             (stolen_note, "not_owner")):
        response = await signed_post(f"{live_node.base_url}/inbox", activity, alice)
        assert response.status_code == 403, reason
        assert response.json()["reason"] == reason
    await nothing_stored_or_queued(live_node)


async def test_update_or_delete_of_someone_elses_object_is_refused(
        live_node: LiveNode, remote: FakeRemote) -> None:
    await setup_group(live_node)
    note_id = await operations.publish_note(live_node.node, "koeln", text="Aufruf")
    alice, mallory = remote.add_actor("alice"), remote.add_actor("mallory")
    reply = {"id": alice.id + "/notes/1", "type": "Note", "attributedTo": alice.id,
             "inReplyTo": note_id, "content": "<p>original</p>"}
    assert (await signed_post(f"{live_node.base_url}/inbox",
                              remote.activity(alice, "Create", reply), alice)).status_code == 202
    await wait_for(lambda: count(live_node, RemoteObject), what="reply")
    before = await count(live_node, InboxItem)
    hijack = dict(reply, content="<p>hijacked</p>", attributedTo=mallory.id)
    for activity in (remote.activity(mallory, "Update", hijack),
                     remote.activity(mallory, "Delete", reply["id"]),
                     remote.activity(mallory, "Delete", alice.id),
                     remote.activity(mallory, "Update", note_id)):
        response = await signed_post(f"{live_node.base_url}/inbox", activity, mallory)
        assert response.status_code == 403, activity
    assert await count(live_node, InboxItem) == before
    async with live_node.node.db.read() as session:
        stored = (await session.exec(select(RemoteObject))).one()
    assert "original" in stored.data["content"]


async def test_oversized_body_is_refused_while_streaming(live_node: LiveNode,
                                                         remote: FakeRemote) -> None:
    group = await setup_group(live_node)

    async def chunks() -> Any:
        for _ in range(40):
            yield b"x" * 65536  # 2.5 MiB with no Content-Length

    async with httpx.AsyncClient() as client:
        response = await client.post(f"{group}/inbox", content=chunks(),
                                     headers={"Content-Type": "application/activity+json"})
        assert response.status_code == 413
        lying = await client.post(f"{group}/inbox", content=b"x" * (1_048_577),
                                  headers={"Content-Type": "application/activity+json"})
        assert lying.status_code == 413
    await nothing_stored_or_queued(live_node)
    assert sum(remote.fetches.values()) == 0


async def test_malformed_and_deeply_nested_json_is_refused(live_node: LiveNode,
                                                           remote: FakeRemote) -> None:
    group = await setup_group(live_node)
    alice = remote.add_actor("alice")
    bodies = [b"{not json", b"[1, 2, 3]", b"\xff\xfe", b'{"a":' * 5000 + b"1" + b"}" * 5000,
              json.dumps({"id": 1, "type": "Follow", "actor": alice.id}).encode(),
              json.dumps({"id": alice.id + "/a", "type": "Follow"}).encode()]
    for body in bodies:
        headers = {"Content-Type": "application/activity+json",
                   **sign_headers(alice, f"{group}/inbox", body)}
        async with httpx.AsyncClient() as client:
            response = await client.post(f"{group}/inbox", content=body, headers=headers)
        assert response.status_code == 400, body[:40]
    await nothing_stored_or_queued(live_node)
    assert sum(remote.fetches.values()) == 0


async def test_inbox_of_unknown_group_is_404(live_node: LiveNode, remote: FakeRemote) -> None:
    alice = remote.add_actor("alice")
    response = await signed_post(f"{live_node.base_url}/groups/nobody/inbox",
                                 remote.activity(alice, "Follow", "x"), alice)
    assert response.status_code == 404
    await nothing_stored_or_queued(live_node)


async def test_invalid_remote_event_is_refused_with_a_reason(live_node: LiveNode,
                                                             remote: FakeRemote) -> None:
    alice = remote.add_actor("alice")
    base = {"id": alice.id + "/events/1", "type": "Event", "attributedTo": alice.id,
            "name": "Kundgebung"}
    for obj in ({**base},
                {**base, "startTime": "2027-06-08T12:00:00Z", "endTime": "2027-06-08T10:00:00Z"},
                {**base, "startTime": "2027-06-08T12:00:00Z", "timezone": "Atlantis/Capital"},
                {**base, "startTime": "2027-06-08T12:00:00Z", "location": [{"type": "Place"}]}):
        response = await signed_post(f"{live_node.base_url}/inbox",
                                     remote.activity(alice, "Create", obj), alice)
        assert response.status_code == 400
        assert response.json()["reason"] == "bad_event" and response.json()["error"]
    await nothing_stored_or_queued(live_node)
