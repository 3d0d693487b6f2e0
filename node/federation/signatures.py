"""HTTP message signatures, both schemes, both directions.

- draft-cavage-http-signatures-12 ("cavage"): what Mastodon requires on inbound POSTs,
  ``rsa-sha256`` over ``(request-target) host date digest`` with an RFC 3230 ``Digest``.
- RFC 9421 with an RFC 9530 ``Content-Digest``: what newer servers send; we cover
  ``"@method" "@target-uri" "content-digest"`` with parameters ``created keyid alg``.

Pure functions, no I/O. Verification is split in two, ``parse_request_signature`` then
``verify_signature``, so the caller can fetch the signer's key asynchronously in between.
Anything hostile comes out as ``SignatureError`` with a short stable ``reason``; error
details never carry key material or signature bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Literal, TypeAlias
from urllib.parse import SplitResult, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from http_sfv.dictionary import Dictionary
from http_sfv.item import InnerList, Item

from node.federation.keys import PublicKey, load_private_pem

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

# draft-cavage-12 section 2.1: Signature parameters are name="quoted string"; created and
# expires (2.1.4, 2.1.5) are bare integers. Quoted-pairs are allowed as in RFC 7230 3.2.6.
_CAVAGE_PARAM = re.compile(
    r'[ \t]*([A-Za-z][A-Za-z0-9_-]*)[ \t]*=[ \t]*'
    r'(?:"((?:[^"\\\r\n]|\\[^\r\n])*)"|([0-9A-Za-z!#$%&\'*+.^_`|~-]+))'
    r"[ \t]*(?:,|\Z)"
)
_QUOTED_PAIR = re.compile(r"\\(.)")
_INTEGER = re.compile(r"-?[0-9]{1,15}")
# RFC 9421 section 2: component names are lower-cased field names or derived components.
_COMPONENT_NAME = re.compile(r"@?[a-z0-9!#$%&'*+.^_`|~-]+")
_CAVAGE_ALGORITHMS = frozenset({"rsa-sha256", "hs2019"})
_RFC9421_ALGORITHMS = frozenset({"rsa-v1_5-sha256", "ed25519"})
# Which algorithm names a key of each type may be used under (None: not stated).
_RSA_ALGORITHMS = frozenset({None, "rsa-sha256", "hs2019", "rsa-v1_5-sha256"})
_ED25519_ALGORITHMS = frozenset({None, "hs2019", "ed25519"})
# Headers the signer itself produces; a caller may not override them via extra_headers.
_MANAGED_HEADERS = frozenset({"host", "date", "digest", "content-digest", "signature",
                              "signature-input"})
# GETs sign Accept as well (Mastodon's Request signs it): it selects the representation.
_SIGNED_EXTRAS = ("accept",)


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


# --- shared helpers -------------------------------------------------------------------------


def _sha256_b64(body: bytes) -> str:
    return base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def digest_header(body: bytes) -> str:
    """RFC 3230 ``Digest`` with the RFC 5843 ``SHA-256`` algorithm (what Mastodon checks)."""
    return "SHA-256=" + _sha256_b64(body)


def content_digest_header(body: bytes) -> str:
    """RFC 9530 section 2 ``Content-Digest``: a Dictionary whose sha-256 member is a Byte
    Sequence. We never use content codings, so the content is the raw body."""
    return "sha-256=:" + _sha256_b64(body) + ":"


def _fold(headers: Mapping[str, str]) -> dict[str, str]:
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


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    # A naive datetime is taken as UTC: everything in this code base stores UTC.
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def _http_date(moment: datetime) -> str:
    """IMF-fixdate, RFC 9110 section 5.6.7 ("Sun, 06 Nov 1994 08:49:37 GMT")."""
    return format_datetime(moment.replace(microsecond=0), usegmt=True)


def _split_url(url: str) -> SplitResult:
    parts = urlsplit(url.split("#", 1)[0])
    if parts.scheme.lower() not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError("an absolute http(s) URL is needed")
    return parts


def _authority(parts: SplitResult) -> str:
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


def _path_and_query(parts: SplitResult) -> str:
    # The request-target in origin-form (RFC 9112 section 3.2.1): an empty path is "/".
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _normal_uri(parts: SplitResult) -> str:
    """The target URI as the receiving server reconstructs it (RFC 9110 section 7.1)."""
    return f"{parts.scheme.lower()}://{_authority(parts)}{_path_and_query(parts)}"


def _host_authority(value: str, scheme: str) -> str:
    """A received Host header, normalised like ``_authority`` for comparison."""
    host = value.strip().lower()
    suffix = f":{DEFAULT_PORTS.get(scheme.lower(), 0)}"
    return host[: -len(suffix)] if host.endswith(suffix) else host


def _ascii(lines: Iterable[str]) -> bytes:
    """Join lines into the bytes that get signed.

    RFC 9421 section 2.5 defines the signature base as ASCII and refuses values with
    newlines (they would let one component forge another's line); cavage's signing
    string has the same line structure, so the same rule applies there.
    """
    checked = list(lines)
    if any(not line.isascii() or "\n" in line or "\r" in line for line in checked):
        raise SignatureError("malformed_signature", "non-ASCII or multi-line component value")
    return "\n".join(checked).encode("ascii")


def _check_key_id(key_id: str) -> None:
    # The keyId goes inside a quoted string (cavage) or an sf-string (RFC 8941 3.3.3).
    if not key_id or not key_id.isascii() or any(c in key_id for c in '"\\') \
            or not key_id.isprintable():
        raise ValueError("key_id must be printable ASCII without quotes or backslashes")


# --- signing: cavage ---------------------------------------------------------------------


def _cavage_line(name: str, method: str, parts: SplitResult, headers: Mapping[str, str]) -> str:
    # draft-cavage-12 section 2.3: "name: value", with (request-target) being the lower-cased
    # method, a space, and the path with its query.
    if name == "(request-target)":
        return f"(request-target): {method.lower()} {_path_and_query(parts)}"
    return f"{name}: {headers[name]}"


def sign_cavage(
    *,
    method: str,
    url: str,
    body: bytes | None,
    key_id: str,
    private_key: RSAPrivateKey,
    now: datetime | None = None,
    extra_headers: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Headers to send: Host, Date, Digest (when there is a body), Signature, plus
    ``extra_headers`` (of which Accept is signed).

    Host is set to exactly what aiohttp/httpx would send, so the signed value is what the
    receiver sees; send the returned Host rather than letting the client derive another.
    """
    _check_key_id(key_id)
    parts = _split_url(url)
    headers: dict[str, str] = {"Host": _authority(parts), "Date": _http_date(_utc(now))}
    covered = ["(request-target)", "host", "date"]
    if body is not None:
        headers["Digest"] = digest_header(body)
        covered.append("digest")
    extras = {name.lower(): (name, value.strip()) for name, value in (extra_headers or {}).items()}
    if _MANAGED_HEADERS & extras.keys():
        raise ValueError("extra_headers may not set signature-managed headers")
    headers.update(extras.values())
    covered.extend(name for name in _SIGNED_EXTRAS if name in extras)
    lowered = _fold(headers)
    signing_string = _ascii(_cavage_line(name, method, parts, lowered) for name in covered)
    signature = private_key.sign(signing_string, padding.PKCS1v15(), hashes.SHA256())
    # Section 2.1: keyId, algorithm, headers and signature, each a quoted string.
    headers["Signature"] = (
        f'keyId="{key_id}",algorithm="rsa-sha256",headers="{" ".join(covered)}",'
        f'signature="{base64.b64encode(signature).decode("ascii")}"'
    )
    return headers


# --- signing: RFC 9421 -------------------------------------------------------------------


def _component_value(name: str, method: str, parts: SplitResult,
                     headers: Mapping[str, str]) -> str:
    """One component's value, RFC 9421 section 2.1 (fields) and 2.2 (derived)."""
    if name == "@method":  # 2.2.1: as received, no case change
        return method
    if name == "@target-uri":  # 2.2.2
        return _normal_uri(parts)
    if name == "@authority":  # 2.2.3
        return _authority(parts)
    if name == "@scheme":  # 2.2.4
        return parts.scheme.lower()
    if name == "@request-target":  # 2.2.5
        return _path_and_query(parts)
    if name == "@path":  # 2.2.6
        return parts.path or "/"
    if name == "@query":  # 2.2.7: "?" even when the query is empty
        return "?" + parts.query
    if name.startswith("@"):
        # @query-param needs a name parameter and @status is for responses: neither
        # makes sense for what we verify.
        raise SignatureError("malformed_signature", "unsupported derived component")
    value = headers.get(name)
    if value is None:  # 2.5: a covered field that is absent fails the base
        raise SignatureError("malformed_signature", "a covered header is missing")
    return value


def _component_names(components: InnerList) -> tuple[str, ...]:
    """The covered component identifiers, refusing lists we cannot rebuild faithfully."""
    names: list[str] = []
    for item in components:
        name = item.value
        # Component parameters (;sf ;key ;bs ;req ;tr) change a value's meaning; none of
        # them is used in ActivityPub and accepting them unread would be unsafe.
        if type(name) is not str or item.params or not _COMPONENT_NAME.fullmatch(name):
            raise SignatureError("malformed_signature", "unsupported component identifier")
        if name in names or name == "@signature-params":  # 2.5, 2.3
            raise SignatureError("malformed_signature", "component listed twice")
        names.append(name)
    return tuple(names)


def _signature_base(components: InnerList, method: str, parts: SplitResult,
                    headers: Mapping[str, str]) -> bytes:
    """RFC 9421 section 2.5: one ``"name": value`` line per covered component, in order,
    then ``"@signature-params": `` and the serialised Inner List with its parameters."""
    lines = [f'"{name}": {_component_value(name, method, parts, headers)}'
             for name in _component_names(components)]
    lines.append(f'"@signature-params": {components}')
    return _ascii(lines)


def sign_rfc9421(
    *,
    method: str,
    url: str,
    body: bytes | None,
    key_id: str,
    private_key: RSAPrivateKey | Ed25519PrivateKey,
    now: datetime | None = None,
    label: str = "sig1",
) -> dict[str, str]:
    """Headers to send: Content-Digest (when there is a body), Signature-Input, Signature."""
    _check_key_id(key_id)
    parts = _split_url(url)
    headers: dict[str, str] = {}
    names = ["@method", "@target-uri"]
    if body is not None:
        headers["Content-Digest"] = content_digest_header(body)
        names.append("content-digest")
    components = InnerList(list(names))
    components.params["created"] = int(_utc(now).timestamp())
    components.params["keyid"] = key_id
    # Section 3.3: alg is optional, but stating it stops a verifier trying another one.
    rsa = isinstance(private_key, RSAPrivateKey)
    components.params["alg"] = "rsa-v1_5-sha256" if rsa else "ed25519"
    # HTTP clients upper-case the method on the wire (aiohttp, httpx), so sign that.
    base = _signature_base(components, method.upper(), parts, _fold(headers))
    if isinstance(private_key, RSAPrivateKey):  # 3.3.2 RSASSA-PKCS1-v1_5 using SHA-256
        signature = private_key.sign(base, padding.PKCS1v15(), hashes.SHA256())
    else:  # 3.3.6 EdDSA using curve edwards25519
        signature = private_key.sign(base)
    inputs = Dictionary()
    inputs[label] = components
    values = Dictionary()
    values[label] = Item(signature)
    headers["Signature-Input"] = str(inputs)  # 4.1: Dictionary of Inner Lists
    headers["Signature"] = str(values)  # 4.2: Dictionary of Byte Sequences
    return headers


# --- verification ------------------------------------------------------------------------


def _check_window(created: int, now: datetime) -> None:
    now_ts = now.timestamp()
    if created > now_ts + MAX_FUTURE.total_seconds():
        raise SignatureError("future_date", "signed too far in the future")
    if created < now_ts - MAX_PAST.total_seconds():
        raise SignatureError("stale_date", "signature too old")


def _check_expires(expires: int, now: datetime) -> None:
    if now.timestamp() > expires + EXPIRES_SKEW.total_seconds():
        raise SignatureError("stale_date", "signature expired")


def _check_host(headers: Mapping[str, str], parts: SplitResult) -> None:
    """The authority the client addressed (Host) must be the one the server answers for;
    otherwise a request signed for another server is being replayed here."""
    host = headers.get("host")
    if host is not None and _host_authority(host, parts.scheme) != _authority(parts):
        raise SignatureError("target_mismatch", "signed for another host")


def _parse_cavage_params(value: str) -> dict[str, str]:
    params: dict[str, str] = {}
    position = 0
    while position < len(value):
        match = _CAVAGE_PARAM.match(value, position)
        if match is None:
            raise SignatureError("malformed_signature", "unreadable Signature header")
        name, quoted, bare = match.groups()
        if name in params:  # section 2.2: a duplicated parameter must not be processed
            raise SignatureError("malformed_signature", "duplicated Signature parameter")
        params[name] = _QUOTED_PAIR.sub(r"\1", quoted) if quoted is not None else bare
        position = match.end()
    return params


def _cavage_time(params: Mapping[str, str], name: str) -> int:
    raw = params.get(name)
    if raw is None or not _INTEGER.fullmatch(raw):
        raise SignatureError("malformed_signature", f"({name}) without an integer {name}")
    return int(raw)


def _parse_cavage(method: str, parts: SplitResult, headers: Mapping[str, str], now: datetime,
                  require_digest: bool) -> ParsedSignature:
    params = _parse_cavage_params(headers["signature"])
    key_id, signature_b64 = params.get("keyId"), params.get("signature")
    if not key_id or not signature_b64:  # 2.1.1, 2.1.2: both are REQUIRED
        raise SignatureError("malformed_signature", "keyId and signature are required")
    # 2.1.3: algorithm is optional; hs2019 means "derive it from the key", which for the
    # RSA keys of the fediverse is RSASSA-PKCS1-v1_5 with SHA-256 (as Mastodon reads it).
    algorithm = params.get("algorithm")
    if algorithm is not None:
        algorithm = algorithm.lower()
        if algorithm not in _CAVAGE_ALGORITHMS:
            raise SignatureError("unsupported_algorithm", "only rsa-sha256 and hs2019")
    # 2.1.6: without a headers parameter only (created) is signed, which is not enough.
    names = params.get("headers", "(created)").lower().split()
    covered = set(names)
    required = {"(request-target)", "host"} | ({"digest"} if require_digest else set())
    if not required <= covered or not {"date", "(created)"} & covered:
        raise SignatureError("header_not_signed", "(request-target) host date digest needed")
    times: list[int] = []
    lines: list[str] = []
    for name in names:
        if name in {"(created)", "(expires)"}:
            # 2.3: these pseudo-headers with an rsa-* algorithm MUST produce an error.
            if algorithm == "rsa-sha256":
                raise SignatureError("malformed_signature", f"{name} with rsa-sha256")
            moment = _cavage_time(params, name[1:-1])
            if name == "(created)":
                times.append(moment)
            else:
                _check_expires(moment, now)
            lines.append(f"{name}: {moment}")
        elif name == "(request-target)" or name in headers:
            lines.append(_cavage_line(name, method, parts, headers))
        else:  # 2.3 step 3: a listed header that is absent is an error
            raise SignatureError("malformed_signature", "a signed header is missing")
    _check_host(headers, parts)
    if "date" in covered:
        try:
            sent = parsedate_to_datetime(headers["date"])
        except (TypeError, ValueError, IndexError) as exc:
            raise SignatureError("malformed_signature", "unreadable Date") from exc
        times.append(int(_utc(sent).timestamp()))
    for moment in times:
        _check_window(moment, now)
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except binascii.Error as exc:
        raise SignatureError("malformed_signature", "signature is not base64") from exc
    created = datetime.fromtimestamp(times[0], UTC)
    return ParsedSignature("cavage", key_id, algorithm, signature, _ascii(lines),
                           tuple(names), created)


def _int_param(components: InnerList, name: str) -> int | None:
    value = components.params.get(name)
    if value is None:
        return None
    if type(value) is not int:  # bool is an int subclass, and sf-booleans are not times
        raise SignatureError("malformed_signature", f"{name} must be an integer")
    return value


def _parse_rfc9421(method: str, parts: SplitResult, headers: Mapping[str, str], now: datetime,
                   require_digest: bool) -> ParsedSignature:
    inputs, values = Dictionary(), Dictionary()
    try:
        inputs.parse(headers["signature-input"].encode("ascii"))
        values.parse(headers.get("signature", "").encode("ascii"))
    except (ValueError, UnicodeError) as exc:
        raise SignatureError("malformed_signature", "unreadable Signature-Input") from exc
    label = next(iter(inputs))  # we read the first signature only
    components = inputs[label]
    signature_item = values.get(label)
    if not isinstance(components, InnerList) or not isinstance(signature_item, Item) \
            or type(signature_item.value) is not bytes:
        raise SignatureError("malformed_signature", "no signature for the label")
    covered = _component_names(components)
    # @target-uri (or @authority with @path) binds the signature to this inbox.
    has_target = "@target-uri" in covered or {"@authority", "@path"} <= set(covered)
    if "@method" not in covered or not has_target or (
            require_digest and "content-digest" not in covered):
        raise SignatureError("header_not_signed", "@method @target-uri content-digest needed")
    key_id = components.params.get("keyid")
    created = _int_param(components, "created")
    # Section 2.3: keyid is an sf-string; created we require, as Mastodon does, to bound
    # replay.
    if type(key_id) is not str or not key_id or created is None:
        raise SignatureError("malformed_signature", "keyid and created are required")
    algorithm = components.params.get("alg")
    # Section 3.3: alg is an sf-string (a Token subclass of str is not one).
    if algorithm is not None and (type(algorithm) is not str
                                  or algorithm not in _RFC9421_ALGORITHMS):
        raise SignatureError("unsupported_algorithm", "only rsa-v1_5-sha256 and ed25519")
    _check_host(headers, parts)
    _check_window(created, now)
    expires = _int_param(components, "expires")
    if expires is not None:
        _check_expires(expires, now)
    base = _signature_base(components, method, parts, headers)
    return ParsedSignature("rfc9421", key_id, algorithm, signature_item.value, base, covered,
                           datetime.fromtimestamp(created, UTC))


def parse_request_signature(*, method: str, target_uri: str, headers: Mapping[str, str],
                            now: datetime, require_digest: bool) -> ParsedSignature:
    """Read a request's signature and check everything that needs no key.

    ``target_uri`` is the absolute URI the server answers at (its public base URL plus the
    request path and query), ``method`` the method as received. ``Signature-Input``
    selects RFC 9421, otherwise ``Signature`` is read as cavage.

    For cavage the signed host is the Host header, which must name ``target_uri``'s
    authority ("target_mismatch"); a replay to another path on the same host fails the
    signature check. For RFC 9421 ``@target-uri`` is rebuilt from ``target_uri``: the
    signer's URI is not transmitted, so a replay elsewhere can only surface as a failed
    signature ("bad_signature") unless its Host header gives it away.

    Raises only ``SignatureError``.
    """
    try:
        lowered = _fold(headers)
        if any(len(lowered.get(name, "")) > MAX_HEADER for name in
               ("signature", "signature-input", "date", "host")):
            raise SignatureError("malformed_signature", "header too long")
        parts = _split_url(target_uri)
        now = _utc(now)
        if "signature-input" in lowered:
            return _parse_rfc9421(method, parts, lowered, now, require_digest)
        if "signature" in lowered:
            return _parse_cavage(method, parts, lowered, now, require_digest)
    except SignatureError:
        raise
    except Exception as exc:  # hostile input must only ever come out as "malformed"
        raise SignatureError("malformed_signature", type(exc).__name__) from exc
    raise SignatureError("missing_signature", "the request is not signed")


def verify_signature(parsed: ParsedSignature, public_key: PublicKey) -> None:
    """Check the signature over ``parsed.signed_base`` with the signer's key.

    RSA keys verify RSASSA-PKCS1-v1_5 with SHA-256 (cavage rsa-sha256/hs2019, RFC 9421
    section 3.3.2); Ed25519 keys verify EdDSA (section 3.3.6). An algorithm that names the
    other key type is refused without trying it (RFC 9421 section 3.2 step 6).
    """
    try:
        if isinstance(public_key, RSAPublicKey):
            if parsed.algorithm not in _RSA_ALGORITHMS:
                raise SignatureError("bad_signature", "algorithm does not match the key")
            public_key.verify(parsed.signature, parsed.signed_base, padding.PKCS1v15(),
                              hashes.SHA256())
        elif isinstance(public_key, Ed25519PublicKey):
            if parsed.algorithm not in _ED25519_ALGORITHMS:
                raise SignatureError("bad_signature", "algorithm does not match the key")
            public_key.verify(parsed.signature, parsed.signed_base)
        else:
            raise SignatureError("unsupported_algorithm", "unsupported key type")
    except (InvalidSignature, ValueError) as exc:
        raise SignatureError("bad_signature", "signature does not verify") from exc


def _digest_entries(value: str) -> list[bytes | None]:
    """The SHA-256 values of an RFC 3230 Digest (``alg=base64`` items separated by commas,
    algorithm names case-insensitive, section 4.3.2); None for an unreadable one."""
    found: list[bytes | None] = []
    for part in value.split(","):
        name, sep, encoded = part.strip().partition("=")
        if sep and name.strip().lower() == "sha-256":
            try:
                found.append(base64.b64decode(encoded.strip(), validate=True))
            except binascii.Error:
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
    """
    lowered = _fold(headers)
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


class RequestSigner:
    """Signs requests as one actor with its RSA key (Mastodon verifies RSA for both
    schemes). Callable as a ``node.fetch.Signer``."""

    def __init__(self, private_pem: str, key_id: str) -> None:
        key = load_private_pem(private_pem)
        if not isinstance(key, RSAPrivateKey):
            raise TypeError("the actor's main key must be RSA")
        self._key = key
        self.key_id = key_id

    def __call__(self, method: str, url: str, body: bytes | None,
                 scheme: Scheme) -> dict[str, str]:
        if scheme == "rfc9421":
            return sign_rfc9421(method=method, url=url, body=body, key_id=self.key_id,
                                private_key=self._key)
        return sign_cavage(method=method, url=url, body=body, key_id=self.key_id,
                           private_key=self._key)
