"""HTTP message signatures, both schemes, both directions.

- draft-cavage-http-signatures-12: what Mastodon requires on inbound POSTs
  (``rsa-sha256`` over ``(request-target) host date digest``, app/controllers/
  concerns/signature_verification.rb).
- RFC 9421 with RFC 9530 ``Content-Digest``: what newer servers send
  (components ``@method @target-uri content-digest``, params ``created keyid alg``).

Pure functions: verification is split in two (parse, then verify) so the
caller can look up the key asynchronously in between.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Literal
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from http_sfv.dictionary import Dictionary
from http_sfv.item import InnerList, Item

from node.keys import PublicKey

# Mastodon's window (INTEROP.md): an hour ahead, 65 minutes back.
MAX_FUTURE = timedelta(hours=1)
MAX_PAST = timedelta(minutes=65)
MAX_HEADER = 8192
CAVAGE_PARAM = re.compile(r'\s*([A-Za-z]+)\s*=\s*(?:"([^"]*)"|(-?\d+))\s*(?:,|$)')


class SignatureError(Exception):
    """A refused signature; ``reason`` is a short stable code for logs and metrics."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class ParsedSignature:
    scheme: Literal["cavage", "rfc9421"]
    key_id: str
    algorithm: str | None
    signature: bytes
    signed_base: bytes
    covered: tuple[str, ...]
    created: datetime | None


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def digest_header(body: bytes) -> str:
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()


def content_digest_header(body: bytes) -> str:
    return "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"


def _request_target(method: str, url: str) -> str:
    parts = urlsplit(url)
    path = parts.path or "/"
    return f"{method.lower()} {path}" + (f"?{parts.query}" if parts.query else "")


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


# --- signing --------------------------------------------------------------------------


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
    """Headers to send: Host, Date, Digest (with a body) and Signature."""
    headers = {
        "Host": urlsplit(url).netloc,
        "Date": format_datetime(_now(now).astimezone(UTC), usegmt=True),
    }
    names = ["(request-target)", "host", "date"]
    if body is not None:
        headers["Digest"] = digest_header(body)
        names.append("digest")
    for name, value in (extra_headers or {}).items():
        headers[name] = value
        names.append(name.lower())
    lowered = _lower(headers)
    lines = [
        f"(request-target): {_request_target(method, url)}" if name == "(request-target)"
        else f"{name}: {lowered[name]}"
        for name in names
    ]
    signature = private_key.sign("\n".join(lines).encode(), padding.PKCS1v15(), hashes.SHA256())
    headers["Signature"] = (
        f'keyId="{key_id}",algorithm="rsa-sha256",headers="{" ".join(names)}",'
        f'signature="{base64.b64encode(signature).decode()}"'
    )
    return headers


def _component_value(name: str, method: str, url: str, headers: Mapping[str, str]) -> str:
    parts = urlsplit(url.split("#", 1)[0])
    if name == "@method":
        return method.upper()
    if name == "@target-uri":
        return url.split("#", 1)[0]
    if name == "@authority":
        return parts.netloc.lower()
    if name == "@scheme":
        return parts.scheme.lower()
    if name == "@path":
        return parts.path or "/"
    if name == "@query":
        return "?" + parts.query
    if name == "@request-target":
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if name.startswith("@"):
        raise SignatureError("malformed_signature", f"unsupported component {name}")
    value = headers.get(name)
    if value is None:
        raise SignatureError("malformed_signature", f"covered header {name} is missing")
    return value.strip()


def _signature_base(components: InnerList, method: str, url: str,
                    headers: Mapping[str, str]) -> bytes:
    lines = []
    for item in components:
        if item.params:
            raise SignatureError("malformed_signature", "component parameters unsupported")
        name = item.value
        if not isinstance(name, str):
            raise SignatureError("malformed_signature", "component names are strings")
        lines.append(f'"{name}": {_component_value(name, method, url, headers)}')
    lines.append(f'"@signature-params": {components}')
    return "\n".join(lines).encode()


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
    """Headers to send: Content-Digest (with a body), Signature-Input, Signature."""
    headers: dict[str, str] = {}
    names = ["@method", "@target-uri"]
    if body is not None:
        headers["Content-Digest"] = content_digest_header(body)
        names.append("content-digest")
    components = InnerList(list(names))
    components.params["created"] = int(_now(now).timestamp())
    components.params["keyid"] = key_id
    rsa = isinstance(private_key, RSAPrivateKey)
    components.params["alg"] = "rsa-v1_5-sha256" if rsa else "ed25519"
    base = _signature_base(components, method, url, _lower(headers))
    if isinstance(private_key, RSAPrivateKey):
        signature = private_key.sign(base, padding.PKCS1v15(), hashes.SHA256())
    else:
        signature = private_key.sign(base)
    inputs = Dictionary()
    inputs[label] = components
    values = Dictionary()
    values[label] = Item(signature)
    headers["Signature-Input"] = str(inputs)
    headers["Signature"] = str(values)
    return headers


# --- verification ------------------------------------------------------------------------


def _check_window(moment: datetime, now: datetime) -> None:
    if moment > now + MAX_FUTURE:
        raise SignatureError("future_date", "signed too far in the future")
    if moment < now - MAX_PAST:
        raise SignatureError("stale_date", "signature too old")


def _parse_cavage_params(value: str) -> dict[str, str]:
    params: dict[str, str] = {}
    position = 0
    while position < len(value):
        match = CAVAGE_PARAM.match(value, position)
        if match is None:
            raise SignatureError("malformed_signature", "unreadable Signature header")
        name = match.group(1)
        params[name] = match.group(2) if match.group(2) is not None else match.group(3)
        position = match.end()
    return params


def _parse_cavage(method: str, target_uri: str, headers: dict[str, str], now: datetime,
                  require_digest: bool) -> ParsedSignature:
    params = _parse_cavage_params(headers["signature"])
    key_id = params.get("keyId")
    signature_b64 = params.get("signature")
    if not key_id or not signature_b64:
        raise SignatureError("malformed_signature", "keyId and signature are required")
    algorithm = params.get("algorithm")
    if algorithm is not None and algorithm.lower() not in {"rsa-sha256", "hs2019"}:
        raise SignatureError("unsupported_algorithm", algorithm[:40])
    names = params.get("headers", "date").lower().split()
    required = {"(request-target)", "host"} | ({"digest"} if require_digest else set())
    if not required <= set(names) or not ({"date", "(created)"} & set(names)):
        raise SignatureError("header_not_signed", "(request-target) host date digest needed")
    created: datetime | None = None
    lines = []
    for name in names:
        if name == "(request-target)":
            lines.append(f"(request-target): {_request_target(method, target_uri)}")
        elif name in {"(created)", "(expires)"}:
            raw = params.get(name[1:-1])
            if raw is None or not raw.lstrip("-").isdigit():
                raise SignatureError("malformed_signature", f"{name} without a value")
            if name == "(created)":
                created = datetime.fromtimestamp(int(raw), UTC)
            elif datetime.fromtimestamp(int(raw), UTC) < now:
                raise SignatureError("stale_date", "signature expired")
            lines.append(f"{name}: {raw}")
        elif name in headers:
            lines.append(f"{name}: {headers[name].strip()}")
        else:
            raise SignatureError("malformed_signature", f"signed header {name} is missing")
    if created is None:
        try:
            created = parsedate_to_datetime(headers.get("date", ""))
        except (TypeError, ValueError) as exc:
            raise SignatureError("malformed_signature", "unreadable Date") from exc
        if created.tzinfo is None:
            created = created.replace(tzinfo=UTC)
    _check_window(created, now)
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except ValueError as exc:
        raise SignatureError("malformed_signature", "signature is not base64") from exc
    return ParsedSignature("cavage", key_id, algorithm, signature,
                           "\n".join(lines).encode(), tuple(names), created)


def _parse_rfc9421(method: str, target_uri: str, headers: dict[str, str], now: datetime,
                   require_digest: bool) -> ParsedSignature:
    inputs = Dictionary()
    values = Dictionary()
    try:
        inputs.parse(headers["signature-input"].encode())
        values.parse(headers.get("signature", "").encode())
    except (ValueError, UnicodeError) as exc:
        raise SignatureError("malformed_signature", "unreadable Signature-Input") from exc
    if not inputs:
        raise SignatureError("malformed_signature", "empty Signature-Input")
    label = next(iter(inputs))
    components = inputs[label]
    signature_item = values.get(label)
    if not isinstance(components, InnerList) or signature_item is None \
            or not isinstance(signature_item.value, bytes):
        raise SignatureError("malformed_signature", "no signature for the label")
    covered = tuple(str(item.value) for item in components)
    has_target = "@target-uri" in covered or {"@authority", "@path"} <= set(covered)
    if "@method" not in covered or not has_target or (
            require_digest and "content-digest" not in covered):
        raise SignatureError("header_not_signed", "@method @target-uri content-digest needed")
    key_id = components.params.get("keyid")
    created_raw = components.params.get("created")
    if not isinstance(key_id, str) or not isinstance(created_raw, int) \
            or isinstance(created_raw, bool):
        raise SignatureError("malformed_signature", "keyid and created are required")
    created = datetime.fromtimestamp(created_raw, UTC)
    _check_window(created, now)
    expires = components.params.get("expires")
    if isinstance(expires, int) and datetime.fromtimestamp(expires, UTC) < now:
        raise SignatureError("stale_date", "signature expired")
    algorithm = components.params.get("alg")
    if algorithm is not None and algorithm not in {"rsa-v1_5-sha256", "ed25519"}:
        raise SignatureError("unsupported_algorithm", str(algorithm)[:40])
    base = _signature_base(components, method, target_uri, headers)
    return ParsedSignature("rfc9421", key_id, algorithm if isinstance(algorithm, str) else None,
                           signature_item.value, base, covered, created)


def parse_request_signature(*, method: str, target_uri: str, headers: Mapping[str, str],
                            now: datetime, require_digest: bool) -> ParsedSignature:
    """Read and check a request's signature headers; never raises anything else."""
    lowered = _lower(headers)
    if any(len(lowered.get(h, "")) > MAX_HEADER for h in
           ("signature", "signature-input", "date", "digest", "content-digest")):
        raise SignatureError("malformed_signature", "header too long")
    try:
        if "signature-input" in lowered:
            return _parse_rfc9421(method, target_uri, lowered, now, require_digest)
        if "signature" in lowered:
            return _parse_cavage(method, target_uri, lowered, now, require_digest)
    except SignatureError:
        raise
    except Exception as exc:  # hostile input must only ever come out as "malformed"
        raise SignatureError("malformed_signature", type(exc).__name__) from exc
    raise SignatureError("missing_signature", "the request is not signed")


def verify_signature(parsed: ParsedSignature, public_key: PublicKey) -> None:
    try:
        if isinstance(public_key, RSAPublicKey):
            if parsed.algorithm == "ed25519":
                raise SignatureError("bad_signature", "alg does not match the key")
            public_key.verify(parsed.signature, parsed.signed_base, padding.PKCS1v15(),
                              hashes.SHA256())
        elif isinstance(public_key, Ed25519PublicKey):
            if parsed.algorithm in {"rsa-v1_5-sha256", "rsa-sha256"}:
                raise SignatureError("bad_signature", "alg does not match the key")
            public_key.verify(parsed.signature, parsed.signed_base)
        else:
            raise SignatureError("unsupported_algorithm", "unknown key type")
    except InvalidSignature as exc:
        raise SignatureError("bad_signature", "signature does not verify") from exc


def _b64_digest(value: str) -> bytes | None:
    try:
        return base64.b64decode(value.strip(), validate=True)
    except ValueError:
        return None


def verify_body_digest(headers: Mapping[str, str], body: bytes) -> None:
    """Check Digest (RFC 3230) or Content-Digest (RFC 9530) against the raw body."""
    lowered = _lower(headers)
    expected = hashlib.sha256(body).digest()
    if "content-digest" in lowered:
        digests = Dictionary()
        try:
            digests.parse(lowered["content-digest"].encode())
        except (ValueError, UnicodeError) as exc:
            raise SignatureError("malformed_signature", "unreadable Content-Digest") from exc
        item = digests.get("sha-256")
        if item is None or not isinstance(item.value, bytes):
            raise SignatureError("missing_digest", "Content-Digest needs sha-256")
        if item.value != expected:
            raise SignatureError("digest_mismatch", "body does not match Content-Digest")
        return
    if "digest" in lowered:
        for part in lowered["digest"].split(","):
            name, sep, value = part.strip().partition("=")
            if sep and name.lower() == "sha-256":
                if _b64_digest(value) != expected:
                    raise SignatureError("digest_mismatch", "body does not match Digest")
                return
        raise SignatureError("missing_digest", "Digest needs SHA-256")
    raise SignatureError("missing_digest", "no Digest or Content-Digest")


class RequestSigner:
    """Signs requests as one actor with its RSA key (Mastodon verifies RSA for both
    schemes). Callable as a ``node.fetch.Signer``."""

    def __init__(self, private_pem: str, key_id: str) -> None:
        from node.keys import load_private_pem

        key = load_private_pem(private_pem)
        if not isinstance(key, RSAPrivateKey):
            raise TypeError("the actor's main key must be RSA")
        self._key = key
        self.key_id = key_id

    def __call__(self, method: str, url: str, body: bytes | None,
                 scheme: Literal["cavage", "rfc9421"]) -> dict[str, str]:
        if scheme == "rfc9421":
            return sign_rfc9421(method=method, url=url, body=body, key_id=self.key_id,
                                private_key=self._key)
        return sign_cavage(method=method, url=url, body=body, key_id=self.key_id,
                           private_key=self._key)
