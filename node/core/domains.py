"""Domain names as peer policy sees them: one normal form, and the rules that
match a host against blocked and allowed domains (docs/ARCHITECTURE.md §9).

Pure and synchronous: the check runs on every inbox POST and every outbound
request, so it is a few set lookups over the labels of the host (a block of
``example.com`` covers ``a.example.com``), with no I/O and no regex.

Normal form: lower case, no trailing dot, IDNA (UTS 46, the ``idna`` package
yarl already uses) for names, the compressed form for IP literals. Ports,
paths, user info and wildcards are refused, never guessed at: an admin who
typed ``*.example.com`` or ``https://example.com/`` is told what to write.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import idna

# RFC 1035 §2.3.4: 253 characters in text form, 63 per label.
MAX_DOMAIN = 253
MAX_LABEL = 63
# What an admin may type: rejected outright rather than stripped.
_REFUSED = {"/": "a path", "@": "user info", "*": "a wildcard", "?": "a query",
            "#": "a fragment", "\\": "a backslash"}
# Why a host is refused: stable codes (delivery_failure.error, inbox answers, FetchError).
BLOCKED = "blocked_domain"
NOT_ALLOWED = "not_allowed"
_LDH = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


class DomainError(ValueError):
    """A domain an admin gave that cannot be a host name; the message says why."""


def normalise_domain(text: str) -> str:
    """The normal form of a domain or IP literal an admin typed; DomainError if none."""
    value = text.strip()
    if not value:
        raise DomainError("the domain is empty")
    if len(value) > MAX_DOMAIN + 2:
        raise DomainError(f"the domain is longer than {MAX_DOMAIN} characters")
    for char, what in _REFUSED.items():
        if char in value:
            hint = " (subdomains are included already)" if char == "*" else ""
            raise DomainError(f"give a bare domain, without {what}{hint}")
    if any(c.isspace() or ord(c) < 32 for c in value):
        raise DomainError("the domain contains spaces or control characters")
    literal = _ip_literal(value)
    if literal is not None:
        return literal
    if ":" in value:
        raise DomainError("give a bare domain, without a port")
    name = value[:-1] if value.endswith(".") and not value.endswith("..") else value
    if name.isascii():  # the usual case: the label rules say what is wrong, in words
        name = name.lower()
        _check_labels(name)
        return name
    try:
        ascii_name = idna.encode(name, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise DomainError(f"not a valid domain name ({exc})") from None
    _check_labels(ascii_name)
    return ascii_name


def _ip_literal(value: str) -> str | None:
    bare = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    try:
        return ipaddress.ip_address(bare).compressed
    except ValueError:
        return None


def _check_labels(name: str) -> None:
    if not name or len(name) > MAX_DOMAIN:
        raise DomainError(f"the domain must be 1 to {MAX_DOMAIN} characters")
    for label in name.split("."):
        if not label:
            raise DomainError("the domain has an empty label (two dots in a row?)")
        if len(label) > MAX_LABEL:
            raise DomainError(f"a label is longer than {MAX_LABEL} characters")
        if not set(label) <= _LDH or label.startswith("-") or label.endswith("-"):
            raise DomainError("only letters, digits and inner hyphens may make up a label")
    if name.replace(".", "").isdigit():
        raise DomainError("not a valid domain name (all digits)")


@functools.lru_cache(maxsize=4096)
def _normal_host(host: str) -> str:
    """A host seen on the wire in normal form; '' when it cannot be one (the
    checks then judge the empty name, which no rule names: allowlist mode
    refuses it, block mode lets the other guards decide)."""
    try:
        return normalise_domain(host)
    except DomainError:
        return ""


def normal_host(host: str) -> str:
    """Fast path for what most hosts already are: ASCII lower case, no dot at the end."""
    if host.isascii() and host.islower() and not host.endswith(".") and "[" not in host:
        return host
    return _normal_host(host)


def host_of(uri: str) -> str:
    """The host of a URL (no port), in normal form; '' if it has none."""
    try:
        host = urlsplit(uri).hostname
    except ValueError:
        return ""
    return normal_host(host) if host else ""


def _listed(host: str, names: frozenset[str]) -> bool:
    """Whether ``host`` or a domain above it is in ``names``: a.b.example looks up
    a.b.example, b.example, example. IP literals cannot match wrongly: no rule is
    ever a bare run of digits and dots short of a whole address (normalise_domain)."""
    if host in names:
        return True
    dot = host.find(".")
    while dot >= 0:
        if host[dot + 1:] in names:
            return True
        dot = host.find(".", dot + 1)
    return False


@dataclass(frozen=True)
class DomainRules:
    """A snapshot of the rules. ``allowlist``: federate only with allowed
    domains (and never with blocked ones, which win over an allow)."""

    blocked: frozenset[str] = frozenset()
    allowed: frozenset[str] = frozenset()
    allowlist: bool = False
    own_host: str = ""
    _trivial: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_trivial", not self.blocked and not self.allowlist)

    def is_blocked(self, host: str) -> bool:
        """Whether ``host`` or a domain above it is blocked (allowlist aside)."""
        if not self.blocked:
            return False
        return _listed(normal_host(host), self.blocked)

    def refusal(self, host: str) -> str | None:
        """None when we may talk with ``host`` (a bare host, no port); else why
        not: "blocked_domain", or "not_allowed" (allowlist mode, not listed)."""
        if self._trivial:
            return None
        normal = normal_host(host)
        if normal and normal == self.own_host:
            return None
        if self.blocked and _listed(normal, self.blocked):
            return BLOCKED
        if self.allowlist and not (normal and _listed(normal, self.allowed)):
            return NOT_ALLOWED
        return None

    def permits(self, host: str) -> bool:
        return self.refusal(host) is None

    def refusal_uri(self, uri: str) -> str | None:
        """``refusal`` for the host of a URL (a URL without one is refused
        whenever any rule applies)."""
        return None if self._trivial else self.refusal(host_of(uri))
