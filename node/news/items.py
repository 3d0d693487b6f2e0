"""News items: versions per language, their validation, and what goes on the wire (issue 13).

An item holds one *version* per language (title, Markdown text, summary or
content warning, photo alt texts) and what all versions share (photos,
hashtags, source links, country, sectors). This module is pure: it validates
what an editor sends and renders the fields of the ActivityStreams object
(FEDERATION.md, "News items"); ``operations.py`` stores and sends them.

The Note/Article rule (FEDERATION.md): Mastodon shows a ``Note`` whole but an
``Article`` only as name + summary + link (INTEROP.md, "Posts"). So a document
is a ``Note`` when the version it presents as ``content`` has no title or a
text under ``NOTE_LIMIT`` characters, and an ``Article`` otherwise.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from node.core import characters, languages
from node.core.text import html_to_plain, sanitise_html
from node.core.urls import Urls
from node.federation.vocabulary import tag_url

MAX_TITLE = 300
MAX_TEXT = 50_000
MAX_SUMMARY = 1000
MAX_ALT = 1500
MAX_LANGUAGES = 20
MAX_PHOTOS = 4  # what Mastodon shows (INTEROP.md, "Posts")
MAX_HASHTAGS = 20
MAX_SOURCES = 10
MAX_SECTORS = 10
NOTE_LIMIT = 500  # characters of plain text: under it, a titled item is still a Note
EXCERPT = 280  # an Article without a summary gets this much of its text as summary
HASHTAG_RE = re.compile(r"^[^\W_]\w{0,99}$")
SECTOR_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
# Babel's territories include regions and groupings that are no country.
NOT_COUNTRIES = frozenset({"EU", "EZ", "UN", "QO", "ZZ", "XA", "XB"})
VERSION_FIELDS = frozenset({"title", "text", "summary", "alt"})
ITEM_FIELDS = frozenset({"language", "versions", "photos", "hashtags", "sources", "country",
                         "sectors"})


class NewsError(ValueError):
    """Invalid news input; the message names the field (and the language tag)."""


@dataclass
class Version:
    """One language's version as the editor wrote it (Markdown kept for later edits)."""

    text: str
    title: str | None = None
    summary: str | None = None

    def as_json(self) -> dict[str, str]:
        out = {"text": self.text}
        if self.title:
            out["title"] = self.title
        if self.summary:
            out["summary"] = self.summary
        return out


@dataclass
class NewsInput:
    language: str
    versions: dict[str, Version]
    # [{"media": upload name, "alt": {lang: text}}]
    photos: list[dict[str, Any]] = field(default_factory=list)
    hashtags: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    country: str | None = None
    sectors: list[str] = field(default_factory=list)


def language(tag: Any, where: str) -> str:
    if tag is None:
        raise NewsError(f"{where}: a language tag is required, such as fa, de or ckb")
    try:
        return languages.validate(tag)
    except languages.LanguageError as exc:
        raise NewsError(f"{where}: {exc}") from exc


def _text(value: Any, where: str, limit: int, *, required: bool,
          multiline: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise NewsError(f"{where} must be non-empty text")
    value = chars(value.strip(), where, multiline=multiline)
    if len(value) > limit:
        raise NewsError(f"{where} is longer than {limit} characters")
    return value or None


def chars(value: str, where: str, *, multiline: bool) -> str:
    """The one character rule of every text (node/core/characters.py) as a NewsError."""
    try:
        return characters.check(value, where, multiline=multiline)
    except characters.CharacterError as exc:
        raise NewsError(str(exc)) from exc


def parse_version(value: Any, lang: str) -> tuple[Version, list[str] | None]:
    """A version and its photo alt texts (in photo order), or NewsError."""
    where = f"versions[{lang}]"
    if not isinstance(value, dict):
        raise NewsError(f"{where} must be an object with text (and title, summary, alt)")
    unknown = set(value) - VERSION_FIELDS
    if unknown:
        raise NewsError(f"{where}: unknown field {sorted(unknown)[0]!r}")
    text = _text(value.get("text"), f"{where}.text", MAX_TEXT, required=True)
    assert text is not None
    if not html_to_plain(render_markdown(text)).strip():
        raise NewsError(f"{where}.text has no text left once HTML is cleaned")
    title = _text(value.get("title"), f"{where}.title", MAX_TITLE, required=False,
                  multiline=False)
    summary = _text(value.get("summary"), f"{where}.summary", MAX_SUMMARY, required=False)
    alts = value.get("alt")
    if alts is not None:
        if not isinstance(alts, list) or len(alts) > MAX_PHOTOS \
                or not all(isinstance(a, str) and len(a) <= MAX_ALT for a in alts):
            raise NewsError(f"{where}.alt must be a list of at most {MAX_PHOTOS} texts "
                            f"of at most {MAX_ALT} characters, one per photo")
        alts = [chars(a, f"{where}.alt[{i}]", multiline=True) for i, a in enumerate(alts)]
    return Version(text=text, title=title, summary=summary), alts


def country(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z]{2}", value) \
            or value.upper() in NOT_COUNTRIES or value.upper() not in _territories():
        raise NewsError(f"country must be an ISO 3166-1 alpha-2 code such as IR or TR, "
                        f"got {str(value)[:20]!r}")
    return value.upper()


@lru_cache(maxsize=1)
def _territories() -> frozenset[str]:
    from babel import Locale

    return frozenset(str(code) for code in Locale("en").territories if len(str(code)) == 2)


def _list(value: Any, where: str, limit: int) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > limit:
        raise NewsError(f"{where} must be a list of at most {limit}")
    return value


def http_url(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.startswith(("https://", "http://")) \
            or len(value) > 2048 or any(c.isspace() or not c.isprintable() for c in value):
        raise NewsError(f"{where} must be an http(s) URL")
    return value


def parse_input(data: Any, default_language: str) -> NewsInput:
    """Validate a whole item as an editor sends it (API body, CLI --json or flags)."""
    if not isinstance(data, dict):
        raise NewsError("a news item must be a JSON object")
    unknown = set(data) - ITEM_FIELDS
    if unknown:
        raise NewsError(f"unknown field {sorted(unknown)[0]!r}")
    primary = language(data.get("language", default_language), "language")
    raw_versions = data.get("versions")
    if not isinstance(raw_versions, dict) or not raw_versions:
        raise NewsError("versions must be an object of language → {title, text, summary}; "
                        "an item needs some text")
    if len(raw_versions) > MAX_LANGUAGES:
        raise NewsError(f"versions: at most {MAX_LANGUAGES} languages")
    versions: dict[str, Version] = {}
    alts: dict[str, list[str]] = {}
    for tag, value in raw_versions.items():
        lang = language(tag, "versions")
        versions[lang], version_alts = parse_version(value, lang)
        if version_alts is not None:
            alts[lang] = version_alts
    if primary not in versions:
        raise NewsError(f"versions needs a version in the item's language ({primary})")
    photos = []
    for index, photo in enumerate(_list(data.get("photos"), "photos", MAX_PHOTOS)):
        if isinstance(photo, str):
            photo = {"media": photo}
        if not isinstance(photo, dict) or not isinstance(photo.get("media"), str):
            raise NewsError('each photo must be {"media": <uploaded name>, "alt": {lang: text}}')
        alt_map = photo.get("alt", {})
        if not isinstance(alt_map, dict):
            raise NewsError(f"photos[{index}].alt must be an object of language → text")
        alt: dict[str, str] = {}
        for tag, text in alt_map.items():
            lang = language(tag, f"photos[{index}].alt")
            if not isinstance(text, str) or len(text) > MAX_ALT:
                raise NewsError(f"photos[{index}].alt[{lang}] must be text of at most "
                                f"{MAX_ALT} characters")
            alt[lang] = chars(text.strip(), f"photos[{index}].alt[{lang}]", multiline=True)
        photos.append({"media": photo["media"], "alt": alt})
    for lang, texts in alts.items():
        if len(texts) > len(photos):
            raise NewsError(f"versions[{lang}].alt has more texts than the item has photos")
        for index, text in enumerate(texts):
            photos[index]["alt"][lang] = text.strip()
    return NewsInput(
        language=primary, versions=versions, photos=photos,
        hashtags=hashtags(data.get("hashtags")),
        sources=[http_url(url, "sources")
                 for url in _list(data.get("sources"), "sources", MAX_SOURCES)],
        country=country(data.get("country")),
        sectors=sectors(data.get("sectors")),
    )


def hashtags(value: Any) -> list[str]:
    tags: list[str] = []
    for tag in _list(value, "hashtags", MAX_HASHTAGS):
        name = tag.lstrip("#") if isinstance(tag, str) else ""
        if not HASHTAG_RE.fullmatch(name) or not any(c.isalpha() for c in name):
            raise NewsError(f"hashtag {str(tag)[:40]!r} must be letters/digits with at least "
                            "one letter")
        if name.lower() not in {t.lower() for t in tags}:
            tags.append(name)
    return tags


def sectors(value: Any) -> list[str]:
    out: list[str] = []
    for sector in _list(value, "sectors", MAX_SECTORS):
        if not isinstance(sector, str) or not SECTOR_RE.fullmatch(sector):
            raise NewsError(f"sector {str(sector)[:40]!r} must be a short lower-case word "
                            "such as oil, transport, teachers")
        if sector not in out:
            out.append(sector)
    return out


# --- rendering ----------------------------------------------------------------------


@lru_cache(maxsize=1)
def _markdown() -> Any:
    # Imported on first use: an idle node does not pay for the parser.
    from markdown_it import MarkdownIt

    # Raw HTML is let through the parser and then cut down by the one
    # allowlist every HTML input passes (docs/ARCHITECTURE.md#1-layers, "HTML
    # in"): a <script>, an onerror= or a javascript: link never survives.
    return MarkdownIt("commonmark", {"html": True}).enable("strikethrough")


BETWEEN_BLOCKS_RE = re.compile(r">\n+<")


@lru_cache(maxsize=64)
def render_markdown(text: str) -> str:
    # Cached: one change renders each version's text up to three times
    # (validation, the Note/Article rule, content and excerpt; bench/news_render.py).
    # The parser's newlines between blocks would show as blank lines where a
    # reader keeps whitespace (Mastodon's web client does); inside <pre> no
    # newline sits between two tags, so code keeps its lines.
    html_out = sanitise_html(_markdown().render(text)).strip()
    return BETWEEN_BLOCKS_RE.sub("><", html_out)


def plain_length(text: str) -> int:
    return len(html_to_plain(render_markdown(text)).strip())


def is_note(version: Version) -> bool:
    """The Note/Article rule of the module docstring, for the presented version."""
    return not version.title or plain_length(version.text) < NOTE_LIMIT


def excerpt(text: str) -> str:
    plain = " ".join(html_to_plain(render_markdown(text)).split())
    if len(plain) <= EXCERPT:
        return plain
    cut = plain[:EXCERPT].rsplit(" ", 1)[0]
    return cut + " …"


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def title_lead(title: str) -> str:
    """The paragraph a Note's ``content`` starts with: its title in bold."""
    return f"<p><strong>{_esc(title)}</strong></p>"


def without_title_lead(content: str, title: str | None) -> str:
    """``content`` without the bold title a Note leads with: for the item's own
    page, whose heading already is the title (issue 25, defect 3)."""
    if title and content.startswith(lead := title_lead(title)):
        return content[len(lead):]
    return content


def version_html(version: Version, *, as_note: bool, sources: list[str], tags: list[str],
                 urls: Urls) -> str:
    """The ``content`` of one version: for a Note the title leads the text (Mastodon
    shows no ``name`` for a Note); source links and hashtags follow."""
    parts = []
    if as_note and version.title:
        parts.append(title_lead(version.title))
    parts.append(render_markdown(version.text))
    if sources:
        links = " · ".join(f'<a href="{html.escape(u)}" rel="nofollow noopener noreferrer">'
                           f"{_esc(u.split('://', 1)[-1])}</a>" for u in sources)
        parts.append(f"<p>{links}</p>")
    if tags:
        parts.append("<p>" + " ".join(
            f'<a href="{html.escape(tag_url(urls, t))}" class="mention hashtag" rel="tag">'
            f"#<span>{_esc(t)}</span></a>" for t in tags) + "</p>")
    return "".join(parts)


def summary_html(version: Version, *, as_note: bool) -> str | None:
    """Mastodon reads ``summary`` as HTML: a Note's is its content warning (only if
    given), an Article's the paragraph under its title (an excerpt if none given)."""
    if version.summary:
        return _esc(version.summary)
    return None if as_note else _esc(excerpt(version.text))


@dataclass
class Rendered:
    """The LocalObject fields of one document: a whole item or one channel's copy."""

    object_type: str
    language: str
    names: dict[str, str]
    summaries: dict[str, str]
    contents: dict[str, str]
    extra: dict[str, Any]


def ordered(versions: dict[str, Version], primary: str) -> list[str]:
    """Languages with the primary first: Mastodon takes the first contentMap key."""
    return [primary, *(k for k in versions if k != primary)]


def render(*, versions: dict[str, Version], primary: str, photos: list[dict[str, Any]],
           hashtags: list[str], sources: list[str], country: str | None, sectors: list[str],
           urls: Urls, self_url: str, sibling_url: dict[str, str],
           always_article: bool = False) -> Rendered:
    """Fields of the document presenting ``versions`` (every language for the item,
    one for a channel's copy). ``sibling_url``: where each other language is read."""
    main = versions[primary]
    as_note = not always_article and is_note(main)
    langs = ordered(versions, primary)
    names = {k: title for k in langs if (title := versions[k].title)}
    summaries = {k: s for k in langs
                 if (s := summary_html(versions[k], as_note=as_note)) is not None}
    contents = {k: version_html(versions[k], as_note=as_note, sources=sources,
                                tags=hashtags, urls=urls) for k in langs}
    # The item's page first with the primary's language: Mastodon links an
    # Article to the first text/html url; the siblings follow with hreflang.
    links = [{"type": "Link", "href": self_url, "mediaType": "text/html", "hreflang": primary,
              "rel": "canonical"}]
    links += [{"type": "Link", "href": href, "mediaType": "text/html", "hreflang": lang,
               "rel": "alternate"} for lang, href in sibling_url.items() if lang != primary]
    extra: dict[str, Any] = {"mediaType": "text/html", "url": links}
    attachments = []
    for photo in photos:
        alt = photo["alt"].get(primary) or ""
        image: dict[str, Any] = {"type": "Image", "mediaType": photo["media_type"],
                                 "url": urls.media(photo["path"]), "name": alt}
        for key in ("blurhash", "width", "height", "focalPoint"):
            if photo.get(key) is not None:
                image[key] = photo[key]
        attachments.append(image)
    if attachments:
        extra["attachment"] = attachments
    if hashtags:
        extra["tag"] = [{"type": "Hashtag", "name": f"#{t}", "href": tag_url(urls, t)}
                        for t in hashtags]
    if country:
        extra["country"] = country
    if sectors:
        extra["sectors"] = list(sectors)
    if sources:
        extra["sources"] = list(sources)
    return Rendered(object_type="Note" if as_note else "Article", language=primary,
                    names=names, summaries=summaries, contents=contents, extra=extra)
