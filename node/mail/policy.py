"""Pure decisions of the mail queue and of bounces: what an SMTP answer means,
when a deferred mail goes again, what a soft bounce does. No I/O, no clock of
their own (tests/test_mail_policy.py)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from node.federation.retry import next_attempt_at

Verdict = Literal["sent", "retry", "bounce"]

# A soft-bouncing address is suppressed on the third day it soft-bounced.
SOFT_BOUNCE_DAYS = 3


def classify_reply(code: int | None) -> Verdict:
    """An SMTP reply (RFC 5321 §4.2.1): 2xx accepted; 5xx a permanent refusal of
    this recipient (a hard bounce: the address is suppressed); 4xx, no answer at
    all (connection refused, cut, timed out) or nonsense: try again later."""
    if code is not None and 200 <= code < 300:
        return "sent"
    if code is not None and 500 <= code < 600:
        return "bounce"
    return "retry"


def retry_at(attempts: int, now: datetime, rng: random.Random) -> datetime | None:
    """After ``attempts`` failed attempts: the delivery queue's backoff (full jitter,
    doubling to 16 hours, 16 attempts, about two days); None: give up."""
    return next_attempt_at(attempts, now, rng)


@dataclass(frozen=True, slots=True)
class SoftBounce:
    days: int  # distinct days with a soft bounce, this one counted
    last: date
    suppress: bool


def soft_bounce(days: int, last: date | None, today: date) -> SoftBounce:
    """A soft bounce (4.x.x) counts once a day; the ``SOFT_BOUNCE_DAYS``-th day suppresses."""
    if last == today:
        return SoftBounce(days, today, days >= SOFT_BOUNCE_DAYS)
    counted = days + 1
    return SoftBounce(counted, today, counted >= SOFT_BOUNCE_DAYS)
