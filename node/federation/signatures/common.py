"""What both HTTP signature schemes share: errors, the parsed result, the
request's target URI and authority as client and server see them, the signing
string's byte rules, time windows, and body digests (RFC 3230 ``Digest``,
RFC 9530 ``Content-Digest``).

Pure functions, no I/O. Anything hostile comes out as ``SignatureError``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Literal, TypeAlias
from urllib.parse import SplitResult, urlsplit

from http_sfv.dictionary import Dictionary
from http_sfv.item import Item

Reason: TypeAlias = Literal[
    "missing_signature", "malformed_signature", "unsupported_algorithm", "header_not_signed",
    "missing_digest", "digest_mismatch", "stale_date", "future_date", "bad_signature",
    "target_mismatch",
]
Scheme: TypeAlias = Literal["cavage", "rfc9421"]

# Mastodon's window (SignedRequest#matches_time_window?): a signature may be created up to
# CLOCK_SKEW_MARGIN (1 h) ahead, and expires 5 minutes after creation plus that same 1 h
# margin, i.e. 65 minutes back. An explicit (expires)/expires gets the 1 h margin too.
MAX_FUTURE = timedelta(hours=1)
MAX_PAST = timedelta(minutes=65)
EXPIRES_SKEW = timedelta(hours=1)
# A legitimate signature header is a few hundred bytes; bounding them bounds parsing work.
MAX_HEADER = 8192
DEFAULT_PORTS = {"http": 80, "https": 443}


class SignatureError(Exception):
    """A refused signature; ``reason`` is a short stable code for logs and metrics."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason: Reason = reason


@dataclass(frozen=True)
class ParsedSignature:
    """A syntactically valid, in-window signature, not yet checked against a key."""

    scheme: Scheme
    key_id: str
    algorithm: str | None
    signature: bytes
    signed_base: bytes
    covered: tuple[str, ...]
    created: datetime | None


def _sha256_b64(body: bytes) -> str:
    return base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def digest_header(body: bytes) -> str:
    """RFC 3230 ``Digest`` with the RFC 5843 ``SHA-256`` algorithm (what Mastodon checks)."""
    return "SHA-256=" + _sha256_b64(body)


def content_digest_header(body: bytes) -> str:
    """RFC 9530 section 2 ``Content-Digest``: a Dictionary whose sha-256 member is a Byte
    Sequence. We never use content codings, so the content is the raw body."""
    return "sha-256=:" + _sha256_b64(body) + ":"


def fold(headers: Mapping[str, str]) -> dict[str, str]:
    """Lower-case names; join repeated fields with ", " after trimming each value.

    Both schemes define a field's value this way: draft-cavage-12 section 2.3 step 2,
    RFC 9421 section 2.1. Starlette and aiohttp header objects yield repeated fields
    from ``items()``, so they combine here too.
    """
    folded: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        value = value.strip()
        folded[key] = f"{folded[key]}, {value}" if key in folded else value
    return folded


def utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    # A naive datetime is taken as UTC: everything in this code base stores UTC.
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def http_date(moment: datetime) -> str:
    """IMF-fixdate, RFC 9110 section 5.6.7 ("Sun, 06 Nov 1994 08:49:37 GMT")."""
    return format_datetime(moment.replace(microsecond=0), usegmt=True)


def split_url(url: str) -> SplitResult:
    parts = urlsplit(url.split("#", 1)[0])
    if parts.scheme.lower() not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError("an absolute http(s) URL is needed")
    return parts


def authority(parts: SplitResult) -> str:
    """host[:port] as HTTP clients send it in Host (aiohttp and httpx alike): lower-case,
    IDNA A-labels, no userinfo, the port only if it is not the scheme's default
    (RFC 9110 section 7.2; RFC 9421 section 2.2.3 normalises @authority the same way)."""
    host = parts.hostname or ""
    if not host.isascii():
        host = host.encode("idna").decode("ascii")
    if ":" in host:
        host = f"[{host}]"  # IPv6 literal, RFC 3986 section 3.2.2
    port = parts.port
    if port is not None and port != DEFAULT_PORTS[parts.scheme.lower()]:
        host = f"{host}:{port}"
    return host


def path_and_query(parts: SplitResult) -> str:
    # The request-target in origin-form (RFC 9112 section 3.2.1): an empty path is "/".
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def normal_uri(parts: SplitResult) -> str:
    """The target URI as the receiving server reconstructs it (RFC 9110 section 7.1)."""
    return f"{parts.scheme.lower()}://{authority(parts)}{path_and_query(parts)}"


def host_authority(value: str, scheme: str) -> str:
    """A received Host header, normalised like ``authority`` for comparison."""
    host = value.strip().lower()
    suffix = f":{DEFAULT_PORTS.get(scheme.lower(), 0)}"
    return host[: -len(suffix)] if host.endswith(suffix) else host


def signing_bytes(lines: Iterable[str]) -> bytes:
    """Join lines into the bytes that get signed.

    RFC 9421 section 2.5 defines the signature base as ASCII and refuses values with
    newlines (they would let one component forge another's line); cavage's signing
    string has the same line structure, so the same rule applies there.
    """
    checked = list(lines)
    if any(not line.isascii() or "\n" in line or "\r" in line for line in checked):
        raise SignatureError("malformed_signature", "non-ASCII or multi-line component value")
    return "\n".join(checked).encode("ascii")


def check_key_id(key_id: str) -> None:
    # The keyId goes inside a quoted string (cavage) or an sf-string (RFC 8941 3.3.3).
    if not key_id or not key_id.isascii() or any(c in key_id for c in '"\\') \
            or not key_id.isprintable():
        raise ValueError("key_id must be printable ASCII without quotes or backslashes")


def check_window(created: int, now: datetime) -> None:
    now_ts = now.timestamp()
    if created > now_ts + MAX_FUTURE.total_seconds():
        raise SignatureError("future_date", "signed too far in the future")
    if created < now_ts - MAX_PAST.total_seconds():
        raise SignatureError("stale_date", "signature too old")


def check_expires(expires: int, now: datetime) -> None:
    if now.timestamp() > expires + EXPIRES_SKEW.total_seconds():
        raise SignatureError("stale_date", "signature expired")


def check_host(headers: Mapping[str, str], parts: SplitResult) -> None:
    """The authority the client addressed (Host) must be the one the server answers for;
    otherwise a request signed for another server is being replayed here."""
    host = headers.get("host")
    if host is not None and host_authority(host, parts.scheme) != authority(parts):
        raise SignatureError("target_mismatch", "signed for another host")


def _digest_entries(value: str) -> list[bytes | None]:
    """The SHA-256 values of an RFC 3230 Digest (``alg=base64`` items separated by commas,
    algorithm names case-insensitive, section 4.3.2); None for an unreadable one."""
    found: list[bytes | None] = []
    for part in value.split(","):
        name, sep, encoded = part.strip().partition("=")
        if sep and name.strip().lower() == "sha-256":
            try:
                found.append(base64.b64decode(encoded.strip(), validate=True))
            except ValueError:  # binascii.Error, or plain ValueError for non-ASCII text
                found.append(None)
    return found


def _content_digest_entry(value: str) -> bytes | None:
    """The sha-256 member of an RFC 9530 Content-Digest, or None if it has none."""
    digests = Dictionary()
    try:
        digests.parse(value.encode("ascii"))
    except (ValueError, UnicodeError) as exc:
        raise SignatureError("malformed_signature", "unreadable Content-Digest") from exc
    item = digests.get("sha-256")
    if item is None:
        return None
    if not isinstance(item, Item) or type(item.value) is not bytes:
        raise SignatureError("malformed_signature", "sha-256 must be a byte sequence")
    return item.value


def verify_body_digest(headers: Mapping[str, str], body: bytes) -> None:
    """Check Digest (RFC 3230) and/or Content-Digest (RFC 9530) against the raw body.

    Every digest field present must carry a matching SHA-256. Checking just one would let
    an attacker keep the signed field from a captured request and add an unsigned field
    that matches a new body; we do not know here which of the two was signed.

    Raises only ``SignatureError``.
    """
    try:
        _verify_body_digest(headers, body)
    except SignatureError:
        raise
    except Exception as exc:  # hostile input must only ever come out as "malformed"
        raise SignatureError("malformed_signature", type(exc).__name__) from exc


def _verify_body_digest(headers: Mapping[str, str], body: bytes) -> None:
    lowered = fold(headers)
    fields = [name for name in ("digest", "content-digest") if name in lowered]
    if not fields:
        raise SignatureError("missing_digest", "no Digest or Content-Digest")
    expected = hashlib.sha256(body).digest()
    for name in fields:
        value = lowered[name]
        if len(value) > MAX_HEADER:
            raise SignatureError("malformed_signature", "header too long")
        if name == "digest":
            # An unreadable SHA-256 value stays in the list as None and so mismatches.
            entries = _digest_entries(value)
        else:
            entry = _content_digest_entry(value)
            entries = [] if entry is None else [entry]
        if not entries:
            raise SignatureError("missing_digest", f"{name} has no SHA-256")
        if any(entry != expected for entry in entries):
            raise SignatureError("digest_mismatch", f"body does not match {name}")
