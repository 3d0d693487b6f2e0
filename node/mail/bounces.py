"""Bounces and complaints: one message on standard input (``hambastegi mail bounce``,
as a Postfix pipe transport or a ``.forward`` delivers it).

- A DSN (RFC 3464: ``multipart/report; report-type=delivery-status``): per
  recipient an ``Action`` and a ``Status``. ``failed`` with 5.x.x is a hard
  bounce and suppresses the address at once; 4.x.x (or ``delayed``) is a soft
  bounce, counted once a day, and the third day suppresses (policy.soft_bounce).
- An ARF complaint (RFC 5965: ``report-type=feedback-report``) suppresses at
  once, whatever its Feedback-Type but ``not-spam``.
- Anything else (a vacation reply, a human answer, spam) changes nothing.

The subscriber is found from the VERP address the bounce was sent to
(``bounces+<id>-<mac>@domain``): the pipe's recipient argument first, then the
headers a delivery adds (Delivered-To, X-Original-To, To), then, for a complaint,
the returned original's Return-Path. A VERP address whose MAC is wrong names nobody.
"""

from __future__ import annotations

import email
import logging
import re
from dataclasses import dataclass
from datetime import date
from email.message import Message
from email.policy import compat32
from typing import Literal

from node.federation.runtime import Node
from node.mail import addresses, policy
from node.mail.addresses import TokenRef
from node.mail.subscriptions import by_verp, mail_key, suppress

log = logging.getLogger("hambastegi.mail")

MAX_MESSAGE = 10 * 1024 * 1024
STATUS_RE = re.compile(r"([245])\.[0-9]{1,3}\.[0-9]{1,3}")
Kind = Literal["hard", "soft", "complaint", "ignore"]


class BounceError(ValueError):
    pass


def parse(raw: bytes) -> Message:
    if len(raw) > MAX_MESSAGE:
        raise BounceError(f"message larger than {MAX_MESSAGE // (1024 * 1024)} MB")
    if not raw.strip():
        raise BounceError("empty message on standard input")
    return email.message_from_bytes(raw, policy=compat32)


def _status_fields(part: Message) -> list[Message]:
    """The field blocks of a message/delivery-status part (the per-message block
    first, then one per recipient)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    if isinstance(payload, str):  # some MTAs send it as text/plain-ish: parse the blocks
        return [email.message_from_string(block.strip() + "\n", policy=compat32)
                for block in re.split(r"\r?\n\r?\n", payload) if block.strip()]
    return []


def classify(msg: Message) -> Kind:
    if msg.get_content_type() != "multipart/report":
        return "ignore"
    report_type = (msg.get_param("report-type") or "")
    report_type = report_type.lower() if isinstance(report_type, str) else ""
    if report_type == "feedback-report":
        for part in msg.walk():
            if part.get_content_type() == "message/feedback-report":
                fields = _status_fields(part)
                kinds = {str(f.get("Feedback-Type", "")).strip().lower() for f in fields}
                if kinds and kinds <= {"not-spam"}:
                    return "ignore"
                return "complaint"
        return "ignore"
    if report_type != "delivery-status":
        return "ignore"
    found: Kind = "ignore"
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        for block in _status_fields(part):
            action = str(block.get("Action", "")).strip().lower()
            status = STATUS_RE.search(str(block.get("Status", "")))
            klass = status.group(1) if status else ""
            if action == "failed" and klass == "5":
                return "hard"
            if (action == "failed" and klass == "4") or (action == "delayed"):
                found = "soft"
    return found


def verp_refs(msg: Message, recipient: str | None) -> list[TokenRef]:
    """The VERP addresses the message names, the most direct first."""
    places = [recipient or ""]
    places += [str(v) for name in ("Delivered-To", "X-Original-To", "Envelope-To", "To")
               for v in (msg.get_all(name) or [])]
    refs: list[TokenRef] = []
    for place in places:
        refs.extend(addresses.find_verp(place))
    if not refs:
        for part in msg.walk():
            if part.get_content_type() in ("message/rfc822", "text/rfc822-headers"):
                inner = part.get_payload()
                first = inner[0] if isinstance(inner, list) and inner else inner
                text = first.as_string() if isinstance(first, Message) else str(first)
                refs.extend(addresses.find_verp(text[:100_000]))
    return refs


@dataclass(frozen=True, slots=True)
class Result:
    kind: Kind
    subscriber_id: int | None
    action: str  # suppressed | counted | nothing | unknown-recipient

    def line(self) -> str:
        """What the command prints: never an address."""
        who = f"subscriber {self.subscriber_id}" if self.subscriber_id else "no subscriber"
        return f"{self.kind}: {self.action} ({who})"


async def handle(node: Node, raw: bytes, recipient: str | None = None,
                 today: date | None = None) -> Result:
    msg = parse(raw)
    kind = classify(msg)
    if kind == "ignore":
        return Result(kind, None, "nothing")
    refs = verp_refs(msg, recipient)
    key = await mail_key(node)
    today = today or date.today()
    async with node.db.write() as session:
        row = None
        for ref in refs:
            row = await by_verp(session, key, ref)
            if row is not None:
                break
        if row is None:
            return Result(kind, None, "unknown-recipient")
        sid = row.id
        if kind in ("hard", "complaint"):
            await suppress(session, key, row, "bounced" if kind == "hard" else "complaint")
            action = "suppressed"
        else:
            step = policy.soft_bounce(row.soft_bounce_days, row.last_soft_bounce, today)
            if step.suppress:
                await suppress(session, key, row, "bounced")
                action = "suppressed"
            else:
                row.soft_bounce_days, row.last_soft_bounce = step.days, step.last
                action = "counted"
    log.info("bounce handled", extra={"kind": kind, "action": action, "subscriber_id": sid})
    return Result(kind, sid, action)
