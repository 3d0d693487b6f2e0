"""Where deliveries go: pure rules on inbox URLs (no I/O).

- ``inbox_host``: the lane (host) an inbox URL belongs to, or None for URLs
  never delivered to;
- ``deliver_to``: the one inbox an activity to followers uses for a follower;
- ``bound_inboxes``: at most ``per_host`` distinct inboxes of one host per
  activity (docs/ARCHITECTURE.md §6, "delivery").
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from urllib.parse import urlsplit

log = logging.getLogger("hambastegi.delivery")

MAX_INBOX_URL = 2048  # the column's length; PostgreSQL would refuse longer
MAX_HOST = 256
# Distinct inbox URLs one activity goes to on one host.
MAX_INBOXES_PER_HOST = 50
DEFAULT_PORTS = {"http": 80, "https": 443}


def inbox_host(url: str) -> str | None:
    """The ``host`` (lane) of an inbox URL: its lowercased netloc, or None for
    URLs that can never be delivered to."""
    if len(url) > MAX_INBOX_URL:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return None
    host = parts.netloc.lower()
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in host:
        return None
    return host if len(host) <= MAX_HOST else None


def log_host(host: str) -> str:
    """A host as it may appear in logs: names yes, IP addresses never."""
    try:
        name = urlsplit("//" + host).hostname or ""
        ipaddress.ip_address(name)
    except ValueError:
        return host
    return "ip-literal"


def _origin(url: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname, port if port is not None else DEFAULT_PORTS[scheme]


def deliver_to(actor_uri: str, inbox: str, shared_inbox: str | None) -> str:
    """The inbox activities to followers use for this follower: its shared inbox
    if that is on the follower's own origin (a follower must not be able to
    point our deliveries at another server), else its own inbox."""
    if shared_inbox and inbox_host(shared_inbox) is not None:
        home = _origin(actor_uri)
        if home is not None and _origin(shared_inbox) == home:
            return shared_inbox
    return inbox


def bound_inboxes(host: str, counts: Iterable[tuple[str, bool, int]], *,
                  per_host: int = MAX_INBOXES_PER_HOST) -> list[str]:
    """At most ``per_host`` of one host's inboxes (URL, is a shared inbox,
    followers using it), so a host (or whoever registers thousands of followers
    on it) cannot make us sign and POST thousands of copies of one activity.

    Shared inboxes are kept first, the most used first; followers whose inbox
    falls past the bound are served by the host's most used shared inbox, which
    is kept; if the host has none they are not delivered to (logged).
    """
    merged: dict[str, list[int]] = {}  # url -> [is shared, followers]
    for url, shared, n in counts:
        entry = merged.setdefault(url, [0, 0])
        entry[0] |= int(shared)
        entry[1] += n
    ranked = sorted(merged, key=lambda url: (not merged[url][0], -merged[url][1], url))
    kept, over = ranked[:per_host], ranked[per_host:]
    if over and not any(merged[url][0] for url in kept):
        log.warning("followers not delivered to: too many inboxes on one host", extra={
            "host": log_host(host), "inboxes": len(over),
            "followers": sum(merged[url][1] for url in over)})
    return sorted(kept)
