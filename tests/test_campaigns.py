"""Campaigns for imprisoned workers (issue 16): validation, the detention record,
consent, the wire, lists and feeds, hostile input, CLI and API."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import jsonschema
import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from node.campaigns import consent, detention, listing
from node.campaigns.dossier import CampaignError, parse_dossier
from node.federation import signatures
from node.groups import operations
from node.networks import members
from node.storage.db import Database
from node.storage.models import Activity, Campaign, InboxItem, NetworkMembership
from tests.conftest import LiveNode, cli_environment, run_cli, wait_for
from tests.fediverse import FakeRemote, activity, signed_post
from tests.test_photos import _upload, photo

SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "schemas"
                     / "campaign.schema.json").read_text())
AS = {"Accept": "application/activity+json"}
TODAY = date.today()
NAME_FA = "رضا شهابی‌زاده"
NAME_EN = "Reza Shahabizadeh"
NAME_DE = "Resa Schahabisadeh"
FIVE_FA = "\u06f5"  # the Persian digit five
ALL_SPELLINGS = [NAME_FA, NAME_EN, NAME_DE, "Shahabizadeh", "Schahabisadeh", "شهابی‌زاده"]


def dossier(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "language": "fa",
        "country": "IR",
        "name": {"fa": NAME_FA, "en": NAME_EN, "de": NAME_DE},
        "versions": {
            "fa": {"trade": "راننده اتوبوس", "workplace": "شرکت واحد", "city": "تهران",
                   "charges": "اجتماع و تبانی", "sentence": f"{FIVE_FA} سال", "prison": "اوین",
                   "story": f"**{NAME_FA}** عضو سندیکای کارگران شرکت واحد است."},
            "en": {"trade": "bus driver", "workplace": "Vahed bus company", "city": "Tehran",
                   "charges": "assembly and collusion", "sentence": "5 years",
                   "prison": "Evin", "story": f"{NAME_EN} is a member of the Vahed union. "
                                              f"Mr {NAME_EN.split()[1]} was arrested at home."},
        },
        "arrested_on": (TODAY - timedelta(days=400)).isoformat(),
        "status": "sentenced",
        "act": {"petition": "https://petition.example/free-reza",
                "addresses": ["Head of the Judiciary\nPasteur Street"], "hashtag": "FreeReza"},
        "sources": ["https://news.example/reza"],
    }
    body.update(overrides)
    return body


# --- validation ------------------------------------------------------------------------


@pytest.mark.parametrize("override, message", [
    ({"arrested_on": (TODAY + timedelta(days=3)).isoformat()}, "is in the future"),
    ({"arrested_on": "yesterday"}, "arrested_on must be a date"),
    ({"status": "released", "released_on": (TODAY - timedelta(days=500)).isoformat()},
     "is before the arrest"),
    ({"status": "released"}, "needs released_on"),
    ({"status": "detained", "released_on": TODAY.isoformat()}, "means still held"),
    ({"status": "escaped"}, "status must be one of"),
    ({"visibility": "network_only"}, "needs the network's actor URL"),
    ({"visibility": "public", "network": "https://n.example/actor"}, "only for network_only"),
    ({"visibility": "secret"}, "visibility must be one of"),
    ({"name": {}}, "name must be an object"),
    ({"name": {"en": "a\x00b"}}, "contains a control character (U+0000)"),
    ({"name": {"en": "x" * 201}}, "longer than 200"),
    ({"versions": {"fa": {"trade": "x", "salary": "y"}}}, "unknown field 'salary'"),
    ({"versions": {"fa": {"story": "x" * 50_001}}}, "story must be Markdown"),
    ({"act": {"petition": "javascript:alert(1)"}}, "act.petition must be an http(s) URL"),
    ({"act": {"hashtag": "123"}}, "hashtag"),
    ({"public_fields": ["name"]}, "public_fields may list"),
    ({"country": "Iran"}, "ISO 3166"),
    ({"colour": "red"}, "unknown field 'colour'"),
])
def test_bad_dossiers_are_refused_with_an_error_naming_the_field(override: dict[str, Any],
                                                                 message: str) -> None:
    with pytest.raises(CampaignError) as raised:
        parse_dossier(dossier(**override), "fa", today=TODAY)
    assert message in str(raised.value)


def test_released_to_on_trial_needs_a_new_arrest_first() -> None:
    record = detention.first_record(date(2025, 1, 1), date(2025, 6, 1))
    with pytest.raises(CampaignError, match="without a new arrest"):
        detention.change("released", "on_trial", record, date(2025, 7, 1), today=TODAY)
    rearrested = detention.change("released", "detained", record, date(2025, 7, 1),
                                  today=TODAY)
    assert rearrested[-1] == {"arrested": "2025-07-01", "released": None}
    assert detention.change("detained", "on_trial", rearrested, date(2025, 8, 1),
                            today=TODAY) == rearrested


def test_days_in_detention_are_summed_over_periods_and_stop_at_release() -> None:
    record = detention.first_record(date(2025, 1, 1), date(2025, 1, 31))
    assert detention.days_in_detention(record, today=date(2026, 1, 1)) == 30
    record = detention.change("released", "detained", record, date(2025, 3, 1),
                              today=date(2026, 1, 1))
    assert detention.days_in_detention(record, today=date(2025, 3, 11)) == 40
    record = detention.change("detained", "on_bail", record, date(2025, 3, 21),
                              today=date(2026, 1, 1))
    assert detention.days_in_detention(record, today=date(2030, 1, 1)) == 50


@pytest.mark.parametrize("current, new, when, message", [
    ("died_in_custody", "released", date(2025, 2, 1), "final"),
    ("detained", "detained", date(2025, 2, 1), "already detained"),
    ("detained", "released", date(2024, 12, 1), "before the last entry"),
    ("detained", "released", TODAY + timedelta(days=1), "in the future"),
    ("sentenced", "detained", date(2025, 2, 1), "not a possible change"),
])
def test_impossible_status_changes_are_refused(current: str, new: str, when: date,
                                               message: str) -> None:
    record = detention.first_record(date(2025, 1, 1), None)
    with pytest.raises(CampaignError, match=message):
        detention.change(current, new, record, when, today=TODAY)


def test_name_withheld_turns_every_spelling_and_each_part_into_initials() -> None:
    campaign = Campaign(uuid="u", group_id=1, language="fa", status="detained",
                        visibility="name_withheld",
                        data={"names": {"fa": NAME_FA, "en": NAME_EN}})
    assert consent.display_name(campaign, "en") == "R. S."
    assert consent.display_name(campaign, "fa") == "ر. ش."
    text = consent.redact(campaign, f"{NAME_EN.upper()} met reza; Mr shahabizadeh, {NAME_FA}.")
    assert "reza" not in text.lower() and "shahabizadeh" not in text.lower()
    assert "شهابی" not in text and text.startswith("R. S.")
    # Whole words only: "Rezaei" is another person's name.
    assert consent.redact(campaign, "Rezaei") == "Rezaei"


# --- on the wire and on the node ---------------------------------------------------------


async def _token(live: LiveNode, group: str = "vahed", language: str = "fa") -> str:
    await operations.create_group(live.node, group, display_name="Vahed solidarity",
                                  language=language)
    return await operations.create_token(live.node, group, group)


async def _api(live: LiveNode, method: str, path: str, token: str,
               body: Any = None) -> httpx.Response:
    async with httpx.AsyncClient(base_url=live.base_url) as client:
        return await client.request(method, path, json=body,
                                    headers={"Authorization": f"Bearer {token}"})


async def _get(url: str, headers: dict[str, str] | None = None) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(url, headers=headers or {})


async def _create(live: LiveNode, token: str, **overrides: Any) -> str:
    response = await _api(live, "POST", "/api/v1/groups/vahed/campaigns", token,
                          dossier(**overrides))
    assert response.status_code == 201, response.text
    campaign_id: str = response.json()["id"]
    return campaign_id


async def _bodies(db: Database) -> list[dict[str, Any]]:
    async with db.read() as session:
        rows = (await session.exec(select(Activity).order_by(Activity.id))).all()
    return [json.loads(r.body) for r in rows]


def _validate_outgoing(bodies: list[dict[str, Any]]) -> None:
    """Every campaign Article and timeline Note that went out matches the schema."""
    for body in bodies:
        obj = body.get("object")
        if isinstance(obj, dict) and (obj.get("type") == "Article"
                                      or (obj.get("type") == "Note" and obj.get("context"))):
            jsonschema.validate(obj, SCHEMA)


async def test_a_campaign_is_an_article_with_a_readable_summary_and_structured_fields(
        live_node: LiveNode) -> None:
    token = await _token(live_node)
    campaign_id = await _create(live_node, token)
    doc = (await _get(campaign_id, AS)).json()
    jsonschema.validate(doc, SCHEMA)
    assert doc["type"] == "Article" and doc["name"] == NAME_FA
    assert doc["nameMap"]["en"] == NAME_EN
    arrested = (TODAY - timedelta(days=400)).isoformat()
    assert doc["summaryMap"]["en"] == "Sentenced — 5 years — Reza Shahabizadeh, bus driver · " \
                                      f"in detention since {arrested}"
    assert doc["summary"].startswith(f"محکوم شده — {FIVE_FA} سال")
    assert doc["campaignStatus"] == "sentenced" and doc["consent"] == "public"
    assert doc["detention"] == [{"arrested": (TODAY - timedelta(days=400)).isoformat(),
                                 "released": None}]
    assert doc["charges"] == {"fa": "اجتماع و تبانی", "en": "assembly and collusion"}
    assert doc["petition"] == "https://petition.example/free-reza"
    assert doc["tag"][0]["name"] == "#FreeReza"
    # Exact places only with consent: workplace, city and prison were not marked public.
    assert not {"workplace", "city", "prison"} & set(doc)
    for hidden in ("Vahed bus company", "Evin", "Tehran", "اوین", "تهران"):
        assert hidden not in json.dumps(doc, ensure_ascii=False)
    page = (await _get(campaign_id + "?lang=en")).text  # the campaign page, in English
    assert "Sign the petition" in page and "Head of the Judiciary" in page
    assert "Evin" not in page
    _validate_outgoing(await _bodies(live_node.node.db))


async def test_status_change_is_an_update_plus_a_note_and_timeline_entries_are_notes(
        live_node: LiveNode) -> None:
    token = await _token(live_node)
    campaign_id = await _create(live_node, token, status="detained")
    uuid = campaign_id.rsplit("/", 1)[1]
    response = await _api(live_node, "POST", f"/api/v1/campaigns/{uuid}/updates", token,
                          {"versions": {"en": "Moved to solitary confinement.",
                                        "fa": "به سلول انفرادی منتقل شد."},
                           "sources": ["https://news.example/solitary"]})
    assert response.status_code == 201, response.text
    response = await _api(live_node, "POST", f"/api/v1/campaigns/{uuid}/status", token,
                          {"status": "released", "date": TODAY.isoformat(),
                           "note": "آزاد شد"})
    assert response.status_code == 200, response.text
    bodies = await _bodies(live_node.node.db)
    kinds = [(b["type"], b["object"]["type"]) for b in bodies]
    assert kinds == [("Create", "Article"), ("Create", "Note"), ("Update", "Article"),
                     ("Create", "Note"), ("Update", "Article")]
    assert all(b["object"]["context"] == campaign_id for b in bodies
               if b["object"]["type"] == "Note")
    last = bodies[-1]["object"]
    assert last["campaignStatus"] == "released" and last["detention"][0]["released"]
    assert "Moved to solitary confinement." in last["contentMap"]["en"]
    _validate_outgoing(bodies)
    # released → on_trial without a new arrest: a clear 400.
    response = await _api(live_node, "POST", f"/api/v1/campaigns/{uuid}/status", token,
                          {"status": "on_trial"})
    assert response.status_code == 400 and "new arrest" in response.json()["error"]
    response = await _api(live_node, "POST", f"/api/v1/campaigns/{uuid}/status", token,
                          {"status": "detained",
                           "date": (TODAY + timedelta(days=2)).isoformat()})
    assert response.status_code == 400 and "in the future" in response.json()["error"]


def _links(base: str, html: str) -> set[str]:
    out = set()
    for href in re.findall(r'(?:href|src)="([^"]+)"', html):
        url = urljoin(base, href.replace("&amp;", "&"))
        if urlsplit(url).netloc == urlsplit(base).netloc:
            out.add(url.split("#")[0])
    return out


async def crawl(live: LiveNode, group: str, extra: list[str]) -> dict[str, bytes]:
    """Every public URL the node links to from its pages (HTML and JSON), plus the
    documents a peer or reader asks for: outbox pages, feeds, .ics, WebFinger."""
    host = urlsplit(live.base_url).netloc
    seeds = [live.url("/"), live.url(f"/groups/{group}"), live.url("/campaigns"),
             live.url("/campaigns?sort=days"), live.url("/campaigns?country=IR"),
             live.url("/campaigns/feed.atom"), live.url("/campaigns/feed.json"),
             live.url(f"/groups/{group}/feed.atom"), live.url(f"/groups/{group}/feed.json"),
             live.url(f"/groups/{group}/calendar.ics"), live.url(f"/groups/{group}/featured"),
             live.url(f"/.well-known/webfinger?resource=acct:{group}@{host}"),
             live.url("/nodeinfo/2.1"), live.url("/actor"), *extra]
    seeds += [live.url(f"/groups/{group}/outbox?page={n}") for n in range(1, 4)]
    seen: dict[str, bytes] = {}
    todo = list(seeds)
    async with httpx.AsyncClient() as client:
        while todo and len(seen) < 300:
            url = todo.pop()
            if url in seen:
                continue
            for headers in ({}, AS):
                response = await client.get(url, headers=headers)
                seen[url + (" (AS)" if headers else "")] = response.content
                text = response.text
                todo += [u for u in _links(url, text) if u not in seen]
                todo += [u for u in re.findall(r'"(http://[^"]+)"', text)
                         if urlsplit(u).netloc == urlsplit(live.base_url).netloc
                         and u not in seen and "/inbox" not in u]
    return seen


async def test_name_withheld_name_appears_in_no_response_body_of_the_node(
        live_node: LiveNode) -> None:
    token = await _token(live_node)
    uploaded = await _upload(live_node, photo(), token=token)
    assert uploaded.status_code == 201, uploaded.text
    media = uploaded.json()["name"]
    campaign_id = await _create(
        live_node, token, photo={"media": media, "alt": {"en": f"{NAME_EN} at work",
                                                         "fa": f"{NAME_FA} سر کار"}},
        public_fields=["photo"])
    uuid = campaign_id.rsplit("/", 1)[1]
    response = await _api(live_node, "POST", f"/api/v1/campaigns/{uuid}/updates", token,
                          {"text": f"{NAME_FA} در دادگاه بود", "language": "fa"})
    assert response.status_code == 201
    # Consent lowered after publishing: the Updates take the name out everywhere.
    response = await _api(live_node, "POST", f"/api/v1/campaigns/{uuid}/visibility", token,
                          {"visibility": "name_withheld"})
    assert response.status_code == 200, response.text
    pages = await crawl(live_node, "vahed", [campaign_id])
    assert any(campaign_id in url for url in pages) and len(pages) > 30, sorted(pages)
    assert any("/activities/" in url for url in pages)
    assert any(b"R. S." in body for body in pages.values())
    for url, body in pages.items():
        text = body.decode("utf-8", "replace")
        for spelling in ALL_SPELLINGS:
            assert spelling not in text, (spelling, url)
    # Nor in a stored byte a queued delivery would send.
    async with live_node.node.db.read() as session:
        stored = (await session.exec(select(Activity))).all()
    for row in stored:
        for spelling in ALL_SPELLINGS:
            assert spelling.encode() not in row.body, (spelling, row.activity_type)
    update = json.loads(stored[-1].body) if stored else {}
    assert any(json.loads(r.body)["type"] == "Update" for r in stored), update
    _validate_outgoing([json.loads(r.body) for r in stored])
    doc = (await _get(campaign_id, AS)).json()
    assert doc["attachment"][0]["name"] == "ر. ش. سر کار"  # alt texts too


async def _signed_get(url: str, remote: FakeRemote) -> httpx.Response:
    actor = remote.actors.get("member") or remote.add_actor("member")
    headers = signatures.sign_cavage(method="GET", url=url, body=None, key_id=actor.key_id,
                                     private_key=actor.rsa, extra_headers=AS)
    async with httpx.AsyncClient() as client:
        return await client.get(url, headers={**AS, **headers})


async def local_network(live: LiveNode, member: str = "vahed") -> str:
    """A network on this node with the group ``member`` accepted (its only member,
    so nothing is sent anywhere); returns the network's actor URL."""
    network = await members.create(live.node, "net", display_name="Net", language="en")
    _, row = await members.require_network(live.node, "net")
    async with live.node.db.write() as session:
        session.add(NetworkMembership(
            network_id=row.id or 0, member_uri=live.node.urls.actor(member),
            inbox=live.node.urls.actor(member) + "/inbox", join_activity_id=network + "#j",
            state="accepted", name=member, node_host=urlsplit(live.base_url).netloc))
    return network


async def test_network_only_campaign_is_absent_everywhere_and_404_signed_or_not(
        live_node: LiveNode, remote: FakeRemote) -> None:
    token = await _token(live_node)
    network = await local_network(live_node)
    secret = await _create(live_node, token, visibility="network_only", network=network,
                           name={"en": "Nasrin Secretperson"})
    # Published public first, then narrowed: the same absence, plus a Delete.
    narrowed = await _create(live_node, token, name={"en": "Kamran Narrowedname"})
    uuid = narrowed.rsplit("/", 1)[1]
    response = await _api(live_node, "POST", f"/api/v1/campaigns/{uuid}/visibility", token,
                          {"visibility": "network_only", "network": network})
    assert response.status_code == 200, response.text
    members_doc = response.json()["id"]
    for url in (secret, narrowed, members_doc):
        assert (await _get(url)).status_code == 404
        assert (await _get(url, AS)).status_code == 404
        assert (await _signed_get(url, remote)).status_code == 404
    pages = await crawl(live_node, "vahed", [])
    for url, body in pages.items():
        for word in (b"Secretperson", b"Narrowedname", secret.encode(), b"Nasrin",
                     members_doc.encode()):
            assert word not in body, (word, url)
    bodies = await _bodies(live_node.node.db)
    assert not any(secret in json.dumps(b) for b in bodies)  # never sent anywhere
    assert [b["type"] for b in bodies if narrowed in json.dumps(b)] == ["Create", "Delete"]
    # The names go only to the network's members (test_campaigns_network_only.py).
    named = [b for b in bodies if "Narrowedname" in json.dumps(b)
             or "Secretperson" in json.dumps(b)]
    assert named and all(b["to"] == [network + "/members"] and "cc" not in b
                         and b["object"]["to"] == [network + "/members"] for b in named)
    async with live_node.node.db.read() as session:
        listed = (await session.exec(select(Activity).where(col(Activity.object_uri).in_(
            [narrowed, members_doc])))).all()
    assert listed and not any(row.in_outbox for row in listed)


async def test_withdrawn_consent_deletes_everywhere_and_keeps_nothing_of_the_person(
        live_node: LiveNode) -> None:
    token = await _token(live_node)
    campaign_id = await _create(live_node, token)
    uuid = campaign_id.rsplit("/", 1)[1]
    await _api(live_node, "POST", f"/api/v1/campaigns/{uuid}/updates", token,
               {"text": "news"})
    response = await _api(live_node, "DELETE", f"/api/v1/campaigns/{uuid}", token)
    assert response.status_code == 200
    assert (await _get(campaign_id, AS)).status_code == 404
    bodies = await _bodies(live_node.node.db)
    assert [b["type"] for b in bodies][-2:] == ["Delete", "Delete"]
    async with live_node.node.db.read() as session:
        row = (await session.exec(select(Campaign))).one()
        stored = b"".join(r.body for r in (await session.exec(select(Activity))).all())
    assert row.data == {} and row.timeline == [] and row.withdrawn_at is not None
    assert NAME_EN.encode() not in stored and NAME_FA.encode() not in stored


async def test_list_sorts_by_status_or_days_and_filters_by_country(
        live_node: LiveNode) -> None:
    token = await _token(live_node)
    old = await _create(live_node, token, status="detained", name={"en": "Old Case"},
                        arrested_on=(TODAY - timedelta(days=900)).isoformat())
    sentenced = await _create(live_node, token, name={"en": "Sentenced Case"})
    turkey = await _create(live_node, token, status="detained", country="TR",
                           name={"en": "Turkey Case"})
    rows = await listing.listing(live_node.node)
    assert [r["id"] for r in rows] == [sentenced, old, turkey]
    by_days = await listing.listing(live_node.node, sort="days")
    assert [r["id"] for r in by_days] == [old, sentenced, turkey]
    page = (await _get(live_node.url("/campaigns?country=TR"))).text
    assert "Turkey Case" in page and "Old Case" not in page
    feed = (await _get(live_node.url("/campaigns/feed.json?sort=days"))).json()
    assert [i["id"] for i in feed["items"]] == [old, sentenced, turkey]
    assert feed["items"][0]["_hambastegi"]["days_in_detention"] == 900
    atom = (await _get(live_node.url("/campaigns/feed.atom"))).text
    assert atom.count("<entry") == 3 and f"محکوم شده — {FIVE_FA} سال" in atom


HOSTILE = ['<script>alert(1)</script>', '<img src=x onerror="alert(1)">',
           '"><svg onload=alert(1)>', "[x](javascript:alert(1))"]


@pytest.mark.parametrize("payload", HOSTILE)
async def test_hostile_text_in_any_field_never_reaches_a_page_as_markup(
        live_node: LiveNode, payload: str) -> None:
    token = await _token(live_node)
    body = dossier()
    body["versions"]["en"] = {key: f"{payload} x" for key in ("trade", "charges", "court")}
    body["versions"]["en"]["story"] = f"{payload} story"
    body["name"]["en"] = f"{payload} name"
    body["act"]["addresses"] = [f"{payload} address"]
    campaign_id = await _create(live_node, token, **{k: body[k] for k in
                                                     ("versions", "name", "act")})
    doc = (await _get(campaign_id, AS)).json()
    # In the document only content and summary are HTML (AS 2.0); name, personName,
    # charges … are plain text that every reader escapes.
    html_fields = json.dumps([doc[k] for k in ("content", "contentMap", "summary",
                                               "summaryMap")])
    for text in ((await _get(campaign_id)).text.lower(), html_fields.lower(),
                 (await _get(live_node.url("/campaigns"))).text.lower(),
                 (await _get(live_node.url("/campaigns/feed.atom"))).text.lower()):
        # Escaped text ("&lt;img …") is harmless; a tag or a handler inside one is not.
        for bad in ("<script", "<img", "<svg", "href=\"javascript", "href=\\\"javascript"):
            assert bad not in text, bad
        assert not re.search(r"<[^>]*\son\w+\s*=", text)


async def test_oversized_and_malformed_bodies_are_refused(live_node: LiveNode) -> None:
    token = await _token(live_node)
    async with httpx.AsyncClient(base_url=live_node.base_url) as client:
        headers = {"Authorization": f"Bearer {token}"}
        huge = await client.post("/api/v1/groups/vahed/campaigns", headers=headers,
                                 content=b'{"x": "' + b"a" * 3_000_000 + b'"}')
        broken = await client.post("/api/v1/groups/vahed/campaigns", headers=headers,
                                   content=b'{"name": ')
        listed = await client.post("/api/v1/groups/vahed/campaigns", headers=headers,
                                   json=["a"])
    assert huge.status_code == 413 and broken.status_code == 400
    assert listed.status_code == 400
    other = await _api(live_node, "POST", "/api/v1/campaigns/nope/status", token,
                       {"status": "released"})
    assert other.status_code == 404


async def test_another_groups_token_cannot_touch_a_campaign(live_node: LiveNode) -> None:
    token = await _token(live_node)
    campaign_id = await _create(live_node, token)
    await operations.create_group(live_node.node, "other", display_name="Other",
                                  language="en")
    other = await operations.create_token(live_node.node, "other", "other")
    uuid = campaign_id.rsplit("/", 1)[1]
    for path, body in ((f"/api/v1/campaigns/{uuid}/status", {"status": "released"}),
                       (f"/api/v1/campaigns/{uuid}/visibility", {"visibility": "public"}),
                       (f"/api/v1/campaigns/{uuid}/updates", {"text": "forged"})):
        assert (await _api(live_node, "POST", path, other, body)).status_code == 404


async def test_forged_update_and_note_from_a_non_owner_change_nothing(
        live_node: LiveNode, remote: FakeRemote) -> None:
    token = await _token(live_node)
    campaign_id = await _create(live_node, token)
    stranger = remote.add_actor("stranger")
    inbox = live_node.url("/groups/vahed/inbox")
    forged = dict((await _get(campaign_id, AS)).json(), campaignStatus="released",
                  name="Someone else")
    response = await signed_post(inbox, activity(stranger, "Update", forged), stranger)
    assert response.status_code in (400, 403), response.text
    note = {"id": stranger.id + "/notes/1", "type": "Note", "attributedTo": stranger.id,
            "context": campaign_id, "to": [live_node.url("/groups/vahed")],
            "content": "He was released (false)"}
    response = await signed_post(inbox, activity(stranger, "Create", note), stranger)
    assert response.status_code == 202

    async def handled() -> bool:
        async with live_node.node.db.read() as session:
            items = (await session.exec(select(InboxItem))).all()
        return bool(items) and all(i.state == "done" for i in items)

    await wait_for(handled, what="the forged Note handled")
    doc = (await _get(campaign_id, AS)).json()
    assert doc["campaignStatus"] == "sentenced" and doc["name"] == NAME_FA
    assert "released (false)" not in json.dumps(doc)
    async with live_node.node.db.read() as session:
        row = (await session.exec(select(Campaign))).one()
    assert row.timeline == []


async def test_cli_publishes_and_changes_a_campaign(tmp_path: Path, databases: Any) -> None:
    env = await cli_environment(tmp_path, databases)
    run_cli(env, "group", "create", "vahed", "--language", "fa")
    path = tmp_path / "campaign.json"
    path.write_text(json.dumps(dossier(status="detained")), encoding="utf-8")
    created = run_cli(env, "publish", "campaign", "vahed", "--json", str(path))
    assert created.returncode == 0, created.stderr
    campaign_id = created.stdout.strip()
    assert campaign_id.startswith("http") and "/objects/" in campaign_id
    update = tmp_path / "update.json"
    update.write_text(json.dumps({"text": "Hunger strike, day 3"}), encoding="utf-8")
    assert run_cli(env, "campaign", "update", campaign_id, "--json", str(update)).returncode == 0
    done = run_cli(env, "campaign", "status", campaign_id, "--status", "released",
                   "--note", "Freed")
    assert done.returncode == 0, done.stderr
    refused = run_cli(env, "campaign", "status", campaign_id, "--status", "on_trial")
    assert refused.returncode == 1 and "new arrest" in refused.stderr
    narrowed = run_cli(env, "campaign", "visibility", campaign_id, "name_withheld")
    assert narrowed.returncode == 0, narrowed.stderr
    listed = run_cli(env, "campaign", "list")
    row = json.loads(listed.stdout.splitlines()[0])
    assert row["status"] == "released" and row["name"] == "ر. ش."
    corrected = dossier(name={"fa": "علی شهابی"})
    for key in ("arrested_on", "status"):
        del corrected[key]
    path.write_text(json.dumps(corrected), encoding="utf-8")
    edited = run_cli(env, "campaign", "edit", campaign_id, "--json", str(path))
    assert edited.returncode == 0, edited.stderr
    row = json.loads(run_cli(env, "campaign", "list").stdout.splitlines()[0])
    assert row["name"] == "ع. ش." and row["status"] == "released"
    no_network = run_cli(env, "campaign", "visibility", campaign_id, "network_only")
    assert no_network.returncode == 1 and "--network" in no_network.stderr


async def test_campaign_tables_bump_the_change_counter(db: Database) -> None:
    async with db.read() as session:
        if db.is_sqlite:
            found = (await session.exec(sa.text(
                "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN "
                "('campaign', 'campaign_owner') AND name LIKE 'change_counter_%'"))).one()[0]
            assert found == 6
        else:
            found = (await session.exec(sa.text(
                "SELECT count(*) FROM pg_trigger WHERE tgname IN "
                "('change_counter_campaign', 'change_counter_campaign_owner')"))).one()[0]
            assert found == 2


async def test_photo_and_exact_places_stay_hidden_until_marked_public(
        live_node: LiveNode) -> None:
    token = await _token(live_node)
    uploaded = await _upload(live_node, photo(), token=token)
    media = uploaded.json()["name"]
    campaign_id = await _create(live_node, token, photo={"media": media, "alt": {"fa": "عکس"}})
    doc = (await _get(campaign_id, AS)).json()
    page = (await _get(campaign_id)).text
    assert "attachment" not in doc and media not in page and media not in json.dumps(doc)
    assert "Evin" not in page
    uuid = campaign_id.rsplit("/", 1)[1]
    # The same dossier with consent to the photo and the prison: both appear.
    body = dossier(photo={"media": media, "alt": {"fa": "عکس"}},
                   public_fields=["photo", "prison"])
    for key in ("arrested_on", "status"):
        del body[key]
    response = await _api(live_node, "PUT", f"/api/v1/campaigns/{uuid}", token, body)
    assert response.status_code == 200, response.text
    refused = await _api(live_node, "PUT", f"/api/v1/campaigns/{uuid}", token,
                         dict(body, status="released", released_on=TODAY.isoformat()))
    assert refused.status_code == 400 and "campaign status" in refused.json()["error"]
    doc = (await _get(campaign_id, AS)).json()
    assert media in doc["attachment"][0]["url"] and doc["prison"]["en"] == "Evin"


async def test_network_only_made_public_again_is_a_new_object_with_a_create(
        live_node: LiveNode) -> None:
    token = await _token(live_node)
    first = await _create(live_node, token)
    uuid = first.rsplit("/", 1)[1]
    hidden = await _api(live_node, "POST", f"/api/v1/campaigns/{uuid}/visibility", token,
                        {"visibility": "network_only", "network": await local_network(
                            live_node)})
    assert hidden.status_code == 200
    shown = await _api(live_node, "POST", f"/api/v1/campaigns/{uuid}/visibility", token,
                       {"visibility": "public"})
    again = shown.json()["id"]
    assert again != first and (await _get(again, AS)).json()["name"] == NAME_FA
    # The first id stays a tombstone (Mastodon keeps them); the campaign answers to both.
    assert (await _get(first, AS)).status_code == 410
    assert [(b["type"], b["object"]["id"]) for b in await _bodies(live_node.node.db)] == [
        ("Create", first), ("Delete", first), ("Create", hidden.json()["id"]),
        ("Delete", hidden.json()["id"]), ("Create", again)]
    moved = await _api(live_node, "POST", f"/api/v1/campaigns/{uuid}/status", token,
                       {"status": "released"})
    assert moved.status_code == 200
