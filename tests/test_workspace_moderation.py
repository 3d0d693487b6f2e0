"""The workspace's moderation form: an admin blocks a domain through the same
operation as the CLI (node/federation/policy.py); editors and cross-site posts are
refused; a hostile domain is explained in the form and nothing is stored
(issue 14, point 2)."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import select

from node.federation import policy
from node.federation.delivery import prepare_follower
from node.federation.local_actors import get_group
from node.groups import operations
from node.storage.models import DomainRule, Follower
from tests.conftest import LiveNode
from tests.workspace_helpers import form_token, logged_in, make_user

FOLLOWERS = (("https://bad.example/users/a", "https://bad.example/inbox"),
             ("https://sub.bad.example/users/b", "https://sub.bad.example/inbox"),
             ("https://notbad.example/users/c", "https://notbad.example/inbox"))


async def _setup(live: LiveNode) -> None:
    node = live.node
    await operations.create_group(node, "koeln", display_name="Köln", language="de")
    await make_user(live, "ali", groups=("koeln",))
    await make_user(live, "root", admin=True)
    async with node.db.read() as session:
        group = await get_group(session, "koeln")
    assert group is not None
    async with node.db.write() as session:
        for uri, inbox in FOLLOWERS:
            await prepare_follower(session, Follower(
                local_actor_id=group.id or 0, actor_uri=uri, inbox=inbox,
                follow_activity_id=uri + "#follow", state="accepted"))


async def _followers(live: LiveNode) -> set[str]:
    async with live.node.db.read() as session:
        return set((await session.exec(select(Follower.actor_uri))).all())


async def _rules(live: LiveNode) -> int:
    async with live.node.db.read() as session:
        return int((await session.exec(select(func.count()).select_from(DomainRule))).one())


async def test_an_admin_blocks_a_domain_from_the_form_and_its_followers_are_gone(
        live_node: LiveNode) -> None:
    await _setup(live_node)
    async with logged_in(live_node, "root") as root:
        assert 'href="/admin/moderation"' in (await root.get("/admin")).text
        token = await form_token(root, "/admin/moderation")
        done = await root.post("/admin/moderation", data={
            "csrf": token, "action": "block", "domain": "Bad.Example", "note": "spam wave"})
        assert done.status_code == 303
        listed = await root.get(done.headers["location"])
        assert listed.status_code == 200
        assert '<td dir="ltr">bad.example</td>' in listed.text and "spam wave" in listed.text
        # The same operation as the CLI's: the domain and its subdomains' followers
        # are removed, a domain that merely ends alike is not.
        assert await _followers(live_node) == {"https://notbad.example/users/c"}
        assert policy.is_blocked(live_node.node, "sub.bad.example")
        assert [r.domain for r in await policy.list_rules(live_node.node, "block")] == [
            "bad.example"]
        lifted = await root.post("/admin/moderation", data={
            "csrf": token, "action": "unblock", "domain": "bad.example"})
        assert lifted.status_code == 303
        assert "bad.example</td>" not in (await root.get("/admin/moderation")).text
    assert await policy.list_rules(live_node.node, "block") == []
    assert not policy.is_blocked(live_node.node, "bad.example")


async def test_a_block_post_without_a_valid_token_is_403_and_changes_nothing(
        live_node: LiveNode) -> None:
    await _setup(live_node)
    async with logged_in(live_node, "root") as root:
        token = await form_token(root, "/admin/moderation")
        for data, headers in (
            ({"domain": "bad.example"}, {}),
            ({"domain": "bad.example", "csrf": "0" * 64}, {}),
            ({"domain": "bad.example", "csrf": token}, {"origin": "https://evil.example"}),
        ):
            refused = await root.post("/admin/moderation", data=data, headers=headers)
            assert refused.status_code == 403
    assert await _rules(live_node) == 0
    assert len(await _followers(live_node)) == len(FOLLOWERS)


async def test_an_editor_gets_403_from_the_moderation_page_and_form(
        live_node: LiveNode) -> None:
    await _setup(live_node)
    async with logged_in(live_node, "ali") as ali:
        assert 'href="/admin/moderation"' not in (await ali.get("/admin")).text
        assert (await ali.get("/admin/moderation")).status_code == 403
        token = await form_token(ali)
        refused = await ali.post("/admin/moderation", data={
            "csrf": token, "action": "block", "domain": "bad.example"})
        assert refused.status_code == 403
        unblock = await ali.post("/admin/moderation", data={
            "csrf": token, "action": "unblock", "domain": "bad.example"})
        assert unblock.status_code == 403
    assert await _rules(live_node) == 0
    assert len(await _followers(live_node)) == len(FOLLOWERS)


async def test_a_hostile_domain_is_explained_in_the_form_and_nothing_is_stored(
        live_node: LiveNode) -> None:
    await _setup(live_node)
    async with logged_in(live_node, "root") as root:
        token = await form_token(root, "/admin/moderation")
        for domain in ("", "*.bad.example", "https://bad.example/", "bad.example:443",
                       "bad example", "bad\x00.example", "<script>x</script>",
                       "a" * 300 + ".example", "x" * 5000):
            shown = await root.post("/admin/moderation", data={
                "csrf": token, "action": "block", "domain": domain})
            assert shown.status_code == 400, domain
            assert 'id="form-message"' in shown.text, domain
            assert "<script>" not in shown.text
        too_long_note = await root.post("/admin/moderation", data={
            "csrf": token, "action": "block", "domain": "bad.example", "note": "n" * 600})
        assert too_long_note.status_code == 400
        assert "500" in too_long_note.text
    assert await _rules(live_node) == 0
    assert len(await _followers(live_node)) == len(FOLLOWERS)
