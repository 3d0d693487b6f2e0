"""Events: validation of what editors send, the federated shape, iCalendar."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import icalendar
import jsonschema
import pytest

from node.calls import operations as calls
from node.calls.events import EVENT_TERMS, EventError, check_remote_event, parse_input
from node.groups import operations
from tests.conftest import LiveNode

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
AS = {"Accept": "application/activity+json"}


def schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / name).read_text())


def geneva_call(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "language": "fa",
        "title": {"fa": "تجمع اعتراضی در برابر سازمان جهانی کار",
                  "de": "Protestkundgebung vor der ILO", "en": "Protest in front of the ILO"},
        "text": {"fa": "از همه حامیان آزادی کارگران دعوت می‌کنیم.",
                 "de": "Wir rufen alle auf.", "en": "We call on everyone."},
        "start": "2027-06-08T12:00", "end": "2027-06-08T15:00", "timezone": "Europe/Zurich",
        "place": {"name": "Place des Nations", "street": "Avenue de la Paix",
                  "postcode": "1202", "city": "Genève", "country": "CH",
                  "latitude": 46.2225, "longitude": 6.1403},
        "target": "International Labour Organization (ILO)",
        "hashtags": ["ILO", "WorkersRights"],
    }
    body.update(overrides)
    return body


def test_context_file_defines_every_extension_term() -> None:
    context = json.loads((SCHEMAS / "context.jsonld").read_text())["@context"]
    assert context == EVENT_TERMS


def test_local_time_is_read_in_the_event_timezone() -> None:
    data = parse_input(geneva_call(), "fa")
    assert data.start == datetime(2027, 6, 8, 10, 0, tzinfo=UTC)  # CEST = UTC+2
    assert data.end == datetime(2027, 6, 8, 13, 0, tzinfo=UTC)


@pytest.mark.parametrize("override, message", [
    ({"start": None}, "start"),
    ({"start": "next tuesday"}, "start"),
    ({"end": "2027-06-08T11:00"}, "end is before start"),
    ({"end": "2027-08-08T11:00"}, "31 days"),
    ({"timezone": "Mars/Olympus"}, "unknown timezone"),
    ({"timezone": "../../etc/passwd"}, "timezone"),
    ({"place": [{"city": "Genève"}]}, "not a list"),
    ({"place": {"city": "Genève", "latitude": 200, "longitude": 1}}, "latitude"),
    ({"place": {"city": "Genève", "latitude": 46.2}}, "both latitude"),
    ({"place": None}, "place or an online_url"),
    ({"online_url": "javascript:alert(1)"}, "online_url"),
    ({"title": {"de": "nur deutsch"}}, "event's language"),
    ({"title": "a string"}, "language → text"),
    ({"title": {"fa": "x" * 301}}, "longer than"),
    ({"title": {f"l{i:02d}"[:3]: "x" for i in range(30)}}, "languages"),
    ({"kind": "party"}, "kind"),
    ({"join_mode": "anyone"}, "join_mode"),
    ({"hashtags": ["123"]}, "hashtag"),
    ({"hashtags": ["#a b"]}, "hashtag"),
    ({"hashtags": ["x"] * 30}, "at most"),
    ({"start": "0001-01-01T00:00"}, "out of range"),
])
def test_bad_event_input_is_refused_with_a_reason(override: dict[str, Any], message: str) -> None:
    with pytest.raises(EventError, match=message):
        parse_input(geneva_call(**override), "fa")


@pytest.mark.parametrize("obj, message", [
    ({"name": "x"}, "startTime"),
    ({"name": "x", "startTime": "yesterday"}, "startTime"),
    ({"name": "x", "startTime": "2027-06-08T12:00:00Z", "endTime": "2027-06-08T11:00:00Z"},
     "before"),
    ({"name": "x", "startTime": "2027-06-08T12:00:00Z", "timezone": "Nowhere/City"},
     "unknown timezone"),
    ({"name": "x", "startTime": "2027-06-08T12:00:00Z", "location": [{"type": "Place"}]},
     "array"),
    ({"name": "x" * 5000, "startTime": "2027-06-08T12:00:00Z"}, "name"),
    ({"name": "x", "startTime": "2027-06-08T12:00:00Z", "content": "x" * 300_000}, "content"),
    ({"name": "x", "startTime": "2027-06-08T12:00:00Z",
      "location": {"type": "Place", "latitude": "46"}}, "number"),
])
def test_hostile_remote_events_are_refused(obj: dict[str, Any], message: str) -> None:
    with pytest.raises(EventError, match=message):
        check_remote_event({"id": "https://x.example/e/1", "type": "Event", **obj})


def test_remote_event_html_is_sanitised() -> None:
    clean = check_remote_event({
        "id": "https://x.example/e/1", "type": "Event", "name": "<b>Demo</b>",
        "startTime": "2027-06-08T12:00:00+02:00", "timezone": "Europe/Zurich",
        "content": '<p onclick="x()">Komm<script>alert(1)</script></p>'})
    assert clean["name"] == "Demo"
    assert "script" not in clean["content"] and "onclick" not in clean["content"]


async def _group(live: LiveNode, name: str = "kampagne", language: str = "fa") -> None:
    await operations.create_group(live.node, name, display_name="کارزار فعالین", language=language)


async def test_event_document_validates_and_reads_well_on_mastodon(live_node: LiveNode) -> None:
    await _group(live_node)
    event_id = await calls.create_call(live_node.node, "kampagne", geneva_call())
    async with httpx.AsyncClient() as client:
        doc = (await client.get(event_id, headers=AS)).json()
    jsonschema.validate(doc, schema("event.schema.json"))
    assert doc["id"] == event_id and doc["attributedTo"] == live_node.node.urls.actor("kampagne")
    assert next(iter(doc["nameMap"])) == "fa" and doc["inLanguage"] == "fa"
    assert doc["startTime"] == "2027-06-08T12:00:00+02:00"
    assert doc["timezone"] == "Europe/Zurich"
    assert doc["location"]["address"]["addressLocality"] == "Genève"
    assert doc["location"]["latitude"] == 46.2225
    assert doc["status"] == "CONFIRMED" and doc["joinMode"] == "external"
    assert doc["contacts"] == [live_node.node.urls.actor("kampagne")]
    assert doc["targetInstitution"].startswith("International Labour")
    # The one line Mastodon shows: when in Geneva time, where, who signs.
    # Persian readers: Solar Hijri with Persian digits, the Gregorian date beside it.
    assert "۱۲:۰۰" in doc["summary"] and "Europe/Zurich" in doc["summary"]
    assert "۱۸ خرداد ۱۴۰۶" in doc["summary"] and "(۸ ژوئن ۲۰۲۷)" in doc["summary"]
    assert "Place des Nations" in doc["summary"] and "کارزار فعالین" in doc["summary"]
    assert "Juni" in doc["summaryMap"]["de"] and "June" in doc["summaryMap"]["en"]
    organizers = (await httpx.AsyncClient().get(doc["organizers"], headers=AS)).json()
    assert organizers["orderedItems"] == [live_node.node.urls.actor("kampagne")]


async def test_postponing_updates_time_ics_and_posts_a_note(live_node: LiveNode) -> None:
    await _group(live_node, "hamburg", "de")
    event_id = await calls.create_call(live_node.node, "hamburg",
                                       geneva_call(language="de"))
    await calls.change_status(live_node.node, event_id, "postponed",
                              start="2027-06-15T18:30")
    async with httpx.AsyncClient() as client:
        doc = (await client.get(event_id, headers=AS)).json()
        ics = await client.get(event_id + "/calendar.ics")
        group_ics = await client.get(live_node.node.urls.actor("hamburg") + "/calendar.ics")
        outbox = (await client.get(live_node.node.urls.outbox("hamburg") + "?page=1",
                                   headers=AS)).json()
    assert doc["startTime"] == "2027-06-15T18:30:00+02:00"
    assert doc["endTime"] == "2027-06-15T21:30:00+02:00"  # same length as before
    assert doc["summary"].startswith("VERSCHOBEN")
    assert ics.headers["content-type"].startswith("text/calendar")
    for body in (ics.content, group_ics.content):
        cal = icalendar.Calendar.from_ical(body)
        (vevent,) = cal.walk("VEVENT")
        start = vevent.decoded("dtstart")
        assert start == datetime(2027, 6, 15, 18, 30, tzinfo=ZoneInfo("Europe/Zurich"))
        assert str(vevent["dtstart"].params["TZID"]) == "Europe/Zurich"
        assert int(vevent["sequence"]) == 1
        assert cal.walk("VTIMEZONE")[0]["tzid"] == "Europe/Zurich"
        assert vevent.decoded("geo") is not None
    types = [(a["type"], a["object"]["type"]) for a in outbox["orderedItems"]]
    assert types[:2] == [("Create", "Note"), ("Update", "Event")]
    note = outbox["orderedItems"][0]["object"]
    jsonschema.validate(note, schema("note.schema.json"))
    assert note["context"] == event_id and "VERSCHOBEN" in note["content"]


async def test_cancelled_event_shows_as_cancelled_in_calendars(live_node: LiveNode) -> None:
    await _group(live_node)
    event_id = await calls.create_call(live_node.node, "kampagne", geneva_call())
    await calls.change_status(live_node.node, event_id, "cancelled")
    async with httpx.AsyncClient() as client:
        doc = (await client.get(event_id, headers=AS)).json()
        ics = await client.get(event_id + "/calendar.ics")
    assert doc["status"] == "CANCELLED" and doc["eventStatus"].endswith("EventCancelled")
    (vevent,) = icalendar.Calendar.from_ical(ics.content).walk("VEVENT")
    assert str(vevent["status"]) == "CANCELLED"


async def test_flyer_upload_strips_gps_and_comes_first(live_node: LiveNode,
                                                       tmp_path: Path) -> None:
    from PIL import Image

    exif = Image.Exif()
    exif[0x8825] = {2: (46.0, 12.0, 0.0), 1: "N"}  # GPSInfo
    exif[0x010F] = "PhoneMaker"
    original = tmp_path / "flyer.jpg"
    Image.new("RGB", (64, 48), "red").save(original, exif=exif)
    assert Image.open(original).getexif().get(0x8825)
    name = await operations.upload_media(live_node.node, original.read_bytes())
    stored = live_node.node.settings.media_dir / "uploads" / name
    with Image.open(stored) as clean:
        assert not clean.getexif() and "exif" not in clean.info
    assert "flyer" not in name
    await _group(live_node)
    event_id = await calls.create_call(
        live_node.node, "kampagne", geneva_call(flyer={"media": name, "alt": "فراخوان"},
                                                online_url="https://stream.example/live"))
    async with httpx.AsyncClient() as client:
        doc = (await client.get(event_id, headers=AS)).json()
        image = await client.get(doc["attachment"][0]["url"])
    assert doc["attachment"][0]["mediaType"] == "image/jpeg"
    assert all("mediaType" in a for a in doc["attachment"] if a["type"] != "PropertyValue")
    assert image.status_code == 200 and image.content == stored.read_bytes()
    jsonschema.validate(doc, schema("event.schema.json"))


async def test_uploads_refuse_what_is_not_an_image(live_node: LiveNode) -> None:
    for data in (b"not an image", b"GIF89a" + b"\x00" * 10, b"%PDF-1.4"):
        with pytest.raises(operations.OperationError):
            await operations.upload_media(live_node.node, data)
    async with httpx.AsyncClient() as client:
        response = await client.get(live_node.url("/media/uploads/..%2F..%2Fkeys.png"))
    assert response.status_code == 404


async def test_status_note_speaks_every_language_of_the_call_and_names_the_old_date(
        live_node: LiveNode) -> None:
    await _group(live_node)
    event_id = await calls.create_call(live_node.node, "kampagne", geneva_call())
    await calls.change_status(live_node.node, event_id, "postponed", start="2027-06-15T18:30")
    await calls.change_status(live_node.node, event_id, "cancelled")
    async with httpx.AsyncClient() as client:
        outbox = (await client.get(live_node.node.urls.outbox("kampagne") + "?page=1",
                                   headers=AS)).json()
    cancelled, postponed = [a["object"] for a in outbox["orderedItems"]
                            if a["object"]["type"] == "Note"]
    for note in (postponed, cancelled):
        jsonschema.validate(note, schema("note.schema.json"))
        assert list(note["contentMap"]) == ["fa", "de", "en"]  # primary first
        assert note["content"] == note["contentMap"]["fa"]
        assert "Protestkundgebung vor der ILO" in note["contentMap"]["de"]
        assert "Protest in front of the ILO" in note["contentMap"]["en"]
    assert "VERSCHOBEN" in postponed["contentMap"]["de"]
    assert "POSTPONED" in postponed["contentMap"]["en"]
    # The new time, and the time it replaces, in each reader's language.
    assert "15. Juni 2027, 18:30" in postponed["contentMap"]["de"]
    assert "bisher: <del>Dienstag, 8. Juni 2027, 12:00" in postponed["contentMap"]["de"]
    assert "previously: <del>Tuesday, June 8, 2027, 12:00" in postponed["contentMap"]["en"]
    assert "زمان پیشین" in postponed["contentMap"]["fa"]
    assert "۱۸ خرداد ۱۴۰۶" in postponed["contentMap"]["fa"]  # the old date, Solar Hijri
    assert "ABGESAGT" in cancelled["contentMap"]["de"] and "<del>" not in cancelled["content"]
