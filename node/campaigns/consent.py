"""Consent: who may see a campaign, and what of it they see (issue 16, point 2).

Three levels, per campaign:
- ``public``: everything the editors marked public;
- ``name_withheld``: the same, but the person is named by initials only, in every
  text the node renders (content, summary, alt texts, notes, pages, feeds); the
  campaign's URL never held a name (``/objects/<uuid>``);
- ``network_only``: for the member nodes of one network (``campaign.network``)
  only. No public object: a document under its own id (``network_uuid``) is
  rendered on demand, delivered to the member nodes' inboxes addressed to the
  network's ``members`` collection (never ``as:Public``, never the followers),
  and served only to a signed GET from an actor on a member node or on the
  network's node; 404 to everyone else (node/campaigns/network_copy.py, the
  roster in node/networks/roster.py). The owning group must be a member.

``may_see`` (reads), ``is_public`` and ``members_network`` (deliveries) decide it;
nothing else does.

Per field: the photo and exact places (``CONSENT_FIELDS``) are shown only when
listed in ``public_fields``.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlsplit

from node.campaigns.dossier import CONSENT_FIELDS
from node.storage.models import Campaign


def is_public(campaign: Campaign) -> bool:
    """Whether anyone may read it, unsigned: then it has a public object, and its
    activities go to the public and the group's followers."""
    return campaign.withdrawn_at is None and campaign.visibility in ("public", "name_withheld")


def may_see(campaign: Campaign, requester: str | None, *,
            member_hosts: frozenset[str] = frozenset()) -> bool:
    """Whether ``requester`` (the actor a signed GET verified as, None when unsigned)
    may read the campaign. ``network_only``: an actor on one of ``member_hosts``
    (the nodes of the network's members and the network's own node,
    ``roster.Roster.hosts``): a member group or a member node's instance actor."""
    if campaign.withdrawn_at is not None:
        return False
    if campaign.visibility == "network_only":
        return requester is not None and campaign.network is not None \
            and urlsplit(requester).netloc.lower() in member_hosts
    return is_public(campaign)


def members_network(campaign: Campaign) -> str | None:
    """The network (actor URL) whose members alone receive the campaign: set only
    for a ``network_only`` campaign not withdrawn."""
    if campaign.withdrawn_at is not None or campaign.visibility != "network_only":
        return None
    return campaign.network


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
    if campaign.visibility != "name_withheld":  # public, or the network's members only
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
    if campaign.visibility != "name_withheld" or not text:
        return text
    for word, initial in _words(campaign):
        pattern = rf"(?<![\w\u200c\u200d]){re.escape(word)}(?![\w\u200c\u200d])"
        text = re.sub(pattern, initial, text, flags=re.IGNORECASE)
    return text


def names_person(campaign: Campaign, text: str) -> bool:
    """Whether ``text`` (a URL, a hashtag) holds a word of the name in any spelling
    given, case-insensitively and inside other words too ("FreeRezaShahabi",
    "/petition/reza-shahabi", percent-encoded Persian)."""
    if campaign.visibility == "public" or not text:
        return False
    haystack = unquote(text).casefold()
    return any(len(word) >= 3 and word.casefold() in haystack
               for word, _ in _words(campaign))


def act(campaign: Campaign) -> dict[str, Any]:
    """"What you can do" as it may be shown: addresses redacted; a petition link or a
    hashtag that names the person is left out under ``name_withheld`` (a link cannot
    be redacted without breaking it, and the issue's rule is initials everywhere)."""
    raw: dict[str, Any] = campaign.data.get("act", {})
    out: dict[str, Any] = {}
    for key in ("petition", "hashtag"):
        if raw.get(key) and not names_person(campaign, raw[key]):
            out[key] = raw[key]
    if raw.get("addresses"):
        out["addresses"] = [redact(campaign, a) for a in raw["addresses"]]
    return out


def redact_all(campaign: Campaign, value: Any) -> Any:
    """``redact`` through nested JSON (texts per language, lists)."""
    if isinstance(value, str):
        return redact(campaign, value)
    if isinstance(value, dict):
        return {k: redact_all(campaign, v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_all(campaign, v) for v in value]
    return value
