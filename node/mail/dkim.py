"""DKIM (RFC 6376): the node's key, the DNS record to publish, signing with dkimpy.

``hambastegi mail dkim-key [--selector S]`` makes an RSA-2048 key, keeps it in
``node_secret`` (name "dkim": the selector, a newline, the PEM) and prints the
TXT record ``S._domainkey.DOMAIN`` to publish. Making a new one replaces the old:
publish the new record before the next bulletin (a new selector lets both
records live side by side while mail signed with the old one is in transit).

Signing: dkimpy canonicalises (relaxed/relaxed), hashes the body, folds and
builds the header; ``h=`` names exactly ``SIGNED_HEADERS`` (the issue's list).
dkimpy's RSA is pure Python (6.7 ms a signature on this machine, a ceiling of
~150 mails/s); the RSA step alone is handed to ``cryptography`` (0.25 ms,
OpenSSL) through ``_fast_rsa_sign``, which gives the same bytes — PKCS #1 v1.5
is deterministic — for the keys this module loaded, and dkimpy's own function
for any other key (bench/mail.py measures both); and its PEM parsing is cached.
"""

from __future__ import annotations

import base64
import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dkim
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils
from sqlalchemy.exc import IntegrityError

from node.storage.db import Database
from node.storage.models import NodeSecret

SECRET_NAME = "dkim"  # noqa: S105 (the row's name, not a secret)
DEFAULT_SELECTOR = "hambastegi"
SIGNED_HEADERS = (b"from", b"to", b"subject", b"date", b"message-id", b"list-id",
                  b"list-unsubscribe", b"list-unsubscribe-post")
SELECTOR_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


class DkimError(ValueError):
    pass


@dataclass(frozen=True)
class DkimKey:
    selector: str
    domain: str
    pem: bytes

    def txt_record(self) -> str:
        return txt_record(self.selector, self.domain, self.pem)


def check_selector(selector: str) -> str:
    selector = selector.strip().lower()
    if not selector or len(selector) > 63 or not set(selector) <= SELECTOR_CHARS \
            or selector.startswith("-"):
        raise DkimError("a selector is letters, digits and '-', such as hambastegi2026")
    return selector


def new_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def public_b64(pem: bytes) -> str:
    key = serialization.load_pem_private_key(pem, password=None)
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def txt_record(selector: str, domain: str, pem: bytes) -> str:
    """The record as a zone file line (RFC 6376 §3.6.1); the value in pieces of
    at most 255 characters, as one TXT string may hold (RFC 1035 §3.3.14)."""
    value = f"v=DKIM1; k=rsa; p={public_b64(pem)}"
    pieces = " ".join(f'"{value[i:i + 255]}"' for i in range(0, len(value), 255))
    return f"{selector}._domainkey.{domain}. IN TXT ( {pieces} )"


def dns_value(pem: bytes) -> bytes:
    """What a resolver returns for the record (the pieces joined): tests verify with it."""
    return f"v=DKIM1; k=rsa; p={public_b64(pem)}".encode()


async def store_key(db: Database, selector: str, pem: bytes) -> None:
    value = selector.encode() + b"\n" + pem
    async with db.write() as session:
        row = await session.get(NodeSecret, SECRET_NAME)
        if row is None:
            session.add(NodeSecret(name=SECRET_NAME, value=value))
        else:
            row.value = value
    # Another process may have stored one meanwhile: the last write wins, as a
    # second `dkim-key` run would.


async def load_key(db: Database, domain: str) -> DkimKey | None:
    async with db.read() as session:
        row = await session.get(NodeSecret, SECRET_NAME)
    if row is None:
        return None
    selector, _, pem = bytes(row.value).partition(b"\n")
    return DkimKey(selector.decode(), domain, pem)


async def make_key(db: Database, selector: str, domain: str) -> DkimKey:
    selector = check_selector(selector)
    pem = new_pem()
    try:
        await store_key(db, selector, pem)
    except IntegrityError:  # made by another process at the same moment
        await store_key(db, selector, pem)
    return DkimKey(selector, domain, pem)


# --- signing ------------------------------------------------------------------------------

_KEYS: dict[int, rsa.RSAPrivateKey] = {}  # modulus → key, for the keys loaded here
_LOCK = threading.Lock()
_original: Callable[[Any, dict[str, int]], bytes] = dkim.RSASSA_PKCS1_v1_5_sign
_original_parse: Callable[[bytes], dict[str, int]] = dkim.parse_pem_private_key


@functools.lru_cache(maxsize=8)
def _parsed_key(pem: bytes) -> dict[str, int]:
    """dkimpy parses the PEM (pure-Python ASN.1) on every signature: a fifth of its
    cost. The same key parses to the same numbers, which dkimpy only reads."""
    return _original_parse(pem)


def _fast_rsa_sign(hash_obj: Any, private_key: dict[str, int]) -> bytes:
    """dkimpy's RSA step with OpenSSL for a key loaded by ``Signer``: the digest
    dkimpy computed, signed PKCS #1 v1.5 with SHA-256 (the same bytes)."""
    key = _KEYS.get(private_key.get("modulus", 0))
    if key is None or hash_obj.name != "sha256":
        return _original(hash_obj, private_key)
    return key.sign(hash_obj.digest(), padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))


def _install() -> None:
    with _LOCK:
        if dkim.RSASSA_PKCS1_v1_5_sign is not _fast_rsa_sign:
            dkim.RSASSA_PKCS1_v1_5_sign = _fast_rsa_sign
            dkim.parse_pem_private_key = _parsed_key


class Signer:
    """Signs mails with one key; ``fast=False`` keeps dkimpy's own RSA (the bench's floor)."""

    def __init__(self, key: DkimKey, *, fast: bool = True) -> None:
        self.key = key
        self.selector = key.selector.encode()
        self.domain = key.domain.encode()
        self.fast = fast
        loaded = serialization.load_pem_private_key(key.pem, password=None)
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise DkimError("the DKIM key is not an RSA key")
        self._pem = key.pem
        if fast:
            _KEYS[loaded.private_numbers().public_numbers.n] = loaded
            _install()

    def sign(self, message: bytes) -> bytes:
        """The ``DKIM-Signature:`` header line(s) for ``message`` (CRLF line ends)."""
        if not self.fast:
            saved = dkim.RSASSA_PKCS1_v1_5_sign
            dkim.RSASSA_PKCS1_v1_5_sign = _original
            try:
                return bytes(dkim.sign(message, self.selector, self.domain, self._pem,
                                       canonicalize=(b"relaxed", b"relaxed"),
                                       include_headers=list(SIGNED_HEADERS)))
            finally:
                dkim.RSASSA_PKCS1_v1_5_sign = saved
        return bytes(dkim.sign(message, self.selector, self.domain, self._pem,
                               canonicalize=(b"relaxed", b"relaxed"),
                               include_headers=list(SIGNED_HEADERS)))


def verify(message: bytes, record: bytes) -> bool:
    """dkimpy's verification against a given TXT record value (tests, `mail check`)."""
    return bool(dkim.verify(message, dnsfunc=lambda name, timeout=5: record))
