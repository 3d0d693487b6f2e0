"""draft-cavage-http-signatures-12: what Mastodon requires on inbound POSTs,
``rsa-sha256`` over ``(request-target) host date digest`` with an RFC 3230 ``Digest``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING
from urllib.parse import SplitResult

from node.federation.signatures.common import (
    ParsedSignature,
    SignatureError,
    authority,
    check_expires,
    check_host,
    check_key_id,
    check_window,
    digest_header,
    fold,
    http_date,
    path_and_query,
    signing_bytes,
    split_url,
    utc,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

# draft-cavage-12 section 2.1: Signature parameters are name="quoted string"; created and
# expires (2.1.4, 2.1.5) are bare integers. Quoted-pairs are allowed as in RFC 7230 3.2.6.
_CAVAGE_PARAM = re.compile(
    r'[ \t]*([A-Za-z][A-Za-z0-9_-]*)[ \t]*=[ \t]*'
    r'(?:"((?:[^"\\\r\n]|\\[^\r\n])*)"|([0-9A-Za-z!#$%&\'*+.^_`|~-]+))'
    r"[ \t]*(?:,|\Z)"
)
_QUOTED_PAIR = re.compile(r"\\(.)")
_INTEGER = re.compile(r"-?[0-9]{1,15}")
_CAVAGE_ALGORITHMS = frozenset({"rsa-sha256", "hs2019"})
# Headers the signer itself produces; a caller may not override them via extra_headers.
_MANAGED_HEADERS = frozenset({"host", "date", "digest", "content-digest", "signature",
                              "signature-input"})
# GETs sign Accept as well (Mastodon's Request signs it): it selects the representation.
# Deliveries sign FEP-8fcf's Collection-Synchronization: a receiver acts on it only signed.
_SIGNED_EXTRAS = ("accept", "collection-synchronization")


def _cavage_line(name: str, method: str, parts: SplitResult, headers: Mapping[str, str]) -> str:
    # draft-cavage-12 section 2.3: "name: value", with (request-target) being the lower-cased
    # method, a space, and the path with its query.
    if name == "(request-target)":
        return f"(request-target): {method.lower()} {path_and_query(parts)}"
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
    check_key_id(key_id)
    parts = split_url(url)
    headers: dict[str, str] = {"Host": authority(parts), "Date": http_date(utc(now))}
    covered = ["(request-target)", "host", "date"]
    if body is not None:
        headers["Digest"] = digest_header(body)
        covered.append("digest")
    extras = {name.lower(): (name, value.strip()) for name, value in (extra_headers or {}).items()}
    if _MANAGED_HEADERS & extras.keys():
        raise ValueError("extra_headers may not set signature-managed headers")
    headers.update(extras.values())
    covered.extend(name for name in _SIGNED_EXTRAS if name in extras)
    lowered = fold(headers)
    signing_string = signing_bytes(_cavage_line(name, method, parts, lowered) for name in covered)
    # Imported here, not with the module: see signatures/__init__.py (idle memory).
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    signature = private_key.sign(signing_string, padding.PKCS1v15(), hashes.SHA256())
    # Section 2.1: keyId, algorithm, headers and signature, each a quoted string.
    headers["Signature"] = (
        f'keyId="{key_id}",algorithm="rsa-sha256",headers="{" ".join(covered)}",'
        f'signature="{base64.b64encode(signature).decode("ascii")}"'
    )
    return headers


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


def parse_cavage(method: str, parts: SplitResult, headers: Mapping[str, str], now: datetime,
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
                check_expires(moment, now)
            lines.append(f"{name}: {moment}")
        elif name == "(request-target)" or name in headers:
            lines.append(_cavage_line(name, method, parts, headers))
        else:  # 2.3 step 3: a listed header that is absent is an error
            raise SignatureError("malformed_signature", "a signed header is missing")
    check_host(headers, parts)
    if "date" in covered:
        try:
            sent = parsedate_to_datetime(headers["date"])
        except (TypeError, ValueError, IndexError) as exc:
            raise SignatureError("malformed_signature", "unreadable Date") from exc
        times.append(int(utc(sent).timestamp()))
    for moment in times:
        check_window(moment, now)
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except binascii.Error as exc:
        raise SignatureError("malformed_signature", "signature is not base64") from exc
    created = datetime.fromtimestamp(times[0], UTC)
    return ParsedSignature("cavage", key_id, algorithm, signature, signing_bytes(lines),
                           tuple(names), created)
