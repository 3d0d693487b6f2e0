"""Actor key pairs: RSA-2048 (what Mastodon verifies) and Ed25519 Multikeys (FEP-521a).

Everything that reads a key from the network (``load_public_pem``,
``multibase_to_public``) raises only ``KeyFormatError`` on bad input, so callers can
treat "the remote actor publishes an unusable key" as one case.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

# cryptography (8 MB) is imported by the functions that use it, not with this module: a
# node that has not yet signed, verified or generated anything does not carry it (#17,
# idle RSS). The imports cost a dictionary look-up once the module is loaded.
if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

    PublicKey: TypeAlias = RSAPublicKey | Ed25519PublicKey
    PrivateKey: TypeAlias = RSAPrivateKey | Ed25519PrivateKey

# NIST SP 800-131A: RSA under 2048 bits is no longer acceptable for signatures.
MIN_RSA_BITS = 2048
# Verification cost grows with the modulus and the public exponent; a remote actor must not
# be able to make every check of its signatures expensive. OpenSSL itself refuses exponents
# over 64 bits for moduli above 3072 bits; we apply that bound to all sizes.
MAX_RSA_BITS = 8192
MAX_RSA_EXPONENT_BITS = 64
# A PEM document for the largest key we accept is well under this.
MAX_PEM_CHARS = 16_384
# Upper bound on a publicKeyMultibase value: an 8192-bit PKCS#1 key is ~1.1 KB, ~1.5 KB in
# base58; anything longer is hostile (base58 decoding is quadratic).
MAX_MULTIBASE_CHARS = 2048

# Multicodec table (https://github.com/multiformats/multicodec): ed25519-pub is 0xed and
# rsa-pub 0x1205 (payload: DER PKCS#1 RSAPublicKey). FEP-521a section "Multikey".
ED25519_PUB_CODE = 0xED
RSA_PUB_CODE = 0x1205
ED25519_KEY_BYTES = 32

B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {char: index for index, char in enumerate(B58_ALPHABET)}


class KeyFormatError(ValueError):
    """A key that cannot be used: malformed, too weak, or of an unsupported kind."""


# --- generation and PEM ---------------------------------------------------------------


def generate_rsa() -> RSAPrivateKey:
    from cryptography.hazmat.primitives.asymmetric import rsa

    # 65537 is the only exponent every fediverse implementation is known to handle.
    return rsa.generate_private_key(public_exponent=65537, key_size=MIN_RSA_BITS)


def generate_ed25519() -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return ed25519.Ed25519PrivateKey.generate()


def private_to_pem(key: PrivateKey) -> str:
    """PKCS#8, unencrypted: the database row is the protection boundary."""
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def load_private_pem(pem: str) -> PrivateKey:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

    try:
        key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    except (ValueError, TypeError, UnicodeError, UnsupportedAlgorithm) as exc:
        # TypeError: the PEM is encrypted. The message never includes key material.
        raise KeyFormatError("not an unencrypted PEM private key") from exc
    if isinstance(key, RSAPrivateKey):
        _check_rsa(key.public_key())
        return key
    if isinstance(key, Ed25519PrivateKey):
        return key
    raise KeyFormatError("only RSA and Ed25519 private keys are used")


def public_to_pem(key: PublicKey) -> str:
    """SubjectPublicKeyInfo PEM ("BEGIN PUBLIC KEY"), what Mastodon reads from
    ``publicKey.publicKeyPem`` (OpenSSL::PKey::RSA.new accepts it)."""
    from cryptography.hazmat.primitives import serialization

    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def _check_rsa(key: RSAPublicKey) -> RSAPublicKey:
    if key.key_size < MIN_RSA_BITS:
        raise KeyFormatError(f"RSA keys under {MIN_RSA_BITS} bits are refused")
    if key.key_size > MAX_RSA_BITS:
        raise KeyFormatError(f"RSA keys over {MAX_RSA_BITS} bits are refused")
    if key.public_numbers().e.bit_length() > MAX_RSA_EXPONENT_BITS:
        raise KeyFormatError("RSA public exponent too large")
    return key


def _check_public(key: object) -> PublicKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

    if isinstance(key, RSAPublicKey):
        return _check_rsa(key)
    if isinstance(key, Ed25519PublicKey):
        return key
    raise KeyFormatError("only RSA and Ed25519 public keys are accepted")


def load_public_pem(pem: str) -> PublicKey:
    """Read a remote actor's ``publicKeyPem``.

    Both SubjectPublicKeyInfo and PKCS#1 ("BEGIN RSA PUBLIC KEY", RFC 8017 appendix A.1.1)
    load: some older implementations publish the latter.
    """
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    if not isinstance(pem, str) or len(pem) > MAX_PEM_CHARS:
        raise KeyFormatError("not a PEM public key")
    try:
        key: object = serialization.load_pem_public_key(pem.strip().encode("ascii"))
    except (ValueError, TypeError, UnicodeError, UnsupportedAlgorithm) as exc:
        raise KeyFormatError("not a PEM public key") from exc
    return _check_public(key)


# --- base58btc (multibase prefix 'z') ---------------------------------------------------


def b58encode(data: bytes) -> str:
    """Bitcoin base58: big-endian base-58 digits, one '1' per leading zero byte
    (draft-msporny-base58-03 section 3)."""
    number = int.from_bytes(data, "big")
    digits: list[str] = []
    while number:
        number, remainder = divmod(number, 58)
        digits.append(B58_ALPHABET[remainder])
    zeros = len(data) - len(data.lstrip(b"\x00"))
    return "1" * zeros + "".join(reversed(digits))


def b58decode(text: str) -> bytes:
    if len(text) > MAX_MULTIBASE_CHARS:
        raise KeyFormatError("base58 value too long")
    number = 0
    for char in text:
        digit = _B58_INDEX.get(char)
        if digit is None:
            raise KeyFormatError("invalid base58btc character")
        number = number * 58 + digit
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return b"\x00" * zeros + body


# --- multicodec unsigned varints ----------------------------------------------------------


def _varint(value: int) -> bytes:
    """Unsigned LEB128 as used by multicodec (multiformats unsigned-varint spec)."""
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _read_varint(data: bytes) -> tuple[int, int]:
    """Returns (value, bytes consumed). The unsigned-varint spec caps a varint at nine
    bytes and requires the minimal encoding, so each code has exactly one prefix."""
    value = 0
    for index, byte in enumerate(data[:9]):
        value |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            if index > 0 and byte == 0:
                raise KeyFormatError("non-minimal multicodec varint")
            return value, index + 1
    raise KeyFormatError("truncated multicodec varint")


# --- FEP-521a Multikey ------------------------------------------------------------------


def ed25519_to_multibase(key: Ed25519PublicKey) -> str:
    """``publicKeyMultibase`` of an Ed25519 Multikey: 'z' + base58btc(0xed 0x01 + 32 raw
    bytes), FEP-521a "Multikey" / W3C Controlled Identifiers section 2.2.2."""
    from cryptography.hazmat.primitives import serialization

    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "z" + b58encode(_varint(ED25519_PUB_CODE) + raw)


def rsa_to_multibase(key: RSAPublicKey) -> str:
    """'z' + base58btc(varint 0x1205 + DER PKCS#1 RSAPublicKey)."""
    from cryptography.hazmat.primitives import serialization

    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    return "z" + b58encode(_varint(RSA_PUB_CODE) + der)


def multibase_to_public(value: str) -> PublicKey:
    """Read a ``publicKeyMultibase``; only base58btc ('z'), the encoding FEP-521a requires."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

    if not isinstance(value, str) or not value.startswith("z"):
        raise KeyFormatError("only base58btc ('z') multibase keys are supported")
    data = b58decode(value[1:])
    code, used = _read_varint(data)
    payload = data[used:]
    if code == ED25519_PUB_CODE:
        if len(payload) != ED25519_KEY_BYTES:
            raise KeyFormatError(f"an Ed25519 key has {ED25519_KEY_BYTES} bytes")
        try:
            return Ed25519PublicKey.from_public_bytes(payload)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise KeyFormatError("malformed Ed25519 multikey") from exc
    if code == RSA_PUB_CODE:
        try:
            # load_der_public_key reads PKCS#1 RSAPublicKey as well as SubjectPublicKeyInfo.
            key: object = serialization.load_der_public_key(payload)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise KeyFormatError("malformed RSA multikey") from exc
        if not isinstance(key, RSAPublicKey):
            raise KeyFormatError("rsa-pub multikey does not hold an RSA key")
        return _check_rsa(key)
    raise KeyFormatError("unsupported multicodec key type")
