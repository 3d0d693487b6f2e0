"""Text to HTML and HTML sanitising.

Remote HTML goes through nh3 (the ammonia sanitiser, an allowlist written in
Rust: faster and better reviewed than any hand-written filter). Our own plain
text is escaped, linkified and split into paragraphs.
"""

from __future__ import annotations

import html
import re

import nh3

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


def plain_to_html(text: str) -> str:
    """Escape, turn URLs into links, blank lines into paragraphs."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    rendered = []
    for paragraph in paragraphs:
        escaped = html.escape(paragraph, quote=False)
        linked = URL_RE.sub(
            lambda m: f'<a href="{m.group(0)}" rel="nofollow noopener noreferrer">'
            f"{m.group(0)}</a>",
            escaped,
        )
        rendered.append("<p>" + linked.replace("\n", "<br>") + "</p>")
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
    """A display name is plain text (ActivityStreams ``name``): tags removed,
    whitespace collapsed. Templates and readers escape it when they show it."""
    return " ".join(html_to_plain(value).split())
