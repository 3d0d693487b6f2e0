"""One character rule for every text an editor types (issue 25, defect 1).

The rule (node/core/characters.py) through the shared function with a table of
samples in Persian, Kurdish (Sorani), Arabic and German, then end to end through
each kind's entry point on a live node: news (API and CLI), calls, campaigns,
group profiles, networks, notes, alt texts, bulletins and drafts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from node.core import characters
from node.core.characters import CharacterError, check
from node.groups import operations
from tests.conftest import DatabaseFactory, LiveNode, cli_environment, run_cli
from tests.test_campaigns import dossier
from tests.test_events import geneva_call
from tests.test_photos import _upload, photo

ZWNJ, ZWJ, LRM, RLM, ALM = "\u200c", "\u200d", "\u200e", "\u200f", "\u061c"
FSI, PDI, RLE, PDF = "\u2068", "\u2069", "\u202b", "\u202c"

# Texts as editors type them: every one must come back unchanged.
SAMPLES = [
    # Persian: the non-joiner inside words (most headlines have one), RLM, an isolate.
    ("fa", f"کارگران نیشکر هفت{ZWNJ}تپه اعتصاب می{ZWNJ}کنند"),
    ("fa", f"نامه{ZWNJ}ی سندیکا به {FSI}ILO{PDI} در ژنو{RLM}"),
    ("fa", f"{RLE}اعتصاب ۱۴۰۳{PDF} ادامه دارد"),  # an embedding pasted from Word
    # Kurdish (Sorani): ZWNJ as the older typing of U+06D5 AE, an isolated Latin name.
    ("ckb", f"کرێکاره{ZWNJ}کان مانیان گرتووە"),
    ("ckb", f"مامۆستایانی {FSI}Sine{PDI} لە سلێمانی کۆبوونەوە"),
    # Arabic: ALM before digits, the Arabic number sign and the end-of-ayah sign.
    ("ar", f"العمال مضربون منذ {ALM}١٢{ALM} يوماً"),
    ("ar", "\u0600١٢٣ و \u06dd٣ في البيان"),
    # German: soft hyphen, word joiner, no-break space, LRM, a ZWJ emoji (👩‍🏭).
    ("de", "Gewerkschafts\u00adversammlung in Köln"),
    ("de", f"Streik\u2060kasse: §\u00a012 gilt{LRM} — 👩{ZWJ}🏭 Kolleginnen"),
    # Others the same rule lets through: French narrow no-break space, Thai's ZWSP.
    ("fr", "« grève\u202fgénérale »"),
    ("th", "คนงาน\u200bนัดหยุดงาน"),
]


@pytest.mark.parametrize("lang, text", SAMPLES)
def test_the_format_characters_scripts_need_are_kept_unchanged(lang: str, text: str) -> None:
    assert check(text, lang) == text
    assert check(text, lang, multiline=True) == text
    assert characters.collapse(text) == text


REFUSED = [
    ("a\x00b", "U+0000", "a control character", 2),
    ("زنگ\x07", "U+0007", "a control character", 4),
    ("\x1b[31mrot", "U+001B", "a control character", 1),
    ("del\x7f", "U+007F", "a control character", 4),
    ("next\x85line", "U+0085", "a control character", 5),  # NEL is Cc, not a line break
    # Overrides reverse the letters that follow (Trojan Source): refused.
    ("pay\u202egnp.exe", "U+202E RIGHT-TO-LEFT OVERRIDE", "an invisible formatting", 4),
    ("x\u202dy", "U+202D LEFT-TO-RIGHT OVERRIDE", "an invisible formatting", 2),
    # U+FEFF inside a text is the deprecated no-break space, not a byte-order mark.
    ("ab\ufeffc", "U+FEFF ZERO WIDTH NO-BREAK SPACE", "an invisible formatting", 3),
    ("a\u2062b", "U+2062 INVISIBLE TIMES", "an invisible formatting", 2),
    ("hi\U000e0041\U000e0042", "U+E0041 TAG LATIN CAPITAL LETTER A", "an invisible formatting",
     3),
    ("lone \ud800", "U+D800", "an unpaired surrogate", 6),
    ("x\uffff", "U+FFFF", "a control character", 2),
]


@pytest.mark.parametrize("text, named, kind, position", REFUSED)
def test_control_characters_and_unpaired_surrogates_are_refused_by_name_and_position(
        text: str, named: str, kind: str, position: int) -> None:
    for multiline in (False, True):
        with pytest.raises(CharacterError) as raised:
            check(text, "versions[fa].title", multiline=multiline)
        message = str(raised.value)
        assert message.startswith("versions[fa].title contains " + kind), message
        assert f"({named}" in message and message.endswith(f"at character {position}"), message


def test_line_breaks_and_tabs_only_where_a_field_is_multi_line() -> None:
    for text, kind in (("one\ntwo", "a line break"), ("one\ttwo", "a tab"),
                       ("one\u2028two", "a line break"), ("one\rtwo", "a line break")):
        with pytest.raises(CharacterError, match=f"contains {kind} in a one-line field"):
            check(text, "title")
        assert check(text, "text", multiline=True) == text.replace("\r", "\n")
    # A browser's textarea sends CRLF; a lone CR (old Mac) is a line break too.
    assert check("eins\r\nzwei\rdrei", "text", multiline=True) == "eins\nzwei\ndrei"


def test_a_leading_byte_order_mark_is_dropped_not_refused() -> None:
    assert check("\ufeffمی\u200cکنند", "title") == "می\u200cکنند"


def test_collapse_turns_what_is_refused_into_spaces_and_keeps_the_rest() -> None:
    assert characters.collapse(" خرم\u200cآباد\x00\tشهر \u202e\n") == "خرم\u200cآباد شهر"


def test_check_all_walks_a_body_and_names_the_field() -> None:
    body = {"versions": {"fa": {"title": "می\u200cکنند", "text": "a\r\nb"}}, "n": [1, "x"]}
    assert characters.check_all(body, "draft") == {
        "versions": {"fa": {"title": "می\u200cکنند", "text": "a\nb"}}, "n": [1, "x"]}
    with pytest.raises(CharacterError, match=r"draft\.versions\.fa\.title contains"):
        characters.check_all({"versions": {"fa": {"title": "a\x00"}}}, "draft")
    deep: Any = "x"
    for _ in range(40):
        deep = [deep]
    with pytest.raises(CharacterError, match="nested too deeply"):
        characters.check_all(deep, "draft")


# --- end to end: each kind's entry point -------------------------------------------------


PERSIAN_TITLE = f"کارگران هفت{ZWNJ}تپه اعتصاب می{ZWNJ}کنند"
SORANI = f"کرێکاره{ZWNJ}کان مانیان گرتووە"
ARABIC = f"العمال مضربون منذ {ALM}١٢{ALM} يوماً{RLM}"
GERMAN = "Gewerkschafts\u00adversammlung der Kolleg\u00adinnen"


async def _client(live: LiveNode, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=live.base_url,
                             headers={"Authorization": f"Bearer {token}"})


async def _doc(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        response = await client.get(url, headers={"Accept": "application/activity+json"})
    assert response.status_code == 200, response.text
    doc: dict[str, Any] = response.json()
    return doc


async def test_news_titles_with_zwnj_are_published_and_bulletins_keep_them(
        live_node: LiveNode) -> None:
    """The reported defect: «می‌کنند» in a title was refused as a control character."""
    await operations.create_group(live_node.node, "haft", display_name="هفت تپه",
                                  language="fa")
    token = await operations.create_token(live_node.node, "haft", "haft")
    media = (await _upload(live_node, photo(800, 600), token=token)).json()["name"]
    async with await _client(live_node, token) as api:
        created = await api.post("/api/v1/groups/haft/news", json={
            "language": "fa",
            "versions": {"fa": {"title": PERSIAN_TITLE, "summary": SORANI,
                                "text": f"متن خبر{RLM}\r\n\r\nبند دوم", "alt": [ARABIC]},
                         "de": {"title": GERMAN, "text": "Text.", "alt": [GERMAN]}},
            "photos": [{"media": media}]})
        assert created.status_code == 201, created.text
        doc = await _doc(created.json()["id"])
        assert doc["nameMap"] == {"fa": PERSIAN_TITLE, "de": GERMAN}
        assert doc["attachment"][0]["name"] == ARABIC
        refused = await api.post("/api/v1/groups/haft/news", json={
            "language": "fa", "versions": {"fa": {"title": "a\x1bb", "text": "x"}}})
        assert refused.status_code == 400
        assert refused.json()["error"] == ("versions[fa].title contains a control character "
                                           "(U+001B) at character 2")
        surrogate = await api.post(
            "/api/v1/groups/haft/news", content=b'{"versions": {"fa": {"text": "x\\ud800"}}}',
            headers={"Content-Type": "application/json"})
        assert surrogate.status_code == 400  # the JSON reader refuses it first
        bulletin = await api.post("/api/v1/groups/haft/bulletins", json={})
        assert bulletin.status_code == 201, bulletin.text
    bulletin_doc = await _doc(bulletin.json()["id"])
    assert PERSIAN_TITLE in bulletin_doc["contentMap"]["fa"]
    assert GERMAN in bulletin_doc["contentMap"]["de"]


async def test_cli_publishes_a_persian_title_and_refuses_a_control_character(
        tmp_path: Path, databases: DatabaseFactory) -> None:
    env = await cli_environment(tmp_path, databases)
    assert run_cli(env, "group", "create", "haft", "--language", "fa",
                   "--display-name", f"سندیکای هفت{ZWNJ}تپه").returncode == 0
    published = run_cli(env, "publish", "news", "haft", "--title", PERSIAN_TITLE,
                        "--text", "کارگران در اعتصاب هستند.")
    assert published.returncode == 0, published.stderr
    refused = run_cli(env, "publish", "news", "haft", "--title", "bad\u202etitle",
                      "--text", "x")
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.count("\n") == 1
    assert "versions[fa].title contains an invisible formatting character (U+202E " \
           "RIGHT-TO-LEFT OVERRIDE) at character 4" in refused.stderr
    # Bytes that are no UTF-8 reach Python's argv as lone surrogates (PEP 383).
    broken = run_cli(env, "publish", "news", "haft", "--title", "bad\udcff", "--text", "x")
    assert broken.returncode == 1 and broken.stdout == ""
    assert "versions[fa].title contains an unpaired surrogate (U+DCFF) at character 4" \
        in broken.stderr


async def test_calls_campaigns_profiles_networks_and_notes_share_the_rule(
        live_node: LiveNode) -> None:
    await operations.create_group(live_node.node, "vahed", display_name="Vahed",
                                  language="fa")
    token = await operations.create_token(live_node.node, "vahed", "vahed")
    admin = await operations.create_token(live_node.node, "admin")
    media = (await _upload(live_node, photo(800, 600), token=token)).json()["name"]
    async with await _client(live_node, token) as api:
        # A call: titles in four scripts, the flyer's alt text in Sorani.
        call = await api.post("/api/v1/groups/vahed/events", json=geneva_call(
            title={"fa": PERSIAN_TITLE, "ckb": SORANI, "ar": ARABIC, "de": GERMAN},
            place={"name": f"میدان {FSI}Place des Nations{PDI}", "city": "Genève"},
            flyer={"media": media, "alt": SORANI}))
        assert call.status_code == 201, call.text
        call_doc = await _doc(call.json()["id"])
        assert call_doc["nameMap"] == {"fa": PERSIAN_TITLE, "ckb": SORANI, "ar": ARABIC,
                                       "de": GERMAN}
        assert call_doc["location"]["name"] == f"میدان {FSI}Place des Nations{PDI}"
        assert call_doc["attachment"][0]["name"] == SORANI
        # Calls took anything before; now the same rule as news.
        bad_call = await api.post("/api/v1/groups/vahed/events",
                                  json=geneva_call(title={"fa": "تجمع\x00"}))
        assert bad_call.status_code == 400
        assert "title[fa] contains a control character (U+0000)" in bad_call.json()["error"]

        # A campaign: RLM and ALM were refused before (only ZWNJ/ZWJ were allowed).
        campaign = await api.post("/api/v1/groups/vahed/campaigns", json=dossier(
            name={"fa": f"رضا شهابی{RLM}", "ar": ARABIC, "de": GERMAN},
            photo={"media": media, "alt": {"fa": f"عکس رضا{ALM}"}}))
        assert campaign.status_code == 201, campaign.text
        campaign_doc = await _doc(campaign.json()["id"])
        assert campaign_doc["nameMap"]["fa"].startswith(f"رضا شهابی{RLM}")
        bad_campaign = await api.post("/api/v1/groups/vahed/campaigns",
                                      json=dossier(name={"fa": "رضا\nشهابی"}))
        assert bad_campaign.status_code == 400
        assert "name[fa] contains a line break in a one-line field" in \
            bad_campaign.json()["error"]

        # The group's profile: the display name lost its ZWNJ to a space before.
        profile = await api.patch("/api/v1/groups/vahed", json={
            "display_name": f"سندیکای کارگران شرکت واحد{ZWNJ}ها",
            "summary": f"{SORANI}\r\n{ARABIC}",
            "links": [{"name": f"وب{ZWNJ}سایت", "url": "https://vahed.example/"}]})
        assert profile.status_code == 200, profile.text
        actor = await _doc(live_node.url("/groups/vahed"))
        assert actor["name"] == f"سندیکای کارگران شرکت واحد{ZWNJ}ها"
        assert SORANI in actor["summary"] and ARABIC in actor["summary"]
        assert actor["attachment"][0]["name"] == f"وب{ZWNJ}سایت"
        bad_profile = await api.patch("/api/v1/groups/vahed",
                                      json={"display_name": "Vahed\x08"})
        assert bad_profile.status_code == 400
        assert "display name contains a control character (U+0008)" in \
            bad_profile.json()["error"]

        # A note.
        note = await api.post("/api/v1/groups/vahed/notes",
                              json={"text": f"{PERSIAN_TITLE}\n{GERMAN}"})
        assert note.status_code == 201, note.text
        assert PERSIAN_TITLE in (await _doc(note.json()["id"]))["content"]
        bad_note = await api.post("/api/v1/groups/vahed/notes", json={"text": "a\x1fb"})
        assert bad_note.status_code == 400 and "U+001F" in bad_note.json()["error"]

    async with await _client(live_node, admin) as api:
        network = await api.post("/api/v1/networks", json={
            "name": "mena", "display_name": f"شبکه{ZWNJ}ی همبستگی", "language": "fa",
            "summary": SORANI})
        assert network.status_code == 201, network.text
        assert (await _doc(network.json()["id"]))["name"] == f"شبکه{ZWNJ}ی همبستگی"
        bad_network = await api.post("/api/v1/networks", json={
            "name": "mena2", "display_name": "x\u202ey"})
        assert bad_network.status_code == 400 and "U+202E" in bad_network.json()["error"]


async def test_workspace_drafts_keep_zwnj_take_crlf_and_refuse_control_characters(
        live_node: LiveNode) -> None:
    from sqlmodel import select

    from node.storage.models import Draft, NewsItem
    from tests.workspace_helpers import form_token, logged_in, make_user

    await operations.create_group(live_node.node, "haft", display_name="هفت تپه",
                                  language="fa")
    await make_user(live_node, "sara", groups=("haft",))
    async with logged_in(live_node, "sara") as sara:
        token = await form_token(sara)
        typed = {"csrf": token, "languages": "fa ckb", "language": "fa",
                 "title_fa": PERSIAN_TITLE, "text_fa": "بند یکم\r\n\r\nبند دوم",
                 "title_ckb": SORANI, "text_ckb": SORANI, "action": "draft"}
        refused = await sara.post("/admin/groups/haft/news/new",
                                  data={**typed, "title_ckb": "ناونیشان\x07"})
        assert refused.status_code == 400
        assert "draft.versions.ckb.title contains a control character (U+0007)" \
            in refused.text
        assert PERSIAN_TITLE in refused.text  # what was typed is still in the form
        saved = await sara.post("/admin/groups/haft/news/new", data=typed)
        assert saved.status_code == 303, saved.text
        async with live_node.node.db.read() as session:
            draft = (await session.exec(select(Draft))).one()
        assert draft.body["versions"]["fa"] == {"title": PERSIAN_TITLE,
                                                "text": "بند یکم\n\nبند دوم"}
        published = await sara.post(f"/admin/groups/haft/drafts/{draft.id}/publish",
                                    data={"csrf": token})
        assert published.status_code == 303, published.text
    async with live_node.node.db.read() as session:
        item = (await session.exec(select(NewsItem))).one()
    assert item.versions["fa"]["title"] == PERSIAN_TITLE
    assert item.versions["ckb"]["title"] == SORANI
