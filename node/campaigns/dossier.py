"""A campaign's dossier as editors send it: the JSON shape and its validation (issue 16).

Pure: no database, no network. ``parse_dossier`` checks a whole dossier (API body,
CLI ``--json``); ``status.py`` checks changes of status against the detention
record. Texts are per language like news items (node/news/items.py: the same
language tags, Markdown for the story, plain text elsewhere); the shape is in
README.md ("Campaigns") and schemas/campaign.schema.json describes what goes out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from node.core import characters
from node.news import items
from node.news.items import NewsError

VISIBILITIES = ("public", "name_withheld", "network_only")
STATUSES = ("detained", "on_trial", "sentenced", "on_bail", "released", "died_in_custody")
# Per-language plain texts of the dossier; ``story`` is Markdown.
TEXT_FIELDS = ("trade", "workplace", "organisation", "city", "arrest_place", "charges",
               "court", "sentence", "prison", "health")
# Shown only when the person agreed (``public_fields``): where someone can be found.
CONSENT_FIELDS = frozenset({"photo", "workplace", "city", "arrest_place", "prison"})
DOSSIER_FIELDS = frozenset({"language", "country", "visibility", "network", "name", "versions",
                            "arrested_on", "status", "released_on", "photo", "public_fields",
                            "act", "sources"})
VERSION_FIELDS = frozenset({*TEXT_FIELDS, "story"})
ACT_FIELDS = frozenset({"petition", "addresses", "hashtag"})
MAX_NAME = 200
MAX_FIELD = 2000
MAX_STORY = 50_000
MAX_ADDRESSES = 10
MAX_ADDRESS = 600


class CampaignError(ValueError):
    """Invalid campaign input; the message names the field."""


@dataclass
class Dossier:
    language: str
    names: dict[str, str]  # language/script tag → full name, as the person writes it
    versions: dict[str, dict[str, str]]  # language → {field: text}
    arrested_on: date
    status: str = "detained"
    released_on: date | None = None
    country: str | None = None
    visibility: str = "public"
    network: str | None = None
    photo: dict[str, Any] | None = None  # {"media", "alt": {lang: text}}
    public_fields: list[str] = field(default_factory=list)
    act: dict[str, Any] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)

    def as_data(self) -> dict[str, Any]:
        """What the ``campaign.data`` column keeps (dates and status live elsewhere)."""
        return {"names": self.names, "versions": self.versions, "photo": self.photo,
                "public_fields": self.public_fields, "act": self.act, "sources": self.sources}


def _wrap(exc: NewsError) -> CampaignError:
    return CampaignError(str(exc))


def language(tag: Any, where: str) -> str:
    try:
        return items.language(tag, where)
    except NewsError as exc:
        raise _wrap(exc) from exc


def plain(value: Any, where: str, limit: int, *, multiline: bool = True) -> str:
    """Plain text, no markup meaning (escaped when shown), under the one character
    rule of every text (node/core/characters.py)."""
    if not isinstance(value, str) or not value.strip():
        raise CampaignError(f"{where} must be non-empty text")
    try:
        text = characters.check(value.strip(), where, multiline=multiline)
    except characters.CharacterError as exc:
        raise CampaignError(str(exc)) from exc
    if len(text) > limit:
        raise CampaignError(f"{where} is longer than {limit} characters")
    return text


def day(value: Any, where: str, *, today: date) -> date:
    if not isinstance(value, str):
        raise CampaignError(f"{where} must be a date such as 2025-03-01")
    try:
        parsed = date.fromisoformat(value)
    except ValueError as exc:
        raise CampaignError(f"{where} must be a date such as 2025-03-01, "
                            f"got {value[:20]!r}") from exc
    if parsed > today:
        raise CampaignError(f"{where} {parsed.isoformat()} is in the future")
    return parsed


def status(value: Any) -> str:
    if not isinstance(value, str) or value not in STATUSES:
        raise CampaignError(f"status must be one of {', '.join(STATUSES)}, "
                            f"got {str(value)[:30]!r}")
    return value


def visibility(value: Any, network: Any) -> tuple[str, str | None]:
    if value not in VISIBILITIES:
        raise CampaignError(f"visibility must be one of {', '.join(VISIBILITIES)}")
    if value == "network_only":
        if network is None:
            raise CampaignError("network_only needs the network's actor URL (--network)")
        return value, http_url(network, "network")
    if network is not None:
        raise CampaignError("network is only for network_only campaigns")
    return str(value), None


def http_url(value: Any, where: str) -> str:
    try:
        return items.http_url(value, where)
    except NewsError as exc:
        raise _wrap(exc) from exc


def _names(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not value or len(value) > items.MAX_LANGUAGES:
        raise CampaignError("name must be an object of language/script tag → full name, "
                            'such as {"fa": "…", "en": "…"}')
    return {language(tag, "name"): plain(text, f"name[{tag}]", MAX_NAME, multiline=False)
            for tag, text in value.items()}


def _version(value: Any, lang: str) -> dict[str, str]:
    where = f"versions[{lang}]"
    if not isinstance(value, dict):
        raise CampaignError(f"{where} must be an object of field → text")
    unknown = set(value) - VERSION_FIELDS
    if unknown:
        raise CampaignError(f"{where}: unknown field {sorted(unknown)[0]!r}")
    out = {key: plain(text, f"{where}.{key}", MAX_FIELD)
           for key, text in value.items() if key != "story" and text is not None}
    story = value.get("story")
    if story is not None:
        if not isinstance(story, str) or len(story) > MAX_STORY:
            raise CampaignError(f"{where}.story must be Markdown of at most {MAX_STORY} "
                                "characters")
        if story.strip():
            out["story"] = plain(story, f"{where}.story", MAX_STORY)
    return out


def _photo(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("media"), str):
        raise CampaignError('photo must be {"media": <uploaded name>, "alt": {lang: text}}')
    alt = value.get("alt", {})
    if not isinstance(alt, dict):
        raise CampaignError("photo.alt must be an object of language → text")
    return {"media": value["media"][:100],
            "alt": {language(tag, "photo.alt"): plain(text, f"photo.alt[{tag}]", items.MAX_ALT)
                    for tag, text in alt.items()}}


def _act(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CampaignError('act must be {"petition": URL, "addresses": [...], "hashtag": …}')
    unknown = set(value) - ACT_FIELDS
    if unknown:
        raise CampaignError(f"act: unknown field {sorted(unknown)[0]!r}")
    out: dict[str, Any] = {}
    if value.get("petition") is not None:
        out["petition"] = http_url(value["petition"], "act.petition")
    addresses = value.get("addresses")
    if addresses is not None:
        if not isinstance(addresses, list) or len(addresses) > MAX_ADDRESSES:
            raise CampaignError(f"act.addresses must be a list of at most {MAX_ADDRESSES}")
        out["addresses"] = [plain(a, "act.addresses", MAX_ADDRESS) for a in addresses]
    if value.get("hashtag") is not None:
        try:
            (out["hashtag"],) = items.hashtags([value["hashtag"]])
        except NewsError as exc:
            raise _wrap(exc) from exc
    return out


def sources_of(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > items.MAX_SOURCES:
        raise CampaignError(f"sources must be a list of at most {items.MAX_SOURCES} URLs")
    return [http_url(url, "sources") for url in value]


def parse_dossier(data: Any, default_language: str, *, today: date) -> Dossier:
    """Validate a whole dossier; CampaignError names the first bad field."""
    if not isinstance(data, dict):
        raise CampaignError("a campaign must be a JSON object")
    unknown = set(data) - DOSSIER_FIELDS
    if unknown:
        raise CampaignError(f"unknown field {sorted(unknown)[0]!r}")
    primary = language(data.get("language", default_language), "language")
    names = _names(data.get("name"))
    raw_versions = data.get("versions", {})
    if not isinstance(raw_versions, dict) or len(raw_versions) > items.MAX_LANGUAGES:
        raise CampaignError(f"versions must be an object of language → fields "
                            f"(at most {items.MAX_LANGUAGES})")
    versions = {language(tag, "versions"): _version(value, tag)
                for tag, value in raw_versions.items()}
    versions.setdefault(primary, {})
    arrested = day(data.get("arrested_on"), "arrested_on", today=today)
    current = status(data.get("status", "detained"))
    released = None
    if data.get("released_on") is not None:
        released = day(data["released_on"], "released_on", today=today)
        if released < arrested:
            raise CampaignError(f"released_on {released.isoformat()} is before the arrest "
                                f"on {arrested.isoformat()}")
    if current in ("released", "on_bail", "died_in_custody") and released is None:
        raise CampaignError(f"status {current} needs released_on: the day detention ended")
    if current not in ("released", "on_bail", "died_in_custody") and released is not None:
        raise CampaignError(f"released_on is given but the status {current} means "
                            "still held")
    vis, network = visibility(data.get("visibility", "public"), data.get("network"))
    public_fields = data.get("public_fields", [])
    if not isinstance(public_fields, list) or not set(public_fields) <= CONSENT_FIELDS:
        raise CampaignError(f"public_fields may list {', '.join(sorted(CONSENT_FIELDS))}")
    try:
        country = items.country(data.get("country"))
        sources = sources_of(data.get("sources"))
    except NewsError as exc:
        raise _wrap(exc) from exc
    return Dossier(language=primary, names=names, versions=versions, arrested_on=arrested,
                   status=current, released_on=released, country=country, visibility=vis,
                   network=network, photo=_photo(data.get("photo")),
                   public_fields=sorted(set(public_fields)), act=_act(data.get("act")),
                   sources=sources)
