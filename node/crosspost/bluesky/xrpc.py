"""XRPC calls to the account's PDS (atproto.com/specs/xrpc): JSON over HTTP,
``Authorization: Bearer <accessJwt>``, errors as ``{"error", "message"}``; an expired
access token (``ExpiredToken``) is renewed once with com.atproto.server.refreshSession;
429 carries ``RateLimit-Reset`` (epoch seconds)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from node.crosspost.http import Answer, ServiceClient, ServiceUnreachable


class XrpcError(Exception):
    def __init__(self, status: int, error: str, message: str = "",
                 reset_in: float | None = None) -> None:
        super().__init__(f"{status} {error}: {message}")
        self.status, self.error, self.message = status, error[:100], message[:300]
        self.reset_in = reset_in


@dataclass
class Session:
    access: str
    refresh: str
    did: str
    handle: str

    def dumps(self) -> str:
        return json.dumps({"access": self.access, "refresh": self.refresh, "did": self.did,
                           "handle": self.handle})

    @classmethod
    def loads(cls, text: str) -> Session:
        data = json.loads(text)
        return cls(data["access"], data["refresh"], data["did"], data["handle"])


def _reset_in(answer: Answer, now: datetime) -> float | None:
    value = {k.lower(): v for k, v in answer.headers.items()}.get("ratelimit-reset")
    try:
        return max(float(value) - now.timestamp(), 0.0) if value else None
    except ValueError:
        return None


class Pds:
    def __init__(self, client: ServiceClient, base_url: str, now: datetime) -> None:
        self._client = client
        self._base = base_url.rstrip("/")
        self._now = now
        self.session: Session | None = None
        self.renewed = False
        self.calls: list[str] = []

    async def _raw(self, method: str, nsid: str, *, token: str | None = None,
                   body: Any = None, data: bytes | None = None,
                   content_type: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        kwargs: dict[str, Any] = {"headers": headers}
        if data is not None:
            headers["Content-Type"] = content_type or "application/octet-stream"
            kwargs["data"] = data
        elif body is not None:
            kwargs["json"] = body
        self.calls.append(nsid)
        try:
            answer = await self._client.request(method, f"{self._base}/xrpc/{nsid}", **kwargs)
        except ServiceUnreachable as exc:
            raise XrpcError(0, "Unreachable", str(exc)) from None
        try:
            doc = json.loads(answer.body) if answer.body else {}
        except ValueError:
            doc = {}
        if answer.status < 300:
            return doc
        error = doc.get("error") if isinstance(doc, dict) else None
        message = doc.get("message") if isinstance(doc, dict) else None
        raise XrpcError(answer.status, error if isinstance(error, str) else "Error",
                        message if isinstance(message, str) else "",
                        _reset_in(answer, self._now))

    async def login(self, identifier: str, password: str) -> Session:
        doc = await self._raw("POST", "com.atproto.server.createSession",
                              body={"identifier": identifier, "password": password})
        self.session = _session(doc)
        self.renewed = True
        return self.session

    async def _refresh(self) -> None:
        assert self.session is not None
        doc = await self._raw("POST", "com.atproto.server.refreshSession",
                              token=self.session.refresh)
        self.session = _session(doc)
        self.renewed = True

    async def call(self, method: str, nsid: str, **kwargs: Any) -> Any:
        assert self.session is not None
        try:
            return await self._raw(method, nsid, token=self.session.access, **kwargs)
        except XrpcError as exc:
            if exc.error not in ("ExpiredToken", "InvalidToken"):
                raise
        await self._refresh()
        return await self._raw(method, nsid, token=self.session.access, **kwargs)


def _session(doc: Any) -> Session:
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), str) for k in
                                            ("accessJwt", "refreshJwt", "did", "handle")):
        raise XrpcError(502, "BadSession", "the PDS answered without a session")
    return Session(doc["accessJwt"], doc["refreshJwt"], doc["did"], doc["handle"])
