"""Dates for readers: the reader's calendar, words and digits (issue 14, point 4).

Every date the node writes for a person (pages, the one-line event summary
Mastodon shows, bulletin titles) goes through here:

- ``fa``: the Solar Hijri date (jdatetime converts; month and weekday names are
  jdatetime's) with Persian digits, and the Gregorian date beside it in brackets;
- languages whose CLDR locale uses Arabic-Indic digits (``ar``, ``ckb``, ``ur`` …):
  Babel's Gregorian words with those digits;
- every other language: Babel's Gregorian words and Latin digits.

Which digits a language uses is CLDR's answer (Babel's numbering system for the
locale: its default, or for a bare language its native one when that is an
Arabic-script decimal system); the digit characters come from the Unicode
character names. No calendar arithmetic is written here.

Babel and jdatetime are imported on first use: a node that serves only
federation traffic never loads them (idle RSS, issue 17; docs/ARCHITECTURE.md#1-layers).
"""

from __future__ import annotations

import functools
import unicodedata
from datetime import date, datetime
from zoneinfo import ZoneInfo

# CLDR numbering systems whose digits are read right here; others fall back to Latin.
DIGIT_NAMES = {"arab": "ARABIC-INDIC DIGIT {}", "arabext": "EXTENDED ARABIC-INDIC DIGIT {}"}
DIGIT_WORDS = ("ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE")
SOLAR_HIJRI = frozenset({"fa"})
LONG_DATE = "d MMMM y"
WEEKDAY_DATE = "EEEE d MMMM y"


def _locale_name(language: str) -> str:
    return language.replace("-", "_")


@functools.cache
def _locale(language: str) -> tuple[str, str]:
    """(Babel locale name, numbering system) for a BCP 47 tag; English when unknown."""
    from babel import Locale, UnknownLocaleError

    try:
        loc = Locale.parse(_locale_name(language))
    except (UnknownLocaleError, ValueError):
        return "en", "latn"
    system = loc.default_numbering_system
    if system == "latn" and loc.territory is None:
        native = loc.other_numbering_systems.get("native", "latn")
        system = native if native in DIGIT_NAMES else "latn"
    return str(loc), system if system in DIGIT_NAMES else "latn"


@functools.cache
def _digit_table(system: str) -> dict[int, str]:
    pattern = DIGIT_NAMES.get(system)
    if pattern is None:
        return {}
    return {ord(str(i)): unicodedata.lookup(pattern.format(word))
            for i, word in enumerate(DIGIT_WORDS)}


def numbering_system(language: str) -> str:
    return _locale(language)[1]


def digits(text: str, language: str) -> str:
    """``text`` with ASCII digits in the language's own digits."""
    table = _digit_table(_locale(language)[1])
    return text.translate(table) if table else text


def in_zone(moment: datetime, tz_name: str | None) -> datetime:
    return moment.astimezone(ZoneInfo(tz_name)) if tz_name else moment


def _gregorian(value: date | datetime, pattern: str, locale: str) -> str:
    from babel.dates import format_date

    day = value.date() if isinstance(value, datetime) else value
    return format_date(day, pattern, locale=locale)


def _solar_hijri(day: date, *, weekday: bool) -> str:
    import jdatetime

    jday = jdatetime.date.fromgregorian(date=day)
    text = f"{jday.day} {jdatetime.date.j_months_fa[jday.month - 1]} {jday.year}"
    if weekday:  # jdatetime counts weekdays from Saturday
        text = f"{jdatetime.date.j_weekdays_fa[jday.weekday()]} {text}"
    return text


def _uses_solar_hijri(language: str) -> bool:
    return language.replace("_", "-").split("-")[0].lower() in SOLAR_HIJRI


def format_date(value: date | datetime, language: str, *, weekday: bool = False,
                tz_name: str | None = None) -> str:
    """A day in the reader's calendar: "Tuesday 10 Azar 1405 (1 December 2026)" in
    Persian words and digits, ``Dienstag, 1. Dezember 2026``."""
    if isinstance(value, datetime):
        value = in_zone(value, tz_name)
    locale, _ = _locale(language)
    day = value.date() if isinstance(value, datetime) else value
    if _uses_solar_hijri(language):
        text = f"{_solar_hijri(day, weekday=weekday)} ({_gregorian(day, LONG_DATE, locale)})"
    else:
        text = _gregorian(day, "full" if weekday else "long", locale)
    return digits(text, language)


def format_time(moment: datetime, language: str, tz_name: str | None = None) -> str:
    from babel.dates import format_time as babel_time

    local = in_zone(moment, tz_name)
    return digits(babel_time(local, "HH:mm", locale=_locale(language)[0]), language)


def format_datetime(moment: datetime, language: str, tz_name: str | None = None, *,
                    weekday: bool = True) -> str:
    """Date and time in ``tz_name`` (the event's own zone), in the reader's calendar."""
    local = in_zone(moment, tz_name)
    day = format_date(local, language, weekday=weekday)
    separator = "، " if _locale(language)[1] != "latn" else ", "
    return f"{day}{separator}{format_time(local, language)}"


def format_period(start: date | datetime, end: date | datetime, language: str) -> str:
    """A span of days: ``1.-7. Dezember 2026``; in Persian the two Solar Hijri days
    and the Gregorian span beside them."""
    from babel.dates import format_interval

    first = start.date() if isinstance(start, datetime) else start
    last = end.date() if isinstance(end, datetime) else end
    locale, _ = _locale(language)
    gregorian = format_interval(first, last, "yMMMMd", locale=locale)
    if _uses_solar_hijri(language):
        hijri = _solar_hijri(first, weekday=False)
        if last != first:
            hijri = f"{hijri} \u2013 {_solar_hijri(last, weekday=False)}"
        return digits(f"{hijri} ({gregorian})", language)
    return digits(gregorian, language)


def format_number(number: int, language: str) -> str:
    return digits(str(number), language)
