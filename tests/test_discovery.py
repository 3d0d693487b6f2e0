"""WebFinger, host-meta, NodeInfo, actor documents and content negotiation."""

from __future__ import annotations

import re

import httpx
import jsonschema
import pytest

from node.groups import operations
from tests.conftest import LiveNode

AS_TYPES = ["application/activity+json",
            'application/ld+json; profile="https://www.w3.org/ns/activitystreams"']
MASTODON_USERNAME = re.compile(r"^[a-z0-9_]+([.-]+[a-z0-9_]+)*$")


@pytest.fixture
async def group(live_node: LiveNode) -> str:
    await operations.create_group(live_node.node, "koeln", display_name="Solidaritätskreis Köln",
                                  language="de", summary="<p>Solidarität</p>")
    return live_node.node.urls.actor("koeln")


async def get(url: str, **kwargs: object) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(url, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("accept", AS_TYPES)
async def test_actor_document_has_what_mastodon_reads(live_node: LiveNode, group: str,
                                                      accept: str) -> None:
    response = await get(group, headers={"Accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/activity+json")
    doc = response.json()
    from tests.test_events import schema

    jsonschema.validate(doc, schema("group.schema.json"))
    assert doc["id"] == group  # served at exactly its id
    assert doc["type"] == "Group"
    assert "https://www.w3.org/ns/activitystreams" in doc["@context"]
    assert MASTODON_USERNAME.fullmatch(doc["preferredUsername"])
    for field in ("inbox", "outbox", "followers", "following", "featured", "url", "name",
                  "summary", "published"):
        assert doc[field], field
    assert doc["nameMap"] == {"de": "Solidaritätskreis Köln"}
    assert doc["endpoints"]["sharedInbox"] == live_node.url("/inbox")
    assert doc["publicKey"]["owner"] == group
    assert doc["publicKey"]["id"] == group + "#main-key"
    assert "BEGIN PUBLIC KEY" in doc["publicKey"]["publicKeyPem"]
    multikey = doc["assertionMethod"][0]
    assert multikey["type"] == "Multikey" and multikey["controller"] == group
    assert multikey["publicKeyMultibase"].startswith("z6Mk")  # ed25519-pub multicodec
    for image in ("icon", "image"):
        assert doc[image]["type"] == "Image" and doc[image]["mediaType"] == "image/png"
        picture = await get(doc[image]["url"])
        assert picture.status_code == 200 and picture.content.startswith(b"\x89PNG")
    assert isinstance(doc["attachment"], list)
    assert doc["manuallyApprovesFollowers"] is False
    assert doc["discoverable"] is True and doc["indexable"] is True


async def test_browser_gets_html_for_the_same_url(live_node: LiveNode, group: str) -> None:
    response = await get(group, headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "Solidaritätskreis Köln" in response.text
    # The page also varies with the reader's language (Accept-Language, the lang cookie).
    assert response.headers["vary"] == "Accept, Accept-Language, Cookie"


async def test_webfinger_round_trips_to_the_same_actor(live_node: LiveNode, group: str) -> None:
    host = f"127.0.0.1:{live_node.port}"
    for resource in (f"acct:koeln@{host}", group, f"acct:@koeln@{host}"):
        response = await get(live_node.url("/.well-known/webfinger"),
                             params={"resource": resource})
        assert response.status_code == 200, resource
        jrd = response.json()
        assert jrd["subject"] == f"acct:koeln@{host}"
        self_link = next(link for link in jrd["links"] if link["rel"] == "self")
        assert self_link["type"] in AS_TYPES and self_link["href"] == group
    actor = (await get(group, headers={"Accept": AS_TYPES[0]})).json()
    again = await get(live_node.url("/.well-known/webfinger"),
                      params={"resource": f"acct:{actor['preferredUsername']}@{host}"})
    assert next(link["href"] for link in again.json()["links"]
                if link["rel"] == "self") == actor["id"]


@pytest.mark.parametrize("resource", ["", "koeln", "acct:", "acct:koeln", "acct:@",
                                      "mailto:koeln@x", "acct:a b@c", "x" * 600,
                                      "acct:koeln@host@other"])
async def test_webfinger_malformed_resource_is_400(live_node: LiveNode, group: str,
                                                   resource: str) -> None:
    response = await get(live_node.url("/.well-known/webfinger"), params={"resource": resource})
    assert response.status_code == 400


async def test_webfinger_unknown_account_or_host_is_404(live_node: LiveNode, group: str) -> None:
    host = f"127.0.0.1:{live_node.port}"
    for resource in (f"acct:nobody@{host}", "acct:koeln@elsewhere.example",
                     "https://elsewhere.example/groups/koeln"):
        response = await get(live_node.url("/.well-known/webfinger"),
                             params={"resource": resource})
        assert response.status_code == 404, resource


async def test_instance_application_actor_is_discoverable(live_node: LiveNode) -> None:
    links = (await get(live_node.url("/.well-known/nodeinfo"))).json()["links"]
    app_link = next(link for link in links
                    if link["rel"] == "https://www.w3.org/ns/activitystreams#Application")
    actor = (await get(app_link["href"], headers={"Accept": AS_TYPES[0]})).json()
    assert actor["type"] == "Application" and actor["id"] == app_link["href"]
    host = f"127.0.0.1:{live_node.port}"
    jrd = (await get(live_node.url("/.well-known/webfinger"),
                     params={"resource": f"acct:{actor['preferredUsername']}@{host}"})).json()
    assert next(link["href"] for link in jrd["links"] if link["rel"] == "self") == actor["id"]


async def test_nodeinfo_21(live_node: LiveNode, group: str) -> None:
    links = (await get(live_node.url("/.well-known/nodeinfo"))).json()["links"]
    href = next(link["href"] for link in links
                if link["rel"] == "http://nodeinfo.diaspora.software/ns/schema/2.1")
    info = (await get(href)).json()
    assert info["version"] == "2.1"
    assert info["software"]["name"] == "hambastegi"
    assert info["protocols"] == ["activitypub"]
    assert info["usage"]["users"]["total"] == 1
    assert info["openRegistrations"] is False
    href20 = next(link["href"] for link in links
                  if link["rel"] == "http://nodeinfo.diaspora.software/ns/schema/2.0")
    info20 = (await get(href20)).json()
    assert info20["version"] == "2.0" and "repository" not in info20["software"]
    assert (await get(live_node.url("/nodeinfo/3.0"))).status_code == 404


async def test_host_meta_points_at_webfinger(live_node: LiveNode) -> None:
    response = await get(live_node.url("/.well-known/host-meta"))
    assert response.status_code == 200
    assert "/.well-known/webfinger?resource={uri}" in response.text


async def test_unknown_group_is_404_in_both_forms(live_node: LiveNode) -> None:
    for accept in (AS_TYPES[0], "text/html"):
        response = await get(live_node.url("/groups/nobody"), headers={"Accept": accept})
        assert response.status_code == 404


async def test_note_document_and_tombstone(live_node: LiveNode, group: str) -> None:
    note_id = await operations.publish_note(live_node.node, "koeln", text="Hallo <b>Welt</b>",
                                            language="de")
    doc = (await get(note_id, headers={"Accept": AS_TYPES[0]})).json()
    assert doc["id"] == note_id and doc["type"] == "Note"
    assert doc["attributedTo"] == group
    assert doc["contentMap"] == {"de": doc["content"]}
    assert "&lt;b&gt;" in doc["content"]  # plain text is escaped, not interpreted
    assert doc["to"] == ["https://www.w3.org/ns/activitystreams#Public"]
    assert doc["cc"] == [group + "/followers"]
    await operations.delete_post(live_node.node, note_id)
    gone = await get(note_id, headers={"Accept": AS_TYPES[0]})
    assert gone.status_code == 410
    assert gone.json() == {**gone.json(), "id": note_id, "type": "Tombstone",
                           "formerType": "Note"}
    assert (await get(note_id)).status_code == 410


async def test_collections_are_paged(live_node: LiveNode, group: str) -> None:
    for i in range(25):
        await operations.publish_note(live_node.node, "koeln", text=f"Nachricht {i}")
    outbox = (await get(group + "/outbox", headers={"Accept": AS_TYPES[0]})).json()
    assert outbox["type"] == "OrderedCollection" and outbox["totalItems"] == 25
    first = (await get(outbox["first"], headers={"Accept": AS_TYPES[0]})).json()
    assert first["type"] == "OrderedCollectionPage" and len(first["orderedItems"]) == 20
    assert first["orderedItems"][0]["type"] == "Create"
    assert "Nachricht 24" in first["orderedItems"][0]["object"]["content"]
    second = (await get(first["next"], headers={"Accept": AS_TYPES[0]})).json()
    assert len(second["orderedItems"]) == 5 and "next" not in second
    for name in ("followers", "following", "featured"):
        doc = (await get(f"{group}/{name}", headers={"Accept": AS_TYPES[0]})).json()
        assert doc["type"] == "OrderedCollection" and doc["totalItems"] == 0, name
    # Followers are private by default: the count, never the list.
    hidden = await get(group + "/followers?page=1", headers={"Accept": AS_TYPES[0]})
    assert hidden.status_code == 403
    bad = await get(group + "/outbox?page=-1", headers={"Accept": AS_TYPES[0]})
    assert bad.status_code == 400


async def test_private_activities_are_not_served(live_node: LiveNode, group: str) -> None:
    from sqlmodel import select

    from node.storage.models import Activity

    await operations.publish_note(live_node.node, "koeln", text="öffentlich")
    async with live_node.node.db.read() as session:
        public = (await session.exec(select(Activity))).one()
    response = await get(live_node.node.urls.activity(public.uuid),
                         headers={"Accept": AS_TYPES[0]})
    assert response.status_code == 200 and response.json()["type"] == "Create"
    missing = await get(live_node.node.urls.activity("0" * 32), headers={"Accept": AS_TYPES[0]})
    assert missing.status_code == 404
