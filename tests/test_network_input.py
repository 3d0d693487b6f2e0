"""Hostile and malformed input to networks (issue 15, "Bad input"): the relay
repeats only a current member's own public posts, checked against their origin;
a forged Accept or Remove of membership changes nothing; a flood of Joins or
oversized directory fields store nothing. Plus the network's views, built from
stored posts of members."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import select

from node.networks import directory, members
from node.storage.models import Activity, NetworkJoin, NetworkMembership, RemoteObject
from tests.conftest import LiveNode, wait_for
from tests.fediverse import FakeActor, FakeRemote, signed_post
from tests.test_cosign import settled

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
AS_JSON = "application/activity+json"


def as_group(actor: FakeActor) -> FakeActor:
    actor.doc_override = {**actor.document(), "type": "Group"}
    return actor


async def post(live: LiveNode, actor: FakeActor, activity: dict[str, Any], *,
               refused_ok: bool = False) -> None:
    """Deliver; ``refused_ok``: the inbox may already refuse it (403: not the
    actor's object) — either way nothing may come of it."""
    response = await signed_post(f"{live.base_url}/inbox", activity, actor)
    expected = {202, 403} if refused_ok else {202}
    assert response.status_code in expected, response.text


def note(author: FakeActor, n: str, *, by: FakeActor | None = None,
         to: list[str] | None = None) -> dict[str, Any]:
    return {"id": f"{author.id}/notes/{n}", "type": "Note",
            "attributedTo": (by or author).id, "content": f"<p>{n}</p>",
            "to": to if to is not None else [PUBLIC]}


async def network_with_member(live: LiveNode, server: FakeRemote
                              ) -> tuple[str, FakeActor, FakeActor]:
    """A network on the live node, a fan following it, an accepted member."""
    mena = await members.create(live.node, "mena", display_name="MENA", language="en")
    fan, member = server.add_actor("fan"), as_group(server.add_actor("member"))
    await post(live, fan, server.activity(fan, "Follow", mena))
    await post(live, member, server.activity(
        member, "Join", mena, inLanguage=["ar"],
        location={"type": "Place", "address": {"addressCountry": "EG",
                                               "addressLocality": "Cairo"}}))

    async def applied() -> list[NetworkMembership]:
        return await members.applications(live.node, "mena")

    (application,) = await wait_for(applied, what="the application")
    await members.decide_application(live.node, "mena", application.id or 0, accept=True)
    return mena, fan, member


def fan_announces(server: FakeRemote) -> list[Any]:
    return [r.body["object"] for r in server.received_of_type("Announce")]


async def test_only_a_current_members_own_public_posts_are_relayed(
        live_node: LiveNode, remote: FakeRemote) -> None:
    live, server = live_node, remote
    mena, _, member = await network_with_member(live, server)
    stranger = as_group(server.add_actor("stranger"))
    first = note(member, "first")
    await post(live, member, server.activity(member, "Create", first, to=[PUBLIC]))
    await wait_for(lambda: _has(server, first["id"]), what="the member's post relayed")

    # A non-member's post; a member's post of an object attributed to someone else;
    # a followers-only post; a post given by id whose origin names another author;
    # a third party's copy of a member's post (Create and Announce); an Update of a
    # post never relayed, and one whose embedded copy claims another author.
    server.document("/users/member/notes/by-id", note(member, "by-id", by=stranger))
    hostile = [
        (stranger, "Create", note(stranger, "stranger")),
        (member, "Create", note(member, "forged-author", by=stranger)),
        (member, "Create", note(member, "followers-only", to=[member.id + "/followers"])),
        (member, "Create", member.id + "/notes/by-id"),
        (stranger, "Create", {**note(member, "copy"), "content": "<p>altered</p>"}),
        (stranger, "Announce", {**first, "content": "<p>altered</p>"}),
        (member, "Update", note(member, "never-relayed")),
        (member, "Update", {**first, "attributedTo": stranger.id}),
        (member, "Create", {**note(member, "reply"), "inReplyTo": "https://x.example/1"}),
    ]
    for actor, kind, obj in hostile:
        await post(live, actor, server.activity(actor, kind, obj, to=[PUBLIC]),
                   refused_ok=True)
    # A post given by id that its origin confirms: relayed.
    server.document("/users/member/notes/confirmed", note(member, "confirmed"))
    await post(live, member, server.activity(member, "Create",
                                             member.id + "/notes/confirmed", to=[PUBLIC]))
    await wait_for(lambda: _has(server, member.id + "/notes/confirmed"),
                   what="the origin-confirmed post relayed")
    await settled(live)
    assert sorted(fan_announces(server)) == sorted(
        [first["id"], member.id + "/notes/confirmed"])

    # Removed, the member still posts to the network's inbox: nothing is relayed.
    await members.remove(live.node, "mena", member.id)
    after = note(member, "after-removal")
    await post(live, member, server.activity(member, "Create", after, to=[PUBLIC]))
    await settled(live)
    async with live.node.db.read() as session:
        relayed = (await session.exec(select(Activity).where(
            Activity.activity_type == "Announce", Activity.object_uri == after["id"]))).all()
    assert relayed == []
    # The Remove goes out through the delivery worker: waited for, not assumed sent.
    (removal, *_) = await wait_for(lambda: _received(server, "Remove"),
                                   what="the Remove at the member")
    assert removal.body["target"] == mena + "/members"


async def _received(server: FakeRemote, activity_type: str) -> list[Any]:
    return server.received_of_type(activity_type)


async def _has(server: FakeRemote, object_id: str) -> bool:
    return object_id in fan_announces(server)


async def test_a_forged_accept_or_remove_of_membership_changes_nothing(
        live_node: LiveNode, remote: FakeRemote) -> None:
    from node.groups import operations

    live, server = live_node, remote
    await operations.create_group(live.node, "koeln", display_name="Köln", language="de")
    koeln = live.node.urls.actor("koeln")
    network, stranger = as_group(server.add_actor("net")), server.add_actor("stranger")
    join_id = await members.join(live.node, "koeln", network.id)
    await wait_for(lambda: _received_join(server, join_id), what="the Join at the network")

    async def state() -> str:
        async with live.node.db.read() as session:
            return (await session.exec(select(NetworkJoin.state))).one()

    forged = [
        (stranger, "Accept", {"id": join_id, "type": "Join", "actor": koeln,
                              "object": network.id}),
        (network, "Accept", {"id": network.id + "/joins/other", "type": "Join",
                             "actor": koeln, "object": network.id}),
        (network, "Accept", {"id": join_id, "type": "Follow"}),
    ]
    for actor, kind, obj in forged:
        await post(live, actor, server.activity(actor, kind, obj))
    await settled(live)
    assert await state() == "pending"
    await post(live, network, server.activity(network, "Accept", {
        "id": join_id, "type": "Join", "actor": koeln, "object": network.id}))
    await settled(live)
    assert await state() == "accepted"
    # A Reject after the Accept, and a Remove by someone else, change nothing.
    await post(live, network, server.activity(network, "Reject", join_id))
    await post(live, stranger, server.activity(stranger, "Remove", koeln,
                                               target=stranger.id + "/members"))
    await settled(live)
    assert await state() == "accepted"
    await post(live, network, server.activity(network, "Remove", koeln,
                                              target=network.id + "/members"))
    await settled(live)
    assert await state() == "removed"


async def _received_join(server: FakeRemote, join_id: str) -> bool:
    return any(r.body["id"] == join_id for r in server.received_of_type("Join"))


async def test_join_spam_and_oversized_directory_fields_store_nothing(
        live_node: LiveNode, remote: FakeRemote, monkeypatch: pytest.MonkeyPatch) -> None:
    live, server = live_node, remote
    monkeypatch.setattr(members, "MAX_PENDING", 2)
    mena = await members.create(live.node, "mena", display_name="MENA", language="en")
    bad_fields: list[dict[str, Any]] = [
        {"location": {"type": "Place", "address": {"addressLocality": "x" * 5000}}},
        {"location": {"type": "Place", "address": {"addressCountry": "Iran"}}},
        {"location": [{"type": "Place"}]},
        {"inLanguage": ["fa"] * 50},
        {"inLanguage": ["not a language!"]},
    ]
    for n, fields in enumerate(bad_fields):
        actor = as_group(server.add_actor(f"bad{n}"))
        await post(live, actor, server.activity(actor, "Join", mena, **fields))
    person = server.add_actor("person")  # a Person is not a group
    await post(live, person, server.activity(person, "Join", mena))
    await settled(live)
    assert await members.applications(live.node, "mena") == []

    repeat = as_group(server.add_actor("repeat"))
    for _ in range(4):
        await post(live, repeat, server.activity(repeat, "Join", mena))
    for n in range(3):
        actor = as_group(server.add_actor(f"spam{n}"))
        await post(live, actor, server.activity(actor, "Join", mena))
    await settled(live)
    applicants = [m.member_uri for m in await members.applications(live.node, "mena")]
    assert applicants == [repeat.id, server.actors["spam0"].id]


def test_directory_fields_are_read_strictly() -> None:
    entry = directory.from_join({"location": {"address": {
        "addressLocality": " Tehran\n", "addressCountry": "ir"}}, "inLanguage": "fa"})
    assert entry == directory.Entry(city="Tehran", country="IR", languages=["fa"])
    for hostile in ({"location": "Tehran"}, {"location": {"address": "x"}},
                    {"inLanguage": {"fa": 1}}, {"location": {"address": {"addressCountry": 7}}}):
        with pytest.raises(directory.DirectoryError):
            directory.from_join(hostile)
    assert directory.from_join(directory.to_join(entry)) == entry


def _event(member: FakeActor, n: int, start: datetime, **extra: Any) -> RemoteObject:
    data = {"id": f"{member.id}/events/{n}", "type": "Event", "attributedTo": member.id,
            "name": f"Call {n}", "startTime": start.isoformat(), "to": [PUBLIC], **extra}
    return RemoteObject(uri=data["id"], actor_uri=member.id, object_type="Event", data=data)


async def test_network_views_show_members_and_their_upcoming_calls_filtered(
        live_node: LiveNode, remote: FakeRemote) -> None:
    live, server = live_node, remote
    _, _, member = await network_with_member(live, server)
    outsider = server.add_actor("outsider")
    soon = datetime.now(UTC) + timedelta(days=3)
    async with live.node.db.write() as session:
        session.add_all([
            _event(member, 1, soon, nameMap={"ar": "إضراب"}),
            _event(member, 2, soon + timedelta(days=1), nameMap={"fa": "اعتصاب"},
                   location={"type": "Place", "name": "Tehran",
                             "address": {"addressCountry": "IR"}}),
            _event(member, 3, datetime.now(UTC) - timedelta(days=3)),  # over
            _event(outsider, 4, soon),  # not a member
        ])
    live.node.changed()
    from node.groups import operations

    await operations.create_group(live.node, "koeln", display_name="Köln", language="de")
    async with httpx.AsyncClient(base_url=live.base_url) as client:
        # A plain group is no network: no members, no combined calls.
        assert (await client.get("/groups/koeln/members")).status_code == 404
        assert (await client.get("/groups/koeln/calls.json")).status_code == 404
        feed = (await client.get("/groups/mena/calls.json")).json()
        assert [i["title"] for i in feed["items"]] == ["Call 1", "Call 2"]
        by_country = (await client.get("/groups/mena/calls.json?country=ir")).json()
        assert [i["title"] for i in by_country["items"]] == ["Call 2"]
        # Without a place the member's directory country counts (EG).
        by_member = (await client.get("/groups/mena/calls.json?country=EG")).json()
        assert [i["title"] for i in by_member["items"]] == ["Call 1"]
        by_language = (await client.get("/groups/mena/calls.json?language=fa")).json()
        assert [i["title"] for i in by_language["items"]] == ["Call 2"]
        ics = (await client.get("/groups/mena/calls.ics?language=ar")).text
        assert "SUMMARY:Call 1" in ics and "Call 2" not in ics
        atom = (await client.get("/groups/mena/calls.atom")).text
        assert "Call 1" in atom and "Call 4" not in atom and "Call 3" not in atom
        for bad in ("country=IRN", "country=%3Cx%3E", "language=" + "x" * 300,
                    "language=%00"):
            assert (await client.get(f"/groups/mena/calls.json?{bad}")).status_code == 400
        page = (await client.get("/groups/mena")).text
        assert "Member" in page and "Cairo" in page and "EG" in page
        assert (await client.get("/groups/nobody/calls.ics")).status_code == 404
        assert (await client.get("/groups/mena/members?page=x",
                                 headers={"Accept": AS_JSON})).status_code == 400


async def test_membership_changes_bump_the_change_counter(
        live_node: LiveNode, remote: FakeRemote) -> None:
    """The members collection and page are cached until the change counter moves
    (docs/ARCHITECTURE.md §1): membership writes from any process must move it."""
    import sqlalchemy as sa

    await network_with_member(live_node, remote)
    for table in ("network_membership", "network"):
        async with live_node.node.db.write() as session:
            before = (await session.exec(sa.text("SELECT value FROM change_counter"))).one()[0]
            await session.exec(sa.text(f"UPDATE {table} SET id = id"))
            after = (await session.exec(sa.text("SELECT value FROM change_counter"))).one()[0]
        assert after > before, table


async def test_network_api_checks_tokens_and_input(live_node: LiveNode,
                                                   remote: FakeRemote) -> None:
    from node.groups import operations

    live, server = live_node, remote
    admin = await operations.create_token(live.node, "admin")
    await operations.create_group(live.node, "koeln", display_name="Köln", language="de")
    koeln_token = await operations.create_token(live.node, "koeln", "koeln")

    def auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    async with httpx.AsyncClient(base_url=live.base_url) as client:
        created = await client.post("/api/v1/networks", headers=auth(admin), json={
            "name": "mena", "display_name": "MENA", "language": "en"})
        assert created.status_code == 201 and created.json()["id"].endswith("/groups/mena")
        refused = await client.post("/api/v1/networks", headers=auth(koeln_token),
                                    json={"name": "other"})
        assert refused.status_code == 403
        assert (await client.post("/api/v1/networks", headers=auth(admin),
                                  json={"name": "Bad Name!"})).status_code == 400
        assert (await client.post("/api/v1/networks", headers=auth(admin),
                                  json={"name": ["x"]})).status_code == 400
        # A group's token may not act for the network, nor for another group.
        assert (await client.get("/api/v1/networks/mena/applications",
                                 headers=auth(koeln_token))).status_code == 403
        assert (await client.get("/api/v1/networks/koeln/applications",
                                 headers=auth(admin))).status_code == 404
        assert (await client.post("/api/v1/networks/mena/applications/99/accept",
                                  headers=auth(admin))).status_code == 404
        for body in ({"network": 5}, {"network": "x", "country": "Iran"},
                     {"network": "x", "languages": ["fa"] * 20},
                     {"network": "x", "city": "c" * 1000}):
            answer = await client.post("/api/v1/groups/koeln/networks/join",
                                       headers=auth(koeln_token), json=body)
            assert answer.status_code == 400, body
        assert (await client.post("/api/v1/groups/koeln/networks/leave",
                                  headers=auth(koeln_token),
                                  json={"network": live.node.urls.actor("mena")})
                ).status_code == 404
        # A group joins a network on its own node through the API; the admin accepts.
        member = as_group(server.add_actor("member"))
        await post(live, member, server.activity(member, "Join",
                                                 live.node.urls.actor("mena")))
        await settled(live)
        (application,) = (await client.get("/api/v1/networks/mena/applications",
                                           headers=auth(admin))).json()["applications"]
        assert application["actor"] == member.id and application["state"] == "pending"
        decided = await client.post(
            f"/api/v1/networks/mena/applications/{application['id']}/accept",
            headers=auth(admin))
        assert decided.json()["state"] == "accepted"
        again = await client.post(
            f"/api/v1/networks/mena/applications/{application['id']}/reject",
            headers=auth(admin))
        assert again.status_code == 409
        listed = (await client.get("/api/v1/networks/mena/members",
                                   headers=auth(admin))).json()["members"]
        assert [m["actor"] for m in listed] == [member.id]
        assert (await client.post("/api/v1/networks/mena/remove", headers=auth(admin),
                                  json={"actor": member.id})).status_code == 200
        assert (await client.post("/api/v1/networks/mena/remove", headers=auth(admin),
                                  json={"actor": member.id})).status_code == 404


async def test_a_group_on_the_networks_own_node_is_a_member_like_any_other(
        live_node: LiveNode, remote: FakeRemote) -> None:
    """Join, Accept, the network's follow and the relay go through the same inboxes
    when member and network share a node; the calendar reads the member's own events."""
    from node.calls import operations as calls
    from node.groups import operations

    live, server = live_node, remote
    mena = await members.create(live.node, "mena", display_name="MENA", language="en")
    fan = server.add_actor("fan")
    await post(live, fan, server.activity(fan, "Follow", mena))
    await operations.create_group(live.node, "koeln", display_name="Köln", language="de")
    await members.join(live.node, "koeln", mena, directory.Entry(country="DE"))

    async def applied() -> list[NetworkMembership]:
        return await members.applications(live.node, "mena")

    (application,) = await wait_for(applied, what="the local application")
    await members.decide_application(live.node, "mena", application.id or 0, accept=True)

    async def joined() -> bool:
        return [j.state for j in await members.joined(live.node, "koeln")] == ["accepted"]

    await wait_for(joined, what="the local Accept")
    await settled(live)
    note_id = await operations.publish_note(live.node, "koeln", text="Streik!")
    await wait_for(lambda: _has(server, note_id), what="the local member's post relayed")
    start = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    await calls.create_call(live.node, "koeln", {
        "title": {"de": "Kundgebung"}, "language": "de", "start": start.isoformat(),
        "timezone": "Europe/Berlin", "place": {"name": "Rathaus", "city": "Köln",
                                               "country": "DE"}})
    async with httpx.AsyncClient(base_url=live.base_url) as client:
        feed = (await client.get("/groups/mena/calls.json?country=DE")).json()
    assert [i["title"] for i in feed["items"]] == ["Kundgebung"]


async def test_a_member_that_deletes_itself_leaves_the_directory(
        live_node: LiveNode, remote: FakeRemote) -> None:
    _, _, member = await network_with_member(live_node, remote)
    assert [m.member_uri for m in await members.members(live_node.node, "mena")] == [member.id]
    await post(live_node, member, remote.activity(member, "Delete", member.id))
    await settled(live_node)
    assert await members.members(live_node.node, "mena") == []


async def test_a_blocked_domains_posts_are_not_relayed_even_via_a_member(
        live_node: LiveNode, remote: FakeRemote) -> None:
    from node.federation import policy
    from node.networks import relay
    from tests.fediverse import FakeRemote as Server

    # The member on a host of its own (127.0.0.2), the fan beside the node (127.0.0.1).
    live, fans = live_node, remote
    far = Server("127.0.0.2")
    await far.start()
    try:
        mena = await members.create(live.node, "mena", display_name="MENA", language="en")
        fan, member = fans.add_actor("fan"), as_group(far.add_actor("member"))
        await post(live, fan, fans.activity(fan, "Follow", mena))
        await post(live, member, far.activity(member, "Join", mena))
        (application,) = await wait_for(lambda: members.applications(live.node, "mena"),
                                        what="the application")
        await members.decide_application(live.node, "mena", application.id or 0, accept=True)
        before = note(member, "before")
        await post(live, member, far.activity(member, "Create", before, to=[PUBLIC]))
        await wait_for(lambda: _has(fans, before["id"]), what="the member's post relayed")

        await policy.block_domain(live.node, "127.0.0.2")
        # Delivered: the inbox refuses it. Learnt another way (a catch-up, an item
        # queued before the block): the relay refuses it itself.
        delivered, synced = note(member, "delivered"), note(member, "synced")
        await post(live, member, far.activity(member, "Create", delivered, to=[PUBLIC]),
                   refused_ok=True)
        await relay.on_synced(live.node, member.id, [synced], "sync")
        await settled(live)

        async def announced(object_id: str) -> list[Activity]:
            async with live.node.db.read() as session:
                return list((await session.exec(select(Activity).where(
                    Activity.activity_type == "Announce",
                    Activity.object_uri == object_id))).all())

        assert await announced(delivered["id"]) == []
        assert await announced(synced["id"]) == []
        # Unblocked, the same synced post is relayed: the block was what stopped it.
        await policy.unblock_domain(live.node, "127.0.0.2")
        await relay.on_synced(live.node, member.id, [synced], "sync")
        assert len(await announced(synced["id"])) == 1
        await wait_for(lambda: _has(fans, synced["id"]), what="the post relayed after unblock")
    finally:
        await far.stop()
