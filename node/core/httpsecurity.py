"""Security headers on every response, whatever route or helper produced it.

Pages may send their own Content-Security-Policy (styles, images); the directives
that must always hold are added to it when missing, so no handler can forget them.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Raw header pairs, not MutableHeaders: this runs on every response.
                kept: list[tuple[bytes, bytes]] = []
                policy: str | None = None
                for name, value in message.get("headers", ()):
                    lowered = name.lower()
                    if lowered == b"content-security-policy":
                        policy = value.decode("latin-1")
                    elif lowered not in FIXED_NAMES:
                        kept.append((name, value))
                csp = DEFAULT_CSP_RAW if policy is None else complete_csp(policy).encode()
                message["headers"] = [*kept, *FIXED_RAW, (b"content-security-policy", csp)]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class NulBytesMiddleware:
    """400 for a NUL byte anywhere in the path or query (raw or %00-encoded).

    No URL of this node contains one, and PostgreSQL refuses NUL in text: left in,
    ``/groups/%00`` reached a query and failed with a 500 instead of a 4xx.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = bytes(scope.get("query_string", b"")).lower()
            if "\x00" in scope["path"] or b"%00" in query or b"\x00" in query:
                await send({"type": "http.response.start", "status": 400,
                            "headers": [(b"content-type", b"application/json")]})
                await send({"type": "http.response.body",
                            "body": b'{"error":"NUL byte in the request URL"}'})
                return
        await self.app(scope, receive, send)
