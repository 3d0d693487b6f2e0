"""A post as Telegram messages: the Bot API's HTML subset and its length limits.

core.telegram.org/bots/api#html-style: only b/strong, i/em, u/ins, s/strike/del, a
href, code, pre, blockquote and tg-spoiler; ``<``, ``>`` and ``&`` in text must be
written as entities. Everything else of our (already sanitised) HTML is dropped to its
text, which is escaped: markup never reaches Telegram raw. A message holds 4,096
characters, a caption 1,024 (api#sendmessage, api#sendphoto); we measure the HTML
itself in UTF-16 units, at least what Telegram counts after parsing, so a part within
our measure is within theirs.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from html.parser import HTMLParser

from node.crosspost.content import Image, Post

MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024
ALBUM_LIMIT = 10  # sendMediaGroup takes 2-10 items
TAGS = {"b": "b", "strong": "b", "i": "i", "em": "i", "u": "u", "ins": "u", "s": "s",
        "strike": "s", "del": "s", "code": "code", "pre": "pre", "a": "a",
        "blockquote": "blockquote"}


def units(text: str) -> int:
    """Length in UTF-16 code units, as Telegram counts."""
    return len(text.encode("utf-16-le")) // 2


class _Subset(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        name = TAGS.get(tag)
        if tag == "br":
            self.out.append("\n")
            return
        if name is None:
            return
        if name == "a":
            href = dict(attrs).get("href") or ""
            if not href.startswith(("https://", "http://")):
                return
            self.out.append(f'<a href="{html.escape(href, quote=True)}">')
        else:
            self.out.append(f"<{name}>")
        self.open.append(name)

    def handle_endtag(self, tag: str) -> None:
        name = TAGS.get(tag)
        if name is None or name not in self.open:
            return
        while self.open:  # close what is inside it too: the result nests
            top = self.open.pop()
            self.out.append(f"</{top}>")
            if top == name:
                break

    def handle_data(self, data: str) -> None:
        self.out.append(html.escape(data, quote=False))

    def result(self) -> str:
        self.close()
        while self.open:
            self.out.append(f"</{self.open.pop()}>")
        return "".join(self.out).strip()


def subset(fragment: str) -> str:
    """Our HTML → Telegram's subset; text escaped, unknown tags dropped, tags nested."""
    parser = _Subset()
    parser.feed(fragment)
    return parser.result()


def escape(text: str) -> str:
    return html.escape(text, quote=False)


def _cut_plain(text: str, limit: int) -> list[str]:
    """Escaped plain text in pieces of at most ``limit`` units, cut at spaces."""
    pieces: list[str] = []
    words = text.split(" ")
    current = ""
    for word in words:
        candidate = f"{current} {word}" if current else word
        if units(escape(candidate)) <= limit:
            current = candidate
            continue
        if current:
            pieces.append(escape(current))
        while units(escape(word)) > limit:  # one word longer than a message
            head = word[: limit // 6]
            pieces.append(escape(head))
            word = word[len(head):]
        current = word
    if current:
        pieces.append(escape(current))
    return pieces


def pack(paragraphs: list[str], limit: int) -> list[str]:
    """Paragraphs joined by blank lines into messages of at most ``limit`` units,
    split only between paragraphs; a paragraph longer than a message loses its
    markup and is cut at spaces."""
    messages: list[str] = []
    current = ""
    for para in paragraphs:
        pieces = [para] if units(para) <= limit else _cut_plain(_text_of(para), limit)
        for piece in pieces:
            candidate = f"{current}\n\n{piece}" if current else piece
            if units(candidate) <= limit:
                current = candidate
            else:
                messages.append(current)
                current = piece
    if current:
        messages.append(current)
    return messages


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.texts.append(data)


def _text_of(fragment: str) -> str:
    parser = _Text()
    parser.feed(fragment)
    parser.close()
    return "".join(parser.texts)


@dataclass(frozen=True)
class Part:
    """One send: ``text`` (sendMessage), ``photo`` (sendPhoto, text as caption) or
    ``album`` (sendMediaGroup, text as the first item's caption)."""

    kind: str
    text: str
    images: list[Image] = field(default_factory=list)

    @property
    def messages(self) -> int:
        return max(len(self.images), 1)


FACT_MARKS = ("🗓", "📍", "🎯")


def paragraphs_of(post: Post) -> list[str]:
    paras: list[str] = []
    if post.title:
        paras.append(f"<b>{escape(post.title)}</b>")
    if post.facts:
        marks = FACT_MARKS if post.kind == "call" else ("",) * len(post.facts)
        paras.append("\n".join(f"{mark} {escape(fact)}".strip()
                               for mark, fact in zip(marks, post.facts, strict=False)))
    paras += [p for p in (subset(fragment) for fragment in post.body) if p]
    return paras


def link_paragraph(post: Post) -> str:
    if not post.link:
        return ""
    href = html.escape(post.link, quote=True)
    return f'🔗 <a href="{href}">{escape(post.link)}</a>'


def alt_paragraph(images: list[Image]) -> str:
    """Alt texts have no field in Telegram: they go into the caption, numbered."""
    lines = [f"🖼 {n}. {escape(img.alt)}" if len(images) > 1 else f"🖼 {escape(img.alt)}"
             for n, img in enumerate(images, start=1) if img.alt.strip()]
    return "\n".join(lines)


def plan(post: Post) -> list[Part]:
    """The messages of a post, in order."""
    paras = paragraphs_of(post)
    link = link_paragraph(post)
    images = post.images[:ALBUM_LIMIT]
    if not images:
        return [Part("text", text) for text in pack([*paras, *[p for p in [link] if p]],
                                                    MESSAGE_LIMIT)]
    alt = alt_paragraph(images)
    tail = [p for p in (alt, link) if p]
    # The caption: as many leading paragraphs as fit beside the alt texts and link.
    caption_paras: list[str] = []
    rest = list(paras)
    while rest and units("\n\n".join([*caption_paras, rest[0], *tail])) <= CAPTION_LIMIT:
        caption_paras.append(rest.pop(0))
    caption = "\n\n".join([*caption_paras, *tail])
    if units(caption) > CAPTION_LIMIT:  # alt texts alone are too long: cut them
        caption = pack([alt], CAPTION_LIMIT)[0] if alt else ""
        if link:
            rest.append(link)
    kind = "photo" if len(images) == 1 else "album"
    parts = [Part(kind, caption, list(images))]
    parts += [Part("text", text) for text in pack(rest, MESSAGE_LIMIT)]
    return parts
