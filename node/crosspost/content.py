"""What a post says, read from the public ActivityPub document the node published
(the snapshot in ``crosspost_item.document``), for every outside service alike.

Reading the public document, not the rows behind it, means a service gets exactly what
the fediverse got: consent redaction, closed meetings' links and drafts are already
decided there (federation/crosspost_log.py says which documents qualify).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from html.parser import HTMLParser
from typing import Any

# Blocks of sanitised HTML (core/text.py's allowlist) that start a new paragraph.
BLOCKS = frozenset({"p", "div", "blockquote", "ul", "ol", "li", "h1", "h2", "h3", "h4",
                    "h5", "h6", "pre", "figure", "section"})


@dataclass(frozen=True)
class Image:
    url: str
    alt: str
    media_type: str


@dataclass(frozen=True)
class Post:
    """A post for outside services: ``title`` and ``facts`` (a call's when, where,
    target) as plain text; ``body`` as sanitised HTML paragraphs; ``link`` to the
    post's page on the node."""

    kind: str  # news | call | note
    language: str
    title: str
    facts: list[str]
    body: list[str]
    link: str
    images: list[Image] = field(default_factory=list)
    hashtags: list[str] = field(default_factory=list)


def _first(mapping: Any, fallback: Any = "") -> tuple[str, str]:
    """(language, value) of a *Map's first entry: the post's own language first
    (docs/ARCHITECTURE.md §5)."""
    if isinstance(mapping, dict):
        for key, value in mapping.items():
            if isinstance(key, str) and isinstance(value, str):
                return key, value
    return "", fallback if isinstance(fallback, str) else ""


def _link(doc: dict[str, Any]) -> str:
    url = doc.get("url")
    if isinstance(url, str) and url.startswith(("https://", "http://")):
        return url
    if isinstance(url, list):
        for item in url:
            if isinstance(item, dict) and item.get("rel") == "canonical":
                href = item.get("href")
                if isinstance(href, str):
                    return href
    ident = doc.get("id")
    return ident if isinstance(ident, str) else ""


def when_text(start: str | None, end: str | None) -> str:
    """'2026-12-12 14:00-16:00 (UTC+01:00)' from ISO times written in the event's own
    zone (calls/events.py writes them so), without converting them to ours."""
    try:
        first = datetime.fromisoformat(start) if start else None
        last = datetime.fromisoformat(end) if end else None
    except ValueError:
        return ""
    if first is None:
        return ""
    text = first.strftime("%Y-%m-%d %H:%M")
    if last is not None:
        text += "-" + (last.strftime("%H:%M") if last.date() == first.date()
                       else last.strftime("%Y-%m-%d %H:%M"))
    offset = first.strftime("%z")
    if offset:
        text += f" (UTC{offset[:3]}:{offset[3:]})"
    return text


def _place(location: Any) -> str:
    if isinstance(location, list):
        location = location[0] if location else None
    if not isinstance(location, dict):
        return ""
    parts = [location.get("name")]
    address = location.get("address")
    if isinstance(address, dict):
        parts += [address.get("streetAddress"), address.get("addressLocality")]
    elif isinstance(address, str):
        parts.append(address)
    seen: list[str] = []
    for part in parts:
        if isinstance(part, str) and part.strip() and part.strip() not in seen:
            seen.append(part.strip())
    return ", ".join(seen)


class _Paragraphs(HTMLParser):
    """Sanitised HTML → a list of HTML paragraphs (blocks become separate entries)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.out: list[str] = []
        self._current: list[str] = []

    def _flush(self) -> None:
        text = "".join(self._current).strip()
        if re.sub(r"<[^>]*>", "", text).strip():
            self.out.append(text)
        self._current = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in BLOCKS:
            self._flush()
            if tag == "li":
                self._current.append("• ")
            return
        self._current.append(self.get_starttag_text() or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in BLOCKS:
            self._flush()
            return
        self._current.append(f"</{tag}>")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._current.append(self.get_starttag_text() or "")

    def handle_data(self, data: str) -> None:
        self._current.append(data)

    def handle_entityref(self, name: str) -> None:
        self._current.append(f"&{name};")

    def handle_charref(self, name: str) -> None:
        self._current.append(f"&#{name};")


def paragraphs(html_text: str) -> list[str]:
    parser = _Paragraphs()
    parser.feed(html_text)
    parser.close()
    parser._flush()
    return parser.out


def read_post(doc: dict[str, Any]) -> Post:
    """The post in ``doc`` (a Note, Article or Event document, as published)."""
    kind = {"Event": "call", "Article": "news"}.get(str(doc.get("type")), "note")
    lang, title = _first(doc.get("nameMap"), doc.get("name"))
    content_lang, content = _first(doc.get("contentMap"), doc.get("content"))
    language = lang or content_lang or str(doc.get("language") or "")
    facts: list[str] = []
    if kind == "call":
        when = when_text(doc.get("startTime"), doc.get("endTime"))
        place = _place(doc.get("location"))
        target = doc.get("targetInstitution")
        facts = [fact for fact in (when, place, target if isinstance(target, str) else "")
                 if fact]
    body = paragraphs(content)
    if kind == "call" and not body:
        _, summary = _first(doc.get("summaryMap"), doc.get("summary"))
        body = paragraphs(summary)
    images = []
    for item in doc.get("attachment") or []:
        if not isinstance(item, dict) or item.get("type") not in ("Image", "Document"):
            continue
        media_type = str(item.get("mediaType") or "")
        url = item.get("url")
        if media_type.startswith("image/") and isinstance(url, str):
            alt = item.get("name")
            images.append(Image(url, alt if isinstance(alt, str) else "", media_type))
    hashtags = [str(tag["name"]).lstrip("#") for tag in doc.get("tag") or []
                if isinstance(tag, dict) and tag.get("type") == "Hashtag"
                and isinstance(tag.get("name"), str)]
    return Post(kind=kind, language=language, title=title.strip(), facts=facts, body=body,
                link=_link(doc), images=images, hashtags=hashtags)
