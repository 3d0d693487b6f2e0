"""Key generation, PEM and FEP-521a Multikey encoding (node/federation/keys.py)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from node.federation import keys
from node.federation.keys import KeyFormatError


@pytest.fixture(scope="module")
def rsa_key() -> RSAPrivateKey:
    return keys.generate_rsa()


@pytest.fixture(scope="module")
def ed_key() -> Ed25519PrivateKey:
    return keys.generate_ed25519()


def _rsa_public(n_bits: int, e: int = 65537) -> RSAPublicKey:
    """A public key with a chosen size/exponent, without generating a private key."""
    modulus = (1 << (n_bits - 1)) | 1
    return rsa.RSAPublicNumbers(e, modulus).public_key()


def _spki_pem(key: RSAPublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()


# --- generation and PEM ---------------------------------------------------------------


def test_generated_rsa_key_is_2048_bits_with_exponent_65537(rsa_key: RSAPrivateKey) -> None:
    assert rsa_key.key_size == 2048
    assert rsa_key.public_key().public_numbers().e == 65537


def test_private_pem_is_unencrypted_pkcs8_and_round_trips(
        rsa_key: RSAPrivateKey, ed_key: Ed25519PrivateKey) -> None:
    for key in (rsa_key, ed_key):
        pem = keys.private_to_pem(key)
        assert pem.startswith("-----BEGIN PRIVATE KEY-----")
        loaded = keys.load_private_pem(pem)
        assert type(loaded.public_key()) is type(key.public_key())
        assert keys.private_to_pem(loaded) == pem


@pytest.mark.parametrize("pem", ["", "garbage", "-----BEGIN PRIVATE KEY-----\nAAAA\n"
                                 "-----END PRIVATE KEY-----\n", "\u00e9\u00e9"])
def test_load_private_pem_refuses_garbage(pem: str) -> None:
    with pytest.raises(KeyFormatError):
        keys.load_private_pem(pem)


def test_load_private_pem_refuses_an_encrypted_key(rsa_key: RSAPrivateKey) -> None:
    pem = rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.BestAvailableEncryption(b"pw")).decode()
    with pytest.raises(KeyFormatError):
        keys.load_private_pem(pem)


def test_load_private_pem_refuses_an_ec_key() -> None:
    pem = keys.private_to_pem(ec.generate_private_key(ec.SECP256R1()))  # type: ignore[arg-type]
    with pytest.raises(KeyFormatError):
        keys.load_private_pem(pem)


def test_public_pem_is_subject_public_key_info_and_round_trips(
        rsa_key: RSAPrivateKey, ed_key: Ed25519PrivateKey) -> None:
    for public in (rsa_key.public_key(), ed_key.public_key()):
        pem = keys.public_to_pem(public)
        assert pem.startswith("-----BEGIN PUBLIC KEY-----")
        assert keys.public_to_pem(keys.load_public_pem(pem)) == pem


def test_load_public_pem_accepts_pkcs1_rsa_public_key(rsa_key: RSAPrivateKey) -> None:
    pkcs1 = rsa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.PKCS1).decode()
    assert pkcs1.startswith("-----BEGIN RSA PUBLIC KEY-----")
    loaded = keys.load_public_pem(pkcs1)
    assert isinstance(loaded, RSAPublicKey)
    assert loaded.public_numbers() == rsa_key.public_key().public_numbers()


def test_load_public_pem_tolerates_surrounding_whitespace(rsa_key: RSAPrivateKey) -> None:
    pem = keys.public_to_pem(rsa_key.public_key())
    assert isinstance(keys.load_public_pem("\n  " + pem + "\n\n"), RSAPublicKey)


HOSTILE_PEMS = [
    "",
    "not a key",
    "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n",
    # A truncated SubjectPublicKeyInfo.
    "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n"
    "-----END PUBLIC KEY-----",
    "-----BEGIN PUBLIC KEY-----\n" + "A" * 20_000 + "\n-----END PUBLIC KEY-----\n",
    "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    "\u0000\u00ff\ud7ff",
]


@pytest.mark.parametrize("pem", HOSTILE_PEMS)
def test_load_public_pem_refuses_garbage(pem: str) -> None:
    with pytest.raises(KeyFormatError):
        keys.load_public_pem(pem)


def test_load_public_pem_refuses_non_strings() -> None:
    with pytest.raises(KeyFormatError):
        keys.load_public_pem(b"-----BEGIN PUBLIC KEY-----")  # type: ignore[arg-type]


def test_load_public_pem_refuses_rsa_under_2048_bits() -> None:
    with pytest.raises(KeyFormatError, match="under 2048"):
        keys.load_public_pem(_spki_pem(_rsa_public(2047)))


def test_load_public_pem_accepts_rsa_of_exactly_2048_bits() -> None:
    assert isinstance(keys.load_public_pem(_spki_pem(_rsa_public(2048))), RSAPublicKey)


def test_load_public_pem_refuses_oversized_rsa_and_huge_exponents() -> None:
    # Both would make every verification of the actor's signatures expensive.
    with pytest.raises(KeyFormatError):
        keys.load_public_pem(_spki_pem(_rsa_public(8200)))
    with pytest.raises(KeyFormatError):
        keys.load_public_pem(_spki_pem(_rsa_public(2048, e=(1 << 80) + 1)))


def test_load_public_pem_refuses_ec_keys() -> None:
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = public.public_bytes(serialization.Encoding.PEM,
                              serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    with pytest.raises(KeyFormatError, match="only RSA and Ed25519"):
        keys.load_public_pem(pem)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.text(max_size=300))
def test_load_public_pem_raises_only_key_format_error_on_any_text(text: str) -> None:
    with pytest.raises(KeyFormatError):
        keys.load_public_pem(text)


# --- base58btc --------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "encoded"), [
    # Test vectors of draft-msporny-base58-03 section 5.
    (b"Hello World!", "2NEpo7TZRRrLZSi2U"),
    (b"The quick brown fox jumps over the lazy dog.",
     "USm3fpXnKG5EUBx2ndxBDMPVciP5hGey2Jh4NDv6gmeo1LkMeiKrLJUUBk6Z"),
    (bytes.fromhex("0000287fb4cd"), "11233QC4"),
    (b"", ""),
    (b"\x00", "1"),
])
def test_base58btc_matches_the_published_test_vectors(raw: bytes, encoded: str) -> None:
    assert keys.b58encode(raw) == encoded
    assert keys.b58decode(encoded) == raw


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.binary(max_size=80))
def test_base58btc_round_trips_any_bytes_including_leading_zeros(raw: bytes) -> None:
    assert keys.b58decode(keys.b58encode(raw)) == raw


@pytest.mark.parametrize("char", ["0", "O", "I", "l", "+", "/", " ", "\u00e9"])
def test_base58btc_refuses_characters_outside_the_alphabet(char: str) -> None:
    with pytest.raises(KeyFormatError):
        keys.b58decode("2NEp" + char)


# --- FEP-521a Multikey ------------------------------------------------------------------


def test_ed25519_multibase_is_z_base58_of_multicodec_prefix_and_raw_key() -> None:
    raw = bytes(range(32))
    public = Ed25519PublicKey.from_public_bytes(raw)
    value = keys.ed25519_to_multibase(public)
    # FEP-521a: every Ed25519 Multikey starts "z6Mk" because of the 0xed 0x01 prefix.
    assert value.startswith("z6Mk")
    assert keys.b58decode(value[1:]) == b"\xed\x01" + raw


def test_ed25519_multibase_round_trips(ed_key: Ed25519PrivateKey) -> None:
    value = keys.ed25519_to_multibase(ed_key.public_key())
    decoded = keys.multibase_to_public(value)
    assert isinstance(decoded, Ed25519PublicKey)
    assert decoded.public_bytes_raw() == ed_key.public_key().public_bytes_raw()


def test_multibase_reads_the_fep_521a_example_key() -> None:
    example = "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"
    decoded = keys.multibase_to_public(example)
    assert isinstance(decoded, Ed25519PublicKey)
    assert keys.ed25519_to_multibase(decoded) == example


def test_rsa_multibase_is_multicodec_0x1205_with_pkcs1_der(rsa_key: RSAPrivateKey) -> None:
    value = keys.rsa_to_multibase(rsa_key.public_key())
    data = keys.b58decode(value[1:])
    assert data[:2] == b"\x85\x24"  # varint(0x1205)
    der = rsa_key.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.PKCS1)
    assert data[2:] == der
    decoded = keys.multibase_to_public(value)
    assert isinstance(decoded, RSAPublicKey)
    assert decoded.public_numbers() == rsa_key.public_key().public_numbers()


def test_rsa_multibase_under_2048_bits_is_refused() -> None:
    der = _rsa_public(1024).public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.PKCS1)
    with pytest.raises(KeyFormatError):
        keys.multibase_to_public("z" + keys.b58encode(b"\x85\x24" + der))


HOSTILE_MULTIBASES = [
    "",
    "z",
    "6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2",  # no multibase prefix
    "uAe0B",  # base64url multibase, not base58btc
    "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ",  # 31 key bytes
    "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2z",  # 33 key bytes
    "z0OIl",
    "z" + "2" * 3000,
    "z" + keys.b58encode(b"\x12\x20" + bytes(32)),  # sha2-256 multihash, not a key
    "z" + keys.b58encode(b"\xe7\x01" + bytes(33)),  # secp256k1-pub: unsupported
    "z" + keys.b58encode(b"\x85\x24" + b"\x30\x03\x02\x01\x01"),  # rsa-pub, broken DER
    "z" + keys.b58encode(b"\xed\x81\x00" + bytes(32)),  # non-minimal varint for 0xed
    "z" + keys.b58encode(b"\xff" * 12),  # varint never ends
]


@pytest.mark.parametrize("value", HOSTILE_MULTIBASES)
def test_multibase_to_public_refuses_hostile_values(value: str) -> None:
    with pytest.raises(KeyFormatError):
        keys.multibase_to_public(value)


def test_multibase_to_public_refuses_non_strings() -> None:
    with pytest.raises(KeyFormatError):
        keys.multibase_to_public(None)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.one_of(st.text(max_size=120).map(lambda s: "z" + s),
                 st.binary(max_size=80).map(lambda b: "z" + keys.b58encode(b))))
def test_multibase_to_public_raises_only_key_format_error(value: str) -> None:
    try:
        keys.multibase_to_public(value)
    except KeyFormatError:
        pass
