"""HTTP message signatures, both schemes, both directions.

- draft-cavage-http-signatures-12 ("cavage", ``cavage.py``): what Mastodon requires on
  inbound POSTs.
- RFC 9421 with an RFC 9530 ``Content-Digest`` (``rfc9421.py``): what newer servers send.
- ``common.py``: what both share (target URI, time windows, digests).

Pure functions, no I/O. Verification is split in two, ``parse_request_signature`` then
``verify_signature``, so the caller can fetch the signer's key asynchronously in between.
Anything hostile comes out as ``SignatureError`` with a short stable ``reason``; error
details never carry key material or signature bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from node.federation.keys import load_private_pem
from node.federation.signatures.cavage import parse_cavage, sign_cavage
from node.federation.signatures.common import (
    MAX_HEADER,
    ParsedSignature,
    Reason,
    Scheme,
    SignatureError,
    content_digest_header,
    digest_header,
    fold,
    split_url,
    utc,
    verify_body_digest,
)
from node.federation.signatures.rfc9421 import parse_rfc9421, sign_rfc9421

if TYPE_CHECKING:
    from node.federation.keys import PublicKey

# cryptography (8 MB) is imported where a key is first used, not with this module: an
# idle node that has signed and verified nothing yet does not carry it (#17, idle RSS).

__all__ = [
    "ParsedSignature", "Reason", "RequestSigner", "Scheme", "SignatureError",
    "content_digest_header", "digest_header", "parse_request_signature", "sign_cavage",
    "sign_rfc9421", "verify_body_digest", "verify_signature",
]

# Which algorithm names a key of each type may be used under (None: not stated).
_RSA_ALGORITHMS = frozenset({None, "rsa-sha256", "hs2019", "rsa-v1_5-sha256"})
_ED25519_ALGORITHMS = frozenset({None, "hs2019", "ed25519"})


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
        lowered = fold(headers)
        if any(len(lowered.get(name, "")) > MAX_HEADER for name in
               ("signature", "signature-input", "date", "host")):
            raise SignatureError("malformed_signature", "header too long")
        parts = split_url(target_uri)
        now = utc(now)
        if "signature-input" in lowered:
            return parse_rfc9421(method, parts, lowered, now, require_digest)
        if "signature" in lowered:
            return parse_cavage(method, parts, lowered, now, require_digest)
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
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

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


class RequestSigner:
    """Signs requests as one actor with its RSA key (Mastodon verifies RSA for both
    schemes). Callable as a ``node.federation.fetch.Signer``."""

    def __init__(self, private_pem: str, key_id: str) -> None:
        from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

        key = load_private_pem(private_pem)
        if not isinstance(key, RSAPrivateKey):
            raise TypeError("the actor's main key must be RSA")
        self._key = key
        self.key_id = key_id

    def __call__(self, method: str, url: str, body: bytes | None,
                 scheme: Scheme, extra_headers: Mapping[str, str] | None = None
                 ) -> dict[str, str]:
        """``extra_headers`` are sent and signed with cavage (FEP-8fcf's
        Collection-Synchronization); RFC 9421 requests go without them."""
        if scheme == "rfc9421":
            return sign_rfc9421(method=method, url=url, body=body, key_id=self.key_id,
                                private_key=self._key)
        return sign_cavage(method=method, url=url, body=body, key_id=self.key_id,
                           private_key=self._key, extra_headers=extra_headers)
