"""SMTP out (aiosmtplib), one connection kept open and reused for many mails.

``HAMBASTEGI_SMTP_URL``:
- ``smtp://user:pass@host:587``: STARTTLS, required (a password never crosses
  in clear), then AUTH;
- ``smtps://user:pass@host:465``: TLS from the first byte (RFC 8314);
- ``smtp://localhost:25``: plain, for a relay on this machine (no credentials).

``send`` answers with the reply code that decides the mail's fate
(policy.classify_reply): 250, a 4xx or 5xx of the recipient or the data, or
None when the server could not be reached or the connection broke (the mail
waits and goes again; the connection is made anew for the next one).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import aiosmtplib

log = logging.getLogger("hambastegi.mail")


class SmtpUrlError(ValueError):
    pass


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    use_tls: bool
    start_tls: bool
    username: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> SmtpTarget:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise SmtpUrlError("HAMBASTEGI_SMTP_URL must be smtp://[user:pass@]host[:port] "
                               "or smtps://user:pass@host[:port]")
        try:
            port = parts.port
        except ValueError as exc:
            raise SmtpUrlError("HAMBASTEGI_SMTP_URL has a malformed port") from exc
        user = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        tls = parts.scheme == "smtps"
        return cls(parts.hostname, port or (465 if tls else 25), use_tls=tls,
                   start_tls=not tls and user is not None, username=user, password=password)

    def describe(self) -> str:
        """For logs and `mail status`: never the password."""
        mode = "tls" if self.use_tls else "starttls" if self.start_tls else "plain"
        return f"{self.host}:{self.port} ({mode})"


@dataclass(frozen=True, slots=True)
class Reply:
    code: int | None
    text: str


class SmtpSender:
    """One reused connection; not for concurrent use (the worker holds several)."""

    def __init__(self, target: SmtpTarget, *, timeout: float = 30.0,
                 local_hostname: str | None = None) -> None:
        self.target = target
        self.timeout = timeout
        self.local_hostname = local_hostname
        self._smtp: aiosmtplib.SMTP | None = None

    async def _connect(self) -> aiosmtplib.SMTP:
        if self._smtp is not None and self._smtp.is_connected:
            return self._smtp
        t = self.target
        smtp = aiosmtplib.SMTP(hostname=t.host, port=t.port, use_tls=t.use_tls,
                               start_tls=t.start_tls, timeout=self.timeout,
                               username=t.username, password=t.password,
                               local_hostname=self.local_hostname)
        await smtp.connect()
        self._smtp = smtp
        return smtp

    async def send(self, sender: str, recipient: str, message: bytes) -> Reply:
        try:
            smtp = await self._connect()
        except aiosmtplib.SMTPResponseException as exc:
            await self.close()
            # Refused at greeting or login: the server's state, not the recipient's.
            return Reply(None, f"connect: {exc.code}")
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await self.close()
            return Reply(None, f"connect: {type(exc).__name__}")
        try:
            await smtp.sendmail(sender, [recipient], message)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = exc.recipients[0] if exc.recipients else None
            return Reply(refused.code if refused else None, "recipient refused")
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code in (421,) or not smtp.is_connected:
                await self.close()
            return Reply(exc.code, "refused")
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await self.close()
            return Reply(None, f"connection: {type(exc).__name__}")
        return Reply(250, "ok")

    async def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None and smtp.is_connected:
            try:
                await smtp.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                smtp.close()
