"""One delivery on the wire: sign exactly the URL that is sent, POST through
the guarded client, knock once with the other signature scheme on 400/401,
and say what the answer means (``federation/retry.py`` decides)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

from node.federation.delivery.lanes import Scheme
from node.federation.fetch import FetchError, GuardedClient
from node.federation.retry import after_knock, classify_status
from node.federation.signatures import RequestSigner

Kind = Literal["sent", "retry", "permanent"]
# FetchError reasons that will never change by trying again.
PERMANENT_FETCH_ERRORS = frozenset({"forbidden_address", "bad_scheme"})


@dataclass(frozen=True, slots=True)
class Result:
    """What one send came to. ``error`` is a short code, never a response body."""

    inbox: str
    kind: Kind
    status: int | None = None
    error: str | None = None
    retry_after: str | None = None
    scheme: Scheme = "cavage"
    # True: the host answered sanely (even a 404); False: it is down or
    # overloaded (network error, timeout, 5xx, 408, 429); None: says nothing
    # about the host (a refused address).
    host_ok: bool | None = None


class Sender:
    """Signs (in a small thread pool: RSA releases the GIL) and POSTs."""

    def __init__(self, client: GuardedClient, *, signing_threads: int = 2,
                 timeout: float = 30.0, pool: Executor | None = None) -> None:
        """``pool``: the process's signing threads (``Node.signing_threads``, which
        also sign its GETs), shared rather than a second pool contending for the
        same cores; without it the sender makes its own of ``signing_threads``."""
        self.client = client
        self.signing_threads = signing_threads
        self.timeout = timeout
        self._pool: Executor | None = pool
        self._own_pool = pool is None

    def close(self) -> None:
        if self._pool is not None and self._own_pool:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    async def _sign(self, signer: RequestSigner, url: str, body: bytes,
                    scheme: Scheme, extra: Mapping[str, str] | None) -> Mapping[str, str]:
        if self.signing_threads <= 0 and self._own_pool:
            return signer("POST", url, body, scheme, extra)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.signing_threads,
                                            thread_name_prefix="sign")
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, signer, "POST", url, body, scheme, extra)

    async def send(self, inbox: str, body: bytes, signer: RequestSigner,
                   scheme: Scheme, extra: Mapping[str, str] | None = None) -> Result:
        """POST once; on 400/401 once more at once with the other scheme. The
        whole exchange has one deadline: a host that accepts the connection and
        never answers costs its own lane that long, and counts as a failure.
        ``extra``: headers signed along (FEP-8fcf's Collection-Synchronization)."""
        try:
            async with asyncio.timeout(self.timeout):
                return await self._send(inbox, body, signer, scheme, extra)
        except TimeoutError:
            return Result(inbox, "retry", None, "timeout", scheme=scheme, host_ok=False)

    async def _send(self, inbox: str, body: bytes, signer: RequestSigner,
                    scheme: Scheme, extra: Mapping[str, str] | None) -> Result:
        knocked = False
        try:
            # One URL object: its string form is signed and the object itself is
            # sent, so the signed request-target is byte for byte the one on the wire.
            target = self.client.check_url(inbox)
        except FetchError as exc:
            return Result(inbox, "permanent", exc.status, exc.reason, scheme=scheme)
        while True:
            headers = await self._sign(signer, str(target), body, scheme, extra)
            try:
                result = await self.client.post_signed(target, body, headers)
            except FetchError as exc:
                if exc.reason in PERMANENT_FETCH_ERRORS:
                    return Result(inbox, "permanent", exc.status, exc.reason, scheme=scheme)
                return Result(inbox, "retry", exc.status, exc.reason, scheme=scheme,
                              host_ok=False)
            status = result.status
            verdict = classify_status(status)
            if verdict == "knock" and not knocked:
                # Double knock: maybe the host verifies only the other scheme.
                knocked = True
                scheme = "rfc9421" if scheme == "cavage" else "cavage"
                continue
            if verdict == "sent":
                return Result(inbox, "sent", status, scheme=scheme, host_ok=True)
            kind: Kind = after_knock(status) if verdict == "knock" else verdict
            # 5xx, 408 and 429 say the host is unwell; other answers that it works.
            return Result(inbox, kind, status, f"http_{status}", result.retry_after, scheme,
                          host_ok=verdict != "retry")
