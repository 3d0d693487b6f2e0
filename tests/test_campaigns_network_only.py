"""``network_only`` campaigns across real nodes (issue 16, point 2): delivered only
to the nodes of a named network's members, addressed to its members, readable
only by their signed GETs, absent from every public surface.

Node ``hub`` hosts the network ``mena``; ``a`` (group ``vahed``, the owner) and
``m`` (group ``tehran``) are members; ``x`` is not (its group ``outsider``
follows ``vahed``, so it gets everything public and nothing else).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

import httpx
import jsonschema
from sqlmodel import select

from node.campaigns import consent
from node.federation import keys, signatures
from node.networks.relay import relayable
from node.networks.roster import Member, Roster
from node.storage.db import utcnow
from node.storage.models import Activity, Campaign, InboxItem, LocalActor, RemoteObject
from tests.conftest import LiveNode, NodeFactory, NodeProcess, wait_for
from tests.test_campaigns import SCHEMA, crawl, dossier
from tests.test_federation import received, rows
from tests.test_network_relay import join_accepted
from tests.test_news_federation import follow

AS = {"Accept": "application/activity+json"}
SECRET = "Nasrin Secretperson"
NARROWED = "Kamran Narrowedname"


class Site:
    """What ``crawl`` needs of a node: its base URL and URLs on it."""

    def __init__(self, node: NodeProcess) -> None:
        self.base_url = node.base_url

    def url(self, path: str) -> str:
        return self.base_url + path


async def signed_get(url: str, signer: NodeProcess, *, key_of: NodeProcess | None = None
                     ) -> httpx.Response:
    """GET ``url`` signed as ``signer``'s instance actor — with the private key of
    ``key_of``'s instance actor when given (a forgery)."""
    async with (key_of or signer).db().read() as session:
        instance = (await session.exec(select(LocalActor).where(
            LocalActor.username == "instance"))).one()
    private = keys.load_private_pem(instance.rsa_private_pem)
    headers = signatures.sign_cavage(method="GET", url=url, body=None,
                                     key_id=signer.base_url + "/actor#main-key",
                                     private_key=private, extra_headers=AS)  # type: ignore[arg-type]
    async with httpx.AsyncClient() as client:
        return await client.get(url, headers={**AS, **headers})


async def signed_post(url: str, activity: dict[str, Any], node: NodeProcess, group: str
                      ) -> httpx.Response:
    """POST ``activity`` to ``url`` signed by ``group`` on ``node``."""
    async with node.db().read() as session:
        actor = (await session.exec(select(LocalActor).where(
            LocalActor.username == group))).one()
    body = json.dumps(activity).encode()
    headers = signatures.sign_cavage(
        method="POST", url=url, body=body, key_id=node.actor_url(group) + "#main-key",
        private_key=keys.load_private_pem(actor.rsa_private_pem))  # type: ignore[arg-type]
    async with httpx.AsyncClient() as client:
        return await client.post(url, content=body, headers={
            **headers, "Content-Type": "application/activity+json"})


async def publish(node: NodeProcess, group: str, tmp_path: Path, **overrides: Any
                  ) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``publish campaign``."""
    path = tmp_path / f"{group}-{overrides.get('visibility', 'public')}.json"
    path.write_text(json.dumps(dossier(**overrides)), encoding="utf-8")
    done = await asyncio.to_thread(node.cli, "publish", "campaign", group, "--json", str(path),
                                   check=False)
    return done.returncode, done.stdout.strip(), done.stderr


async def members_doc_id(a: NodeProcess, campaign_id: str) -> str:
    uuid = campaign_id.rsplit("/", 1)[1]
    async with a.db().read() as session:
        row = (await session.exec(select(Campaign).where(Campaign.uuid == uuid))).one()
    assert row.network_uuid is not None
    return f"{a.base_url}/objects/{row.network_uuid}"


async def kept(node: NodeProcess, object_id: str) -> RemoteObject | None:
    found = await rows(node, RemoteObject, RemoteObject.uri == object_id)
    return found[0] if found else None


async def processed(node: NodeProcess, activity_type: str, object_id: str) -> InboxItem:
    """The item of ``activity_type`` about ``object_id``, once the inbox handled it."""
    async def done() -> list[InboxItem]:
        return [i for i in await received(node, activity_type, object_id) if i.state == "done"]

    # Four node processes share two cores with the other database's suite in CI: a
    # deadline, not a pace (it timed out once at 20 s under that load).
    (item,) = await wait_for(done, timeout=60,
                             what=f"{activity_type} of {object_id} on {node.name}")
    return item


async def network(nodes: NodeFactory) -> tuple[NodeProcess, NodeProcess, NodeProcess,
                                               NodeProcess]:
    hub, a, m, x = [await nodes.create(name) for name in ("hub", "a", "m", "x")]
    hub.cli("network", "create", "mena", "--display-name", "MENA", "--language", "en")
    a.cli("group", "create", "vahed", "--language", "fa")
    a.cli("group", "create", "loner", "--language", "fa")
    m.cli("group", "create", "tehran", "--language", "fa")
    x.cli("group", "create", "outsider", "--language", "en")
    await join_accepted(hub, "mena", [(a, "vahed"), (m, "tehran")])
    await follow(x, "outsider", a, "vahed")
    return hub, a, m, x


def nothing_about(pages: dict[str, bytes], words: list[str]) -> None:
    for url, body in pages.items():
        for word in words:
            assert word.encode() not in body, (word, url)


async def test_network_only_campaign_reaches_members_and_no_public_surface(
        nodes: NodeFactory, tmp_path: Path) -> None:
    hub, a, m, x = await network(nodes)
    mena = hub.actor_url("mena")

    # A group that is not a member cannot choose the network: a clear error.
    code, _, err = await publish(a, "loner", tmp_path, visibility="network_only", network=mena)
    assert code != 0 and "loner is not a member of the network" in err
    assert not await rows(a, Campaign)

    code, campaign_id, err = await publish(a, "vahed", tmp_path, visibility="network_only",
                                           network=mena, name={"en": SECRET})
    assert code == 0, err
    doc_id = await members_doc_id(a, campaign_id)
    assert doc_id != campaign_id

    # M's node received the Create and keeps it, addressed to the members alone.
    create = await processed(m, "Create", doc_id)
    assert create.body["to"] == [mena + "/members"] and "cc" not in create.body
    stored = await kept(m, doc_id)
    assert stored is not None and stored.data["to"] == [mena + "/members"]
    assert stored.data["cc"] == [] and stored.data["name"] == SECRET

    # The network's node got it too, and its relay announced nothing.
    await processed(hub, "Create", doc_id)
    assert not await rows(hub, Activity, Activity.activity_type == "Announce")
    # X follows the group but is not a member: nothing reached it.
    assert not [i for i in await rows(x, InboxItem) if SECRET in json.dumps(i.body)]

    # Reads: a member node's signed GET (its instance actor), and the network's node.
    for reader in (m, hub):
        response = await signed_get(doc_id, reader)
        assert response.status_code == 200, (reader.name, response.text)
        assert response.headers["cache-control"].startswith("private")
        doc = response.json()
        assert doc["id"] == doc_id and doc["name"] == SECRET and doc["consent"] == "network_only"
        assert doc["to"] == [mena + "/members"] and doc["cc"] == []
        jsonschema.validate(doc, SCHEMA)
    # A non-member's signed GET, a forgery (X's key claiming M's actor), unsigned,
    # HTML: all 404 like an id never given.
    async with httpx.AsyncClient() as client:
        unknown = await client.get(f"{a.base_url}/objects/{'0' * 32}", headers=AS)
        unsigned = await client.get(doc_id, headers=AS)
        page = await client.get(doc_id)
    for refused in (await signed_get(doc_id, x), await signed_get(doc_id, m, key_of=x),
                    unsigned):
        assert refused.status_code == 404 and refused.content == unknown.content
        assert SECRET.encode() not in refused.content
    assert page.status_code == 404 and SECRET.encode() not in page.content

    # A non-member addressing the network's members: M keeps nothing of it.
    outsider = x.actor_url("outsider")
    forged_id = f"{x.base_url}/objects/{'f' * 32}"
    forged = {"@context": "https://www.w3.org/ns/activitystreams", "type": "Create",
              "id": f"{x.base_url}/activities/{'f' * 32}", "actor": outsider,
              "to": [mena + "/members"],
              "object": {"id": forged_id, "type": "Article", "attributedTo": outsider,
                         "to": [mena + "/members"], "name": "Forged", "content": "<p>x</p>"}}
    assert (await signed_post(m.base_url + "/inbox", forged, x, "outsider")).status_code == 202
    await processed(m, "Create", forged_id)
    assert await kept(m, forged_id) is None

    # A timeline update: the Update of the document reaches M, no Note anywhere.
    update = tmp_path / "update.json"
    update.write_text(json.dumps({"text": "Moved to Ghezel Hesar", "language": "en"}),
                      encoding="utf-8")
    await asyncio.to_thread(a.cli, "campaign", "update", campaign_id, "--json", str(update))

    async def updated() -> bool:
        row = await kept(m, doc_id)
        return row is not None and "Ghezel Hesar" in json.dumps(row.data)

    await wait_for(updated, what="the Update of the members' document on M")
    await processed(hub, "Update", doc_id)
    assert not await rows(hub, Activity, Activity.activity_type == "Announce")

    # THE LEAK TEST: nothing of it on any public surface of A (or of M).
    host = a.host
    extra = [a.base_url + f"/.well-known/webfinger?resource={quote(doc_id, safe='')}",
             a.base_url + f"/.well-known/webfinger?resource=acct:{doc_id.rsplit('/', 1)[1]}"
             f"@{host}", a.base_url + "/.well-known/nodeinfo", a.base_url + "/nodeinfo/2.0",
             a.base_url + "/groups/loner", campaign_id]
    pages = await crawl(cast(LiveNode, Site(a)), "vahed", extra)
    assert len(pages) > 20 and any("/outbox?page=" in url for url in pages), sorted(pages)
    assert any(url.endswith(".ics") for url in pages)
    nothing_about(pages, [SECRET, "Secretperson", doc_id, doc_id.rsplit("/", 1)[1],
                          "Ghezel Hesar"])
    nothing_about(await crawl(cast(LiveNode, Site(m)), "tehran", []),
                  [SECRET, "Secretperson", doc_id])
    # Nothing of it in A's outbox rows either: every activity about it is private.
    about = await rows(a, Activity, Activity.object_uri == doc_id)
    assert [r.activity_type for r in about] == ["Create", "Update"]
    assert not any(r.in_outbox for r in about)


async def test_consent_moves_between_the_public_and_the_network_and_withdrawal_reaches_members(
        nodes: NodeFactory, tmp_path: Path) -> None:
    hub, a, m, x = await network(nodes)
    mena = hub.actor_url("mena")
    code, first, err = await publish(a, "vahed", tmp_path, name={"en": NARROWED})
    assert code == 0, err
    await processed(x, "Create", first)

    # Public → network_only: Delete to the followers, Create to the members.
    await asyncio.to_thread(a.cli, "campaign", "visibility", first, "network_only",
                            "--network", mena)
    await processed(x, "Delete", first)
    doc_id = await members_doc_id(a, first)
    await processed(m, "Create", doc_id)
    assert (await signed_get(doc_id, m)).json()["name"] == NARROWED
    async with httpx.AsyncClient() as client:
        assert (await client.get(first, headers=AS)).status_code == 404
    assert not await received(x, "Create", doc_id)

    # network_only → public: Delete of the members' document, then a public Create.
    again = (await asyncio.to_thread(a.cli, "campaign", "visibility", first, "public")
             ).stdout.strip()
    await processed(m, "Delete", doc_id)
    gone = await kept(m, doc_id)
    assert gone is not None and gone.deleted and NARROWED not in json.dumps(gone.data)
    public = await processed(x, "Create", again)
    assert again not in (first, doc_id) and public.body["object"]["name"] == NARROWED
    assert (await signed_get(doc_id, m)).status_code == 404  # the id never comes back

    # Back to network_only: a new members' document; then consent withdrawn.
    await asyncio.to_thread(a.cli, "campaign", "visibility", first, "network_only",
                            "--network", mena)
    second = await members_doc_id(a, first)
    assert second != doc_id
    await processed(m, "Create", second)
    await processed(x, "Delete", again)
    await asyncio.to_thread(a.cli, "campaign", "withdraw", first)
    await processed(m, "Delete", second)
    assert (await signed_get(second, m)).status_code == 404
    # Nothing of the person stays in A's stored activities about the members' copies.
    for object_id in (doc_id, second):
        for row in await rows(a, Activity, Activity.object_uri == object_id):
            assert NARROWED.encode() not in row.body, row.activity_type
    x_bodies = [json.dumps(i.body) for i in await rows(x, InboxItem)]
    assert not any(doc_id in body or second in body for body in x_bodies)


def test_the_relay_never_repeats_a_post_addressed_to_the_members_alone() -> None:
    member = "https://a.example/groups/vahed"
    doc: dict[str, Any] = {"id": "https://a.example/objects/1", "type": "Article",
                           "attributedTo": member, "to": ["https://hub.example/groups/mena/members"]}
    assert not relayable(doc, doc["id"], member)
    assert relayable({**doc, "cc": ["https://www.w3.org/ns/activitystreams#Public"]},
                     doc["id"], member)



def test_members_get_one_copy_per_inbox_and_none_goes_to_this_node() -> None:
    roster = Roster(
        network_uri="https://hub.example/groups/mena",
        members_url="https://hub.example/groups/mena/members",
        network_inbox="https://hub.example/inbox",
        members=(Member("https://m.example/groups/a", "https://m.example/inbox", "m.example"),
                 Member("https://m.example/groups/b", "https://m.example/inbox", "m.example"),
                 Member("https://here.example/groups/c", "https://here.example/inbox",
                        "here.example"),
                 Member("https://hub.example/groups/d", "https://hub.example/inbox",
                        "hub.example")))
    assert roster.inboxes("here.example") == ["https://m.example/inbox",
                                              "https://hub.example/inbox"]
    assert roster.hosts() == {"hub.example", "m.example", "here.example"}


def test_only_an_actor_on_a_member_node_may_read_a_network_only_campaign() -> None:
    campaign = Campaign(uuid="u", group_id=1, language="en", status="detained",
                        visibility="network_only", network="https://hub.example/groups/mena",
                        data={"names": {"en": SECRET}})
    hosts = frozenset({"hub.example", "m.example:8443"})
    assert consent.may_see(campaign, "https://m.example:8443/actor", member_hosts=hosts)
    assert not consent.may_see(campaign, "https://m.example/actor", member_hosts=hosts)
    assert not consent.may_see(campaign, "https://x.example/groups/m", member_hosts=hosts)
    assert not consent.may_see(campaign, None, member_hosts=hosts)
    assert consent.display_name(campaign, "en") == SECRET  # members read the full name
    campaign.withdrawn_at = utcnow()
    assert not consent.may_see(campaign, "https://m.example:8443/actor", member_hosts=hosts)
