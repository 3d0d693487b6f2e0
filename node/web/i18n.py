"""Interface languages: gettext catalogues and which language a reader gets.

Catalogues live in ``node/web/locale/<lang>/LC_MESSAGES/messages.po`` (extracted with
Babel, configuration in pyproject.toml ``[tool.babel]``). A compiled ``messages.mo``
beside a ``.po`` is used when present (``pybabel compile -d node/web/locale`` at
install); otherwise the ``.po`` is compiled in memory on first use of that language
and kept for the life of the process. Nothing is written to disk.

Which language (docs/ARCHITECTURE.md#8-the-public-site): an explicit choice
(``?lang=xx``, which also sets the ``lang`` cookie) beats the cookie, which beats
``Accept-Language``, which beats the page's default (a group's pages: the group's
language), which beats English. Only languages with a catalogue are chosen.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import gettext
import io
from collections.abc import Iterator, Mapping
from pathlib import Path

LOCALE_DIR = Path(__file__).parent / "locale"
DEFAULT = "en"
COOKIE = "lang"
COOKIE_MAX_AGE = 365 * 24 * 3600
MAX_ACCEPT_LANGUAGE = 400  # header bytes looked at; a longer one is cut, never parsed whole
RTL_LANGUAGES = frozenset({"fa", "ar", "ckb", "he", "ur", "ps", "yi", "sd", "ug", "dv"})


@functools.cache
def available() -> tuple[str, ...]:
    """Languages with a catalogue, English first."""
    found = sorted(p.name for p in LOCALE_DIR.iterdir()
                   if (p / "LC_MESSAGES" / "messages.po").is_file())
    return tuple(sorted(found, key=lambda lang: lang != DEFAULT))


def direction(language: str) -> str:
    return "rtl" if language.split("-")[0].lower() in RTL_LANGUAGES else "ltr"


@functools.cache
def translations(language: str) -> gettext.NullTranslations:
    if language not in available():
        return gettext.NullTranslations()
    folder = LOCALE_DIR / language / "LC_MESSAGES"
    compiled = folder / "messages.mo"
    if compiled.is_file():
        with compiled.open("rb") as handle:
            return gettext.GNUTranslations(handle)
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with (folder / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


# The language of the page being rendered: rendering is synchronous, so the
# template's ``_`` reads it without any argument (pages.render sets it).
_current: contextvars.ContextVar[str] = contextvars.ContextVar("interface_language",
                                                               default=DEFAULT)


@contextlib.contextmanager
def using(language: str) -> Iterator[None]:
    token = _current.set(language)
    try:
        yield
    finally:
        _current.reset(token)


def current() -> str:
    return _current.get()


def N_(message: str) -> str:
    """Marks a message for extraction; translated where it is shown."""
    return message


def gettext_(message: str) -> str:
    return translations(_current.get()).gettext(message)


def ngettext_(singular: str, plural: str, n: int) -> str:
    return translations(_current.get()).ngettext(singular, plural, n)


def _supported(tag: str) -> str | None:
    tag = tag.strip().lower().replace("_", "-")
    if not tag or len(tag) > 35:
        return None
    langs = available()
    if tag in langs:
        return tag
    base = tag.split("-")[0]
    return base if base in langs else None


def from_accept_language(header: str) -> str | None:
    """The best supported language of an Accept-Language header (q-values honoured)."""
    choices: list[tuple[float, int, str]] = []
    for index, part in enumerate(header[:MAX_ACCEPT_LANGUAGE].split(",")[:20]):
        tag, _, params = part.partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                continue
        found = _supported(tag)
        if found and 0 < quality <= 1:
            choices.append((-quality, index, found))
    return min(choices)[2] if choices else None


def preference(query: Mapping[str, str], cookies: Mapping[str, str], accept_language: str
               ) -> tuple[str | None, bool]:
    """The reader's own choice, if any: (language or None, whether to set the cookie)."""
    explicit = _supported(query.get("lang", ""))
    if explicit:
        return explicit, True
    return _supported(cookies.get(COOKIE, "")) or from_accept_language(accept_language), False


def choose(query: Mapping[str, str], cookies: Mapping[str, str], accept_language: str,
           default: str | None = None) -> tuple[str, bool]:
    """(language, whether to set the cookie): see the module docstring for the order."""
    found, remember = preference(query, cookies, accept_language)
    return found or resolve(None, default), remember


def resolve(preferred: str | None, default: str | None) -> str:
    return preferred or _supported(default or "") or DEFAULT


