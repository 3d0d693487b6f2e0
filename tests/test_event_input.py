"""What goes into an Event: language tags, time zones, text that is read as HTML,
the command line's defaults and errors, and a fuzz test of both parsers."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.calls import operations as calls
from node.calls.events import EventError, check_remote_event, parse_input
from node.core import languages
from node.groups import operations
from tests.conftest import DatabaseFactory, LiveNode, cli_environment, run_cli
from tests.fediverse import FakeRemote, signed_post
from tests.fuzzing import examples
from tests.test_api import call
from tests.test_events import geneva_call

AS = {"Accept": "application/activity+json"}


# --- language tags ------------------------------------------------------------------


@pytest.mark.parametrize("tag", ["fa", "de", "ckb", "kmr", "en-GB", "sr-Latn", "zh-Hant-TW",
                                 "ar-001", "de-CH-1996"])
def test_real_language_tags_are_accepted(tag: str) -> None:
    assert languages.validate(tag) == tag


@pytest.mark.parametrize("tag", ["xx-invalid-tag", "xx", "en-QQQQ", "fa-", "en--GB",
                                 "x-private", "i-klingon", "EN", "", "de-CH-1996-1996-x-a-b",
                                 "fa\n", 3, None])
def test_invalid_language_tags_are_refused(tag: Any) -> None:
    with pytest.raises(languages.LanguageError, match="invalid language tag"):
        languages.validate(tag)


@pytest.mark.parametrize("override", [
    {"title": {"fa": "تجمع", "xx-invalid-tag": "x"}},
    {"text": {"xx-invalid-tag": "x"}, "title": {"fa": "تجمع"}},
    {"language": "xx-invalid-tag", "title": {"xx-invalid-tag": "x"}},
])
def test_event_maps_refuse_invalid_language_keys(override: dict[str, Any]) -> None:
    with pytest.raises(EventError, match="invalid language tag"):
        parse_input(geneva_call(**override), "fa")


async def test_api_refuses_invalid_language_tags_everywhere(live_node: LiveNode) -> None:
    admin = await operations.create_token(live_node.node, "admin")
    created = await call(live_node, "POST", "/api/v1/groups", admin,
                         json={"username": "x", "display_name": "X", "language": "xx-invalid-tag"})
    assert created.status_code == 400 and "invalid language tag" in created.json()["error"]
    await operations.create_group(live_node.node, "paris", display_name="Paris", language="fr")
    note = await call(live_node, "POST", "/api/v1/groups/paris/notes", admin,
                      json={"text": "salut", "lang": "xx-invalid-tag"})
    assert note.status_code == 400 and "invalid language tag" in note.json()["error"]
    event = await call(live_node, "POST", "/api/v1/groups/paris/events", admin,
                       json=geneva_call(language="fr", title={"fr": "Rassemblement",
                                                              "xx-invalid-tag": "x"}))
    assert event.status_code == 400 and "invalid language tag" in event.json()["error"]


# --- time zones -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Europe", "Africa", "Etc", "America/", "Europe/Zurich/"])
def test_a_tzdata_directory_is_not_a_timezone(name: str) -> None:
    with pytest.raises(EventError, match="timezone"):
        parse_input(geneva_call(timezone=name), "fa")
    with pytest.raises(EventError, match="timezone"):
        check_remote_event({"id": "https://x.example/e/1", "type": "Event", "name": "x",
                            "startTime": "2027-06-08T12:00:00Z", "timezone": name})


async def test_a_tzdata_directory_is_a_400_through_api_and_inbox(live_node: LiveNode,
                                                                 remote: FakeRemote) -> None:
    await operations.create_group(live_node.node, "kampagne", display_name="K", language="fa")
    token = await operations.create_token(live_node.node, "k", "kampagne")
    for name in ("Europe", "Africa", "Etc"):
        response = await call(live_node, "POST", "/api/v1/groups/kampagne/events", token,
                              json=geneva_call(timezone=name))
        assert response.status_code == 400 and "timezone" in response.json()["error"]
    mallory = remote.add_actor("mallory")
    event = {"id": remote.base + "/events/1", "type": "Event", "name": "x",
             "attributedTo": mallory.id, "startTime": "2027-06-08T12:00:00Z",
             "timezone": "Europe", "to": ["https://www.w3.org/ns/activitystreams#Public"]}
    create = remote.activity(mallory, "Create", event)
    response = await signed_post(f"{live_node.base_url}/inbox", create, mallory)
    assert response.status_code == 400 and b"timezone" in response.content


# --- the parsers only ever fail with EventError -------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
EVENT_KEYS = ["language", "title", "text", "start", "end", "timezone", "kind", "join_mode",
              "place", "online_url", "target", "hashtags", "contacts", "category", "flyer"]
REMOTE_KEYS = ["id", "type", "name", "startTime", "endTime", "timezone", "location", "content",
               "summary", "tag", "url", "attributedTo"]
TIMEZONES = st.sampled_from(["Europe", "Etc", "Europe/Zurich", "UTC", "Asia/Tehran", "", "..",
                             "Europe/Zurich/", "zone.tab", "tzdata.zi", "\x00"])


def _near_valid(keys: list[str], base: dict[str, Any]) -> Any:
    """Valid documents with some fields replaced by arbitrary JSON: reaches deep code."""
    return st.dictionaries(st.sampled_from(keys), JSON | TIMEZONES, max_size=5).map(
        lambda changes: {**base, **changes})


VALID_REMOTE = {"id": "https://x.example/e/1", "type": "Event", "name": "x",
                "startTime": "2027-06-08T12:00:00Z"}


@settings(max_examples=examples(1500), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.dictionaries(st.text(max_size=12), JSON, max_size=6),
                 _near_valid(EVENT_KEYS, geneva_call()),
                 TIMEZONES.map(lambda tz: geneva_call(timezone=tz))))
def test_parse_input_fails_only_with_event_error(data: dict[str, Any]) -> None:
    try:
        parse_input(data, "fa")
    except EventError:
        pass


@settings(max_examples=examples(1500), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.dictionaries(st.text(max_size=12), JSON, max_size=6),
                 _near_valid(REMOTE_KEYS, VALID_REMOTE)))
def test_check_remote_event_fails_only_with_event_error(obj: dict[str, Any]) -> None:
    try:
        check_remote_event(obj)
    except EventError:
        pass


# --- text that Mastodon reads as HTML ------------------------------------------------

HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.mark.parametrize("title", [HOSTILE, "a <b>bold</b> call", "&lt;script&gt;", "&amp;",
                                   "<!-- x -->"])
def test_titles_must_be_plain_text(title: str) -> None:
    with pytest.raises(EventError, match="plain text"):
        parse_input(geneva_call(title={"fa": title}), "fa")


def test_plain_titles_with_ampersands_and_angles_are_kept() -> None:
    data = parse_input(geneva_call(title={"fa": "R&D < Lohn > Profit"}), "fa")
    assert data.titles["fa"] == "R&D < Lohn > Profit"


async def test_summary_escapes_place_and_group_names(live_node: LiveNode) -> None:
    await operations.create_group(live_node.node, "k", display_name="Tom & <Jerry>",
                                  language="en")
    place = {"name": HOSTILE, "city": "Genève & Lausanne"}
    event_id = await calls.create_call(live_node.node, "k", geneva_call(
        language="en", title={"en": "Rally"}, text={"en": "Come"}, place=place))
    async with httpx.AsyncClient() as client:
        doc = (await client.get(event_id, headers=AS)).json()
        page = (await client.get(event_id)).text
    assert doc["mediaType"] == "text/html"
    for line in [doc["summary"], *doc["summaryMap"].values()]:
        assert "<img" not in line and "<Jerry>" not in line
        assert "&lt;img src=x onerror=alert(1)&gt;" in line
        assert "Genève &amp; Lausanne" in line and "Tom &amp; &lt;Jerry&gt;" in line
        # Read as HTML, the line says exactly what the editors wrote.
        assert HOSTILE in html.unescape(line)
    assert doc["name"] == "Rally" and doc["nameMap"] == {"en": "Rally"}
    # The HTML page shows the words once escaped, not twice.
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "&amp;lt;" not in page
    assert HOSTILE not in page


# --- the command line ---------------------------------------------------------------


@pytest.fixture
async def env(tmp_path: Path, databases: DatabaseFactory) -> dict[str, str]:
    return await cli_environment(tmp_path, databases)


run = run_cli


CALL_FLAGS = ["--start", "2027-06-08T12:00", "--timezone", "Europe/Zurich", "--city", "Genève"]


async def test_publish_call_files_title_and_text_in_the_groups_language(
        env: dict[str, str], tmp_path: Path) -> None:
    assert run(env, "group", "create", "kampagne", "--display-name", "K",
               "--language", "fa").returncode == 0
    published = run(env, "publish", "call", "kampagne", "--title", "تجمع", "--text", "بیایید",
                    *CALL_FLAGS)
    assert published.returncode == 0, published.stderr
    event_id = published.stdout.strip()
    edited = run(env, "edit", "call", event_id, "--title", "تجمع بزرگ", *CALL_FLAGS)
    assert edited.returncode == 0, edited.stderr
    from node.storage.db import Database
    from node.storage.models import LocalObject

    db = Database(env["HAMBASTEGI_DATABASE_URL"])
    try:
        async with db.read() as session:
            from sqlmodel import select

            obj = (await session.exec(select(LocalObject))).one()
    finally:
        await db.dispose()
    assert obj.language == "fa" and obj.names == {"fa": "تجمع بزرگ"}


@pytest.mark.parametrize("content, message", [
    (None, "cannot read"),
    (b"\xff\xfe\x00garbage", "not UTF-8"),
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "expected a JSON object"),
    (b'{"title": "a string"}', "title must be an object"),
    (b"[" * 100_000, "nested too deeply"),
])
async def test_publish_call_json_errors_are_one_line(env: dict[str, str], tmp_path: Path,
                                                     content: bytes | None,
                                                     message: str) -> None:
    assert run(env, "group", "create", "kampagne", "--display-name", "K",
               "--language", "fa").returncode == 0
    path = tmp_path / "call.json"
    if content is not None:
        path.write_bytes(content)
    result = run(env, "publish", "call", "kampagne", "--json", str(path))
    assert result.returncode == 1
    assert result.stderr.startswith("hambastegi: --json") and message in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1


async def test_publish_call_json_from_a_directory_is_one_line(env: dict[str, str],
                                                              tmp_path: Path) -> None:
    assert run(env, "group", "create", "k", "--display-name", "K", "--language", "fa"
               ).returncode == 0
    result = run(env, "publish", "call", "k", "--json", str(tmp_path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("hambastegi: --json: cannot read")


def test_event_json_example_is_plain(tmp_path: Path) -> None:
    # geneva_call() stays valid under the stricter rules (titles are plain text).
    parse_input(json.loads(json.dumps(geneva_call())), "fa")
