"""Who may read and change a group's calls: tokens are scoped to their group,
permission comes before any fetch, an Event is not a Note, decisions stick."""

from __future__ import annotations

import httpx
import pytest

from node.calls import cosign, participation
from node.calls import operations as calls
from node.groups import operations
from tests.conftest import LiveNode, wait_for
from tests.fediverse import FakeRemote, signed_post
from tests.test_api import call
from tests.test_cosign import settled
from tests.test_events import geneva_call

AS = {"Accept": "application/activity+json"}


async def two_groups(live: LiveNode) -> tuple[str, str, str]:
    """Group A with a token, group B with an event; returns (token A, B's event, uuid)."""
    await operations.create_group(live.node, "alpha", display_name="Alpha", language="en")
    await operations.create_group(live.node, "beta", display_name="Beta", language="fa")
    token = await operations.create_token(live.node, "alpha", "alpha")
    event_id = await calls.create_call(live.node, "beta", geneva_call())
    return token, event_id, event_id.rsplit("/", 1)[1]


async def test_a_group_token_cannot_touch_another_groups_event(live_node: LiveNode,
                                                               remote: FakeRemote) -> None:
    token, event_id, uuid = await two_groups(live_node)
    bob = remote.add_actor("bob")
    await cosign.invite(live_node.node, event_id, bob.id)  # an unpublished negotiation
    assert [c.state for c in await cosign.cosigners(live_node.node, event_id)] == ["invited"]
    before = (await httpx.AsyncClient().get(event_id, headers=AS)).json()

    listed = await call(live_node, "GET", f"/api/v1/events/{uuid}/cosigners", token)
    assert listed.status_code == 404 and "bob" not in listed.text
    for method, path, body in (
        ("PUT", f"/api/v1/events/{uuid}", geneva_call(title={"fa": "x"})),
        ("POST", f"/api/v1/events/{uuid}/status", {"status": "cancelled"}),
        ("POST", f"/api/v1/events/{uuid}/invitations", {"target": bob.id}),
        ("GET", "/api/v1/groups/beta/invitations", None),
        ("GET", "/api/v1/groups/beta/join-requests", None),
        ("POST", "/api/v1/groups/beta/invitations/1/accept", {}),
        ("POST", "/api/v1/groups/beta/join-requests/1/accept", {}),
        ("POST", "/api/v1/groups/beta/events", geneva_call()),
    ):
        response = await call(live_node, method, path, token, json=body)
        assert response.status_code in (403, 404), (method, path, response.text)
    after = (await httpx.AsyncClient().get(event_id, headers=AS)).json()
    assert after == before
    # The group's own token still sees its own negotiations.
    own = await operations.create_token(live_node.node, "beta", "beta")
    listed = await call(live_node, "GET", f"/api/v1/events/{uuid}/cosigners", own)
    assert listed.status_code == 200 and listed.json() == [{"actor": bob.id,
                                                            "state": "invited"}]


async def test_invite_checks_permission_before_fetching_the_target(
        live_node: LiveNode, remote: FakeRemote) -> None:
    token, event_id, uuid = await two_groups(live_node)
    carol = remote.add_actor("carol")
    response = await call(live_node, "POST", f"/api/v1/events/{uuid}/invitations", token,
                          json={"target": carol.id})
    assert response.status_code == 404
    assert remote.fetches["/users/carol"] == 0  # nothing was fetched for the stranger
    assert await cosign.cosigners(live_node.node, event_id) == []


async def test_edit_note_refuses_an_event_id(live_node: LiveNode) -> None:
    await operations.create_group(live_node.node, "beta", display_name="Beta", language="fa")
    token = await operations.create_token(live_node.node, "beta", "beta")
    event_id = await calls.create_call(live_node.node, "beta", geneva_call())
    uuid = event_id.rsplit("/", 1)[1]
    before = (await httpx.AsyncClient().get(event_id, headers=AS)).json()
    response = await call(live_node, "PATCH", f"/api/v1/objects/{uuid}", token,
                          json={"text": "overwritten"})
    assert response.status_code == 400 and "edit call" in response.json()["error"]
    with pytest.raises(operations.OperationError, match="edit call"):
        await operations.edit_note(live_node.node, event_id, text="overwritten")
    after = (await httpx.AsyncClient().get(event_id, headers=AS)).json()
    assert after["contentMap"] == before["contentMap"] and "updated" not in after


async def test_a_rejected_join_request_stays_rejected_when_asked_again(
        live_node: LiveNode, remote: FakeRemote) -> None:
    await operations.create_group(live_node.node, "netzwerk", display_name="Netzwerk",
                                  language="en")
    meeting = await calls.create_call(live_node.node, "netzwerk", geneva_call(
        language="en", kind="meeting", join_mode="restricted", title={"en": "Meeting"}))
    alice = remote.add_actor("alice")
    join = remote.activity(alice, "Join", meeting)
    assert (await signed_post(f"{live_node.base_url}/inbox", join, alice)).status_code == 202
    await settled(live_node)
    ((request, _),) = await participation.pending(live_node.node, "netzwerk")
    await participation.decide(live_node.node, "netzwerk", request.id or 0, accept=False)

    async def rejected() -> list[object]:
        return remote.received_of_type("Reject")

    await wait_for(rejected, what="Reject")
    again = remote.activity(alice, "Join", meeting)
    assert (await signed_post(f"{live_node.base_url}/inbox", again, alice)).status_code == 202
    await settled(live_node)
    assert await participation.pending(live_node.node, "netzwerk") == []

    async def rejected_twice() -> bool:
        return len(remote.received_of_type("Reject")) == 2

    await wait_for(rejected_twice, what="second Reject")
