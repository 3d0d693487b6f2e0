"""Every URL the node mints, in one place, so ids never drift between modules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, unquote

# The FEP-2677 Application actor that signs the node's own fetches.
INSTANCE_USERNAME = "instance"
# Names a group may not take: they collide with routes or confuse readers.
RESERVED_USERNAMES = frozenset(
    {INSTANCE_USERNAME, "actor", "admin", "api", "inbox", "groups", "objects", "activities",
     "static", "media", "health", "metrics", "well-known", "root", "node"}
)


LocalKind = Literal["actor", "object", "activity", "media"]


@dataclass(frozen=True)
class LocalRef:
    """What a local URL names: ``kind`` and the username, uuid or media name."""

    kind: LocalKind
    key: str
    rest: str = ""  # what follows the actor (``/inbox``, ``#main-key``), or ""


class Urls:
    def __init__(self, base_url: str) -> None:
        self.base = base_url.rstrip("/")

    def actor(self, username: str) -> str:
        if username == INSTANCE_USERNAME:
            return f"{self.base}/actor"
        return f"{self.base}/groups/{quote(username)}"

    def key_id(self, username: str) -> str:
        """The RSA key Mastodon reads (``publicKey``)."""
        return self.actor(username) + "#main-key"

    def ed25519_key_id(self, username: str) -> str:
        """The FEP-521a Multikey in ``assertionMethod``."""
        return self.actor(username) + "#ed25519-key"

    def inbox(self, username: str) -> str:
        return self.actor(username) + "/inbox"

    def outbox(self, username: str) -> str:
        return self.actor(username) + "/outbox"

    def followers(self, username: str) -> str:
        return self.actor(username) + "/followers"

    def following(self, username: str) -> str:
        return self.actor(username) + "/following"

    def featured(self, username: str) -> str:
        return self.actor(username) + "/featured"

    @property
    def shared_inbox(self) -> str:
        return f"{self.base}/inbox"

    def object(self, uuid: str) -> str:
        return f"{self.base}/objects/{uuid}"

    def activity(self, uuid: str) -> str:
        return f"{self.base}/activities/{uuid}"

    def media(self, name: str) -> str:
        return f"{self.base}/media/{quote(name)}"

    def is_local(self, uri: str) -> bool:
        return uri == self.base or uri.startswith(self.base + "/")

    def local_username(self, uri: str | None) -> str | None:
        """The username of one of our actors' ids (exactly the id), else None."""
        ref = self.parse_local(uri)
        return ref.key if ref is not None and ref.kind == "actor" and not ref.rest else None

    def local_object_uuid(self, uri: str | None) -> str | None:
        """The uuid of one of our objects' ids (exactly the id), else None."""
        ref = self.parse_local(uri)
        return ref.key if ref is not None and ref.kind == "object" and not ref.rest else None

    def parse_local(self, uri: str | None) -> LocalRef | None:
        """Turn one of our own URLs back into what it names, without a query.

        The one inverse of the minting methods above, so nothing scans tables
        comparing every actor's URL with ``uri``.
        """
        if not uri or not self.is_local(uri):
            return None
        path = uri[len(self.base):]
        if path == "/actor" or path.startswith(("/actor#", "/actor/")):
            return LocalRef("actor", INSTANCE_USERNAME, path[len("/actor"):])
        for prefix, kind in (("/groups/", "actor"), ("/objects/", "object"),
                             ("/activities/", "activity"), ("/media/", "media")):
            if path.startswith(prefix):
                tail = path[len(prefix):]
                cut = min((i for i in (tail.find("/"), tail.find("#")) if i >= 0),
                          default=len(tail))
                key = unquote(tail[:cut])
                if not key or "?" in key:
                    return None
                return LocalRef(kind, key, tail[cut:])  # type: ignore[arg-type]
        return None
