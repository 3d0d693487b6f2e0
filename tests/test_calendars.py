"""Dates for readers (issue 14, point 4): Solar Hijri with Persian digits and the
Gregorian date beside it for fa, Arabic-Indic digits where CLDR's locale uses them,
Gregorian otherwise; the event summary line and bulletin titles use them."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, date, datetime

import pytest

from node.calls.events import summary_line
from node.core import calendars
from node.news.bulletin import heading
from node.storage.models import Event

PERSIAN_DIGITS = re.compile("[\u06f0-\u06f9]")
ARABIC_INDIC = re.compile("[\u0660-\u0669]")
LATIN = re.compile("[0-9]")
# 1 December 2026 is 10 Azar 1405 (a Tuesday); 21 March 2027 is 1 Farvardin 1406 (Nowruz).
MOMENT = datetime(2026, 12, 1, 10, 35, tzinfo=UTC)


def test_persian_is_solar_hijri_in_persian_digits_with_the_gregorian_beside() -> None:
    shown = calendars.format_datetime(MOMENT, "fa", "Asia/Tehran")
    assert shown.startswith("سه‌شنبه ۱۰ آذر ۱۴۰۵ (۱ دسامبر ۲۰۲۶)")
    assert shown.endswith("۱۴:۰۵")  # 10:35 UTC is 14:05 in Tehran
    assert not LATIN.search(shown)
    assert calendars.format_date(date(2027, 3, 21), "fa").startswith("۱ فروردین ۱۴۰۶")


def test_time_is_the_zone_given_not_utc() -> None:
    assert calendars.format_time(MOMENT, "de", "Europe/Zurich") == "11:35"
    assert calendars.format_time(MOMENT, "de", "America/Montreal") == "05:35"


def test_arabic_uses_arabic_indic_digits_and_the_gregorian_calendar() -> None:
    shown = calendars.format_datetime(MOMENT, "ar", "UTC")
    assert ARABIC_INDIC.search(shown) and not LATIN.search(shown)
    assert not PERSIAN_DIGITS.search(shown)
    assert "ديسمبر" in shown and "٢٠٢٦" in shown


@pytest.mark.parametrize("language, month", [("de", "Dezember"), ("en", "December"),
                                             ("fr", "décembre"), ("ar-MA", "دجنبر")])
def test_other_languages_are_gregorian_with_latin_digits(language: str, month: str) -> None:
    shown = calendars.format_datetime(MOMENT, language, "UTC")
    assert month in shown and "2026" in shown and "10:35" in shown
    assert not PERSIAN_DIGITS.search(shown) and not ARABIC_INDIC.search(shown)


@pytest.mark.parametrize("language", ["", "xx", "zz-Qaaa", "x" * 200, "../../etc"])
def test_unknown_or_malformed_languages_fall_back_to_english(language: str) -> None:
    shown = calendars.format_datetime(MOMENT, language, "UTC")
    assert "December" in shown or "آذر" in shown


def _event(status: str = "scheduled") -> Event:
    return Event(object_id=1, start_time=MOMENT, timezone="Europe/Zurich", status=status,
                 place={"name": "Place des Nations", "city": "Genève"})


def test_event_summary_line_uses_the_readers_calendar() -> None:
    fa = summary_line(_event(), "fa", ["کارزار"])
    assert "۱۰ آذر ۱۴۰۵" in fa and "(۱ دسامبر ۲۰۲۶)" in fa and "۱۱:۳۵" in fa
    ar = summary_line(_event("postponed"), "ar", [])
    assert ar.startswith("تأجيل") and "١١:٣٥" in ar
    de = summary_line(_event("cancelled"), "de", [])
    assert de.startswith("ABGESAGT") and "1. Dezember 2026, 11:35" in de


def test_bulletin_title_uses_the_readers_calendar() -> None:
    end = datetime(2026, 12, 7, tzinfo=UTC)
    fa = heading(12, MOMENT, end, "fa")
    assert fa.startswith("خبرنامهٔ شمارهٔ ۱۲ — ۱۰ آذر ۱۴۰۵ – ۱۶ آذر ۱۴۰۵")
    assert "دسامبر ۲۰۲۶" in fa and not LATIN.search(fa)
    assert "١٢" in heading(12, MOMENT, end, "ar")
    de = heading(12, MOMENT, end, "de")
    assert de.startswith("Bulletin Nr. 12 — 1.") and "2026" in de


def test_importing_the_module_loads_neither_babel_nor_jdatetime() -> None:
    # Idle RSS (issue 17): the libraries load on the first date, not at start-up.
    code = ("import sys, node.core.calendars; "
            "print(any(m.split('.')[0] in ('babel', 'jdatetime') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_a_posix_style_persian_tag_is_still_solar_hijri() -> None:
    assert "آذر ۱۴۰۵" in calendars.format_datetime(MOMENT, "fa_IR", "UTC")
