"""Minisign signatures, written with ``cryptography``'s Ed25519 (issue 28).

Readers of a mirror check it with the ``minisign`` tool they may already have
(``minisign -Vm manifest.json -P <key>``), so the format is minisign's own, as its
documentation describes it (https://jedisct1.github.io/minisign/):

- public key: ``"Ed" || key id (8 bytes) || Ed25519 public key (32)``, base64, under an
  ``untrusted comment:`` line;
- signature file: an ``untrusted comment:`` line; base64 of ``"ED" || key id ||
  Ed25519(BLAKE2b-512(file))`` (the prehashed algorithm, the default since minisign 0.8);
  a ``trusted comment:`` line; base64 of Ed25519(signature || trusted comment), which
  binds the comment (here the export time and the node) to the signature.

The key id is shown as minisign shows it: the 8 bytes read as a little-endian number,
in upper-case hex. The secret key stays in our own small file (never minisign's
encrypted one: the node signs unattended), readable by the node's user only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


KEY_ALG = b"Ed"
PREHASHED = b"ED"
LEGACY = b"Ed"
SECRET_HEADER = "hambastegi mirror secret key (Ed25519, minisign key id + seed)"  # noqa: S105
MAX_COMMENT = 1024
MAX_SIGNATURE_FILE = 4096


class MinisignError(ValueError):
    """A key or signature that is malformed, or does not verify; the message says which."""


def key_id_text(key_id: bytes) -> str:
    return f"{int.from_bytes(key_id, 'little'):016X}"


@dataclass(frozen=True)
class PublicKey:
    key_id: bytes
    key: bytes

    def encoded(self) -> str:
        """What ``minisign -P`` takes."""
        return base64.b64encode(KEY_ALG + self.key_id + self.key).decode()

    def file_text(self) -> str:
        return (f"untrusted comment: minisign public key {key_id_text(self.key_id)}\n"
                f"{self.encoded()}\n")

    @classmethod
    def parse(cls, text: str) -> PublicKey:
        """A public key as ``-P`` takes it, or a ``.pub`` file's text."""
        lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
        if lines and lines[0].startswith("untrusted comment:"):
            lines = lines[1:]
        if len(lines) != 1:
            raise MinisignError("a public key is one base64 line")
        raw = _b64(lines[0], "public key")
        if len(raw) != 42 or raw[:2] != KEY_ALG:
            raise MinisignError("not a minisign Ed25519 public key")
        return cls(raw[2:10], raw[10:])


@dataclass(frozen=True)
class SecretKey:
    key_id: bytes
    seed: bytes

    @classmethod
    def generate(cls) -> SecretKey:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return cls(secrets.token_bytes(8), Ed25519PrivateKey.generate().private_bytes_raw())

    def public(self) -> PublicKey:
        raw = _private(self.seed).public_key().public_bytes_raw()
        return PublicKey(self.key_id, raw)

    def sign(self, data: bytes, trusted_comment: str,
             untrusted_comment: str = "signature from the hambastegi mirror key") -> str:
        """The ``.minisig`` file's text for ``data``."""
        for comment in (trusted_comment, untrusted_comment):
            if "\n" in comment or "\r" in comment or len(comment) > MAX_COMMENT:
                raise MinisignError("a comment is one line of at most 1024 characters")
        private = _private(self.seed)
        signature = private.sign(hashlib.blake2b(data, digest_size=64).digest())
        global_signature = private.sign(signature + trusted_comment.encode())
        return (f"untrusted comment: {untrusted_comment}\n"
                f"{base64.b64encode(PREHASHED + self.key_id + signature).decode()}\n"
                f"trusted comment: {trusted_comment}\n"
                f"{base64.b64encode(global_signature).decode()}\n")

    def file_text(self) -> str:
        return f"{SECRET_HEADER}\n{base64.b64encode(self.key_id + self.seed).decode()}\n"

    @classmethod
    def parse(cls, text: str) -> SecretKey:
        lines = text.strip().splitlines()
        if len(lines) != 2 or lines[0] != SECRET_HEADER:
            raise MinisignError("not a hambastegi mirror secret key file")
        raw = _b64(lines[1].strip(), "secret key")
        if len(raw) != 40:
            raise MinisignError("secret key of the wrong length")
        return cls(raw[:8], raw[8:])


def verify(public: PublicKey, data: bytes, signature_text: str) -> str:
    """The trusted comment if ``signature_text`` signs ``data`` with ``public``."""
    if len(signature_text) > MAX_SIGNATURE_FILE:
        raise MinisignError("signature file too large")
    lines = signature_text.splitlines()
    if len(lines) < 4 or not lines[0].startswith("untrusted comment:") \
            or not lines[2].startswith("trusted comment: "):
        raise MinisignError("not a minisign signature file")
    raw = _b64(lines[1].strip(), "signature")
    if len(raw) != 74 or raw[:2] not in (PREHASHED, LEGACY):
        raise MinisignError("not a minisign Ed25519 signature")
    if raw[2:10] != public.key_id:
        raise MinisignError(f"signed with key {key_id_text(raw[2:10])}, "
                            f"not with {key_id_text(public.key_id)}")
    signature = raw[10:]
    message = hashlib.blake2b(data, digest_size=64).digest() if raw[:2] == PREHASHED else data
    trusted = lines[2][len("trusted comment: "):]
    global_signature = _b64(lines[3].strip(), "trusted comment signature")
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    key = Ed25519PublicKey.from_public_bytes(public.key)
    try:
        key.verify(signature, message)
    except InvalidSignature:
        raise MinisignError("signature verification failed: the file was altered") from None
    try:
        key.verify(global_signature, signature + trusted.encode())
    except InvalidSignature:
        raise MinisignError("the trusted comment was altered") from None
    return trusted


def _private(seed: bytes) -> Ed25519PrivateKey:
    # cryptography is loaded where keys are made or used, not on import: the app
    # reads the public key at start, and an idle node loads no cryptography
    # (tests/test_idle_imports.py).
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(seed)


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise MinisignError(f"the {what} is not base64") from None


# Where the node keeps its mirror key: in the data directory, which the backup holds.
def key_paths(data_dir: Path) -> tuple[Path, Path]:
    folder = data_dir / "mirror-key"
    return folder / "minisign.key", folder / "minisign.pub"


def load_or_create(data_dir: Path) -> SecretKey:
    """The node's mirror signing key, made (readable by its owner only) on first use."""
    secret_path, public_path = key_paths(data_dir)
    if secret_path.exists():
        try:
            return SecretKey.parse(secret_path.read_text(encoding="ascii"))
        except (OSError, UnicodeDecodeError) as exc:
            raise MinisignError(f"cannot read {secret_path}: {exc}") from exc
    secret_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = SecretKey.generate()
    descriptor = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(key.file_text())
    public_path.write_text(key.public().file_text(), encoding="ascii")
    return key


def read_public(data_dir: Path) -> PublicKey | None:
    """The published half, or None before ``hambastegi mirror key`` made one."""
    _, public_path = key_paths(data_dir)
    try:
        return PublicKey.parse(public_path.read_text(encoding="ascii"))
    except (OSError, UnicodeDecodeError, MinisignError):
        return None
