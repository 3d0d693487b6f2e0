"""A real SMTP server for mail tests (aiosmtpd), keeping what it received."""

from __future__ import annotations

import asyncio
import email
import os
import re
import sys
import threading
from dataclasses import dataclass, field
from email.message import Message
from email.policy import default
from typing import Any

from aiosmtpd.controller import Controller

from tests.conftest import (
    LiveNode,
    free_port,
)


@dataclass
class Received:
    mail_from: str
    rcpt_to: str
    raw: bytes

    @property
    def message(self) -> Message:
        return email.message_from_bytes(self.raw, policy=default)

    def part(self, subtype: str) -> str:
        for part in self.message.walk():
            if part.get_content_type() == f"text/{subtype}":
                return str(part.get_content())  # type: ignore[attr-defined]
        raise AssertionError(f"no text/{subtype} part")

    def link(self, kind: str) -> str:
        found = re.search(rf"https?://\S+/mail/{kind}/[0-9a-f-]+", self.part("plain"))
        assert found is not None, f"no {kind} link"
        return found.group(0)


@dataclass
class Sink:
    """What the server received; ``refuse`` maps a recipient to a reply ("550 …")."""

    received: list[Received] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        reply = self.refuse.get(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.received.append(Received(envelope.mail_from, rcpt, envelope.content))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.rcpt_to == address]

    def count(self) -> int:
        with self.lock:
            return len(self.received)


class SmtpServer:
    def __init__(self, port: int | None = None) -> None:
        self.sink = Sink()
        self.port = port or free_port()
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.port,
                                     data_size_limit=10 * 1024 * 1024)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


def dsn(verp: str, status: str = "5.1.1", action: str = "failed") -> bytes:
    """A delivery status notification (RFC 3464) as an MTA sends it to the VERP address."""
    return (
        f"From: MAILER-DAEMON@mx.example.net\r\nTo: {verp}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n"
        "--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n\r\n"
        f"Final-Recipient: rfc822; someone@example.net\r\nAction: {action}\r\n"
        f"Status: {status}\r\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n"
        "--b1\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        "Subject: Bulletin\r\n\r\n--b1--\r\n").encode()


DOMAIN = "news.example.org"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def cli_env(live: LiveNode) -> dict[str, str]:
    settings = live.node.settings
    return {**os.environ, "HAMBASTEGI_DATA_DIR": str(settings.data_dir),
            "HAMBASTEGI_DATABASE_URL": live.database_url,  # type: ignore[attr-defined]
            "HAMBASTEGI_BASE_URL": settings.base_url,
            "HAMBASTEGI_SMTP_URL": settings.smtp_url, "HAMBASTEGI_MAIL_FROM": settings.mail_from}


async def run(env: dict[str, str], *args: str,
              stdin: bytes | None = None) -> tuple[int, str, str]:
    """A `hambastegi` command, awaited: the live node in this process keeps running
    meanwhile (a blocking wait would hold its transactions open and lock SQLite)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "node.cli.main", *args, env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(60):
        out, err = await proc.communicate(stdin)
    return proc.returncode or 0, out.decode(), err.decode()


def record_value(printed: str) -> bytes:
    """The TXT record's value as a resolver returns it: its quoted pieces joined."""
    return "".join(re.findall(r'"([^"]*)"', printed)).encode()


