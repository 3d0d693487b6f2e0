"""Consent: who may see a campaign, and what of it they see (issue 16, point 2).

Three levels, per campaign:
- ``public``: everything the editors marked public;
- ``name_withheld``: the same, but the person is named by initials only, in every
  text the node renders (content, summary, alt texts, notes, pages, feeds); the
  campaign's URL never held a name (``/objects/<uuid>``);
- ``network_only``: for the member nodes of one network only. Networks are not
  built yet, so this fails closed: such a campaign has no public object, is sent
  to nobody and is 404 to every request. ``may_see`` and ``audience`` are the two
  places to open when networks land (the member nodes' signed GETs, member
  delivery); nothing else decides it.

Per field: the photo and exact places (``CONSENT_FIELDS``) are shown only when
listed in ``public_fields``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from node.campaigns.dossier import CONSENT_FIELDS
from node.storage.models import Campaign


@dataclass(frozen=True)
class Addressing:
    """Where a campaign's activities go."""

    to_public: bool
    to_followers: bool


def may_see(campaign: Campaign, requester: str | None) -> bool:
    """Whether ``requester`` (the actor a signed GET verified as, None when unsigned)
    may read the campaign. ``network_only``: nobody yet (fail closed)."""
    if campaign.withdrawn_at is not None:
        return False
    return campaign.visibility in ("public", "name_withheld")


def audience(campaign: Campaign) -> Addressing | None:
    """How the campaign and its Notes are addressed; None: sent to nobody."""
    if campaign.withdrawn_at is not None or campaign.visibility == "network_only":
        return None
    return Addressing(to_public=True, to_followers=True)


def shown(campaign: Campaign, field_name: str) -> bool:
    """A field of ``CONSENT_FIELDS`` only when marked public; other fields always."""
    if field_name not in CONSENT_FIELDS:
        return True
    return field_name in campaign.data.get("public_fields", [])


# A word of a name; the zero-width (non-)joiner belongs to Persian words ("شهابی‌زاده").
WORD_RE = re.compile(r"[\w\u200c\u200d]+")


def initials_of(name: str) -> str:
    """"Reza Shahabi" → "R. S."; "رضا شهابی" → "ر. ش."."""
    return " ".join(f"{word[0]}." for word in WORD_RE.findall(name)) or "…"


def display_names(campaign: Campaign) -> dict[str, str]:
    """How the person is named, per language/script tag."""
    names: dict[str, str] = campaign.data.get("names", {})
    if campaign.visibility == "public":
        return dict(names)
    return {tag: initials_of(name) for tag, name in names.items()}


def display_name(campaign: Campaign, lang: str) -> str:
    names = display_names(campaign)
    return names.get(lang) or names.get(campaign.language) or next(iter(names.values()), "…")


def _words(campaign: Campaign) -> list[tuple[str, str]]:
    """(word of the name, its initial), longest first, for every spelling."""
    pairs: dict[str, str] = {}
    for name in campaign.data.get("names", {}).values():
        pairs[name] = initials_of(name)
        for word in WORD_RE.findall(name):
            if len(word) >= 2:
                pairs[word] = f"{word[0]}."
    return sorted(pairs.items(), key=lambda kv: -len(kv[0]))


def redact(campaign: Campaign, text: str) -> str:
    """Under ``name_withheld``, the name in any spelling given becomes initials.

    Editors write stories and updates by hand; a full name typed into one must not
    slip out, so every text passes here before it is rendered. Whole words only,
    case-insensitive."""
    if campaign.visibility == "public" or not text:
        return text
    for word, initial in _words(campaign):
        pattern = rf"(?<![\w\u200c\u200d]){re.escape(word)}(?![\w\u200c\u200d])"
        text = re.sub(pattern, initial, text, flags=re.IGNORECASE)
    return text


def redact_all(campaign: Campaign, value: Any) -> Any:
    """``redact`` through nested JSON (texts per language, lists)."""
    if isinstance(value, str):
        return redact(campaign, value)
    if isinstance(value, dict):
        return {k: redact_all(campaign, v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_all(campaign, v) for v in value]
    return value
