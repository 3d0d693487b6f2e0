"""The onion service's side of every response (issue 28;
docs/ARCHITECTURE.md#10-readers-behind-censorship).

- A clearnet HTML page fetched over HTTPS names its onion twin: the ``Onion-Location``
  header (Tor Browser offers the switch, and ignores the header on plain HTTP) and the
  matching ``<meta http-equiv="onion-location">`` for saved copies.
- A request that came with the onion ``Host`` gets its page with every link, form and
  image on the onion origin (``links.rewrite``; canonical and ActivityPub ids keep the
  clearnet origin), redirects onto the onion, and cookies without ``Secure``: the
  onion is plain HTTP to the browser (Tor itself encrypts), and a Secure cookie would
  never come back.
- Any other ``Host`` is left alone.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from node.core import links

ONION = "onion"
ADVERTISE = "advertise"
SECURE_ATTR = re.compile(rb";\s*secure\s*(?=;|$)", re.IGNORECASE)


@dataclass(frozen=True)
class OnionSite:
    clear_origin: str  # https://node.example
    clear_host: str  # node.example (lower case, with a port if the base URL has one)
    onion_host: str  # <56 characters>.onion

    @property
    def onion_origin(self) -> str:
        return f"http://{self.onion_host}"

    def mode(self, host: bytes | None, forwarded_proto: bytes | None, scheme: str) -> str | None:
        """ONION for the onion ``Host``, ADVERTISE for the clearnet one over HTTPS."""
        if host is None:
            return None
        name = host.decode("latin-1").strip().lower().rstrip(".")
        if name.endswith(".onion:80"):
            name = name[:-3]
        if name == self.onion_host:
            return ONION
        https = scheme == "https" or (forwarded_proto or b"").strip().lower() == b"https"
        if name == self.clear_host and https and self.clear_origin.startswith("https://"):
            return ADVERTISE
        return None

    def location(self, raw_path: bytes, query: bytes) -> str:
        """The onion URL of the same path and query."""
        path = raw_path.decode("latin-1")
        return self.onion_origin + path + (("?" + query.decode("latin-1")) if query else "")

    def advertise(self, body: bytes, location: str) -> bytes:
        meta = f'<meta http-equiv="onion-location" content="{html.escape(location)}">'
        return links.insert_in_head(body, meta.encode())

    def onto_onion(self, body: bytes) -> bytes:
        text = body.decode("utf-8", "surrogateescape")
        mapper = links.onto_origin(self.clear_origin, self.onion_origin)
        return links.rewrite(text, mapper).encode("utf-8", "surrogateescape")

    def onion_headers(self, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """Redirects onto the onion, cookies without Secure."""
        clear = self.clear_origin.encode()
        out = []
        for name, value in headers:
            lowered = name.lower()
            if lowered == b"location" and (value == clear or value.startswith(clear + b"/")):
                value = self.onion_origin.encode() + value[len(clear):]
            elif lowered == b"set-cookie":
                value = SECURE_ATTR.sub(b"", value)
            out.append((name, value))
        return out
