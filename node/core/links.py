"""Links of our own HTML put onto another origin, or made relative, after rendering.

Pages mint absolute links on the clearnet base URL (node/core/urls.py). Two readers
need them elsewhere: a request that came to the onion address (every link, form and
image stays on the onion) and the static mirror (every link relative, so the copy
works from any domain, a bucket's sub-path or ``file://``). Rewriting the rendered
bytes does both without a second way of minting URLs, and leaves the document cache
and the templates alone (docs/ARCHITECTURE.md#10-readers-behind-censorship).

What is never rewritten: ``<link rel="canonical">`` and ``<link type=
"application/activity+json">`` — they name ids, and ids have one origin
(ActivityPub §3.1) — and links marked ``data-original`` (a mirror's footer naming the
original). Of ``<meta>`` only ``og:image`` is a link (``og:url`` is the canonical URL).

The HTML is ours: Jinja escapes every attribute value and nh3 serialises sanitised
bodies with double quotes, so a tag is ``<name`` + attributes whose values are quoted;
the tag pattern below still skips ``>`` inside quoted values.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

# An opening tag of the elements that carry links, quoted values may hold ">".
TAG = re.compile(
    r"""<(a|link|img|form|source|area|meta)\b((?:[^>"']|"[^"]*"|'[^']*')*)>""", re.IGNORECASE)
ATTR = re.compile(r'(\s)(href|src|action|srcset|content)(\s*=\s*)"([^"]*)"', re.IGNORECASE)
REL = re.compile(r'\srel\s*=\s*"([^"]*)"', re.IGNORECASE)
PROPERTY = re.compile(r'\sproperty\s*=\s*"og:image"', re.IGNORECASE)
# A link that says where the original is (the mirror's footer) stays as it is.
KEEP = re.compile(r"""\sdata-original\b""", re.IGNORECASE)
TYPE = re.compile(r'\stype\s*=\s*"([^"]*)"', re.IGNORECASE)

# (url, element name) → the new URL, or None to keep it.
Mapper = Callable[[str, str], str | None]


def names_an_id(tag: str, attributes: str) -> bool:
    """A ``<link>`` naming the page's canonical URL or its ActivityPub document."""
    if tag.lower() != "link":
        return False
    rel = REL.search(attributes)
    if rel and "canonical" in rel.group(1).lower().split():
        return True
    kind = TYPE.search(attributes)
    return bool(kind and kind.group(1).lower().startswith(
        ("application/activity+json", "application/ld+json")))


def _srcset(value: str, tag: str, mapper: Mapper) -> str:
    parts = []
    for candidate in value.split(","):
        bits = candidate.strip().split(None, 1)
        if not bits:
            continue
        mapped = mapper(bits[0], tag)
        parts.append(" ".join([mapped if mapped is not None else bits[0], *bits[1:]]))
    return ", ".join(parts)


def rewrite(document: str, mapper: Mapper) -> str:
    """Every href/src/action/srcset of a link-carrying tag passed through ``mapper``."""

    def one_tag(match: re.Match[str]) -> str:
        tag, attributes = match.group(1), match.group(2)
        if names_an_id(tag, attributes) or KEEP.search(attributes):
            return match.group(0)
        is_meta = tag.lower() == "meta"
        if is_meta and not PROPERTY.search(attributes):
            return match.group(0)  # only og:image's content is a link to follow

        def one_attr(attr: re.Match[str]) -> str:
            if (attr.group(2).lower() == "content") != is_meta:
                return attr.group(0)
            raw = html.unescape(attr.group(4))
            if attr.group(2).lower() == "srcset":
                new = _srcset(raw, tag, mapper)
            else:
                mapped = mapper(raw, tag)
                if mapped is None:
                    return attr.group(0)
                new = mapped
            return f'{attr.group(1)}{attr.group(2)}{attr.group(3)}"{html.escape(new)}"'

        return f"<{tag}{ATTR.sub(one_attr, attributes)}>"

    return TAG.sub(one_tag, document)


def onto_origin(source: str, target: str) -> Mapper:
    """A mapper moving links on ``source`` (an origin, ``https://host``) to ``target``."""
    prefix = source.rstrip("/")

    def mapper(url: str, tag: str) -> str | None:
        if url == prefix or url.startswith((prefix + "/", prefix + "?", prefix + "#")):
            return target + url[len(prefix):]
        return None

    return mapper


def insert_in_head(document: bytes, element: bytes) -> bytes:
    """``element`` right after the first ``<head>`` (the page's own markup: base.html)."""
    return document.replace(b"<head>", b"<head>\n" + element, 1)
