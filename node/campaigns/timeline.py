"""Timeline entries: a dated update with its sources, in one or more languages.

Pure validation. An entry comes from an editor of the owning group (CLI, API)
or from a co-owner's node (``coowners.on_create_update``); both pass here.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from node.campaigns.dossier import CampaignError, day, language, plain, sources_of

MAX_ENTRY = 5000
MAX_TIMELINE = 500
ENTRY_FIELDS = frozenset({"date", "language", "text", "versions", "sources"})


def parse_entry(data: Any, default_language: str, *, today: date) -> dict[str, Any]:
    """``{"date", "text" | "versions": {lang: text}, "sources"}`` → a stored entry."""
    if not isinstance(data, dict):
        raise CampaignError("a timeline update must be a JSON object")
    unknown = set(data) - ENTRY_FIELDS
    if unknown:
        raise CampaignError(f"unknown field {sorted(unknown)[0]!r}")
    when = day(data.get("date", today.isoformat()), "date", today=today)
    versions: dict[str, str] = {}
    if data.get("text") is not None:
        lang = language(data.get("language", default_language), "language")
        versions[lang] = plain(data["text"], "text", MAX_ENTRY)
    raw = data.get("versions", {})
    if not isinstance(raw, dict) or len(raw) > 20:
        raise CampaignError("versions must be an object of language → text")
    for tag, text in raw.items():
        versions[language(tag, "versions")] = plain(text, f"versions[{tag}]", MAX_ENTRY)
    if not versions:
        raise CampaignError("a timeline update needs text (text or versions)")
    return {"date": when.isoformat(), "versions": versions,
            "sources": sources_of(data.get("sources"))}


def status_entry(text: str | None, lang: str, when: date) -> dict[str, Any] | None:
    if text is None:
        return None
    return {"date": when.isoformat(), "versions": {lang: plain(text, "note", MAX_ENTRY)},
            "sources": []}
