"""Security headers on every response, whatever route or helper produced it.

Pages may send their own Content-Security-Policy (styles, images); the directives
that must always hold are added to it when missing, so no handler can forget them.
"""

from __future__ import annotations

# Documents other than HTML (JSON, calendars, media) load nothing at all.
DEFAULT_CSP = ("default-src 'none'; frame-ancestors 'none'; base-uri 'none'; "
               "form-action 'none'; object-src 'none'")
# Always present: no framing (clickjacking), no <base> rewriting every relative link,
# forms only to this node, no plugins.
REQUIRED_CSP = (("frame-ancestors", "'none'"), ("base-uri", "'none'"),
                ("form-action", "'self'"), ("object-src", "'none'"))
FIXED_HEADERS = (
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),  # never tell other sites who read what here
    ("x-frame-options", "DENY"),  # frame-ancestors for browsers without CSP 2
)


FIXED_RAW = tuple((name.encode(), value.encode()) for name, value in FIXED_HEADERS)
FIXED_NAMES = frozenset(name for name, _ in FIXED_RAW)
DEFAULT_CSP_RAW = DEFAULT_CSP.encode()


def complete_csp(policy: str) -> str:
    """``policy`` with every required directive it lacks appended."""
    present = {part.split()[0].lower() for part in policy.split(";") if part.strip()}
    missing = [f"{name} {value}" for name, value in REQUIRED_CSP if name not in present]
    return "; ".join([policy.strip().rstrip(";"), *missing]) if missing else policy


def secure_headers(headers: list[tuple[bytes, bytes]] | tuple[()]) -> list[tuple[bytes, bytes]]:
    """A response's raw headers with the fixed ones set and the CSP completed.

    Raw header pairs, not MutableHeaders: this runs on every response.
    """
    kept: list[tuple[bytes, bytes]] = []
    policy: bytes | None = None
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"content-security-policy":
            policy = value
        elif lowered not in FIXED_NAMES:
            kept.append((name, value))
    if policy is None:
        csp = DEFAULT_CSP_RAW
    else:  # pages send the same few policies: complete each once
        csp = _completed.get(policy) or _complete_raw(policy)
    kept.extend(FIXED_RAW)
    kept.append((b"content-security-policy", csp))
    return kept


_completed: dict[bytes, bytes] = {}


def _complete_raw(policy: bytes) -> bytes:
    done = complete_csp(policy.decode("latin-1")).encode("latin-1")
    if len(_completed) < 64:  # a handler echoing input into its CSP cannot grow this
        _completed[policy] = done
    return done


def has_nul_byte(path: str, query: bytes) -> bool:
    """A NUL byte anywhere in the path or query (raw or %00-encoded).

    No URL of this node contains one, and PostgreSQL refuses NUL in text: left in,
    ``/groups/%00`` reached a query and failed with a 500 instead of a 4xx.
    """
    return "\x00" in path or (bool(query) and (b"\x00" in query or b"%00" in query))
