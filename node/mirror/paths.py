"""Which of the node's URLs a static mirror holds, and under which file name
(docs/ARCHITECTURE.md#10-readers-behind-censorship).

Pages are HTML in one tree per language (``fa/groups/workers/index.html``); feeds,
calendars, media, the stylesheet and each post's ActivityPub JSON are the same in
every language and sit once at the top (``groups/workers/feed.atom``,
``objects/<uuid>.json``). Every page file is named in full (``…/index.html``): a copy
opened from ``file://`` has no server to add it.

Only the routes below are exported; any other URL of the node (forms, the workspace,
paginations past what the pages link) is not in the copy and its links keep pointing
at the original. A path segment is a name the node minted (group, uuid, tag, media
name): never ``.``, ``..`` or a separator, so no URL can name a file outside the copy.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Literal
from urllib.parse import parse_qsl, quote, unquote

SEGMENT = r"([\w@.~-]{1,200})"
PageKind = Literal["page", "file", "json"]

PAGES = (
    (re.compile(r"/"), "index.html"),
    (re.compile(r"/campaigns"), "campaigns/index.html"),
    (re.compile(rf"/groups/{SEGMENT}"), "groups/{0}/index.html"),
    (re.compile(rf"/groups/{SEGMENT}/campaigns"), "groups/{0}/campaigns/index.html"),
    (re.compile(rf"/objects/{SEGMENT}"), "objects/{0}/index.html"),
    (re.compile(rf"/tags/{SEGMENT}"), "tags/{0}/index.html"),
)
GROUP_FILES = ("feed.atom", "feed.json", "calendar.ics", "calls.ics", "calls.atom",
               "calls.json", "campaigns.atom", "campaigns.json")
FILES = (
    re.compile(rf"/groups/{SEGMENT}/({'|'.join(re.escape(f) for f in GROUP_FILES)})"),
    re.compile(r"/campaigns/(feed\.atom|feed\.json)"),
    re.compile(rf"/objects/{SEGMENT}/calendar\.ics"),
    re.compile(rf"/media/(avatars|headers|uploads|[a-z]{{1,20}})/{SEGMENT}"),
    re.compile(r"/static/site\.css"),
)
GROUP_PAGE = re.compile(rf"/groups/{SEGMENT}")
OBJECT_PAGE = re.compile(rf"/objects/{SEGMENT}")
MAX_PAGE = 9999


@dataclass(frozen=True, order=True)
class Target:
    """One exported document: what to request and where it goes."""

    kind: PageKind
    route: str  # the node's path, unquoted (``/groups/workers``)
    page: int = 1  # a group page's ``?page=``
    lang: str = ""  # the tree of a page; "" for files and JSON

    @cached_property
    def file(self) -> str:
        """The file's path inside the export."""
        if self.kind == "json":
            return self.route.strip("/") + ".json"
        if self.kind == "file":
            return self.route.lstrip("/")
        name = page_file(self.route)
        assert name is not None
        if self.page > 1:
            name = name.removesuffix("index.html") + f"page-{self.page}.html"
        return f"{self.lang}/{name}"

    @property
    def query(self) -> str:
        """The query the node is asked with (the page's language, the page number)."""
        parts = [f"lang={quote(self.lang)}"] if self.kind == "page" else []
        if self.page > 1:
            parts.append(f"page={self.page}")
        return "&".join(parts)

    def as_list(self) -> list[str | int]:
        """For the re-export's state; the file last, so a reader can skip what it has."""
        return [self.kind, self.route, self.page, self.lang, self.file]

    @classmethod
    def from_list(cls, raw: object) -> Target | None:
        if not isinstance(raw, list) or len(raw) != 5:
            return None
        kind, route, page, lang, _ = raw
        if kind not in ("page", "file", "json") or not isinstance(route, str) \
                or not isinstance(page, int) or not isinstance(lang, str):
            return None
        target = cls(kind, route, page, lang)
        return target if target.file == raw[4] else None


def page_file(route: str) -> str | None:
    for pattern, name in PAGES:
        found = pattern.fullmatch(route)
        if found and _safe(found.groups()):
            return name.format(*found.groups())
    return None


def _safe(segments: tuple[str | None, ...]) -> bool:
    return all(s not in (None, ".", "..") for s in segments)


def target_of(path: str, query: str, lang: str, languages: tuple[str, ...]) -> Target | None:
    """The export's document for a local URL (path and query, as in a link), or None
    when the copy does not hold it."""
    route = unquote(path) or "/"
    if len(route) > 500 or "\x00" in route:
        return None
    params = parse_qsl(query, keep_blank_values=True)
    names = {name for name, _ in params}
    for pattern in FILES:
        found = pattern.fullmatch(route)
        if found and _safe(found.groups()) and names <= {"v"}:
            return Target("file", route)
    if page_file(route) is None or not names <= {"lang", "page"}:
        return None
    values = dict(params)
    if "lang" in values:
        lang = values["lang"]
    if lang not in languages:
        return None
    page = 1
    if "page" in values:
        raw = values["page"]
        if not GROUP_PAGE.fullmatch(route) or not raw.isascii() or not raw.isdigit() \
                or not 1 <= int(raw) <= MAX_PAGE:
            return None
        page = int(raw)
    return Target("page", route, page, lang)


def relative(from_file: str, to_file: str) -> str:
    """A link from one export file to another, percent-encoded, that works from any
    host, any sub-path and ``file://``."""
    start = posixpath.dirname(from_file) or "."
    return quote(posixpath.relpath(to_file, start), safe="/~@-._")


def object_uuid(route: str) -> str | None:
    """The uuid of ``/objects/<uuid>`` and of what hangs under it (its calendar)."""
    found = re.match(rf"/objects/{SEGMENT}(?:/|$)", route)
    return found.group(1) if found else None
