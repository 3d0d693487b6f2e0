"""Language tags (BCP 47, RFC 5646): one validator for every map key and language field.

The shape check alone accepted ``xx-invalid-tag``; a tag is only useful to
readers (Mastodon filters by it, Babel picks date words by it) if its subtags
exist, so the subtags are checked against the IANA Language Subtag Registry
that ``langcodes`` ships (``tag_is_valid``). Babel was the other candidate, but
it knows only CLDR locales, which is a narrower set than the registry (it has
no data for many languages a group may write in), so it cannot say whether a
tag is valid. ``langcodes`` is imported on first use: it adds about 1.6 MB and
most of a second to start-up, which an idle node should not pay.
"""

from __future__ import annotations

import re
from functools import lru_cache

# Our own stricter shape on top of BCP 47: a lower-case 2-3 letter primary
# language (no private-use ``x-…`` or grandfathered ``i-…`` tags), and at most
# 16 characters, the width of the language columns.
SHAPE_RE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
MAX_LENGTH = 16


class LanguageError(ValueError):
    """An unusable language tag; the message says what was expected."""


@lru_cache(maxsize=1024)
def _registered(tag: str) -> bool:
    import langcodes

    return bool(langcodes.tag_is_valid(tag))


def validate(tag: object) -> str:
    """Return the tag if it is a valid BCP 47 language tag we accept, else raise."""
    if not isinstance(tag, str) or len(tag) > MAX_LENGTH or not SHAPE_RE.fullmatch(tag) \
            or not _registered(tag):
        shown = tag if isinstance(tag, str) and len(tag) <= 40 else type(tag).__name__
        raise LanguageError(f"invalid language tag {shown!r}: expected a BCP 47 tag such as "
                            "fa, de, ckb or sr-Latn (at most 16 characters)")
    return tag


def autonym(language: str) -> str:
    """A language's name in itself where Babel knows it (``فارسی``, ``Deutsch``), else the
    tag: language links on pages, channel names. Babel is imported on first use."""
    from babel.core import Locale, UnknownLocaleError

    try:
        name = Locale.parse(language.replace("-", "_")).get_display_name(
            language.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return language
    return name or language
