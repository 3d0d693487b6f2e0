"""Pure decisions of the delivery queue: when to retry, what a status means,
when a host's circuit opens. No I/O, so every rule is tested directly."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Literal

MAX_ATTEMPTS = 16
# Full jitter over a doubling base, capped: 16 attempts reach about two days,
# close to Mastodon's 16 retries over 2-3 days.
BASE_SECONDS = 30.0
CAP_SECONDS = 12 * 3600.0
MAX_RETRY_AFTER = timedelta(days=2)
BREAKER_THRESHOLD = 5
BREAKER_BASE = timedelta(minutes=1)
BREAKER_CAP = timedelta(hours=6)

Outcome = Literal["sent", "retry", "permanent", "knock"]


def retry_delay(attempts: int, rng: random.Random) -> timedelta | None:
    """Delay before attempt ``attempts + 1``; None once attempts are used up."""
    if attempts >= MAX_ATTEMPTS:
        return None
    ceiling = min(CAP_SECONDS, BASE_SECONDS * 2 ** attempts)
    # Half fixed, half random: spreads retries of a whole fan-out without
    # ever retrying a failing host almost at once.
    return timedelta(seconds=ceiling / 2 + rng.uniform(0, ceiling / 2))


def classify_status(status: int) -> Outcome:
    if 200 <= status < 300:
        return "sent"
    if status in (400, 401):
        return "knock"  # maybe the other signature scheme is wanted
    if status in (408, 429) or status >= 500:
        return "retry"
    return "permanent"  # 404, 410, other 4xx, and 3xx (we never follow POST redirects)


def parse_retry_after(value: str | None, now: datetime) -> datetime | None:
    if not value:
        return None
    value = value.strip()
    moment: datetime
    if value.isdigit():
        moment = now + timedelta(seconds=int(value[:9]))
    else:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if moment.tzinfo is None:
            return None
    if moment <= now:
        return None
    latest: datetime = now + MAX_RETRY_AFTER
    return moment if moment < latest else latest


def circuit_open_until(consecutive_failures: int, now: datetime) -> datetime | None:
    """Closed below the threshold; then open for a doubling time, capped."""
    if consecutive_failures < BREAKER_THRESHOLD:
        return None
    exponent = min(consecutive_failures - BREAKER_THRESHOLD, 12)
    return now + min(BREAKER_CAP, BREAKER_BASE * (1 << exponent))
