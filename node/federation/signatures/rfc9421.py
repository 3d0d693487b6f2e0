"""RFC 9421 HTTP Message Signatures with an RFC 9530 ``Content-Digest``: what newer
servers send; we cover ``"@method" "@target-uri" "content-digest"`` with parameters
``created keyid alg``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import SplitResult

from http_sfv.dictionary import Dictionary
from http_sfv.item import InnerList, Item

from node.federation.signatures.common import (
    ParsedSignature,
    SignatureError,
    authority,
    check_expires,
    check_host,
    check_key_id,
    check_window,
    content_digest_header,
    fold,
    normal_uri,
    path_and_query,
    signing_bytes,
    split_url,
    utc,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

# RFC 9421 section 2: component names are lower-cased field names or derived components.
_COMPONENT_NAME = re.compile(r"@?[a-z0-9!#$%&'*+.^_`|~-]+")
_RFC9421_ALGORITHMS = frozenset({"rsa-v1_5-sha256", "ed25519"})


def _component_value(name: str, method: str, parts: SplitResult,
                     headers: Mapping[str, str]) -> str:
    """One component's value, RFC 9421 section 2.1 (fields) and 2.2 (derived)."""
    if name == "@method":  # 2.2.1: as received, no case change
        return method
    if name == "@target-uri":  # 2.2.2
        return normal_uri(parts)
    if name == "@authority":  # 2.2.3
        return authority(parts)
    if name == "@scheme":  # 2.2.4
        return parts.scheme.lower()
    if name == "@request-target":  # 2.2.5
        return path_and_query(parts)
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
    return signing_bytes(lines)


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
    # Imported here, not with the module: see signatures/__init__.py (idle memory).
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

    check_key_id(key_id)
    parts = split_url(url)
    headers: dict[str, str] = {}
    names = ["@method", "@target-uri"]
    if body is not None:
        headers["Content-Digest"] = content_digest_header(body)
        names.append("content-digest")
    components = InnerList(list(names))
    components.params["created"] = int(utc(now).timestamp())
    components.params["keyid"] = key_id
    # Section 3.3: alg is optional, but stating it stops a verifier trying another one.
    rsa = isinstance(private_key, RSAPrivateKey)
    components.params["alg"] = "rsa-v1_5-sha256" if rsa else "ed25519"
    # HTTP clients upper-case the method on the wire (aiohttp, httpx), so sign that.
    base = _signature_base(components, method.upper(), parts, fold(headers))
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


def _int_param(components: InnerList, name: str) -> int | None:
    value = components.params.get(name)
    if value is None:
        return None
    if type(value) is not int:  # bool is an int subclass, and sf-booleans are not times
        raise SignatureError("malformed_signature", f"{name} must be an integer")
    return value


def parse_rfc9421(method: str, parts: SplitResult, headers: Mapping[str, str], now: datetime,
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
    check_host(headers, parts)
    check_window(created, now)
    expires = _int_param(components, "expires")
    if expires is not None:
        check_expires(expires, now)
    base = _signature_base(components, method, parts, headers)
    return ParsedSignature("rfc9421", key_id, algorithm, signature_item.value, base, covered,
                           datetime.fromtimestamp(created, UTC))
