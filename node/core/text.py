"""Text to HTML and HTML sanitising.

Remote HTML goes through nh3 (the ammonia sanitiser, an allowlist written in
Rust: faster and better reviewed than any hand-written filter). Our own plain
text is escaped, linkified and split into paragraphs.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

import nh3

from node.core import characters

ALLOWED_TAGS = {
    "p", "br", "a", "span", "strong", "b", "em", "i", "u", "s", "del", "ul", "ol", "li",
    "blockquote", "code", "pre", "h1", "h2", "h3", "h4", "h5", "h6",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "span": {"class", "lang", "dir"},
                      "p": {"lang", "dir"}}
URL_RE = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")
MAX_TEXT = 100_000


def sanitise_html(value: str) -> str:
    """Allowlist sanitising for HTML from other servers (and our editors)."""
    return nh3.clean(
        value[:MAX_TEXT],
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="nofollow noopener noreferrer",
    )


# Mastodon's rules, roughly: a hashtag is # then word characters with at least
# one letter, not inside a word or URL; a mention is @user@host not inside a word.
HASHTAG_RE = re.compile(r"(?<![\w/&#])#(\w*[^\W\d_]\w*)", re.UNICODE)
MENTION_RE = re.compile(
    r"(?<![\w/@])@([A-Za-z0-9_][A-Za-z0-9_.-]*)@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*(?::\d{1,5})?)"
)
TOKEN_RE = re.compile(f"{URL_RE.pattern}|{HASHTAG_RE.pattern}|{MENTION_RE.pattern}", re.UNICODE)
MAX_TAGS = 20


def hashtags_in(text: str) -> list[str]:
    """The hashtags of a plain text, first spelling kept, at most MAX_TAGS."""
    seen: dict[str, str] = {}
    for match in TOKEN_RE.finditer(text):
        tag = match.group(1)
        if tag and tag.lower() not in seen and len(seen) < MAX_TAGS:
            seen[tag.lower()] = tag
    return list(seen.values())


def mentions_in(text: str) -> list[str]:
    """``user@host`` of every @user@host mention (lower-cased host), at most MAX_TAGS."""
    found: list[str] = []
    for match in TOKEN_RE.finditer(text):
        if match.group(2):
            handle = f"{match.group(2)}@{match.group(3).lower()}"
            if handle not in found and len(found) < MAX_TAGS:
                found.append(handle)
    return found


def plain_to_html(text: str, *, tag_url: Callable[[str], str] | None = None,
                  mentions: dict[str, str] | None = None) -> str:
    """Escape, turn URLs (and hashtags, resolved mentions) into links, blank lines
    into paragraphs. ``mentions`` maps ``user@host`` to the profile link;
    unresolved mentions stay plain text."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]

    def link(match: re.Match[str]) -> str:
        whole = match.group(0)
        if match.group(1):
            if tag_url is None:
                return html.escape(whole, quote=False)
            tag = match.group(1)
            return (f'<a href="{html.escape(tag_url(tag))}" class="mention hashtag" '
                    f'rel="tag">#<span>{html.escape(tag, quote=False)}</span></a>')
        if match.group(2):
            href = (mentions or {}).get(f"{match.group(2)}@{match.group(3).lower()}")
            if href is None:
                return html.escape(whole, quote=False)
            return (f'<span class="h-card"><a href="{html.escape(href)}" class="u-url mention">'
                    f"@<span>{html.escape(match.group(2), quote=False)}</span></a></span>")
        url = html.escape(whole)
        return f'<a href="{url}" rel="nofollow noopener noreferrer">{url}</a>'

    rendered = []
    for paragraph in paragraphs:
        out, pos = [], 0
        for match in TOKEN_RE.finditer(paragraph):
            out.append(html.escape(paragraph[pos:match.start()], quote=False))
            out.append(link(match))
            pos = match.end()
        out.append(html.escape(paragraph[pos:], quote=False))
        rendered.append("<p>" + "".join(out).replace("\n", "<br>") + "</p>")
    return "".join(rendered)


def html_to_plain(value: str) -> str:
    """Strip all tags (for titles, names, summaries shown as plain text)."""
    text = nh3.clean(value, tags=set())
    return html.unescape(text)


def user_html(value: str) -> str:
    """A text an editor typed, which may be plain or HTML: always safe HTML out.

    Plain text is escaped and linkified like a note; anything with markup goes
    through the same allowlist as remote HTML, so a ``<script>`` or an
    ``onerror=`` typed into a profile never reaches a reader.
    """
    value = value.strip()
    if "<" not in value and "&" not in value:
        return plain_to_html(value)
    return sanitise_html(value).strip()


def plain_name(value: str) -> str:
    """A display name is plain text (ActivityStreams ``name``, which Mastodon
    escapes when it shows it): kept as typed — ``Tom & <Jerry>`` is a name, not
    markup — with whitespace and the characters no text may hold collapsed
    (node/core/characters.py: a ZWNJ stays). Every surface that draws it escapes
    it (templates autoescape; Event summaries escape)."""
    return characters.collapse(value)
