"""What a Join says about the applying group: the network's public directory entry.

A Join may carry ``location`` (a ``Place`` whose ``address`` names
``addressLocality`` and ``addressCountry``) and ``inLanguage`` (BCP 47 tags);
the name comes from the group's actor document. Anything oversized or
malformed refuses the whole application: a directory shown to the public says
nothing the applicant did not say plainly (FEDERATION.md, "Networks").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from node.core import languages
from node.core.text import plain_name

MAX_CITY = 100
MAX_NAME = 200
MAX_LANGUAGES = 10
COUNTRY_RE = re.compile(r"^[A-Z]{2}$")


class DirectoryError(ValueError):
    """The application's directory fields are unusable; the message says why."""


@dataclass(frozen=True)
class Entry:
    city: str | None = None
    country: str | None = None
    languages: list[str] = field(default_factory=list)


def city(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_CITY:
        raise DirectoryError(f"a city is text of at most {MAX_CITY} characters")
    return plain_name(value) or None


def country(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not COUNTRY_RE.fullmatch(value.upper()):
        raise DirectoryError("a country is an ISO 3166-1 alpha-2 code, e.g. IR")
    return value.upper()


def language_list(value: Any) -> list[str]:
    tags = [value] if isinstance(value, str) else value
    if tags is None:
        return []
    if not isinstance(tags, list) or len(tags) > MAX_LANGUAGES:
        raise DirectoryError(f"languages: at most {MAX_LANGUAGES} BCP 47 tags")
    try:
        return list(dict.fromkeys(languages.validate(tag) for tag in tags))
    except languages.LanguageError as exc:
        raise DirectoryError(str(exc)) from exc


def from_join(join: dict[str, Any]) -> Entry:
    """The entry a Join asks for; ``DirectoryError`` if any part is unusable."""
    place = join.get("location")
    address: Any = None
    if place is not None:
        if not isinstance(place, dict):
            raise DirectoryError("location is one Place")
        address = place.get("address")
        if address is not None and not isinstance(address, dict):
            raise DirectoryError("location.address is one PostalAddress")
    address = address or {}
    return Entry(city=city(address.get("addressLocality")),
                 country=country(address.get("addressCountry")),
                 languages=language_list(join.get("inLanguage")))


def to_join(entry: Entry) -> dict[str, Any]:
    """The Join's extra fields for ``entry`` (the inverse of ``from_join``)."""
    extra: dict[str, Any] = {}
    if entry.city or entry.country:
        address = {"type": "PostalAddress"}
        if entry.city:
            address["addressLocality"] = entry.city
        if entry.country:
            address["addressCountry"] = entry.country
        extra["location"] = {"type": "Place", "name": entry.city or entry.country,
                             "address": address}
    if entry.languages:
        extra["inLanguage"] = entry.languages
    return extra


def display_name(name: str | None, fallback: str) -> str:
    shown = plain_name(name or "") or fallback
    return shown[:MAX_NAME]
