"""Key pairs: RSA-2048 (what Mastodon verifies) and Ed25519 Multikeys (FEP-521a)."""

from __future__ import annotations

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

PublicKey = RSAPublicKey | Ed25519PublicKey
PrivateKey = RSAPrivateKey | Ed25519PrivateKey

MIN_RSA_BITS = 2048
# Multicodec prefixes (varint-encoded): ed25519-pub 0xed, rsa-pub 0x1205.
ED25519_PUB = b"\xed\x01"
RSA_PUB = b"\x85\x24"
B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
B58_INDEX = {c: i for i, c in enumerate(B58_ALPHABET)}


class KeyFormatError(ValueError):
    """A key that cannot be used: malformed, too weak, or of an unknown kind."""


def generate_rsa() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def generate_ed25519() -> Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def private_to_pem(key: PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def load_private_pem(pem: str) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFormatError("not a PEM private key") from exc
    if not isinstance(key, RSAPrivateKey | Ed25519PrivateKey):
        raise KeyFormatError("only RSA and Ed25519 private keys are used")
    return key


def public_to_pem(key: PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def _check(key: object) -> PublicKey:
    if isinstance(key, RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise KeyFormatError(f"RSA keys under {MIN_RSA_BITS} bits are refused")
        return key
    if isinstance(key, Ed25519PublicKey):
        return key
    raise KeyFormatError("only RSA and Ed25519 public keys are accepted")


def load_public_pem(pem: str) -> PublicKey:
    if not isinstance(pem, str) or len(pem) > 16_384:
        raise KeyFormatError("not a PEM public key")
    data = pem.strip().encode()
    try:
        # Both SubjectPublicKeyInfo and PKCS#1 ("BEGIN RSA PUBLIC KEY") load here.
        key: object = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFormatError("not a PEM public key") from exc
    return _check(key)


def b58encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = []
    while number:
        number, rem = divmod(number, 58)
        out.append(B58_ALPHABET[rem])
    leading = len(data) - len(data.lstrip(b"\x00"))
    return "1" * leading + "".join(reversed(out))


def b58decode(text: str) -> bytes:
    if len(text) > 2048:
        raise KeyFormatError("multibase value too long")
    number = 0
    for char in text:
        if char not in B58_INDEX:
            raise KeyFormatError("invalid base58btc character")
        number = number * 58 + B58_INDEX[char]
    leading = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\x00" * leading + body


def ed25519_to_multibase(key: Ed25519PublicKey) -> str:
    """FEP-521a publicKeyMultibase: 'z' + base58btc(0xed01 + 32 raw bytes)."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "z" + b58encode(ED25519_PUB + raw)


def multibase_to_public(value: str) -> PublicKey:
    if not isinstance(value, str) or not value.startswith("z"):
        raise KeyFormatError("only base58btc ('z') multibase keys are supported")
    data = b58decode(value[1:])
    if data.startswith(ED25519_PUB):
        raw = data[len(ED25519_PUB):]
        if len(raw) != 32:
            raise KeyFormatError("an Ed25519 key has 32 bytes")
        return Ed25519PublicKey.from_public_bytes(raw)
    if data.startswith(RSA_PUB):
        try:
            key = serialization.load_der_public_key(_pkcs1_to_spki(data[len(RSA_PUB):]))
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise KeyFormatError("malformed RSA multikey") from exc
        return _check(key)
    raise KeyFormatError("unknown multicodec key type")


def _pkcs1_to_spki(pkcs1: bytes) -> bytes:
    """Wrap a DER PKCS#1 RSAPublicKey in SubjectPublicKeyInfo for cryptography."""

    def der_len(n: int) -> bytes:
        if n < 0x80:
            return bytes([n])
        body = n.to_bytes((n.bit_length() + 7) // 8, "big")
        return bytes([0x80 | len(body)]) + body

    algorithm = bytes.fromhex("300d06092a864886f70d0101010500")
    bit_string = b"\x03" + der_len(len(pkcs1) + 1) + b"\x00" + pkcs1
    inner = algorithm + bit_string
    return b"\x30" + der_len(len(inner)) + inner
