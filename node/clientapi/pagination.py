"""IDs that sort in time order, and Mastodon's pagination (``max_id``, ``since_id``,
``min_id``, ``limit``, the ``Link`` header).

A status id is ``ms * 10^6 + kind * 10^5 + row % 10^5``: the post's time in
milliseconds first, so ids sort by time as Mastodon's snowflakes do, then which
table (1: our objects, 2: stored remote posts) and the row, so an id finds its row
again. It stays below 2^63 (apps that parse ids as 64-bit integers)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from urllib.parse import quote, urlencode

from node.clientapi.params import ApiError, Params

LOCAL = 1
REMOTE = 2
ROW_SPAN = 100_000
KIND_SPAN = 1_000_000
DEFAULT_LIMIT = 20
MAX_LIMIT = 40

T = TypeVar("T")


def ms_of(at: datetime) -> int:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return int(at.timestamp() * 1000)


def status_id(kind: int, row: int, at: datetime) -> int:
    return ms_of(at) * KIND_SPAN + kind * ROW_SPAN + row % ROW_SPAN


@dataclass(frozen=True)
class Decoded:
    kind: int
    low: int  # row % ROW_SPAN
    start: datetime  # the millisecond the post is in
    end: datetime


def decode(value: str | int) -> Decoded | None:
    text = str(value)
    if not text.isdigit() or len(text) > 19:
        return None
    number = int(text)
    ms, rest = divmod(number, KIND_SPAN)
    kind, low = divmod(rest, ROW_SPAN)
    if kind not in (LOCAL, REMOTE) or ms > 10**14:
        return None
    start = datetime.fromtimestamp(ms / 1000, UTC)
    return Decoded(kind, low, start, start + timedelta(milliseconds=1))


def boundary(value: str | None) -> int | None:
    """A pagination parameter as a number (any digits: Mastodon takes any id)."""
    if value is None or value == "":
        return None
    if not value.isdigit() or len(value) > 19:
        raise ApiError("Validation failed: ids are numbers", 400)
    return int(value)


def at_of(number: int) -> datetime:
    """The time an id stands for (the start of its millisecond)."""
    return datetime.fromtimestamp(min(number // KIND_SPAN, 10**14) / 1000, UTC)


@dataclass(frozen=True)
class Window:
    """What a page asks for: ids strictly between ``lower`` and ``upper``, the newest
    ``limit`` of them, or with ``ascending`` (``min_id``) the oldest after ``lower``."""

    upper: int | None
    lower: int | None
    limit: int
    ascending: bool

    @classmethod
    def of(cls, params: Params) -> Window:
        max_id = boundary(params.text("max_id", limit=40))
        since_id = boundary(params.text("since_id", limit=40))
        min_id = boundary(params.text("min_id", limit=40))
        limit = params.number("limit", DEFAULT_LIMIT, low=1, high=MAX_LIMIT)
        lower = min_id if min_id is not None else since_id
        return cls(max_id, lower, limit, ascending=min_id is not None)

    def keeps(self, number: int) -> bool:
        return ((self.upper is None or number < self.upper)
                and (self.lower is None or number > self.lower))

    def fetch(self) -> int:
        """How many rows to read per source: a few more than the page, for the rows
        of the boundary's millisecond that the strict comparison drops."""
        return self.limit + 10


def select_page(candidates: Sequence[tuple[int, T]], window: Window) -> list[tuple[int, T]]:
    """Merge candidates of several sources into the page, newest first."""
    kept = sorted({n: item for n, item in candidates if window.keeps(n)}.items(),
                  key=lambda pair: pair[0], reverse=not window.ascending)[:window.limit]
    kept.sort(key=lambda pair: pair[0], reverse=True)
    return kept


def link_header(base_url: str, path: str, params: Params, ids: Sequence[int | str]) -> str | None:
    """``Link: <…max_id=oldest>; rel="next", <…min_id=newest>; rel="prev"``."""
    if not ids:
        return None
    kept = {k: v for k, v in params.values.items()
            if k not in {"max_id", "min_id", "since_id", "access_token"}
            and isinstance(v, str | list)}
    pairs: list[tuple[str, str]] = []
    for key, value in kept.items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str):
                pairs.append((key, item))
    newer = urlencode([*pairs, ("min_id", str(ids[0]))])
    older = urlencode([*pairs, ("max_id", str(ids[-1]))])
    path = quote(path, safe="/")  # a header is Latin-1: a Persian hashtag as %-escapes
    return (f'<{base_url}{path}?{older}>; rel="next", '
            f'<{base_url}{path}?{newer}>; rel="prev"')
