"""Campaign co-owners completed (issue 16, points 3-4; FEDERATION.md "Campaigns"):
a co-owner leaves (Undo{Accept}) or is removed by the owner (Remove), and from
then on its Notes are ignored; forged, unrecorded and replayed Undos change
nothing; the co-owner's update Note dereferences for the owner only; a network
relays a member's public campaign like any post and never a non-public one;
status changes that would make the detention record lie are refused through
the CLI and the API."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import select

from node.calls import cosign
from node.campaigns import coowners, detention
from node.campaigns import operations as campaigns
from node.campaigns.dossier import CampaignError
from node.federation import signatures
from node.federation.remote_actors import fetch_document
from node.groups import operations as groups
from node.storage.models import Activity, Campaign, CampaignOwner, InboxItem, Invitation
from tests.conftest import (
    DatabaseFactory,
    LiveNode,
    NodeFactory,
    NodeProcess,
    cli_environment,
    run_cli,
    start_live_node,
    stop_live_node,
    wait_for,
)
from tests.fediverse import FakeActor, FakeRemote, signed_post
from tests.test_campaigns import TODAY, dossier
from tests.test_cosign import settled
from tests.test_federation import rows
from tests.test_network_input import PUBLIC, as_group, fan_announces, network_with_member
from tests.test_network_relay import announced, announces_of, join_accepted
from tests.test_news_federation import follow

AS = {"Accept": "application/activity+json"}
UPDATE = "Moved to solitary confinement; his lawyer was turned away."
LATE = "A note sent after the co-ownership ended"


# --- across real nodes: leaving and removal by CLI ---------------------------------------


async def co_owned(a: NodeProcess, b: NodeProcess, tmp_path: Path) -> str:
    """A campaign of vahed on A, co-owned by solidarity on B; returns its id."""
    a.cli("group", "create", "vahed", "--language", "fa")
    b.cli("group", "create", "solidarity", "--language", "en")
    path = tmp_path / "campaign.json"
    path.write_text(json.dumps(dossier()), encoding="utf-8")
    campaign_id = (await asyncio.to_thread(
        a.cli, "publish", "campaign", "vahed", "--json", str(path))).stdout.strip()
    await asyncio.to_thread(a.cli, "campaign", "invite", campaign_id, f"solidarity@{b.host}")

    async def invitation() -> list[Invitation]:
        return await rows(b, Invitation, Invitation.event_uri == campaign_id)

    (invited,) = await wait_for(invitation, what="the invitation on B")
    await asyncio.to_thread(b.cli, "invitation", "accept", "solidarity", str(invited.id))
    await wait_for(lambda: owner_state(a, "accepted"), what="B's group a co-owner on A")
    return campaign_id


async def owner_state(node: NodeProcess, state: str) -> bool:
    return [o.state for o in await rows(node, CampaignOwner)] == [state]


async def invitation_state(node: NodeProcess, state: str) -> bool:
    return [i.state for i in await rows(node, Invitation)] == [state]


async def timeline(node: NodeProcess) -> list[dict[str, Any]]:
    (campaign,) = await rows(node, Campaign)
    return list(campaign.timeline)


async def organizers(campaign_id: str) -> list[str]:
    async with httpx.AsyncClient() as client:
        response = await client.get(campaign_id + "/organizers", headers=AS)
    assert response.status_code == 200, response.text
    return list(response.json()["orderedItems"])


def update_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / f"update-{len(text)}.json"
    path.write_text(json.dumps({"text": text, "language": "en"}), encoding="utf-8")
    return str(path)


async def test_a_co_owner_leaves_by_cli_and_can_no_longer_add_updates(
        nodes: NodeFactory, tmp_path: Path) -> None:
    a, b = await nodes.create("a"), await nodes.create("b")
    campaign_id = await co_owned(a, b, tmp_path)
    await asyncio.to_thread(b.cli, "campaign", "update", campaign_id, "--json",
                            update_file(tmp_path, UPDATE))

    async def published() -> list[dict[str, Any]]:
        return [e for e in await timeline(a) if UPDATE in json.dumps(e)]

    (entry,) = await wait_for(published, what="the co-owner's update on A")
    assert entry["by"] == b.actor_url("solidarity")
    assert await organizers(campaign_id) == [a.actor_url("vahed"), b.actor_url("solidarity")]

    left = await asyncio.to_thread(b.cli, "campaign", "leave", campaign_id,
                                   "--group", "solidarity")
    assert left.stdout.strip() == campaign_id
    await wait_for(lambda: owner_state(a, "withdrawn"), what="A recording the withdrawal")
    assert await invitation_state(b, "withdrawn")
    assert await organizers(campaign_id) == [a.actor_url("vahed")]
    # B's followers are told too: the Announce of the campaign is undone.
    undone = [json.loads(r.body) for r in await rows(b, Activity,
                                                      Activity.activity_type == "Undo")]
    assert sorted(u["object"]["type"] for u in undone) == ["Accept", "Announce"]

    refused = await asyncio.to_thread(b.cli, "campaign", "update", campaign_id, "--json",
                                      update_file(tmp_path, LATE), check=False)
    assert refused.returncode == 1 and "co-own" in refused.stderr
    again = await asyncio.to_thread(b.cli, "campaign", "leave", campaign_id, "--group",
                                    "solidarity", check=False)
    assert again.returncode == 1 and "does not co-own" in again.stderr


async def test_a_co_owner_adds_an_update_through_its_own_api_and_only_as_its_group(
        nodes: NodeFactory, tmp_path: Path) -> None:
    a, b = await nodes.create("a"), await nodes.create("b")
    campaign_id = await co_owned(a, b, tmp_path)
    b.cli("group", "create", "bystander", "--language", "en")
    token = b.cli("token", "create", "--group", "solidarity").stdout.strip()
    other = b.cli("token", "create", "--group", "bystander").stdout.strip()
    async with httpx.AsyncClient(base_url=b.base_url) as client:
        async def post(group: str, bearer: str, body: Any) -> httpx.Response:
            return await client.post(f"/api/v1/groups/{group}/campaigns/updates", json=body,
                                     headers={"Authorization": f"Bearer {bearer}"})

        # A group that does not co-own it, with its own valid token: 404, nothing sent.
        refused = await post("bystander", other, {"campaign": campaign_id, "text": LATE})
        assert refused.status_code == 404, refused.text
        # Another group's path with this token: refused before anything is read.
        assert (await post("bystander", token, {"campaign": campaign_id,
                                                "text": LATE})).status_code == 403
        assert (await post("solidarity", token, {"text": UPDATE})).status_code == 400
        assert (await post("solidarity", token, {"campaign": campaign_id,
                                                 "text": ""})).status_code == 400
        sent = await post("solidarity", token, {"campaign": campaign_id, "text": UPDATE,
                                                "language": "en"})
        assert sent.status_code == 202, sent.text

    async def published() -> list[dict[str, Any]]:
        return [e for e in await timeline(a) if UPDATE in json.dumps(e)]

    (entry,) = await wait_for(published, what="the co-owner's API update on A")
    assert entry["by"] == b.actor_url("solidarity")
    assert not any(LATE in json.dumps(e) for e in await timeline(a))


async def test_the_owner_removes_a_co_owner_by_cli_and_its_node_ends_the_invitation(
        nodes: NodeFactory, tmp_path: Path) -> None:
    a, b = await nodes.create("a"), await nodes.create("b")
    campaign_id = await co_owned(a, b, tmp_path)
    removed = await asyncio.to_thread(a.cli, "campaign", "remove-owner", campaign_id,
                                      f"solidarity@{b.host}")
    assert "/activities/" in removed.stdout
    assert await owner_state(a, "removed")
    assert await organizers(campaign_id) == [a.actor_url("vahed")]
    await wait_for(lambda: invitation_state(b, "withdrawn"), what="B told of the removal")
    (remove,) = [json.loads(r.body) for r in await rows(a, Activity,
                                                         Activity.activity_type == "Remove")]
    assert remove["object"] == b.actor_url("solidarity")
    assert remove["target"] == campaign_id + "/organizers"
    assert remove["context"] == campaign_id
    refused = await asyncio.to_thread(b.cli, "campaign", "update", campaign_id, "--json",
                                      update_file(tmp_path, LATE), check=False)
    assert refused.returncode == 1
    again = await asyncio.to_thread(a.cli, "campaign", "remove-owner", campaign_id,
                                    b.actor_url("solidarity"), check=False)
    assert again.returncode == 1 and "not a co-owner" in again.stderr
    assert await timeline(a) == []


# --- the owner's node against forged input (a fake remote co-owner) ------------------------


async def api(live: LiveNode, method: str, path: str, token: str,
              body: Any = None) -> httpx.Response:
    async with httpx.AsyncClient(base_url=live.base_url) as client:
        return await client.request(method, path, json=body,
                                    headers={"Authorization": f"Bearer {token}"})


async def owned_campaign(live: LiveNode) -> tuple[str, str]:
    await groups.create_group(live.node, "vahed", display_name="Vahed", language="fa")
    token = await groups.create_token(live.node, "vahed", "vahed")
    response = await api(live, "POST", "/api/v1/groups/vahed/campaigns", token, dossier())
    assert response.status_code == 201, response.text
    return response.json()["id"], token


async def invited_and_accepted(live: LiveNode, remote: FakeRemote, campaign_id: str,
                               name: str) -> tuple[FakeActor, dict[str, Any]]:
    actor = as_group(remote.add_actor(name))
    invite_id = await coowners.invite(live.node, campaign_id, actor.id)
    accept = remote.activity(actor, "Accept", {"id": invite_id, "type": "Invite"})
    assert (await signed_post(live.url("/inbox"), accept, actor)).status_code == 202

    async def accepted() -> bool:
        return (await states(live)).get(actor.id) == "accepted"

    await wait_for(accepted, what=f"{name} a co-owner")
    return actor, accept


async def states(live: LiveNode) -> dict[str, str]:
    async with live.node.db.read() as session:
        return {o.actor_uri: o.state for o in (await session.exec(select(CampaignOwner))).all()}


async def entries(live: LiveNode) -> list[dict[str, Any]]:
    async with live.node.db.read() as session:
        return list((await session.exec(select(Campaign))).one().timeline)


def note(actor: FakeActor, campaign_id: str, owner: str, text: str) -> dict[str, Any]:
    return {"id": f"{actor.id}/notes/{len(text)}", "type": "Note", "attributedTo": actor.id,
            "context": campaign_id, "to": [owner], "content": text}


async def test_forged_unrecorded_and_replayed_undos_change_nothing(
        live_node: LiveNode, remote: FakeRemote) -> None:
    live = live_node
    campaign_id, _ = await owned_campaign(live)
    owner = live.node.urls.actor("vahed")
    bob, accept = await invited_and_accepted(live, remote, campaign_id, "bob")
    mallory = as_group(remote.add_actor("mallory"))
    inbox = live.url("/inbox")

    # Mallory (same host, so the inbox takes it) undoes Bob's Accept; Bob undoes an
    # Accept never sent, and one Mallory sent (stored, but hers, not his).
    mallorys_accept = remote.activity(mallory, "Accept", dict(accept["object"]))
    assert (await signed_post(inbox, mallorys_accept, mallory)).status_code == 202
    forged = [
        (mallory, remote.activity(mallory, "Undo", {"id": accept["id"], "type": "Accept"})),
        (bob, remote.activity(bob, "Undo", {"id": bob.id + "/activities/never",
                                            "type": "Accept"})),
        (bob, remote.activity(bob, "Undo", {"id": mallorys_accept["id"], "type": "Accept"})),
        (bob, remote.activity(bob, "Undo", {"id": accept["id"], "type": "Announce"})),
    ]
    for actor, undo in forged:
        response = await signed_post(inbox, undo, actor)
        assert response.status_code in (202, 403), response.text
    await settled(live)
    assert await states(live) == {bob.id: "accepted"}
    create = remote.activity(bob, "Create", note(bob, campaign_id, owner, UPDATE))
    assert (await signed_post(inbox, create, bob)).status_code == 202
    await wait_for(lambda: entries(live), what="Bob's update published")

    # Bob leaves for real (the Accept by id, as co-signing's Undo sends it).
    undo = remote.activity(bob, "Undo", {"id": accept["id"], "type": "Accept",
                                         "actor": bob.id, "object": accept["object"]["id"]})
    assert (await signed_post(inbox, undo, bob)).status_code == 202

    async def withdrawn() -> bool:
        return await states(live) == {bob.id: "withdrawn"}

    await wait_for(withdrawn, what="Bob withdrawn")
    # Replays: the same Undo, a new Undo of the same Accept, the Accept again.
    replays = [undo, remote.activity(bob, "Undo", {"id": accept["id"], "type": "Accept"}),
               remote.activity(bob, "Accept", dict(accept["object"]))]
    for replay in replays:
        assert (await signed_post(inbox, replay, bob)).status_code in (200, 202)
    late = remote.activity(bob, "Create", note(bob, campaign_id, owner, LATE))
    assert (await signed_post(inbox, late, bob)).status_code == 202
    await settled(live)
    assert await states(live) == {bob.id: "withdrawn"}
    assert [LATE in json.dumps(e) for e in await entries(live)] == [False]


async def test_a_co_owner_leaves_by_the_recorded_accept_id_after_inbox_items_are_pruned(
        live_node: LiveNode, remote: FakeRemote) -> None:
    live = live_node
    campaign_id, _ = await owned_campaign(live)
    bob, accept = await invited_and_accepted(live, remote, campaign_id, "bob")
    async with live.node.db.read() as session:
        (row,) = (await session.exec(select(CampaignOwner))).all()
    assert row.response_activity_id == accept["id"]
    # The inbox's copy of the Accept is gone (as a pruning of old inbox items would do);
    # the Undo still finds the co-ownership by the id recorded on the row.
    async with live.node.db.write() as session:
        await session.exec(sa.delete(InboxItem))  # type: ignore[call-overload]
    undo = remote.activity(bob, "Undo", {"id": accept["id"], "type": "Accept"})
    assert (await signed_post(live.url("/inbox"), undo, bob)).status_code == 202

    async def withdrawn() -> bool:
        return await states(live) == {bob.id: "withdrawn"}

    await wait_for(withdrawn, what="Bob withdrawn without the stored Accept")


async def test_the_owner_removes_a_co_owner_by_api_and_its_notes_are_ignored(
        live_node: LiveNode, remote: FakeRemote) -> None:
    live = live_node
    campaign_id, token = await owned_campaign(live)
    carol, _ = await invited_and_accepted(live, remote, campaign_id, "carol")
    uuid = campaign_id.rsplit("/", 1)[1]
    await groups.create_group(live.node, "other", display_name="Other", language="en")
    other = await groups.create_token(live.node, "other", "other")
    path = f"/api/v1/campaigns/{uuid}/remove-owner"
    assert (await api(live, "POST", path, other, {"target": carol.id})).status_code == 404
    assert (await api(live, "POST", path, token, {"target": 7})).status_code == 400
    stranger = remote.base + "/users/stranger"
    assert (await api(live, "POST", path, token, {"target": stranger})).status_code == 404

    response = await api(live, "POST", path, token, {"target": carol.id})
    assert response.status_code == 200, response.text
    assert await states(live) == {carol.id: "removed"}

    async def told() -> list[Any]:
        return remote.received_of_type("Remove")

    (remove,) = await wait_for(told, what="the Remove at Carol's inbox")
    assert remove.body["object"] == carol.id and remove.body["id"] == response.json()["id"]
    assert remove.body["target"] == campaign_id + "/organizers"
    create = remote.activity(carol, "Create", note(carol, campaign_id,
                                                   live.node.urls.actor("vahed"), LATE))
    assert (await signed_post(live.url("/inbox"), create, carol)).status_code == 202
    await settled(live)
    assert await entries(live) == []


# --- the co-owner's node: leaving by API, removal only by the inviting owner ---------------


def campaign_doc(owner: FakeActor, path: str) -> dict[str, Any]:
    return {"id": owner.id.rsplit("/users/", 1)[0] + path, "type": "Article",
            "attributedTo": owner.id, "name": "Reza S.", "summary": "Sentenced",
            "campaignStatus": "sentenced", "to": [PUBLIC]}


async def invitation_of(live: LiveNode, campaign: str) -> Invitation | None:
    async with live.node.db.read() as session:
        return (await session.exec(select(Invitation).where(
            Invitation.event_uri == campaign))).first()


async def test_our_group_leaves_by_api_and_only_the_inviting_owner_can_remove_it(
        live_node: LiveNode, remote: FakeRemote) -> None:
    live = live_node
    await groups.create_group(live.node, "solidarity", display_name="Solidarity",
                              language="en")
    token = await groups.create_token(live.node, "solidarity", "solidarity")
    us = live.node.urls.actor("solidarity")
    owner, mallory = as_group(remote.add_actor("owner")), as_group(remote.add_actor("mallory"))
    first, second = campaign_doc(owner, "/campaigns/1"), campaign_doc(owner, "/campaigns/2")
    for doc in (first, second):
        remote.document(doc["id"].removeprefix(remote.base), doc)
        invite = remote.activity(owner, "Invite", doc["id"] + "/organizers", target=us,
                                 context=doc["id"])
        assert (await signed_post(live.url("/inbox"), invite, owner)).status_code == 202
        await wait_for(lambda doc=doc: invitation_of(live, doc["id"]),
                       what="the invitation stored")

    def remove(actor: FakeActor, campaign: str) -> dict[str, Any]:
        return remote.activity(actor, "Remove", us, target=campaign + "/organizers",
                               context=campaign)

    # Mallory removes us from the owner's campaign: nothing; the owner does: ended.
    assert (await signed_post(live.url("/inbox"), remove(mallory, first["id"]),
                              mallory)).status_code == 202
    await settled(live)
    assert (await invitation_of(live, first["id"])).state == "pending"  # type: ignore[union-attr]
    assert (await signed_post(live.url("/inbox"), remove(owner, first["id"]),
                              owner)).status_code == 202

    async def ended() -> bool:
        found = await invitation_of(live, first["id"])
        return found is not None and found.state == "withdrawn"

    await wait_for(ended, what="the invitation ended by its owner")

    # The second one we accept, then leave through the API.
    accepted = await invitation_of(live, second["id"])
    assert accepted is not None and accepted.id is not None
    accept_id = await cosign.respond(live.node, "solidarity", accepted.id, accept=True)
    leave = "/api/v1/groups/solidarity/campaigns/leave"
    await groups.create_group(live.node, "other", display_name="Other", language="en")
    other = await groups.create_token(live.node, "other", "other")
    assert (await api(live, "POST", leave, other, {"campaign": second["id"]})).status_code == 403
    assert (await api(live, "POST", leave, token, {"campaign": 1})).status_code == 400
    response = await api(live, "POST", leave, token, {"campaign": second["id"]})
    assert response.status_code == 200, response.text

    async def undone() -> list[Any]:
        return [r for r in remote.received_of_type("Undo")
                if r.body["object"]["type"] == "Accept"]

    (undo,) = await wait_for(undone, what="the Undo{Accept} at the owner")
    assert undo.body["object"]["id"] == accept_id
    assert undo.body["object"]["object"] == accepted.invite_activity_id
    assert (await invitation_of(live, second["id"])).state == "withdrawn"  # type: ignore[union-attr]
    again = await api(live, "POST", leave, token, {"campaign": second["id"]})
    assert again.status_code == 404


# --- the co-owner's Note id: the owner's signed GET only ------------------------------------


@pytest.mark.parametrize("authorized_fetch", ["0", "1"])
async def test_a_co_owners_update_note_dereferences_for_the_owner_only(
        tmp_path: Path, databases: DatabaseFactory, remote: FakeRemote,
        authorized_fetch: str) -> None:
    mode = {"HAMBASTEGI_AUTHORIZED_FETCH": authorized_fetch}
    a = await start_live_node(tmp_path, await databases.new(), mode)
    b = await start_live_node(tmp_path, await databases.new(), mode)
    try:
        await groups.create_group(a.node, "vahed", display_name="Vahed", language="fa")
        await groups.create_group(b.node, "solidarity", display_name="Solidarity",
                                  language="en")
        campaign_id = await campaigns.create_campaign(a.node, "vahed", dossier())
        await coowners.invite(a.node, campaign_id, b.node.urls.actor("solidarity"))

        async def invited() -> Invitation | None:
            return await invitation_of(b, campaign_id)

        invitation = await wait_for(invited, what="the invitation on B")
        await cosign.respond(b.node, "solidarity", invitation.id or 0, accept=True)

        async def co_owner() -> bool:
            return list((await states(a)).values()) == ["accepted"]

        await wait_for(co_owner, what="B's group a co-owner")
        create_id = await coowners.send_update(b.node, campaign_id, {"text": UPDATE})
        async with b.node.db.read() as session:
            (row,) = (await session.exec(select(Activity).where(
                Activity.activity_type == "Create"))).all()
        note_id = json.loads(row.body)["object"]["id"]
        assert b.node.urls.activity(row.uuid) == create_id and not row.in_outbox
        await wait_for(lambda: entries(a), what="the update published on A")

        # The owner's node fetches it (signed by its instance actor): the Note.
        doc = await fetch_document(a.node, note_id)
        assert doc["id"] == note_id and doc["type"] == "Note"
        assert doc["context"] == campaign_id and doc["to"] == [a.node.urls.actor("vahed")]
        assert UPDATE in doc["content"]
        # Anyone else: 404 as for an id that never existed, signed or not (unsigned
        # under authorized fetch: 401, as for every object).
        stranger = remote.add_actor("stranger")
        signed = signatures.sign_cavage(method="GET", url=note_id, body=None,
                                        key_id=stranger.key_id, private_key=stranger.rsa,
                                        extra_headers=AS)
        async with httpx.AsyncClient() as client:
            answers = [await client.get(note_id, headers=AS), await client.get(note_id),
                       await client.get(note_id, headers={**AS, **signed})]
            unsigned = 401 if authorized_fetch == "1" else 404
            assert [r.status_code for r in answers] == [unsigned, 404, 404]
            assert not any(UPDATE in r.text for r in answers)
            # Nowhere on B's public surfaces.
            for path in ("/groups/solidarity", "/groups/solidarity/outbox?page=1",
                         "/groups/solidarity/feed.atom", "/groups/solidarity/feed.json"):
                for headers in ({}, AS):
                    text = (await client.get(b.url(path), headers=headers)).text
                    assert note_id not in text and "solitary" not in text, path
    finally:
        await stop_live_node(a)
        await stop_live_node(b)


# --- networks relay public campaigns, never others ------------------------------------------


async def test_a_network_relays_a_members_public_campaign_and_its_status_change(
        nodes: NodeFactory, tmp_path: Path) -> None:
    hub, a, reader = [await nodes.create(name) for name in ("hub", "a", "reader")]
    hub.cli("network", "create", "mena", "--language", "en")
    a.cli("group", "create", "vahed", "--language", "fa")
    reader.cli("group", "create", "readers", "--language", "en")
    await join_accepted(hub, "mena", [(a, "vahed")])
    await follow(reader, "readers", hub, "mena")
    mena = hub.actor_url("mena")

    path = tmp_path / "campaign.json"
    path.write_text(json.dumps(dossier(status="detained")), encoding="utf-8")
    campaign_id = (await asyncio.to_thread(
        a.cli, "publish", "campaign", "vahed", "--json", str(path))).stdout.strip()
    (announce,) = await wait_for(lambda: announced(reader, mena, campaign_id),
                                 what="the campaign announced by the network")
    assert announce["to"] == [PUBLIC]

    await asyncio.to_thread(a.cli, "campaign", "status", campaign_id, "--status", "on_bail",
                            "--note", "Out on bail after 400 days")

    async def relayed_update() -> list[dict[str, Any]]:
        return [b for b in await announces_of(reader, mena)
                if isinstance(b["object"], dict) and b["object"].get("type") == "Update"
                and b["object"]["object"] == campaign_id]

    (update,) = await wait_for(relayed_update, what="the status change relayed as Update")
    assert update["object"]["actor"] == a.actor_url("vahed")

    # The timeline Note of the status change is relayed like any Note.
    async def relayed_note() -> list[dict[str, Any]]:
        notes = [i for i in await rows(a, Activity, Activity.activity_type == "Create")
                 if json.loads(i.body)["object"]["type"] == "Note"]
        ids = [json.loads(n.body)["object"]["id"] for n in notes]
        return [b for b in await announces_of(reader, mena) if b["object"] in ids]

    await wait_for(relayed_note, what="the status Note relayed")


async def test_a_non_public_campaign_article_is_never_relayed(
        live_node: LiveNode, remote: FakeRemote) -> None:
    live, server = live_node, remote
    mena, _, member = await network_with_member(live, server)
    inbox = live.url("/inbox")

    def article(n: str, to: list[str], cc: list[str]) -> dict[str, Any]:
        return {"id": f"{member.id}/campaigns/{n}", "type": "Article",
                "attributedTo": member.id, "name": "R. S.", "campaignStatus": "detained",
                "consent": "public", "to": to, "cc": cc}

    # network_only as another node may send it: to the network (and followers), no Public.
    hidden = article("hidden", [mena], [member.id + "/followers"])
    public = article("public", [PUBLIC], [member.id + "/followers"])
    for obj in (hidden, public):
        create = server.activity(member, "Create", obj, to=obj["to"], cc=obj["cc"])
        assert (await signed_post(inbox, create, member)).status_code == 202
    await wait_for(lambda: _has(server, public["id"]), what="the public campaign relayed")
    changed = {**hidden, "campaignStatus": "released"}
    update = server.activity(member, "Update", changed, to=hidden["to"], cc=hidden["cc"])
    assert (await signed_post(inbox, update, member)).status_code == 202
    await settled(live)
    assert fan_announces(server) == [public["id"]]
    async with live.node.db.read() as session:
        relayed = (await session.exec(select(Activity.object_uri).where(
            Activity.activity_type == "Announce"))).all()
    assert hidden["id"] not in relayed


async def _has(server: FakeRemote, object_id: str) -> bool:
    return object_id in fan_announces(server)


# --- status changes that make no sense: refused through CLI and API -------------------------


def days_ago(n: int) -> str:
    return (TODAY - timedelta(days=n)).isoformat()


async def test_status_changes_that_would_make_the_record_lie_are_refused_by_the_cli(
        tmp_path: Path, databases: DatabaseFactory) -> None:
    env = await cli_environment(tmp_path, databases)
    run_cli(env, "group", "create", "vahed", "--language", "fa")
    path = tmp_path / "campaign.json"
    path.write_text(json.dumps(dossier(status="detained", arrested_on=days_ago(400))),
                    encoding="utf-8")
    campaign_id = run_cli(env, "publish", "campaign", "vahed", "--json",
                          str(path)).stdout.strip()

    def status(new: str, when: str) -> Any:
        return run_cli(env, "campaign", "status", campaign_id, "--status", new,
                       "--date", when)

    steps = [  # (status, date, refused with …) in order; None: accepted
        ("released", days_ago(401), "before the last entry"),  # release before the arrest
        ("on_bail", days_ago(300), None),
        ("died_in_custody", days_ago(290), "not in custody since " + days_ago(300)),
        ("on_bail", days_ago(290), "already on_bail"),
        ("on_trial", days_ago(250), None),  # tried while out on bail
        ("on_bail", days_ago(240), "not in custody"),
        ("released", days_ago(200), None),
        ("on_trial", days_ago(150), "without a new arrest"),
        ("sentenced", days_ago(150), "without a new arrest"),
        ("detained", days_ago(210), "before the last change of status"),  # before release
        ("detained", days_ago(100), None),  # a new arrest after release
        ("released", days_ago(110), "before the last entry"),  # before the new arrest
        ("died_in_custody", days_ago(50), None),
        ("released", days_ago(40), "final"),
    ]
    for new, when, refused in steps:
        done = status(new, when)
        if refused is None:
            assert done.returncode == 0, (new, when, done.stderr)
        else:
            assert done.returncode == 1 and refused in done.stderr, (new, when, done.stderr)
    listed = json.loads(run_cli(env, "campaign", "list").stdout.splitlines()[0])
    assert listed["status"] == "died_in_custody"
    assert listed["days"] == (400 - 300) + (100 - 50)


async def test_status_changes_that_make_no_sense_are_400_in_the_api(
        live_node: LiveNode) -> None:
    live = live_node
    await groups.create_group(live.node, "vahed", display_name="Vahed", language="fa")
    token = await groups.create_token(live.node, "vahed", "vahed")
    response = await api(live, "POST", "/api/v1/groups/vahed/campaigns", token,
                         dossier(status="released", arrested_on=days_ago(400),
                                 released_on=days_ago(100)))
    assert response.status_code == 201, response.text
    path = f"/api/v1/campaigns/{response.json()['id'].rsplit('/', 1)[1]}/status"
    for body, message in (
            ({"status": "on_trial", "date": days_ago(10)}, "without a new arrest"),
            ({"status": "on_bail", "date": days_ago(10)}, "without a new arrest"),
            ({"status": "detained", "date": days_ago(101)}, "before the last entry"),
            ({"status": "detained", "date": "soon"}, "date"),
            ({"status": "freed", "date": days_ago(10)}, "status")):
        refused = await api(live, "POST", path, token, body)
        assert refused.status_code == 400 and message in refused.json()["error"], body
    accepted = await api(live, "POST", path, token, {"status": "detained",
                                                     "date": days_ago(20)})
    assert accepted.status_code == 200, accepted.text
    async with live.node.db.read() as session:
        row = (await session.exec(select(Campaign))).one()
    assert row.status == "detained"
    assert row.detentions == [{"arrested": days_ago(400), "released": days_ago(100)},
                              {"arrested": days_ago(20), "released": None}]
    again = await api(live, "POST", path, token, {"status": "released",
                                                  "date": days_ago(30)})
    assert again.status_code == 400 and "before the last entry" in again.json()["error"]


@pytest.mark.parametrize("steps, refused", [
    # sentenced while out on bail, then taken in to serve: a new detention period
    ([("on_bail", 300), ("sentenced", 250)], None),
    ([("on_bail", 300), ("sentenced", 250), ("died_in_custody", 200)], "not in custody"),
    ([("on_bail", 300), ("on_trial", 250), ("on_bail", 200)], "not in custody"),
    ([("released", 300), ("died_in_custody", 200)], "without a new arrest"),
    ([("released", 300), ("detained", 301)], "before the last entry"),
    ([("sentenced", 300), ("detained", 250)], "not a possible change"),  # held already
])
def test_custody_is_needed_for_bail_and_death_in_custody(
        steps: list[tuple[str, int]], refused: str | None) -> None:
    record = detention.first_record(TODAY - timedelta(days=400), None)
    current = "detained"
    for new, ago in steps:
        if refused is not None and (new, ago) == steps[-1]:
            with pytest.raises(CampaignError, match=refused):
                detention.change(current, new, record, TODAY - timedelta(days=ago),
                                 today=TODAY)
            return
        record = detention.change(current, new, record, TODAY - timedelta(days=ago),
                                  today=TODAY)
        current = new
    record = detention.change(current, "detained", record, TODAY - timedelta(days=100),
                              today=TODAY)
    assert record[-1] == {"arrested": (TODAY - timedelta(days=100)).isoformat(),
                          "released": None}
    assert len(record) == 2
