"""HTTP message signatures, draft-cavage-12 and RFC 9421 (node/federation/signatures/)."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from node.federation import keys, signatures
from node.federation.signatures import ParsedSignature, SignatureError

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)  # a Wednesday; 1714564800
NOW_TS = 1714564800
INBOX = "https://example.org/groups/a/inbox"
KEY_ID = "https://remote.example/actors/alice#main-key"
# RFC 9530 section 2 uses this body; its sha-256 below is that section's example value.
BODY = b'{"hello": "world"}'
BODY_SHA256 = "X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="


@pytest.fixture(scope="module")
def rsa_key() -> RSAPrivateKey:
    return keys.generate_rsa()


@pytest.fixture(scope="module")
def other_rsa_key() -> RSAPrivateKey:
    return keys.generate_rsa()


@pytest.fixture(scope="module")
def ed_key() -> Ed25519PrivateKey:
    return keys.generate_ed25519()


def received(signed: Mapping[str, str], host: str = "example.org") -> dict[str, str]:
    """The headers as the server sees them: what the client adds, mixed-case names."""
    headers = {"Host": host, "Content-Type": "application/activity+json",
               "User-Agent": "test/1.0"}
    headers.update(signed)
    return headers


def parse(headers: Mapping[str, str], *, target: str = INBOX, now: datetime = NOW,
          method: str = "POST", require_digest: bool = True) -> ParsedSignature:
    return signatures.parse_request_signature(method=method, target_uri=target,
                                              headers=headers, now=now,
                                              require_digest=require_digest)


def reason(headers: Mapping[str, str], **kwargs: object) -> str:
    with pytest.raises(SignatureError) as caught:
        parse(headers, **kwargs)  # type: ignore[arg-type]
    return caught.value.reason


def cavage_header(key: RSAPrivateKey, signing_string: str, headers: str,
                  algorithm: str | None = "rsa-sha256", extra: str = "") -> str:
    """A Signature header written by hand, signed with cryptography directly."""
    signature = key.sign(signing_string.encode(), PKCS1v15(), hashes.SHA256())
    algo = f'algorithm="{algorithm}", ' if algorithm else ""
    return (f'keyId="{KEY_ID}", {algo}headers="{headers}", {extra}'
            f'signature="{base64.b64encode(signature).decode()}"')


def rfc9421_headers(key: RSAPrivateKey | Ed25519PrivateKey, base: str,
                    signature_input: str) -> dict[str, str]:
    data = base.encode()
    signature = (key.sign(data, PKCS1v15(), hashes.SHA256()) if isinstance(key, RSAPrivateKey)
                 else key.sign(data))
    return {"Signature-Input": f"sig1={signature_input}",
            "Signature": f"sig1=:{base64.b64encode(signature).decode()}:"}


# --- digests -----------------------------------------------------------------------------


def test_digest_header_is_rfc3230_sha256_of_the_body() -> None:
    assert signatures.digest_header(BODY) == f"SHA-256={BODY_SHA256}"
    assert signatures.digest_header(b"") == "SHA-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="


def test_content_digest_header_is_an_rfc9530_byte_sequence() -> None:
    assert signatures.content_digest_header(BODY) == f"sha-256=:{BODY_SHA256}:"


@pytest.mark.parametrize("value", [
    f"SHA-256={BODY_SHA256}",
    f"sha-256={BODY_SHA256}",
    f"MD5=Q2hlY2sgSW50ZWdyaXR5IQ==, SHA-256={BODY_SHA256}",
    f"SHA-512=AAAA,SHA-256={BODY_SHA256},unixsum=30637",
])
def test_digest_with_several_algorithms_checks_the_sha256_one(value: str) -> None:
    signatures.verify_body_digest({"Digest": value}, BODY)


def test_digest_without_sha256_is_a_missing_digest() -> None:
    with pytest.raises(SignatureError) as caught:
        signatures.verify_body_digest({"Digest": "MD5=Q2hlY2sgSW50ZWdyaXR5IQ=="}, BODY)
    assert caught.value.reason == "missing_digest"


def test_no_digest_header_is_a_missing_digest() -> None:
    with pytest.raises(SignatureError) as caught:
        signatures.verify_body_digest({"Content-Type": "application/json"}, BODY)
    assert caught.value.reason == "missing_digest"


@pytest.mark.parametrize("headers", [
    {"Digest": signatures.digest_header(b"other")},
    {"Digest": "SHA-256=not base64!"},
    {"Digest": f"SHA-256={BODY_SHA256}, SHA-256={signatures.digest_header(b'x')[8:]}"},
    {"Content-Digest": signatures.content_digest_header(b"other")},
])
def test_a_digest_that_does_not_match_the_body_is_refused(headers: dict[str, str]) -> None:
    with pytest.raises(SignatureError) as caught:
        signatures.verify_body_digest(headers, BODY)
    assert caught.value.reason == "digest_mismatch"


def test_content_digest_with_several_algorithms_checks_sha256() -> None:
    value = f"sha-512=:{base64.b64encode(b'x' * 64).decode()}:, sha-256=:{BODY_SHA256}:"
    signatures.verify_body_digest({"content-digest": value}, BODY)


def test_an_unsigned_matching_digest_cannot_hide_a_signed_mismatching_one() -> None:
    # A captured request's signed Digest plus a new body with its own Content-Digest.
    headers = {"Digest": signatures.digest_header(b"original"),
               "Content-Digest": signatures.content_digest_header(BODY)}
    with pytest.raises(SignatureError) as caught:
        signatures.verify_body_digest(headers, BODY)
    assert caught.value.reason == "digest_mismatch"


@pytest.mark.parametrize("value", ["sha-256=:%%%:", "sha-256=(1 2)", "sha-256=1", "=,"])
def test_unreadable_content_digest_is_malformed(value: str) -> None:
    with pytest.raises(SignatureError) as caught:
        signatures.verify_body_digest({"Content-Digest": value}, BODY)
    assert caught.value.reason == "malformed_signature"


# --- cavage: signing ---------------------------------------------------------------------


def test_cavage_post_headers_are_host_date_digest_and_signature(rsa_key: RSAPrivateKey) -> None:
    headers = signatures.sign_cavage(method="POST", url=INBOX, body=BODY, key_id=KEY_ID,
                                     private_key=rsa_key, now=NOW)
    assert headers["Host"] == "example.org"
    assert headers["Date"] == "Wed, 01 May 2024 12:00:00 GMT"
    assert headers["Digest"] == f"SHA-256={BODY_SHA256}"
    assert headers["Signature"].startswith(
        f'keyId="{KEY_ID}",algorithm="rsa-sha256",headers="(request-target) host date digest",'
        'signature="')


def test_cavage_signing_string_matches_the_draft_format(rsa_key: RSAPrivateKey) -> None:
    """Known answer: our signature verifies over a signing string written out by hand
    (draft-cavage-12 section 2.3), so any drift in its format fails here."""
    headers = signatures.sign_cavage(method="POST", url=INBOX + "?x=1", body=BODY,
                                     key_id=KEY_ID, private_key=rsa_key, now=NOW)
    expected = ("(request-target): post /groups/a/inbox?x=1\n"
                "host: example.org\n"
                "date: Wed, 01 May 2024 12:00:00 GMT\n"
                f"digest: SHA-256={BODY_SHA256}")
    match = re.search(r'signature="([^"]+)"', headers["Signature"])
    assert match is not None
    rsa_key.public_key().verify(base64.b64decode(match.group(1)), expected.encode(),
                                PKCS1v15(), hashes.SHA256())
    parsed = parse(received(headers), target=INBOX + "?x=1")
    assert parsed.signed_base == expected.encode()


def test_cavage_host_keeps_a_non_default_port_and_drops_the_default(
        rsa_key: RSAPrivateKey) -> None:
    def host(url: str) -> str:
        return signatures.sign_cavage(method="POST", url=url, body=b"", key_id=KEY_ID,
                                      private_key=rsa_key, now=NOW)["Host"]

    assert host("https://Example.ORG:8443/inbox") == "example.org:8443"
    assert host("https://example.org:443/inbox") == "example.org"
    assert host("http://example.org:80/inbox") == "example.org"
    assert host("http://user:pw@[::1]:8080/inbox") == "[::1]:8080"
    assert host("https://b\u00fccher.example/inbox") == "xn--bcher-kva.example"


def test_cavage_get_signs_accept_and_sends_no_digest(rsa_key: RSAPrivateKey) -> None:
    accept = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
    headers = signatures.sign_cavage(method="GET", url="https://example.org/objects/1",
                                     body=None, key_id=KEY_ID, private_key=rsa_key, now=NOW,
                                     extra_headers={"Accept": accept, "User-Agent": "x"})
    assert "Digest" not in headers
    assert headers["Accept"] == accept and headers["User-Agent"] == "x"
    assert 'headers="(request-target) host date accept"' in headers["Signature"]
    parsed = parse(received(headers), method="GET", target="https://example.org/objects/1",
                   require_digest=False)
    assert parsed.signed_base.decode().endswith(f"\naccept: {accept}")
    signatures.verify_signature(parsed, rsa_key.public_key())


def test_cavage_get_without_accept_signs_request_target_host_date(
        rsa_key: RSAPrivateKey) -> None:
    headers = signatures.sign_cavage(method="GET", url="https://example.org/actor", body=None,
                                     key_id=KEY_ID, private_key=rsa_key, now=NOW)
    assert 'headers="(request-target) host date"' in headers["Signature"]


@pytest.mark.parametrize("name", ["Host", "date", "Signature", "Digest"])
def test_cavage_extra_headers_cannot_override_signed_ones(rsa_key: RSAPrivateKey,
                                                          name: str) -> None:
    with pytest.raises(ValueError):
        signatures.sign_cavage(method="POST", url=INBOX, body=BODY, key_id=KEY_ID,
                               private_key=rsa_key, extra_headers={name: "x"})


@pytest.mark.parametrize("key_id", ["", 'a"b', "a\\b", "a\nb", "\u00e9"])
def test_signing_refuses_a_key_id_that_would_break_the_header(rsa_key: RSAPrivateKey,
                                                              key_id: str) -> None:
    with pytest.raises(ValueError):
        signatures.sign_cavage(method="POST", url=INBOX, body=BODY, key_id=key_id,
                               private_key=rsa_key)
    with pytest.raises(ValueError):
        signatures.sign_rfc9421(method="POST", url=INBOX, body=BODY, key_id=key_id,
                                private_key=rsa_key)


# --- cavage: verification ---------------------------------------------------------------


def test_cavage_post_verifies_as_the_server_would(rsa_key: RSAPrivateKey) -> None:
    headers = received(signatures.sign_cavage(method="POST", url=INBOX, body=BODY,
                                              key_id=KEY_ID, private_key=rsa_key, now=NOW))
    parsed = parse(headers)
    assert (parsed.scheme, parsed.key_id, parsed.algorithm) == ("cavage", KEY_ID, "rsa-sha256")
    assert parsed.covered == ("(request-target)", "host", "date", "digest")
    assert parsed.created == NOW
    signatures.verify_body_digest(headers, BODY)
    signatures.verify_signature(parsed, rsa_key.public_key())


def test_cavage_header_names_are_case_insensitive(rsa_key: RSAPrivateKey) -> None:
    signed = signatures.sign_cavage(method="POST", url=INBOX, body=BODY, key_id=KEY_ID,
                                    private_key=rsa_key, now=NOW)
    headers = {name.upper(): value for name, value in received(signed).items()}
    signatures.verify_signature(parse(headers), rsa_key.public_key())
    signatures.verify_body_digest(headers, BODY)


def test_cavage_hand_written_hs2019_header_verifies(rsa_key: RSAPrivateKey) -> None:
    """The other known-answer direction: a header another implementation might write
    (hs2019, spaces after commas, different parameter order) verifies."""
    signing = ("(request-target): post /groups/a/inbox\nhost: example.org\n"
               f"date: Wed, 01 May 2024 12:00:00 GMT\ndigest: SHA-256={BODY_SHA256}")
    headers = {"Host": "example.org", "Date": "Wed, 01 May 2024 12:00:00 GMT",
               "Digest": f"SHA-256={BODY_SHA256}",
               "Signature": cavage_header(rsa_key, signing, "(request-target) host date digest",
                                          algorithm="hs2019")}
    parsed = parse(headers)
    assert parsed.algorithm == "hs2019"
    signatures.verify_signature(parsed, rsa_key.public_key())


def test_cavage_without_algorithm_parameter_is_rsa_sha256(rsa_key: RSAPrivateKey) -> None:
    signing = "(request-target): post /groups/a/inbox\nhost: example.org\n" \
              f"date: Wed, 01 May 2024 12:00:00 GMT\ndigest: SHA-256={BODY_SHA256}"
    headers = {"Host": "example.org", "Date": "Wed, 01 May 2024 12:00:00 GMT",
               "Digest": f"SHA-256={BODY_SHA256}",
               "Signature": cavage_header(rsa_key, signing, "(request-target) host date digest",
                                          algorithm=None)}
    parsed = parse(headers)
    assert parsed.algorithm is None
    signatures.verify_signature(parsed, rsa_key.public_key())


def test_cavage_created_pseudo_header_with_hs2019_dates_the_signature(
        rsa_key: RSAPrivateKey) -> None:
    created = NOW_TS - 30
    signing = (f"(request-target): post /groups/a/inbox\n(created): {created}\n"
               f"host: example.org\ndigest: SHA-256={BODY_SHA256}")
    headers = {"Host": "example.org", "Digest": f"SHA-256={BODY_SHA256}",
               "Signature": cavage_header(rsa_key, signing,
                                          "(request-target) (created) host digest",
                                          algorithm="hs2019", extra=f"created={created}, ")}
    parsed = parse(headers)
    assert parsed.created == NOW - timedelta(seconds=30)
    signatures.verify_signature(parsed, rsa_key.public_key())


def test_cavage_created_pseudo_header_with_rsa_sha256_is_malformed(
        rsa_key: RSAPrivateKey) -> None:
    # draft-cavage-12 section 2.3: (created) with an rsa-* algorithm MUST be an error.
    signing = f"(request-target): post /groups/a/inbox\n(created): {NOW_TS}\nhost: example.org"
    headers = {"Host": "example.org", "Digest": f"SHA-256={BODY_SHA256}",
               "Signature": cavage_header(rsa_key, signing, "(request-target) (created) host",
                                          extra=f"created={NOW_TS}, ")}
    assert reason(headers, require_digest=False) == "malformed_signature"


def test_cavage_expired_signature_is_stale(rsa_key: RSAPrivateKey) -> None:
    expires = NOW_TS - 3601  # past the one hour of clock skew Mastodon allows
    signing = (f"(request-target): post /groups/a/inbox\n(created): {NOW_TS - 60}\n"
               f"(expires): {expires}\nhost: example.org")
    headers = {"Host": "example.org",
               "Signature": cavage_header(rsa_key, signing,
                                          "(request-target) (created) (expires) host",
                                          algorithm="hs2019",
                                          extra=f"created={NOW_TS - 60}, expires={expires}, ")}
    assert reason(headers, require_digest=False) == "stale_date"


@pytest.mark.parametrize(("name", "value"), [
    ("Digest", signatures.digest_header(b'{"hello": "mallory"}')),
    ("Date", "Wed, 01 May 2024 12:00:01 GMT"),
])
def test_cavage_tampered_signed_header_is_a_bad_signature(rsa_key: RSAPrivateKey, name: str,
                                                          value: str) -> None:
    headers = received(signatures.sign_cavage(method="POST", url=INBOX, body=BODY,
                                              key_id=KEY_ID, private_key=rsa_key, now=NOW))
    headers[name] = value
    parsed = parse(headers)
    with pytest.raises(SignatureError) as caught:
        signatures.verify_signature(parsed, rsa_key.public_key())
    assert caught.value.reason == "bad_signature"


def test_cavage_host_with_explicit_default_port_matches(rsa_key: RSAPrivateKey) -> None:
    signing = ("(request-target): post /groups/a/inbox\nhost: Example.org:443\n"
               f"date: Wed, 01 May 2024 12:00:00 GMT\ndigest: SHA-256={BODY_SHA256}")
    headers = {"Host": "Example.org:443", "Date": "Wed, 01 May 2024 12:00:00 GMT",
               "Digest": f"SHA-256={BODY_SHA256}",
               "Signature": cavage_header(rsa_key, signing, "(request-target) host date digest")}
    signatures.verify_signature(parse(headers), rsa_key.public_key())


def test_cavage_signed_with_another_key_is_a_bad_signature(
        rsa_key: RSAPrivateKey, other_rsa_key: RSAPrivateKey, ed_key: Ed25519PrivateKey) -> None:
    headers = received(signatures.sign_cavage(method="POST", url=INBOX, body=BODY,
                                              key_id=KEY_ID, private_key=rsa_key, now=NOW))
    parsed = parse(headers)
    for wrong in (other_rsa_key.public_key(), ed_key.public_key()):
        with pytest.raises(SignatureError) as caught:
            signatures.verify_signature(parsed, wrong)
        assert caught.value.reason == "bad_signature"
        # Logs get the reason and a short detail, never the signature itself.
        assert base64.b64encode(parsed.signature).decode() not in str(caught.value)


@pytest.mark.parametrize("covered", [
    "(request-target) host date",  # a POST whose digest is not signed
    "(request-target) date digest",
    "host date digest",
    "(request-target) host digest",
    "date",
])
def test_cavage_without_a_required_header_is_header_not_signed(rsa_key: RSAPrivateKey,
                                                               covered: str) -> None:
    headers = received(signatures.sign_cavage(method="POST", url=INBOX, body=BODY,
                                              key_id=KEY_ID, private_key=rsa_key, now=NOW))
    headers["Signature"] = re.sub(r'headers="[^"]*"', f'headers="{covered}"',
                                  headers["Signature"])
    assert reason(headers) == "header_not_signed"


def test_cavage_without_headers_parameter_is_header_not_signed(rsa_key: RSAPrivateKey) -> None:
    headers = received(signatures.sign_cavage(method="POST", url=INBOX, body=BODY,
                                              key_id=KEY_ID, private_key=rsa_key, now=NOW))
    headers["Signature"] = re.sub(r'headers="[^"]*",', "", headers["Signature"])
    assert reason(headers) == "header_not_signed"


def test_cavage_get_does_not_need_a_digest(rsa_key: RSAPrivateKey) -> None:
    headers = signatures.sign_cavage(method="GET", url=INBOX, body=None, key_id=KEY_ID,
                                     private_key=rsa_key, now=NOW)
    signatures.verify_signature(parse(received(headers), method="GET", require_digest=False),
                                rsa_key.public_key())


def test_cavage_signed_header_absent_from_the_request_is_malformed(
        rsa_key: RSAPrivateKey) -> None:
    headers = received(signatures.sign_cavage(method="POST", url=INBOX, body=BODY,
                                              key_id=KEY_ID, private_key=rsa_key, now=NOW))
    del headers["Digest"]
    assert reason(headers) == "malformed_signature"


@pytest.mark.parametrize("algorithm", ["rsa-sha512", "hmac-sha256", "ecdsa-sha256", "ed25519",
                                       "RSA-SHA1"])
def test_cavage_other_algorithms_are_unsupported(rsa_key: RSAPrivateKey, algorithm: str) -> None:
    headers = received(signatures.sign_cavage(method="POST", url=INBOX, body=BODY,
                                              key_id=KEY_ID, private_key=rsa_key, now=NOW))
    headers["Signature"] = headers["Signature"].replace('"rsa-sha256"', f'"{algorithm}"')
    assert reason(headers) == "unsupported_algorithm"


def test_unsigned_request_is_missing_signature() -> None:
    assert reason(received({"Date": "Wed, 01 May 2024 12:00:00 GMT"})) == "missing_signature"


# --- what both schemes must refuse -----------------------------------------------------------


@pytest.fixture(params=["cavage", "rfc9421"])
def scheme(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def scheme_key(scheme: str, rsa_key: RSAPrivateKey,
               ed_key: Ed25519PrivateKey) -> RSAPrivateKey | Ed25519PrivateKey:
    """draft-cavage is RSA only (as Mastodon speaks it); RFC 9421 is tried with Ed25519."""
    return rsa_key if scheme == "cavage" else ed_key


def signed_post(scheme: str, key: RSAPrivateKey | Ed25519PrivateKey,
                url: str = INBOX) -> dict[str, str]:
    if scheme == "cavage":
        assert isinstance(key, RSAPrivateKey)
        return signatures.sign_cavage(method="POST", url=url, body=BODY, key_id=KEY_ID,
                                      private_key=key, now=NOW)
    return signatures.sign_rfc9421(method="POST", url=url, body=BODY, key_id=KEY_ID,
                                   private_key=key, now=NOW)


def test_tampered_body_is_a_digest_mismatch(
        scheme: str, scheme_key: RSAPrivateKey | Ed25519PrivateKey) -> None:
    headers = received(signed_post(scheme, scheme_key))
    parse(headers)  # the signature itself is still fine...
    with pytest.raises(SignatureError) as caught:
        signatures.verify_body_digest(headers, b'{"hello": "mallory"}')
    assert caught.value.reason == "digest_mismatch"


def test_replayed_to_another_inbox_path_is_a_bad_signature(
        scheme: str, scheme_key: RSAPrivateKey | Ed25519PrivateKey) -> None:
    # The signed target is not transmitted: it is rebuilt from where the request
    # arrived, so the replay shows up as a signature that does not verify.
    headers = received(signed_post(scheme, scheme_key))
    parsed = parse(headers, target="https://example.org/groups/b/inbox")
    with pytest.raises(SignatureError) as caught:
        signatures.verify_signature(parsed, scheme_key.public_key())
    assert caught.value.reason == "bad_signature"


def test_replayed_to_another_host_is_a_target_mismatch(
        scheme: str, scheme_key: RSAPrivateKey | Ed25519PrivateKey) -> None:
    # The attacker forwards a request signed for other.example, Host header and all.
    signed = signed_post(scheme, scheme_key, url="https://other.example/groups/a/inbox")
    assert reason(received(signed, host="other.example")) == "target_mismatch"


# --- date window (both schemes; the ``scheme`` fixture above) --------------------------------


def _signed_at(key: RSAPrivateKey, scheme: str, moment: datetime) -> dict[str, str]:
    sign = signatures.sign_cavage if scheme == "cavage" else signatures.sign_rfc9421
    return received(sign(method="POST", url=INBOX, body=BODY, key_id=KEY_ID, private_key=key,
                         now=moment))


def test_signature_up_to_one_hour_in_the_future_is_accepted(rsa_key: RSAPrivateKey,
                                                            scheme: str) -> None:
    parsed = parse(_signed_at(rsa_key, scheme, NOW + timedelta(hours=1)))
    signatures.verify_signature(parsed, rsa_key.public_key())


def test_signature_more_than_one_hour_in_the_future_is_refused(rsa_key: RSAPrivateKey,
                                                               scheme: str) -> None:
    headers = _signed_at(rsa_key, scheme, NOW + timedelta(hours=1, seconds=1))
    assert reason(headers) == "future_date"


def test_signature_up_to_65_minutes_old_is_accepted(rsa_key: RSAPrivateKey, scheme: str) -> None:
    parsed = parse(_signed_at(rsa_key, scheme, NOW - timedelta(minutes=65)))
    signatures.verify_signature(parsed, rsa_key.public_key())


def test_signature_older_than_65_minutes_is_stale(rsa_key: RSAPrivateKey, scheme: str) -> None:
    headers = _signed_at(rsa_key, scheme, NOW - timedelta(minutes=65, seconds=1))
    assert reason(headers) == "stale_date"


def test_a_naive_now_is_taken_as_utc(rsa_key: RSAPrivateKey) -> None:
    parse(_signed_at(rsa_key, "cavage", NOW), now=NOW.replace(tzinfo=None))


# --- RFC 9421 ----------------------------------------------------------------------------


def test_rfc9421_signature_base_matches_the_rfc_rules(rsa_key: RSAPrivateKey) -> None:
    """Known answer, written out by hand from RFC 9421 section 2.5: one line per covered
    component, then @signature-params with the serialised Inner List and parameters."""
    signed = signatures.sign_rfc9421(method="POST", url=INBOX, body=BODY, key_id=KEY_ID,
                                     private_key=rsa_key, now=NOW)
    expected = (
        '"@method": POST\n'
        '"@target-uri": https://example.org/groups/a/inbox\n'
        f'"content-digest": sha-256=:{BODY_SHA256}:\n'
        '"@signature-params": ("@method" "@target-uri" "content-digest")'
        f';created=1714564800;keyid="{KEY_ID}";alg="rsa-v1_5-sha256"'
    ).encode()
    assert signed["Content-Digest"] == f"sha-256=:{BODY_SHA256}:"
    assert signed["Signature-Input"] == (
        f'sig1=("@method" "@target-uri" "content-digest");created=1714564800;'
        f'keyid="{KEY_ID}";alg="rsa-v1_5-sha256"')
    signature = re.fullmatch(r"sig1=:([A-Za-z0-9+/=]+):", signed["Signature"])
    assert signature is not None
    rsa_key.public_key().verify(base64.b64decode(signature.group(1)), expected, PKCS1v15(),
                                hashes.SHA256())
    assert parse(received(signed)).signed_base == expected


@pytest.mark.parametrize("key_name", ["rsa_key", "ed_key"])
def test_rfc9421_post_round_trips(request: pytest.FixtureRequest, key_name: str) -> None:
    key: RSAPrivateKey | Ed25519PrivateKey = request.getfixturevalue(key_name)
    headers = received(signatures.sign_rfc9421(method="POST", url=INBOX, body=BODY,
                                               key_id=KEY_ID, private_key=key, now=NOW))
    parsed = parse(headers)
    assert parsed.scheme == "rfc9421" and parsed.key_id == KEY_ID
    assert parsed.algorithm == ("ed25519" if key_name == "ed_key" else "rsa-v1_5-sha256")
    assert parsed.covered == ("@method", "@target-uri", "content-digest")
    assert parsed.created == NOW
    signatures.verify_body_digest(headers, BODY)
    signatures.verify_signature(parsed, key.public_key())


def test_rfc9421_get_covers_method_and_target_only(ed_key: Ed25519PrivateKey) -> None:
    signed = signatures.sign_rfc9421(method="get", url="https://example.org/objects/1#frag",
                                     body=None, key_id=KEY_ID, private_key=ed_key, now=NOW,
                                     label="fetch")
    assert set(signed) == {"Signature-Input", "Signature"}
    assert signed["Signature-Input"].startswith('fetch=("@method" "@target-uri");')
    parsed = parse(received(signed), method="GET", target="https://example.org/objects/1",
                   require_digest=False)
    assert b'"@method": GET\n"@target-uri": https://example.org/objects/1\n' in parsed.signed_base
    signatures.verify_signature(parsed, ed_key.public_key())


def test_rfc9421_target_uri_is_normalised_like_the_server_sees_it(
        rsa_key: RSAPrivateKey) -> None:
    signed = signatures.sign_rfc9421(method="POST", url="HTTPS://Example.ORG:443/groups/a/inbox",
                                     body=BODY, key_id=KEY_ID, private_key=rsa_key, now=NOW)
    signatures.verify_signature(parse(received(signed)), rsa_key.public_key())


def test_rfc9421_tampered_content_digest_is_a_bad_signature(ed_key: Ed25519PrivateKey) -> None:
    headers = received(signatures.sign_rfc9421(method="POST", url=INBOX, body=BODY,
                                               key_id=KEY_ID, private_key=ed_key, now=NOW))
    headers["Content-Digest"] = signatures.content_digest_header(b"{}")
    with pytest.raises(SignatureError) as caught:
        signatures.verify_signature(parse(headers), ed_key.public_key())
    assert caught.value.reason == "bad_signature"


def test_rfc9421_hand_written_authority_and_path_variant_verifies(
        ed_key: Ed25519PrivateKey) -> None:
    params = (f'("content-digest" "@path" "@authority" "@method");keyid="{KEY_ID}";'
              f"created={NOW_TS};nonce=\"abc\"")
    base = (f'"content-digest": sha-256=:{BODY_SHA256}:\n"@path": /groups/a/inbox\n'
            f'"@authority": example.org\n"@method": POST\n"@signature-params": {params}')
    headers = received({"Content-Digest": f"sha-256=:{BODY_SHA256}:",
                        **rfc9421_headers(ed_key, base, params)})
    parsed = parse(headers)
    assert parsed.algorithm is None
    signatures.verify_signature(parsed, ed_key.public_key())


def test_rfc9421_reads_only_the_first_label(ed_key: Ed25519PrivateKey) -> None:
    signed = signatures.sign_rfc9421(method="POST", url=INBOX, body=BODY, key_id=KEY_ID,
                                     private_key=ed_key, now=NOW)
    signed["Signature-Input"] += ', other=("@method");created=1'
    signed["Signature"] += ", other=:AAAA:"
    signatures.verify_signature(parse(received(signed)), ed_key.public_key())


@pytest.mark.parametrize("components", [
    '("@target-uri" "content-digest")',
    '("@method" "content-digest")',
    '("@method" "@path" "content-digest")',
    '("@method" "@target-uri")',  # a POST whose body is not covered
    "()",
])
def test_rfc9421_without_required_components_is_header_not_signed(
        ed_key: Ed25519PrivateKey, components: str) -> None:
    params = f'{components};created={NOW_TS};keyid="{KEY_ID}"'
    headers = received({"Content-Digest": f"sha-256=:{BODY_SHA256}:",
                        **rfc9421_headers(ed_key, "x", params)})
    assert reason(headers) == "header_not_signed"


@pytest.mark.parametrize("params", [
    f'keyid="{KEY_ID}"',  # created is required
    f"created={NOW_TS}",  # keyid is required
    f"created={NOW_TS};keyid=token",  # keyid must be an sf-string
    f'created="{NOW_TS}";keyid="{KEY_ID}"',
    f'created=?1;keyid="{KEY_ID}"',
    f'created={NOW_TS}.5;keyid="{KEY_ID}"',
    f'created={NOW_TS};keyid=""',
])
def test_rfc9421_without_usable_created_and_keyid_is_malformed(
        ed_key: Ed25519PrivateKey, params: str) -> None:
    signature_input = f'("@method" "@target-uri" "content-digest");{params}'
    headers = received({"Content-Digest": f"sha-256=:{BODY_SHA256}:",
                        **rfc9421_headers(ed_key, "x", signature_input)})
    assert reason(headers) == "malformed_signature"


@pytest.mark.parametrize("components", [
    '("@method" "@target-uri" "content-digest" "@method")',  # duplicated
    '("@method" "@target-uri" "content-digest" "x-absent")',  # covered but not sent
    '("@method" "@target-uri" "Content-Digest")',  # names are lower case
    '("@method" "@target-uri" "content-digest";sf)',  # component parameters
    '("@method" "@target-uri" "content-digest" "@status")',
    '("@method" "@target-uri" "content-digest" "@signature-params")',
    '("@method" "@target-uri" content-digest)',  # tokens, not strings
])
def test_rfc9421_unusable_component_lists_are_malformed(ed_key: Ed25519PrivateKey,
                                                        components: str) -> None:
    signature_input = f'{components};created={NOW_TS};keyid="{KEY_ID}"'
    headers = received({"Content-Digest": f"sha-256=:{BODY_SHA256}:",
                        **rfc9421_headers(ed_key, "x", signature_input)})
    assert reason(headers) == "malformed_signature"


@pytest.mark.parametrize("alg", ['"rsa-pss-sha512"', '"hmac-sha256"', '"ecdsa-p256-sha256"',
                                 "ed25519"])
def test_rfc9421_other_algorithms_are_unsupported(ed_key: Ed25519PrivateKey, alg: str) -> None:
    signature_input = (f'("@method" "@target-uri" "content-digest");created={NOW_TS};'
                       f'keyid="{KEY_ID}";alg={alg}')
    headers = received({"Content-Digest": f"sha-256=:{BODY_SHA256}:",
                        **rfc9421_headers(ed_key, "x", signature_input)})
    assert reason(headers) == "unsupported_algorithm"


def test_rfc9421_alg_contradicting_the_key_is_a_bad_signature(
        rsa_key: RSAPrivateKey, ed_key: Ed25519PrivateKey) -> None:
    for signer, other in ((ed_key, rsa_key), (rsa_key, ed_key)):
        headers = received(signatures.sign_rfc9421(method="POST", url=INBOX, body=BODY,
                                                   key_id=KEY_ID, private_key=signer, now=NOW))
        with pytest.raises(SignatureError) as caught:
            signatures.verify_signature(parse(headers), other.public_key())
        assert caught.value.reason == "bad_signature"


def test_rfc9421_expired_signature_is_stale(ed_key: Ed25519PrivateKey) -> None:
    params = (f'("@method" "@target-uri" "content-digest");created={NOW_TS - 60};'
              f'expires={NOW_TS - 3601};keyid="{KEY_ID}"')
    headers = received({"Content-Digest": f"sha-256=:{BODY_SHA256}:",
                        **rfc9421_headers(ed_key, "x", params)})
    assert reason(headers) == "stale_date"


def test_rfc9421_signature_input_without_signature_is_malformed(
        ed_key: Ed25519PrivateKey) -> None:
    signed = signatures.sign_rfc9421(method="POST", url=INBOX, body=BODY, key_id=KEY_ID,
                                     private_key=ed_key, now=NOW)
    del signed["Signature"]
    assert reason(received(signed)) == "malformed_signature"
    signed["Signature"] = "other=:AAAA:"
    assert reason(received(signed)) == "malformed_signature"


def test_signature_input_takes_precedence_over_a_cavage_signature(
        rsa_key: RSAPrivateKey, ed_key: Ed25519PrivateKey) -> None:
    cavage = signatures.sign_cavage(method="POST", url=INBOX, body=BODY, key_id=KEY_ID,
                                    private_key=rsa_key, now=NOW)
    rfc = signatures.sign_rfc9421(method="POST", url=INBOX, body=BODY, key_id=KEY_ID,
                                  private_key=ed_key, now=NOW)
    assert parse(received({**cavage, **rfc})).scheme == "rfc9421"


# --- RequestSigner ------------------------------------------------------------------------


def test_request_signer_signs_both_schemes_with_the_actor_key(rsa_key: RSAPrivateKey) -> None:
    signer = signatures.RequestSigner(keys.private_to_pem(rsa_key), KEY_ID)
    schemes: tuple[signatures.Scheme, ...] = ("cavage", "rfc9421")
    for scheme in schemes:
        headers = received(signer("POST", INBOX, BODY, scheme))
        parsed = parse(headers, now=datetime.now(UTC))
        assert parsed.scheme == scheme
        signatures.verify_signature(parsed, rsa_key.public_key())


def test_request_signer_refuses_an_ed25519_main_key(ed_key: Ed25519PrivateKey) -> None:
    with pytest.raises(TypeError):
        signatures.RequestSigner(keys.private_to_pem(ed_key), KEY_ID)


# --- hostile input ------------------------------------------------------------------------

HOSTILE_SIGNATURES = [
    "",
    " ",
    ",",
    "garbage",
    'keyId="a"',
    'signature="AAAA"',
    'keyId="a",signature="AAAA"',  # no headers: only (created) is implied
    'keyId="a" signature="AAAA" headers="(request-target) host date digest"',  # no commas
    'keyId="a",keyId="b",headers="(request-target) host date digest",signature="AAAA"',
    'keyId="a,headers="(request-target) host date digest",signature="AAAA"',
    'keyId="a",headers="(request-target) host date digest",signature="not base64!"',
    'keyId="a",headers="(request-target) host date digest",signature=""',
    'keyId=a b,signature="AAAA"',
    'keyId="a",headers="(request-target) host (created) digest",algorithm="hs2019",'
    'created="soon",signature="AAAA"',
    'keyId="a",headers="(request-target) host (created) digest",algorithm="hs2019",'
    'created=99999999999999999999,signature="AAAA"',
    'keyId="a",headers="(request-target) host (created) digest",algorithm="hs2019",'
    'created=\u0661\u0662,signature="AAAA"',
    'keyId="a",headers="(request-target) host date digest",signature="AAAA"=',
    'keyId="a"\n,headers="(request-target) host date digest",signature="AAAA"',
    'keyId="a",headers="(request-target) host date digest",signature="AAAA",' * 200,
]

HOSTILE_SIGNATURE_INPUTS = [
    ("", ""),
    ("sig1", "sig1=:AAAA:"),
    ("sig1=", "sig1=:AAAA:"),
    ("sig1=(", "sig1=:AAAA:"),
    ('sig1=("@method"', "sig1=:AAAA:"),
    ('sig1="@method"', "sig1=:AAAA:"),
    ("sig1=()", "sig1=:AAAA:"),
    ('sig1=("@method" "@target-uri" "content-digest");created=1;keyid="k"', "sig1=AAAA"),
    ('sig1=("@method" "@target-uri" "content-digest");created=1;keyid="k"', "sig1=(:AAAA:)"),
    ('sig1=("@method" "@target-uri" "content-digest");created=1;keyid="k"', "sig1=:%%%:"),
    ('SIG1=("@method")', "SIG1=:AAAA:"),
    ('sig1=("@method" "@target-uri" "content-digest");created=999999999999999;keyid="k"',
     "sig1=:AAAA:"),
    ('sig1=("@method" "@target-uri" "content-digest");created=-999999999999999;keyid="k"',
     "sig1=:AAAA:"),
    ('sig1=("@method" "@target-uri" "content-digest");created=@1714564800;keyid="k"',
     "sig1=:AAAA:"),
    ('sig1=("\u00e9")', "sig1=:AAAA:"),
    ('sig1=("@method" "@target-uri" "content-digest");created=1714564800;keyid="k";alg=1',
     "sig1=:AAAA:"),
    ("sig1=(" + '"a" ' * 5000 + ")", "sig1=:AAAA:"),
]


def _only_signature_errors(headers: Mapping[str, str], **kwargs: object) -> None:
    try:
        parse(headers, **kwargs)  # type: ignore[arg-type]
    except SignatureError as exc:
        assert exc.reason in {"malformed_signature", "header_not_signed", "missing_signature",
                              "unsupported_algorithm", "stale_date", "future_date",
                              "target_mismatch"}


@pytest.mark.parametrize("value", HOSTILE_SIGNATURES)
def test_hostile_signature_headers_are_refused_as_signature_errors(value: str) -> None:
    headers = received({"Signature": value, "Date": "Wed, 01 May 2024 12:00:00 GMT",
                        "Digest": f"SHA-256={BODY_SHA256}"})
    with pytest.raises(SignatureError):
        parse(headers)


@pytest.mark.parametrize(("signature_input", "signature"), HOSTILE_SIGNATURE_INPUTS)
def test_hostile_signature_inputs_are_refused_as_signature_errors(signature_input: str,
                                                                  signature: str) -> None:
    headers = received({"Signature-Input": signature_input, "Signature": signature,
                        "Content-Digest": f"sha-256=:{BODY_SHA256}:"})
    with pytest.raises(SignatureError):
        parse(headers)


@pytest.mark.parametrize("headers", [
    {"Signature": 'keyId="a",headers="(request-target) host date",signature="AAAA"',
     "Host": "example.org", "Date": "yesterday"},
    {"Signature": 'keyId="a",headers="(request-target) host date",signature="AAAA"',
     "Host": "example.org", "Date": "Wed, 01 May 2024 12:00:00 GMT\nx: y"},
    {"Signature": 'keyId="a",headers="(request-target) host date",signature="AAAA"',
     "Host": "example.org", "Date": "x" * 10_000},
    {"Signature": 'keyId="a",headers="(request-target) host date",signature="AAAA"',
     "Host": "example.org:notaport", "Date": "Wed, 01 May 2024 12:00:00 GMT"},
])
def test_hostile_companion_headers_are_malformed_or_mismatched(headers: dict[str, str]) -> None:
    assert reason(headers, require_digest=False) in {"malformed_signature", "target_mismatch"}


def test_an_unusable_target_uri_is_malformed(rsa_key: RSAPrivateKey) -> None:
    headers = received(signatures.sign_cavage(method="POST", url=INBOX, body=BODY,
                                              key_id=KEY_ID, private_key=rsa_key, now=NOW))
    for target in ("/groups/a/inbox", "ftp://example.org/x", "https://example.org:99999/x"):
        assert reason(headers, target=target) == "malformed_signature"


_header_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E) |
                       st.sampled_from('"(),;=:\\\t\n\u00e9'), max_size=200)
_signature_like = st.lists(
    st.sampled_from(['keyId="k"', 'algorithm="hs2019"', 'algorithm="rsa-sha256"',
                     'headers="(request-target) host date digest"', 'headers="(created)"',
                     'signature="AAAA"', "created=1714564800", "expires=1", 'x="', ",", "=",
                     '"', " "]) | _header_text, max_size=8).map(",".join)
_input_like = st.lists(
    st.sampled_from(['sig1=("@method" "@target-uri" "content-digest")', ";created=1714564800",
                     ';keyid="k"', ';alg="ed25519"', ";alg=ed25519", "(", ")", '"@path"',
                     '"@authority"', ", ", "sig2=", ":AAAA:", ";expires=1"]) | _header_text,
    max_size=8).map("".join)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(value=_signature_like, date=_header_text)
def test_fuzzed_cavage_headers_only_raise_signature_errors(value: str, date: str) -> None:
    _only_signature_errors({"Signature": value, "Date": date, "Host": "example.org",
                            "Digest": "SHA-256=AAAA"})


@settings(max_examples=400, deadline=None, derandomize=True)
@given(signature_input=_input_like, signature=_input_like | _header_text)
def test_fuzzed_rfc9421_headers_only_raise_signature_errors(signature_input: str,
                                                            signature: str) -> None:
    _only_signature_errors({"Signature-Input": signature_input, "Signature": signature,
                            "Content-Digest": f"sha-256=:{BODY_SHA256}:"})


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.dictionaries(st.sampled_from(["Digest", "Content-Digest", "digest"]), _header_text,
                       max_size=2))
def test_fuzzed_digest_headers_only_raise_signature_errors(headers: dict[str, str]) -> None:
    try:
        signatures.verify_body_digest(headers, BODY)
    except SignatureError as exc:
        assert exc.reason in {"malformed_signature", "missing_digest", "digest_mismatch"}
