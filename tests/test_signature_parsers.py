"""Hostile header values against every parser of signatures and keys.

The rule under test: whatever arrives, only ``SignatureError`` (or, for keys,
``KeyFormatError``) comes out, so the inbox answers 401 and never 500. The
fuzz tests run a few thousand generated inputs; the regressions below them are
inputs that once escaped as other exceptions.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.federation import keys, signatures
from node.groups import operations
from tests.conftest import LiveNode
from tests.fediverse import AS_JSON, FakeRemote
from tests.fuzzing import examples

NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
TARGET = "https://hambastegi.example/users/koeln/inbox"
HOST = "hambastegi.example"
DATE = "Thu, 01 May 2025 12:00:00 GMT"
FUZZ = settings(max_examples=examples(600), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

# What a header value can hold once a server has decoded it (latin-1, no CR/LF), and,
# more broadly, any text at all (a caller may hand us anything).
header_text = st.text(st.characters(min_codepoint=0, max_codepoint=0xFF,
                                    blacklist_characters="\r\n"), max_size=300)
any_text = st.text(max_size=300)
texts = header_text | any_text
# Pieces that make the parsers go further than a random string would.
tokens = st.sampled_from([
    "keyId", "algorithm", "headers", "signature", "created", "expires", "sig1", "sig2",
    "rsa-sha256", "hs2019", "ed25519", "rsa-v1_5-sha256", "(request-target)", "(created)",
    "(expires)", "host", "date", "digest", "content-digest", '"@method"', '"@target-uri"',
    '"@path"', '"@authority"', '"@query"', '"@signature-params"', "keyid", "alg", "sha-256",
    "SHA-256", "=", ",", ";", ":", '"', "\\", "(", ")", " ", "-1", "0", "1746100800",
    "99999999999999999999", "?1", "*", "é", "\x00", "%", "AAAA", "====", "Zm9v",
]) | st.text(max_size=12)
fragments = st.lists(tokens, max_size=30).map("".join)
values = texts | fragments
# Digest fields: an algorithm name the parser looks for, then anything.
digests = st.tuples(st.sampled_from(["SHA-256=", "sha-256=", "sha-256=:", "md5=", ""]),
                    values, st.sampled_from(["", ":", ",SHA-256=AAAA", ", sha-512=:AA==:"])
                    ).map("".join)


@functools.cache
def rsa_key() -> RSAPrivateKey:
    return keys.generate_rsa()


def only(allowed: type[Exception], call: Callable[[], object]) -> None:
    try:
        call()
    except allowed:
        pass


def parse(headers: dict[str, str], require_digest: bool = True) -> None:
    only(signatures.SignatureError, lambda: signatures.parse_request_signature(
        method="POST", target_uri=TARGET, headers=headers, now=NOW,
        require_digest=require_digest))


# --- fuzz: signature headers -----------------------------------------------------------------


@FUZZ
@given(value=values, date=values)
def test_cavage_signature_header_fuzz(value: str, date: str) -> None:
    parse({"Signature": value, "Host": HOST, "Date": date, "Digest": "SHA-256=x"})


@FUZZ
@given(params=st.lists(st.tuples(tokens, values), max_size=6), date=values | st.just(DATE))
def test_cavage_signature_parameters_fuzz(params: list[tuple[str, str]], date: str) -> None:
    """Well-formed name="value" lists with hostile values reach the deeper checks."""
    quoted = ",".join(
        f'{name}="{value.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for name, value in params)
    base = 'keyId="https://remote.example/a#main-key",headers="(request-target) host date digest",'
    parse({"Signature": base + quoted, "Host": HOST, "Date": date, "Digest": "SHA-256=x"})
    parse({"Signature": quoted, "Host": HOST, "Date": date}, require_digest=False)


@FUZZ
@given(inputs=values, sigs=values, digest=digests)
def test_rfc9421_headers_fuzz(inputs: str, sigs: str, digest: str) -> None:
    parse({"Signature-Input": inputs, "Signature": sigs, "Content-Digest": digest,
           "Host": HOST})


@FUZZ
@given(components=st.lists(tokens, max_size=6), params=st.lists(st.tuples(tokens, values),
                                                                 max_size=4),
       signature=values)
def test_rfc9421_structured_fuzz(components: list[str], params: list[tuple[str, str]],
                                 signature: str) -> None:
    """Signature-Input shaped like a Dictionary of Inner Lists, with hostile members."""
    inner = "(" + " ".join(components) + ")" + "".join(f";{k}={v}" for k, v in params)
    parse({"Signature-Input": f"sig1={inner}", "Signature": f"sig1=:{signature}:",
           "Content-Digest": "sha-256=:AAAA:", "Host": HOST})


@FUZZ
@given(digest=digests, content_digest=digests, which=st.sampled_from(["d", "c", "both"]),
       body=st.binary(max_size=64))
def test_digest_headers_fuzz(digest: str, content_digest: str, which: str,
                             body: bytes) -> None:
    headers = {}
    if which in ("d", "both"):
        headers["Digest"] = digest
    if which in ("c", "both"):
        headers["Content-Digest"] = content_digest
    only(signatures.SignatureError, lambda: signatures.verify_body_digest(headers, body))


@FUZZ
@given(signature=st.binary(max_size=300), base=st.binary(max_size=100),
       algorithm=st.none() | st.sampled_from(["rsa-sha256", "hs2019", "ed25519", "x"]))
def test_verify_signature_fuzz(signature: bytes, base: bytes, algorithm: str | None) -> None:
    parsed = signatures.ParsedSignature("cavage", "k", algorithm, signature, base, (), NOW)
    only(signatures.SignatureError,
         lambda: signatures.verify_signature(parsed, rsa_key().public_key()))


# --- fuzz: keys --------------------------------------------------------------------------------


pem_bodies = st.binary(max_size=600).map(lambda raw: base64.encodebytes(raw).decode())
pem_labels = st.sampled_from(["PUBLIC KEY", "RSA PUBLIC KEY", "PRIVATE KEY", "CERTIFICATE", "X"])


@FUZZ
@given(text=texts, body=pem_bodies, label=pem_labels)
def test_public_pem_fuzz(text: str, body: str, label: str) -> None:
    only(keys.KeyFormatError, lambda: keys.load_public_pem(text))
    pem = f"-----BEGIN {label}-----\n{body}-----END {label}-----\n"
    only(keys.KeyFormatError, lambda: keys.load_public_pem(pem))


@FUZZ
@given(text=texts, raw=st.binary(max_size=300),
       prefix=st.sampled_from([b"", b"\xed\x01", b"\x85\x24", b"\xed", b"\x80", b"\xff" * 9]))
def test_multibase_fuzz(text: str, raw: bytes, prefix: bytes) -> None:
    only(keys.KeyFormatError, lambda: keys.multibase_to_public(text))
    only(keys.KeyFormatError, lambda: keys.multibase_to_public("z" + text))
    only(keys.KeyFormatError,
         lambda: keys.multibase_to_public("z" + keys.b58encode(prefix + raw)))


# --- regressions -----------------------------------------------------------------------------


def test_non_ascii_digest_is_a_signature_error() -> None:
    # base64.b64decode raises a plain ValueError (not binascii.Error) for non-ASCII text.
    for value in ("SHA-256=é", "sha-256=\u0661\u0662", "SHA-256=Zm9v, SHA-256=ß"):
        try:
            signatures.verify_body_digest({"Digest": value}, b"{}")
        except signatures.SignatureError as exc:
            assert exc.reason == "digest_mismatch"
        else:
            raise AssertionError("an unreadable digest was accepted")


async def test_rfc9421_request_with_unreadable_uncovered_digest_is_refused_with_401(
        live_node: LiveNode, remote: FakeRemote) -> None:
    """An RFC 9421 signature covers Content-Digest; a Digest header beside it that is not
    base64 must be refused like any bad digest, not crash the inbox."""
    await operations.create_group(live_node.node, "koeln", display_name="Köln",
                                  language="de")
    alice = remote.add_actor("alice")
    url = live_node.node.urls.inbox("koeln")
    activity = remote.activity(alice, "Follow", live_node.node.urls.actor("koeln"))
    body = json.dumps(activity).encode()
    signed = signatures.sign_rfc9421(method="POST", url=url, body=body, key_id=alice.key_id,
                                     private_key=alice.rsa)
    headers = [(name.encode(), value.encode()) for name, value in signed.items()]
    headers += [(b"Content-Type", AS_JSON.encode()), (b"Digest", "SHA-256=é".encode("latin-1"))]
    async with httpx.AsyncClient() as client:
        response = await client.post(url, content=body, headers=headers, timeout=15)
    assert response.status_code == 401
    assert response.json()["reason"] == "digest_mismatch"
