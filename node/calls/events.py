"""Action calls, meetings and conferences: one Event model (issue 3).

The federated shape uses the names Mobilizon, Gancio and FEP-8a8e readers
import (``startTime``, ``endTime``, ``timezone``, ``location`` Place with a
PostalAddress, ``status``/``ical:status``, ``joinMode``, ``participantCount``,
``organizers``, ``contacts``, ``inLanguage``). Mastodon shows an Event as
name + summary + link only (INTEROP.md), so ``summary`` is a one-line human
text in each language: when (in the event's timezone), where, who signs.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from node.core import calendars, characters, languages
from node.core.text import html_to_plain, plain_to_html, sanitise_html
from node.core.urls import Urls
from node.federation.vocabulary import (
    AS_CONTEXT,
    EXTENSION_TERMS,
    MULTIKEY_CONTEXT,
    SECURITY_CONTEXT,
    iso,
)
from node.storage.models import Event, LocalActor, LocalObject

KINDS = ("action", "meeting", "conference")
STATUSES = ("scheduled", "postponed", "cancelled")
JOIN_MODES = ("free", "restricted", "invite", "external")
MAX_TITLE = 300
MAX_TEXT = 50_000
MAX_LANGUAGES = 20
MAX_HASHTAGS = 20
HASHTAG_RE = re.compile(r"^[^\W_][\w]{0,99}$")  # a letter or digit first; Mastodon needs a letter

EVENT_TERMS: dict[str, Any] = {
    **EXTENSION_TERMS,
    "ical": "http://www.w3.org/2002/12/cal/ical#",
    "mz": "https://joinmobilizon.org/ns#",
    "sc": "http://schema.org#",
    "hb": "https://hambastegi.org/ns#",
    "Hashtag": "as:Hashtag",
    "PostalAddress": "sc:PostalAddress",
    "VirtualLocation": "sc:VirtualLocation",
    "address": {"@id": "sc:address", "@type": "sc:PostalAddress"},
    "streetAddress": "sc:streetAddress",
    "postalCode": "sc:postalCode",
    "addressLocality": "sc:addressLocality",
    "addressRegion": "sc:addressRegion",
    "addressCountry": "sc:addressCountry",
    "timezone": {"@id": "mz:timezone", "@type": "sc:Text"},
    "joinMode": {"@id": "mz:joinMode", "@type": "mz:joinModeType"},
    "participantCount": {"@id": "mz:participantCount", "@type": "sc:Number"},
    "isOnline": {"@id": "mz:isOnline", "@type": "sc:Boolean"},
    "contacts": {"@id": "mz:contacts", "@type": "@id"},
    "status": {"@id": "ical:status", "@type": "ical:status"},
    "eventStatus": {"@id": "sc:eventStatus", "@type": "@id"},
    "inLanguage": "sc:inLanguage",
    "category": "sc:category",
    "organizers": {"@id": "hb:organizers", "@type": "@id"},
    "targetInstitution": "hb:targetInstitution",
    "eventKind": "hb:eventKind",
}
EVENT_CONTEXT: list[Any] = [AS_CONTEXT, SECURITY_CONTEXT, MULTIKEY_CONTEXT, EVENT_TERMS]

SCHEMA_STATUS = {
    "scheduled": "https://schema.org/EventScheduled",
    "postponed": "https://schema.org/EventRescheduled",
    "cancelled": "https://schema.org/EventCancelled",
}
ICAL_STATUS = {"scheduled": "CONFIRMED", "postponed": "CONFIRMED", "cancelled": "CANCELLED"}

# The few words the summary line needs, per language; English otherwise.
WORDS: dict[str, dict[str, str]] = {
    "en": {"postponed": "POSTPONED", "cancelled": "CANCELLED",
           "online": "online", "with": "with",
           "previously": "previously"},
    "fa": {"postponed": "به تعویق افتاد", "cancelled": "لغو شد",
           "online": "آنلاین", "with": "با امضای",
           "previously": "زمان پیشین"},
    "ar": {"postponed": "تأجيل", "cancelled": "إلغاء",
           "online": "عبر الإنترنت", "with": "بتوقيع",
           "previously": "الموعد السابق"},
    "ckb": {"postponed": "دواخرا", "cancelled": "هەڵوەشایەوە",
            "online": "ئۆنلاین", "with": "لەگەڵ",
            "previously": "کاتی پێشوو"},
    "de": {"postponed": "VERSCHOBEN", "cancelled": "ABGESAGT",
           "online": "online", "with": "mit",
           "previously": "bisher"},
    "fr": {"postponed": "REPORTÉ", "cancelled": "ANNULÉ",
           "online": "en ligne", "with": "avec",
           "previously": "initialement"},
    "tr": {"postponed": "ERTELENDİ", "cancelled": "İPTAL",
           "online": "çevrimiçi", "with": "ile",
           "previously": "önceki tarih"},
    "sv": {"postponed": "UPPSKJUTET", "cancelled": "INSTÄLLT",
           "online": "online", "with": "med",
           "previously": "tidigare"},
}


class EventError(ValueError):
    """Invalid event data; the message says which field and why."""


@dataclass
class EventInput:
    """An event as an editor describes it (CLI flags or API JSON)."""

    language: str
    titles: dict[str, str]
    texts: dict[str, str]
    start: datetime
    timezone: str
    kind: str = "action"
    end: datetime | None = None
    place: dict[str, Any] | None = None
    online_url: str | None = None
    target: str | None = None
    hashtags: list[str] = field(default_factory=list)
    contacts: list[dict[str, str]] = field(default_factory=list)
    join_mode: str = "external"
    category: str | None = None
    flyer: dict[str, Any] | None = None


def zone(name: object) -> ZoneInfo:
    if not isinstance(name, str) or not 0 < len(name) <= 64 or ".." in name:
        raise EventError("timezone must be an IANA name like Europe/Zurich")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        # OSError: a tzdata directory such as "Europe" or "Etc" opens as a
        # directory, not as a zone file.
        raise EventError(f"unknown timezone {name!r} (expected an IANA name like "
                         "Europe/Zurich)") from exc


def parse_time(value: Any, tz: ZoneInfo, field_name: str) -> datetime:
    """ISO 8601; a time without an offset is wall-clock time in the event's zone."""
    if not isinstance(value, str) or len(value) > 40:
        raise EventError(f"{field_name} must be an ISO 8601 date-time")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise EventError(f"{field_name} is not an ISO 8601 date-time: {value!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    if not 1900 <= parsed.year <= 2200:
        raise EventError(f"{field_name} is out of range")
    return parsed.astimezone(UTC)


# What an HTML parser would read as markup rather than text: a tag, comment or
# doctype opener. Character references are caught by comparing with html.unescape.
MARKUP_RE = re.compile(r"<[A-Za-z/!?]")


def plain_text(value: str, field_name: str) -> str:
    """Refuse text that means something else when read as HTML.

    ActivityStreams says ``name`` is plain text, and Mobilizon and Gancio show
    it as such, but Mastodon puts an Event's name into HTML as it is (INTEROP.md).
    Text with no tags and no character references reads the same both ways:
    ``R&D`` and ``a < b`` stay, ``<img …>`` and ``&amp;`` are refused."""
    if MARKUP_RE.search(value) or html.unescape(value) != value:
        raise EventError(f"{field_name} must be plain text: no HTML tags or character "
                         "references such as &amp;")
    return value


def chars(value: str, field_name: str, *, multiline: bool = False) -> str:
    """The one character rule of every text (node/core/characters.py) as an EventError."""
    try:
        return characters.check(value, field_name, multiline=multiline)
    except characters.CharacterError as exc:
        raise EventError(str(exc)) from exc


def _texts(value: Any, field_name: str, limit: int, *, required: bool,
           plain: bool = False) -> dict[str, str]:
    if value is None and not required:
        return {}
    if isinstance(value, str):
        raise EventError(f"{field_name} must be an object of language → text")
    if not isinstance(value, dict) or (required and not value):
        raise EventError(f"{field_name} must be an object of language → text")
    if len(value) > MAX_LANGUAGES:
        raise EventError(f"{field_name}: at most {MAX_LANGUAGES} languages")
    out: dict[str, str] = {}
    for lang, text in value.items():
        try:
            languages.validate(lang)
        except languages.LanguageError as exc:
            raise EventError(f"{field_name}: {exc}") from exc
        if not isinstance(text, str) or not text.strip():
            raise EventError(f"{field_name}[{lang}] must be non-empty text")
        if len(text) > limit:
            raise EventError(f"{field_name}[{lang}] is longer than {limit} characters")
        # Titles (plain) are one line; texts may have many.
        text = chars(text.strip(), f"{field_name}[{lang}]", multiline=not plain)
        if plain:
            plain_text(text, f"{field_name}[{lang}]")
        out[str(lang)] = text
    return out


def _place(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, list):
        raise EventError("place must be one place, not a list")
    if not isinstance(value, dict):
        raise EventError("place must be an object")
    place: dict[str, Any] = {}
    for key in ("name", "street", "postcode", "city", "region", "country"):
        item = value.get(key)
        if item is not None:
            if not isinstance(item, str) or len(item) > 300:
                raise EventError(f"place.{key} must be text of at most 300 characters")
            place[key] = chars(item.strip(), f"place.{key}")
    if not place.get("name") and not place.get("city"):
        raise EventError("place needs at least a name or a city")
    for key, bound in (("latitude", 90.0), ("longitude", 180.0)):
        item = value.get(key)
        if item is not None:
            if isinstance(item, bool) or not isinstance(item, int | float) or abs(item) > bound:
                raise EventError(f"place.{key} must be a number within ±{bound:g}")
            place[key] = float(item)
    if ("latitude" in place) != ("longitude" in place):
        raise EventError("place needs both latitude and longitude, or neither")
    return place


def _http_url(value: Any, field_name: str) -> str:
    if not isinstance(value, str) or not value.startswith(("https://", "http://")) \
            or len(value) > 2048 or any(c.isspace() for c in value):
        raise EventError(f"{field_name} must be an http(s) URL")
    return value


def parse_input(data: dict[str, Any], default_language: str) -> EventInput:
    """Validate an editor's event description (the API body and the CLI build the same)."""
    language = data.get("language", default_language)
    try:
        languages.validate(language)
    except languages.LanguageError as exc:
        raise EventError(str(exc)) from exc
    titles = _texts(data.get("title"), "title", MAX_TITLE, required=True, plain=True)
    if language not in titles:
        raise EventError(f"title needs a version in the event's language ({language})")
    texts = _texts(data.get("text"), "text", MAX_TEXT, required=False)
    tz_name = data.get("timezone")
    tz = zone(tz_name)
    start = parse_time(data.get("start"), tz, "start")
    end = parse_time(data["end"], tz, "end") if data.get("end") is not None else None
    if end is not None and end < start:
        raise EventError("end is before start")
    if end is not None and end - start > timedelta(days=31):
        raise EventError("an event lasts at most 31 days")
    kind = data.get("kind", "action")
    if kind not in KINDS:
        raise EventError(f"kind must be one of {', '.join(KINDS)}")
    join_mode = data.get("join_mode", "external" if kind == "action" else "free")
    if join_mode not in JOIN_MODES:
        raise EventError(f"join_mode must be one of {', '.join(JOIN_MODES)}")
    place = _place(data.get("place"))
    online = data.get("online_url")
    online_url = _http_url(online, "online_url") if online is not None else None
    if place is None and online_url is None:
        raise EventError("an event needs a place or an online_url")
    target = data.get("target")
    if target is not None and (not isinstance(target, str) or len(target) > 300):
        raise EventError("target must be text of at most 300 characters")
    if isinstance(target, str):
        target = chars(target, "target")
    hashtags = data.get("hashtags", [])
    if not isinstance(hashtags, list) or len(hashtags) > MAX_HASHTAGS:
        raise EventError(f"hashtags must be a list of at most {MAX_HASHTAGS}")
    tags: list[str] = []
    for tag in hashtags:
        name = tag.lstrip("#") if isinstance(tag, str) else ""
        if not HASHTAG_RE.fullmatch(name) or not any(c.isalpha() for c in name):
            raise EventError(f"hashtag {tag!r} must be letters/digits with at least one letter")
        tags.append(name)
    contacts = data.get("contacts", [])
    if not isinstance(contacts, list) or len(contacts) > 10:
        raise EventError("contacts must be a list of at most 10 {name, url}")
    links = []
    for contact in contacts:
        if not isinstance(contact, dict) or not isinstance(contact.get("name"), str):
            raise EventError("each contact needs a name and a url")
        links.append({"name": chars(contact["name"][:100].strip(), "contact name"),
                      "url": _http_url(contact.get("url"), "contact url")})
    category = data.get("category")
    if category is not None and (not isinstance(category, str) or len(category) > 64):
        raise EventError("category must be short text")
    if isinstance(category, str):
        category = chars(category, "category")
    flyer = data.get("flyer")
    if flyer is not None and (not isinstance(flyer, dict)
                              or not isinstance(flyer.get("media"), str)):
        raise EventError("flyer must be {\"media\": <uploaded name>, \"alt\": text}")
    flyer_alt = (chars(str(flyer.get("alt", ""))[:1500].strip(), "flyer.alt", multiline=True)
                 if isinstance(flyer, dict) else "")
    return EventInput(
        language=str(language), titles=titles, texts=texts, start=start, timezone=str(tz_name),
        kind=kind, end=end, place=place, online_url=online_url,
        target=target.strip() if isinstance(target, str) else None, hashtags=tags,
        contacts=links, join_mode=join_mode, category=category,
        flyer={"media": flyer["media"], "alt": flyer_alt}
        if isinstance(flyer, dict) else None,
    )


# --- the federated document ---------------------------------------------------------


def local_time(dt: datetime, tz_name: str) -> datetime:
    return dt.astimezone(ZoneInfo(tz_name))


def format_when(dt: datetime, tz_name: str, language: str) -> str:
    """When, in the call's own time zone and the reader's calendar and digits
    (Solar Hijri beside the Gregorian date in Persian: node/core/calendars.py)."""
    return f"{calendars.format_datetime(dt, language, tz_name)} ({isolate(tz_name)})"


def place_text(event: Event, language: str) -> str:
    if event.place:
        parts = [event.place.get(k) for k in ("name", "city", "country")]
        return ", ".join(p for p in parts if p)
    return WORDS.get(language, WORDS["en"])["online"]


def isolate(text: str) -> str:
    """Unicode bidi isolation (FSI … PDI): a Latin name inside Persian text, or a
    Persian name inside German text, keeps its own direction and order."""
    return f"\u2068{text}\u2069"


def summary_line(event: Event, language: str, organizer_names: list[str]) -> str:
    """What Mastodon users read: status, when, where, who signs (plain text)."""
    words = WORDS.get(language.split("-")[0], WORDS["en"])
    parts = []
    if event.status in ("postponed", "cancelled"):
        parts.append(words[event.status])
    parts.append(format_when(event.start_time, event.timezone, language))
    parts.append(isolate(place_text(event, language)))
    if organizer_names:
        parts.append(f"{words['with']} " + ", ".join(isolate(n) for n in organizer_names))
    return " · ".join(parts)


def summary_lines(event: Event, obj: LocalObject, organizer_names: list[str]
                  ) -> dict[str, str]:
    """The summary line in each language of the call, as plain text (pages escape it)."""
    languages = list(obj.names) or [obj.language]
    return {lang: summary_line(event, lang, organizer_names) for lang in languages}


def summaries(event: Event, obj: LocalObject, organizer_names: list[str]) -> dict[str, str]:
    """The summary lines as HTML (the Event's mediaType): Mastodon shows ``summary``
    as markup, so a ``<`` or ``&`` in a place or group name must be escaped."""
    return {lang: html.escape(line, quote=False)
            for lang, line in summary_lines(event, obj, organizer_names).items()}


# Join modes whose online link is for accepted participants only (DESIGN.md,
# safety defaults): the link never enters a public object, page or calendar;
# participants get it in a private Note (participation.py).
PRIVATE_LINK_MODES = ("restricted", "invite")


def link_is_private(event: Event) -> bool:
    return event.online_url is not None and event.join_mode in PRIVATE_LINK_MODES


def public_online_url(event: Event) -> str | None:
    """The online link as the public may see it: None for a closed meeting."""
    return None if link_is_private(event) else event.online_url


def _location(event: Event) -> dict[str, Any] | None:
    if event.place:
        place: dict[str, Any] = {"type": "Place", "name": event.place.get("name")
                                 or event.place.get("city")}
        address = {"type": "PostalAddress"}
        for ours, theirs in (("street", "streetAddress"), ("postcode", "postalCode"),
                             ("city", "addressLocality"), ("region", "addressRegion"),
                             ("country", "addressCountry")):
            if event.place.get(ours):
                address[theirs] = event.place[ours]
        place["address"] = address
        if "latitude" in event.place:
            place["latitude"] = event.place["latitude"]
            place["longitude"] = event.place["longitude"]
        return place
    if public_online_url(event):
        return {"type": "VirtualLocation", "url": event.online_url}
    return None  # a closed online meeting: isOnline says so, the link stays private


def event_document(
    obj: LocalObject, event: Event, actor: LocalActor, urls: Urls, *,
    organizers: list[tuple[str, str]], participant_count: int, with_context: bool = True,
) -> dict[str, Any]:
    """The Event as published. ``organizers`` = [(actor id, display name)], author first."""
    object_id = urls.object(obj.uuid)
    author = urls.actor(actor.username)
    names = [name for _, name in organizers]
    lines = summaries(event, obj, names)
    lang = obj.language
    title = obj.names.get(lang) or next(iter(obj.names.values()))
    doc: dict[str, Any] = {"@context": EVENT_CONTEXT} if with_context else {}
    doc.update({
        "id": object_id,
        "type": "Event",
        # One actor on the event's own host: Mastodon reads only the first,
        # Mobilizon drops arrays (INTEROP.md).
        "attributedTo": author,
        "name": title,
        "nameMap": {lang: title, **{k: v for k, v in obj.names.items() if k != lang}},
        "summary": lines.get(lang),
        "summaryMap": {lang: lines[lang], **{k: v for k, v in lines.items() if k != lang}},
        "mediaType": "text/html",
        "startTime": iso_local(event.start_time, event.timezone),
        "timezone": event.timezone,
        "status": ICAL_STATUS[event.status],
        "ical:status": ICAL_STATUS[event.status],
        "eventStatus": SCHEMA_STATUS[event.status],
        "eventKind": event.kind,
        "joinMode": event.join_mode,
        "participantCount": participant_count,
        "organizers": object_id + "/organizers",
        "contacts": [uri for uri, _ in organizers],
        "inLanguage": lang,
        "isOnline": event.place is None and event.online_url is not None,
        "url": object_id,
        "published": iso(obj.published),
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
        "cc": [urls.followers(actor.username)],
        "commentsEnabled": False,
    })
    if obj.contents:
        content = obj.contents.get(lang) or next(iter(obj.contents.values()))
        doc["content"] = content
        doc["contentMap"] = {lang: content,
                             **{k: v for k, v in obj.contents.items() if k != lang}}
    if event.end_time is not None:
        doc["endTime"] = iso_local(event.end_time, event.timezone)
    if obj.updated is not None:
        doc["updated"] = iso(obj.updated)
    location = _location(event)
    if location is not None:
        doc["location"] = location
    if event.target:
        doc["targetInstitution"] = event.target
    if event.category:
        doc["category"] = event.category
    if event.hashtags:
        doc["tag"] = [{"type": "Hashtag", "name": f"#{t}",
                       "href": f"{urls.base}/tags/{t.lower()}"} for t in event.hashtags]
    attachments: list[dict[str, Any]] = []
    if event.flyer:
        # The image first: Gancio's Update reads attachment[0]; every
        # attachment carries a mediaType or Gancio crashes (INTEROP.md).
        flyer: dict[str, Any] = {"type": "Document", "mediaType": event.flyer["media_type"],
                                 "url": urls.media(event.flyer["path"]),
                                 "name": event.flyer.get("alt") or title}
        # What Mastodon reads beside url and name (media_attachment_parser.rb):
        # a blurhash placeholder and the focal point it crops around; width and
        # height let readers reserve the space. Flyers stored before these
        # were recorded go without them.
        for key in ("blurhash", "width", "height", "focalPoint"):
            if event.flyer.get(key) is not None:
                flyer[key] = event.flyer[key]
        attachments.append(flyer)
    online_url = public_online_url(event)
    if online_url:
        attachments.append({"type": "Link", "mediaType": "text/html", "name": "Website",
                            "href": online_url})
    for link in event.contact_links:
        attachments.append({"type": "PropertyValue", "name": link["name"],
                            "value": f'<a href="{html.escape(link["url"])}">'
                                     f'{html.escape(link["url"])}</a>'})
    if attachments:
        doc["attachment"] = attachments
    return doc


def iso_local(dt: datetime, tz_name: str) -> str:
    """xsd:dateTime with the event's own offset (readers show local time)."""
    return local_time(dt, tz_name).isoformat(timespec="seconds")


def contents_from(texts: dict[str, str]) -> dict[str, str]:
    return {lang: plain_to_html(text) for lang, text in texts.items()}


# --- remote events (what other servers send us) -----------------------------------------


def check_remote_event(obj: dict[str, Any]) -> dict[str, Any]:
    """Validate and sanitise an Event from another server, or raise EventError."""
    name = obj.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 1000:
        raise EventError("Event needs a name of at most 1000 characters")
    tz_name = obj.get("timezone")
    tz = zone(tz_name) if tz_name is not None else ZoneInfo("UTC")
    start = parse_time(obj.get("startTime"), tz, "startTime")
    end = parse_time(obj["endTime"], tz, "endTime") if obj.get("endTime") is not None else None
    if end is not None and end < start:
        raise EventError("endTime is before startTime")
    location = obj.get("location")
    if isinstance(location, list):
        raise EventError("location must be one Place, not an array")
    if location is not None and not isinstance(location, dict | str):
        raise EventError("location must be a Place")
    if isinstance(location, dict):
        for key in ("latitude", "longitude"):
            value = location.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value,
                                                                              int | float)):
                raise EventError(f"location.{key} must be a number")
    content = obj.get("content")
    if content is not None and (not isinstance(content, str) or len(content) > 200_000):
        raise EventError("content must be HTML of at most 200,000 characters")
    tags = obj.get("tag", [])
    if isinstance(tags, list) and len(tags) > 100:
        raise EventError("at most 100 tags")
    clean: dict[str, Any] = {
        "id": obj.get("id"), "type": "Event", "attributedTo": obj.get("attributedTo"),
        "name": html_to_plain(name)[:1000], "startTime": start.isoformat(),
        "endTime": end.isoformat() if end else None, "timezone": tz_name,
        "url": obj.get("url") if isinstance(obj.get("url"), str) else None,
    }
    if isinstance(content, str):
        clean["content"] = sanitise_html(content)
    summary = obj.get("summary")
    if isinstance(summary, str):
        clean["summary"] = html_to_plain(summary)[:2000]
    if isinstance(location, dict):
        clean["location"] = {k: location.get(k) for k in ("type", "name", "latitude",
                                                           "longitude", "address", "url")
                             if k in location}
    return clean
