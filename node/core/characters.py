"""Which characters a text typed by an editor may hold: the one rule for every kind.

News, calls, campaigns, timeline updates, group and network profiles, notes, alt
texts and drafts all pass here (docs/ARCHITECTURE.md#1-layers, "One way to do
each small thing"), whether they come from the CLI, the API or the workspace.

Refused: control characters (Unicode category Cc; newline and tab only where a
field is multi-line), unpaired surrogates (Cs: not text, and no UTF-8 encoding
exists for them, so they would fail at the database or on the wire), U+FFFE and
U+FFFF (noncharacters XML 1.0 forbids: every text may end up in an Atom feed),
and the invisible format characters (Cf) listed as refused below.

Accepted: everything else, including characters this Python's Unicode database
does not know yet (Cn: a new emoji must not be refused because the node's Python
is older than the reader's phone) and private-use characters (Co). The format
characters scripts need are accepted by name, see ``FORMAT_ALLOWED``.
"""

from __future__ import annotations

import re
import unicodedata

# Format characters (Cf) that prose needs, with the reason for each.
FORMAT_ALLOWED = frozenset(
    # ZWNJ and ZWJ: Persian spelling needs the non-joiner («می‌کنند»), and so
    # does Sorani typed the older way («کرێکاره‌کان»); the joiner also builds
    # emoji sequences (👩‍🏭, a woman factory worker).
    "\u200c\u200d"
    # LRM, RLM, ALM: the bidi marks that put a Latin word or a number in the right
    # place inside Persian, Kurdish and Arabic text (UAX #9).
    "\u200e\u200f\u061c"
    # LRI, RLI, FSI, PDI: isolates; the node itself wraps names in FSI … PDI
    # (calls/events.isolate), so an edited summary line must come back in.
    "\u2066\u2067\u2068\u2069"
    # LRE, RLE, PDF: the older embeddings. Word processors and Windows's own
    # "insert Unicode control character" menu still put them into pasted Persian
    # and Arabic text; refusing them would refuse ordinary pastes. They do not
    # reorder letters within a run, so they cannot make a word read as another.
    "\u202a\u202b\u202c"
    # Soft hyphen: German editors mark where long compounds may break
    # ("Gewerkschafts­versammlung").
    "\u00ad"
    # Zero-width space: the word boundary of Thai, Lao, Khmer and Burmese, which
    # write no spaces (migrant workers' groups write in them).
    "\u200b"
    # Word joiner: the no-break character that replaced U+FEFF inside text.
    "\u2060"
    # Arabic number sign, year sign, footnote marker … and the end-of-ayah sign:
    # visible signs written before numbers (Unicode calls them "prepended
    # concatenation marks"); quotations in Arabic and Persian statements use them.
    "\u0600\u0601\u0602\u0603\u0604\u0605\u06dd\u0890\u0891\u08e2"
)
# Refused format characters, the reason for each kind:
# - U+202D LRO and U+202E RLO, the overrides, reverse the letters of what follows:
#   "Trojan Source" (CVE-2021-42574) spoofing of names and links; an isolate or a
#   mark does everything prose needs.
# - U+FEFF inside text: the deprecated zero-width no-break space (U+2060 replaced
#   it). At the very start it is a byte-order mark left by a file or a paste:
#   encoding, not text, so ``check`` drops it there instead of refusing.
# - U+2061 to U+2064 (invisible mathematical operators), U+206A to U+206F (deprecated
#   shaping controls), U+FFF9 to U+FFFB (interlinear annotation), U+E0001 and
#   U+E0020 to U+E007F (tag characters: invisible ASCII that can hide text from
#   readers but not from machines), U+180E and any Cf not listed above: invisible,
#   with no use in the prose a group publishes.
LINE_BREAKS = frozenset("\n\u2028\u2029")  # LF and the Unicode line/paragraph separators
NONCHARACTERS = frozenset("\ufffe\uffff")
BOM = "\ufeff"
# Whitespace other than the no-break spaces (NBSP, figure space, narrow NBSP).
SPACE_RUNS_RE = re.compile(r"[^\S\u00a0\u2007\u202f]+")


class CharacterError(ValueError):
    """A text holds a character no field accepts; the message names it and where."""


def refused(char: str, *, multiline: bool) -> bool:
    """Whether ``char`` may not stand in a text (a multi-line one if ``multiline``)."""
    if char in LINE_BREAKS or char == "\t":
        return not multiline
    category = unicodedata.category(char)
    if category == "Cf":
        return char not in FORMAT_ALLOWED
    return category in ("Cc", "Cs") or char in NONCHARACTERS


def describe(char: str) -> str:
    """``U+0007`` plus the character's name where Unicode gives one (Cc have none)."""
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" {name}" if name else "")


def check(value: str, where: str, *, multiline: bool = False) -> str:
    """``value`` if every character may stand in it, else CharacterError naming the
    first refused one and its position (an editor cannot see an invisible
    character, but can find it by position). Multi-line text gets its line breaks
    as LF (a browser's textarea sends CRLF, RFC 7578 §4.2 via the HTML standard);
    a leading byte-order mark is dropped."""
    if value.startswith(BOM):
        value = value[1:]
    if multiline and "\r" in value:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    for index, char in enumerate(value):
        if refused(char, multiline=multiline):
            kind = ("a line break in a one-line field" if char in LINE_BREAKS or char == "\r"
                    else "a tab in a one-line field" if char == "\t"
                    else "an unpaired surrogate" if unicodedata.category(char) == "Cs"
                    else "an invisible formatting character"
                    if unicodedata.category(char) == "Cf"
                    else "a control character")
            raise CharacterError(f"{where} contains {kind} ({describe(char)}) at character "
                                 f"{index + 1}")
    return value


def check_all(value: object, where: str, *, depth: int = 0) -> object:
    """Every string in a JSON value (keys too) checked as multi-line text: for bodies
    kept before their fields are known to be one-line or not (drafts)."""
    if depth > 32:
        raise CharacterError(f"{where} is nested too deeply")
    if isinstance(value, str):
        return check(value, where, multiline=True)
    if isinstance(value, list):
        return [check_all(item, f"{where}[{i}]", depth=depth + 1)
                for i, item in enumerate(value)]
    if isinstance(value, dict):
        return {check(str(key), f"{where} key", multiline=False):
                check_all(item, f"{where}.{key}", depth=depth + 1)
                for key, item in value.items()}
    return value


def collapse(value: str) -> str:
    """Text from elsewhere (another server, a remote Join) made presentable as one
    line: refused characters and whitespace runs become single spaces; what the
    rule accepts, such as ZWNJ, stays; so do the no-break spaces, which are typed on
    purpose (French « », "§ 12")."""
    kept = "".join(" " if refused(c, multiline=False) else c for c in value)
    return SPACE_RUNS_RE.sub(" ", kept).strip(" ")
