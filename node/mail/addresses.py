"""E-mail addresses in, and the tokens that stand for a subscriber in links.

Addresses: only the common ASCII dot-atom form of RFC 5321 §4.1.2 /
RFC 5322 §3.4.1 is taken (no quoted local parts, no comments, no address
literals); internationalised addresses (RFC 6531, SMTPUTF8) are refused with a
message that says so, since a relay that lacks SMTPUTF8 would bounce them.
Any control character anywhere (CR, LF, NUL, TAB …) refuses the address
outright: nothing that could end a header line reaches a mail.

Tokens: ``<subscriber id>-<HMAC>`` with the node's "mail" key over a purpose
("confirm", "unsubscribe", "verp") and the subscriber's nonce: nothing to
look up, nothing to forge without the key, and a new nonce (or a deleted
subscriber) voids every link sent before. Compared in constant time.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass

from node.accounts.keys import keyed_hash

MAX_ADDRESS = 254  # RFC 5321 §4.5.3.1.3: a path of 256 octets less the angle brackets
MAX_LOCAL = 64  # RFC 5321 §4.5.3.1.1
ATEXT = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")
LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
TOKEN_RE = re.compile(r"([1-9][0-9]{0,11})-([0-9a-f]{32})")
VERP_RE = re.compile(r"bounces\+([1-9][0-9]{0,11})-([0-9a-f]{20})@", re.IGNORECASE)


class AddressError(ValueError):
    """Said to the person as it is (the form, the CLI); never contains the address."""


def normalise(raw: str) -> str:
    """The address as stored and compared: checked, lower-cased. ``AddressError`` else."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        raise AddressError("An address cannot contain line breaks or control characters.")
    address = raw.strip(" ")
    if not address:
        raise AddressError("Please enter your e-mail address.")
    if len(address) > MAX_ADDRESS:
        raise AddressError("That address is too long.")
    if not address.isascii():
        raise AddressError("Addresses with letters outside ASCII (internationalised "
                           "addresses) cannot be used yet; please use another address.")
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise AddressError("That is not an e-mail address: write it as name@example.org.")
    if len(local) > MAX_LOCAL or not all(ATEXT.fullmatch(part) for part in local.split(".")):
        raise AddressError("That is not an e-mail address: write it as name@example.org.")
    domain = domain.lower()
    labels = domain.split(".")
    if len(labels) < 2 or not all(LABEL.fullmatch(label) for label in labels) \
            or labels[-1].isdigit():
        raise AddressError("The part after @ is not a domain name such as example.org.")
    return f"{local.lower()}@{domain}"


def domain_of(address: str) -> str:
    return address.rpartition("@")[2]


@dataclass(frozen=True, slots=True)
class TokenRef:
    subscriber_id: int
    mac: str


def _mac(key: bytes, purpose: str, subscriber_id: int, nonce: str, length: int) -> str:
    return keyed_hash(key, "mail-token", purpose, str(subscriber_id), nonce)[:length]


def make_token(key: bytes, purpose: str, subscriber_id: int, nonce: str) -> str:
    return f"{subscriber_id}-{_mac(key, purpose, subscriber_id, nonce, 32)}"


def parse_token(token: str) -> TokenRef | None:
    match = TOKEN_RE.fullmatch(token) if len(token) <= 48 else None
    return TokenRef(int(match.group(1)), match.group(2)) if match else None


def token_matches(key: bytes, purpose: str, ref: TokenRef, nonce: str) -> bool:
    want = _mac(key, purpose, ref.subscriber_id, nonce, len(ref.mac))
    return hmac.compare_digest(want, ref.mac)


def verp_address(key: bytes, subscriber_id: int, nonce: str, domain: str) -> str:
    """The envelope sender of a mail to one subscriber (VERP): bounces come back to
    ``bounces+<id>-<mac>@domain``, lower-case hex so a case-folding relay keeps it."""
    return f"bounces+{subscriber_id}-{_mac(key, 'verp', subscriber_id, nonce, 20)}@{domain}"


def verp_matches(key: bytes, ref: TokenRef, nonce: str) -> bool:
    return hmac.compare_digest(_mac(key, "verp", ref.subscriber_id, nonce, 20), ref.mac)


def find_verp(text: str) -> list[TokenRef]:
    """Every VERP address in a text (a bounce names it in several places)."""
    return [TokenRef(int(m.group(1)), m.group(2).lower()) for m in VERP_RE.finditer(text)]
