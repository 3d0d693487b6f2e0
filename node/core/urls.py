"""Every URL the node mints, in one place, so ids never drift between modules."""

from __future__ import annotations

from urllib.parse import quote

# The FEP-2677 Application actor that signs the node's own fetches.
INSTANCE_USERNAME = "instance"
# Names a group may not take: they collide with routes or confuse readers.
RESERVED_USERNAMES = frozenset(
    {INSTANCE_USERNAME, "actor", "admin", "api", "inbox", "groups", "objects", "activities",
     "static", "media", "health", "metrics", "well-known", "root", "node"}
)


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
