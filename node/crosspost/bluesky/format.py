"""A post as an ``app.bsky.feed.post`` record (docs.bsky.app, "Posts"; the lexicon in
the ``atproto`` SDK's models, against which the tests validate).

- ``text`` at most 300 graphemes: we count code points (never fewer than graphemes),
  cut at a word and end with the link to the whole post;
- ``facets`` for links and hashtags, their ``index`` in UTF-8 *bytes* of the text
  (Persian letters are two bytes each, so character offsets would be wrong);
- ``langs`` the post's language; images (at most 4, with alt text) as
  ``app.bsky.embed.images``, else a link card ``app.bsky.embed.external``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from html.parser import HTMLParser
from typing import Any

from node.crosspost.content import Post

TEXT_LIMIT = 300
MAX_IMAGES = 4
ALT_LIMIT = 2000
ELLIPSIS = "…"
HASHTAG = re.compile(r"(?<![\w#])#([^\s#.,!?;:()\[\]«»\"']{1,64})")


class _Plain(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def plain(fragment: str) -> str:
    parser = _Plain()
    parser.feed(fragment)
    parser.close()
    return "".join(parser.parts).strip()


def whole_text(post: Post) -> str:
    parts = [post.title] if post.title else []
    if post.facts:
        parts.append("\n".join(post.facts))
    parts += [plain(p) for p in post.body]
    return "\n\n".join(p for p in parts if p)


def cut(text: str, link: str, limit: int = TEXT_LIMIT) -> str:
    """``text`` if it fits with the link, else cut at a word, "…", and the link."""
    full = f"{text}\n\n{link}" if link else text
    if len(full) <= limit:
        return full
    room = limit - len(link) - len(ELLIPSIS) - 2
    head = text[:max(room, 0)]
    if " " in head or "\n" in head:
        head = re.split(r"\s+(?=\S*$)", head)[0]
    return f"{head.rstrip()}{ELLIPSIS}\n\n{link}" if link else f"{head.rstrip()}{ELLIPSIS}"


def byte_index(text: str, start: int, end: int) -> dict[str, int]:
    """Character positions → the UTF-8 byte offsets facets use."""
    return {"byteStart": len(text[:start].encode()), "byteEnd": len(text[:end].encode())}


def facets(text: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for match in re.finditer(r"https?://[^\s<>\"]+", text):
        uri = match.group(0).rstrip(".,;:!?)»")
        found.append({"index": byte_index(text, match.start(), match.start() + len(uri)),
                      "features": [{"$type": "app.bsky.richtext.facet#link", "uri": uri}]})
    for match in HASHTAG.finditer(text):
        found.append({"index": byte_index(text, match.start(), match.end()),
                      "features": [{"$type": "app.bsky.richtext.facet#tag",
                                    "tag": match.group(1)}]})
    return sorted(found, key=lambda f: int(f["index"]["byteStart"]))


def iso_z(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class Draft:
    """The record without its images' blobs (uploaded first, then placed)."""

    text: str
    langs: list[str]
    facets: list[dict[str, Any]]

    @property
    def digest(self) -> str:
        """What decides whether an edit re-posts: Bluesky has no edit."""
        return hashlib.sha256(self.text.encode()).hexdigest()


def draft(post: Post) -> Draft:
    text = cut(whole_text(post), post.link)
    langs = [post.language] if post.language else []
    return Draft(text, langs, facets(text))


def record(d: Draft, post: Post, now: datetime,
           blobs: list[tuple[dict[str, Any], str]]) -> dict[str, Any]:
    """The record as it goes on the wire; ``blobs``: (blob, alt) of uploaded images."""
    rec: dict[str, Any] = {"$type": "app.bsky.feed.post", "text": d.text,
                           "createdAt": iso_z(now)}
    if d.langs:
        rec["langs"] = d.langs
    if d.facets:
        rec["facets"] = d.facets
    if blobs:
        rec["embed"] = {"$type": "app.bsky.embed.images",
                        "images": [{"alt": alt[:ALT_LIMIT], "image": blob}
                                   for blob, alt in blobs[:MAX_IMAGES]]}
    elif post.link:
        description = plain(post.body[0]) if post.body else ""
        rec["embed"] = {"$type": "app.bsky.embed.external", "external": {
            "uri": post.link, "title": (post.title or description[:100])[:300],
            "description": description[:1000]}}
    return rec


class InvalidRecord(ValueError):
    """The record does not follow the lexicon; it is never sent."""


def check(rec: dict[str, Any]) -> None:
    """Validate against the ``atproto`` SDK's model of app.bsky.feed.post (lengths,
    facets, embeds), imported at the first Bluesky post only."""
    from atproto_client.exceptions import ModelError  # type: ignore[import-untyped]
    from atproto_client.models import AppBskyFeedPost  # type: ignore[import-untyped]
    from atproto_client.models.utils import get_or_create  # type: ignore[import-untyped]

    try:
        get_or_create(rec, AppBskyFeedPost.Record, strict=True)
    except ModelError as exc:
        raise InvalidRecord(str(exc)[:300]) from None
