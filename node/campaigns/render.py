"""What a campaign looks like on the wire and on its page (FEDERATION.md, "Campaigns").

Pure. The document is an ``Article``: ``name`` is the person's name (initials
under ``name_withheld``), ``summary`` one readable line for Mastodon, which shows
an Article as name + summary + link ("Sentenced — 5 years — R. S., bus driver ·
in detention since 2025-03-01"), ``content`` the dossier, the story, the timeline and
"what you can do". The structured fields ride along as extension terms
(schemas/context.jsonld). Every text passes ``consent.redact`` first and every
consent-bound field ``consent.shown``.
"""

from __future__ import annotations

import html
from datetime import date
from typing import Any

from node.campaigns import consent
from node.campaigns.detention import days_in_detention
from node.campaigns.detention import held as detention_open
from node.campaigns.dossier import TEXT_FIELDS
from node.core.urls import Urls
from node.federation.vocabulary import tag_url
from node.news.items import render_markdown
from node.storage.models import Campaign

# Labels in the languages the groups write most; English for the rest.
STATUS_LABELS: dict[str, dict[str, str]] = {
    "en": {"detained": "Detained", "on_trial": "On trial", "sentenced": "Sentenced",
           "on_bail": "Released on bail", "released": "Released",
           "died_in_custody": "Died in custody"},
    "fa": {"detained": "در بازداشت", "on_trial": "در دادگاه", "sentenced": "محکوم شده",
           "on_bail": "آزاد با وثیقه", "released": "آزاد شده",
           "died_in_custody": "جان‌باخته در بازداشت"},
    "de": {"detained": "In Haft", "on_trial": "Vor Gericht", "sentenced": "Verurteilt",
           "on_bail": "Gegen Kaution frei", "released": "Freigelassen",
           "died_in_custody": "In Haft gestorben"},
}
WORDS: dict[str, dict[str, str]] = {
    "en": {"days": "days in detention", "since": "in detention since", "timeline": "Timeline",
           "act": "What you can do",
           "petition": "Sign the petition", "write": "Write to", "trade": "Trade",
           "workplace": "Workplace", "organisation": "Union or organisation", "city": "City",
           "arrest_place": "Place of arrest", "charges": "Charges", "court": "Court",
           "sentence": "Sentence", "prison": "Prison", "health": "Health",
           "arrested": "Arrested", "released": "Released"},
    "fa": {"days": "روز در بازداشت", "since": "در بازداشت از", "timeline": "گاه‌شمار",
           "act": "چه می‌توانید بکنید",
           "petition": "امضای طومار", "write": "نامه بنویسید به", "trade": "پیشه",
           "workplace": "محل کار", "organisation": "سندیکا یا تشکل", "city": "شهر",
           "arrest_place": "محل بازداشت", "charges": "اتهامات", "court": "دادگاه",
           "sentence": "حکم", "prison": "زندان", "health": "وضعیت سلامت",
           "arrested": "بازداشت", "released": "آزادی"},
}


def status_label(status: str, lang: str) -> str:
    return STATUS_LABELS.get(lang.split("-")[0], STATUS_LABELS["en"]).get(status, status)


def word(key: str, lang: str) -> str:
    return WORDS.get(lang.split("-")[0], WORDS["en"]).get(key, WORDS["en"][key])


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def fields(campaign: Campaign, lang: str) -> dict[str, str]:
    """The dossier's texts in ``lang`` (then the primary language), consent applied."""
    versions: dict[str, dict[str, str]] = campaign.data.get("versions", {})
    mine = versions.get(lang, {})
    fallback = versions.get(campaign.language, {})
    out = {}
    for key in TEXT_FIELDS:
        text = mine.get(key) or fallback.get(key)
        if text and consent.shown(campaign, key):
            out[key] = consent.redact(campaign, text)
    return out


def languages_of(campaign: Campaign) -> list[str]:
    versions = campaign.data.get("versions", {})
    return [campaign.language, *(k for k in versions if k != campaign.language)]


def summary_line(campaign: Campaign, lang: str, *, today: date) -> str:
    """"Sentenced — 5 years — R. S., bus driver · 412 days in detention"."""
    texts = fields(campaign, lang)
    head = status_label(campaign.status, lang)
    if campaign.status == "sentenced" and texts.get("sentence"):
        head = f"{head} — {texts['sentence']}"
    who = consent.display_name(campaign, lang)
    if texts.get("trade"):
        who = f"{who}, {texts['trade']}"
    return f"{head} — {who} · {days_phrase(campaign, lang, today=today)}"


def days_phrase(campaign: Campaign, lang: str, *, today: date) -> str:
    """"in detention since 2025-03-01" while held, "412 days in detention" once out.

    The stored document is rendered when the campaign changes, not every day: a
    count that grows daily would be wrong the next morning. While the person is
    held it says since when (readers count from ``detention``); the list and the
    feeds count the days when they are read."""
    record = campaign.detentions
    if detention_open(record):
        return f"{word('since', lang)} {record[-1]['arrested']}"
    return f"{days_in_detention(record, today=today)} {word('days', lang)}"


def timeline_html(campaign: Campaign, lang: str) -> str:
    entries = []
    for entry in sorted(campaign.timeline, key=lambda e: e["date"], reverse=True):
        texts = entry.get("versions", {})
        text = texts.get(lang) or next(iter(texts.values()), "")
        sources = " ".join(f'<a href="{html.escape(u)}" rel="nofollow noopener noreferrer">'
                           f"[{n}]</a>" for n, u in enumerate(entry.get("sources", []), 1))
        entries.append(f"<p><strong>{_esc(entry['date'])}</strong> "
                       f"{_esc(consent.redact(campaign, text))} {sources}".rstrip() + "</p>")
    if not entries:
        return ""
    return f"<h2>{_esc(word('timeline', lang))}</h2>" + "".join(entries)


def act_html(campaign: Campaign, lang: str, urls: Urls) -> str:
    act = consent.act(campaign)
    parts = []
    if act.get("petition"):
        parts.append(f'<p><a href="{html.escape(act["petition"])}" rel="nofollow noopener '
                     f'noreferrer">{_esc(word("petition", lang))}</a></p>')
    for address in act.get("addresses", []):
        lines = "<br>".join(_esc(line) for line in address.splitlines())
        parts.append(f"<p>{_esc(word('write', lang))}:<br>{lines}</p>")
    if act.get("hashtag"):
        tag = act["hashtag"]
        parts.append(f'<p><a href="{html.escape(tag_url(urls, tag))}" class="mention hashtag" '
                     f'rel="tag">#<span>{_esc(tag)}</span></a></p>')
    if not parts:
        return ""
    return f"<h2>{_esc(word('act', lang))}</h2>" + "".join(parts)


def content_html(campaign: Campaign, lang: str, urls: Urls, *, today: date) -> str:
    texts = fields(campaign, lang)
    lines = [f"<strong>{_esc(status_label(campaign.status, lang))}</strong> · "
             f"{_esc(days_phrase(campaign, lang, today=today))}"]
    for period in campaign.detentions:
        line = f"{_esc(word('arrested', lang))}: {period['arrested']}"
        if period.get("released"):
            line += f" · {_esc(word('released', lang))}: {period['released']}"
        lines.append(line)
    lines += [f"{_esc(word(key, lang))}: {_esc(text)}" for key, text in texts.items()]
    parts = ["<p>" + "<br>".join(lines) + "</p>"]
    story = (campaign.data.get("versions", {}).get(lang, {}).get("story")
             or campaign.data.get("versions", {}).get(campaign.language, {}).get("story"))
    if story:
        parts.append(render_markdown(consent.redact(campaign, story)))
    parts.append(timeline_html(campaign, lang))
    parts.append(act_html(campaign, lang, urls))
    return "".join(parts)


def photo_attachment(campaign: Campaign, urls: Urls) -> dict[str, Any] | None:
    photo = campaign.data.get("photo")
    if not photo or not consent.shown(campaign, "photo") or "path" not in photo:
        return None
    alt = consent.redact(campaign, photo.get("alt", {}).get(campaign.language, ""))
    image: dict[str, Any] = {"type": "Image", "mediaType": photo["media_type"],
                             "url": urls.media(photo["path"]), "name": alt}
    for key in ("blurhash", "width", "height"):
        if photo.get(key) is not None:
            image[key] = photo[key]
    return image


def structured(campaign: Campaign) -> dict[str, Any]:
    """The extension terms (schemas/context.jsonld); texts as language maps."""
    out: dict[str, Any] = {
        "campaignStatus": campaign.status,
        "consent": campaign.visibility,
        "detention": [dict(p) for p in campaign.detentions],
        "personName": consent.display_names(campaign),
    }
    for key in TEXT_FIELDS:
        by_lang = {lang: text for lang in languages_of(campaign)
                   if (text := fields(campaign, lang).get(key))}
        if by_lang:
            out[_term(key)] = by_lang
    act = consent.act(campaign)
    if act.get("petition"):
        out["petition"] = act["petition"]
    if act.get("addresses"):
        out["writeTo"] = act["addresses"]
    if campaign.country:
        out["country"] = campaign.country
    if campaign.data.get("sources"):
        out["sources"] = list(campaign.data["sources"])
    return out


def _term(key: str) -> str:
    """snake_case field → camelCase term (``arrest_place`` → ``arrestPlace``)."""
    head, *rest = key.split("_")
    return head + "".join(part.title() for part in rest)


def document_fields(campaign: Campaign, urls: Urls, self_url: str, *,
                    today: date) -> dict[str, Any]:
    """names, summaries, contents and extra for the campaign's LocalObject."""
    langs = languages_of(campaign)
    names = {lang: consent.display_name(campaign, lang) for lang in langs}
    summaries = {lang: _esc(summary_line(campaign, lang, today=today)) for lang in langs}
    contents = {lang: content_html(campaign, lang, urls, today=today) for lang in langs}
    extra: dict[str, Any] = {
        "mediaType": "text/html",
        "url": [{"type": "Link", "href": self_url, "mediaType": "text/html",
                 "hreflang": campaign.language, "rel": "canonical"}],
        **structured(campaign),
    }
    photo = photo_attachment(campaign, urls)
    if photo is not None:
        extra["attachment"] = [photo]
    tag = consent.act(campaign).get("hashtag")
    if tag:
        extra["tag"] = [{"type": "Hashtag", "name": f"#{tag}", "href": tag_url(urls, tag)}]
    return {"names": names, "summaries": summaries, "contents": contents, "extra": extra}


def note_fields(campaign: Campaign, entry: dict[str, Any], campaign_url: str,
                *, status_line: str | None = None) -> dict[str, Any]:
    """A timeline entry (or a status change) as a short Note from the group."""
    contents = {}
    for lang, text in entry.get("versions", {}).items():
        who = consent.display_name(campaign, lang)
        head = f"<p><strong>{_esc(who)}</strong> · {_esc(entry['date'])}</p>"
        body = f"<p>{_esc(consent.redact(campaign, text))}</p>"
        link = f'<p><a href="{html.escape(campaign_url)}">{html.escape(campaign_url)}</a></p>'
        contents[lang] = head + (f"<p>{_esc(status_line)}</p>" if status_line else "") \
            + body + link
    return {"contents": contents,
            "extra": {"context": campaign_url,
                      **({"sources": list(entry["sources"])} if entry.get("sources") else {})}}
