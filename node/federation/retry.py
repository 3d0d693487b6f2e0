"""Pure decisions of the delivery queue: when to retry, what a status means,
what a host's lane does after a failure (the lane is the host's breaker). No
I/O and no clock of their own (``now`` and the random source come in), so
every rule is tested directly (tests/test_retry.py).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Literal

Verdict = Literal["sent", "retry", "permanent", "knock"]

# --- backoff ---------------------------------------------------------------------------

# Attempts per delivery, the first one included. Mastodon retries a delivery
# 16 times over 2-3 days; a receiver that is down for a weekend still gets it.
MAX_ATTEMPTS = 16
# The ceiling doubles from one minute and stops at 16 hours. With full jitter
# the mean delay is half the ceiling, so the 15 waits between 16 attempts add up
# to about two days on average (between ~8 minutes and ~4 days in the extremes,
# which are vanishingly unlikely: the five capped waits dominate the sum).
BACKOFF_BASE = timedelta(minutes=1)
BACKOFF_CAP = timedelta(hours=16)
# The floor of the jitter: "full" jitter down to zero would let a retry follow
# a failure almost at once, which only makes sense for lock contention.
MIN_DELAY = timedelta(seconds=30)


def backoff_ceiling(attempts: int) -> timedelta:
    """The upper bound of the wait after ``attempts`` attempts (1 → one minute)."""
    exponent = min(max(attempts, 1) - 1, 30)  # bounded: 2**30 minutes is past any cap
    return min(BACKOFF_CAP, BACKOFF_BASE * (1 << exponent))


def retry_delay(attempts: int, rng: random.Random) -> timedelta | None:
    """The wait before the next attempt, after ``attempts`` attempts have failed;
    None once ``MAX_ATTEMPTS`` are used up (the delivery has failed).

    Full jitter (uniform between a small floor and the doubling ceiling): the
    retries of one big fan-out to a host that was briefly down spread over the
    whole window instead of arriving together again.
    """
    if attempts >= MAX_ATTEMPTS:
        return None
    ceiling = backoff_ceiling(attempts).total_seconds()
    floor = min(MIN_DELAY.total_seconds(), ceiling)
    return timedelta(seconds=rng.uniform(floor, ceiling))


# --- what an answer means ----------------------------------------------------------------

def classify_status(status: int) -> Verdict:
    """What the inbox's answer means for the delivery.

    - 2xx: delivered.
    - 400, 401: "knock" — some servers reject one signature scheme this way, so
      the worker at once tries the other scheme once (``after_knock`` decides
      if that fails too).
    - 408, 429, 5xx: the receiver is busy or broken for now: retry later.
    - 3xx: permanent; we never follow redirects on a POST (the body would go
      somewhere the signature was not made for).
    - other 4xx (404, 410, 403, 413, 422 …): permanent; sending the same bytes
      again will get the same answer.
    - anything else (1xx as a final answer, nonsense numbers): retry — a broken
      proxy in front of the inbox says nothing final about the inbox.
    """
    if 200 <= status < 300:
        return "sent"
    if status in (400, 401):
        return "knock"
    if status in (408, 429) or 500 <= status < 600:
        return "retry"
    if 300 <= status < 500:
        return "permanent"
    return "retry"


def after_knock(status: int) -> Literal["retry", "permanent"]:
    """The verdict when the other signature scheme was refused as well.

    400 and 401 are then retried like a 5xx (FEDERATION.md): the usual cause is
    the receiver failing to fetch our key for the moment, which heals.
    """
    verdict = classify_status(status)
    if verdict == "permanent":
        return "permanent"
    return "retry"


# --- Retry-After ---------------------------------------------------------------------------

# A receiver may not park our deliveries longer than this; past it the normal
# backoff schedule, and its attempt limit, applies again.
MAX_RETRY_AFTER = timedelta(days=2)
_MAX_RETRY_AFTER_SECONDS = int(MAX_RETRY_AFTER.total_seconds())
_DELTA_SECONDS = re.compile(r"[0-9]{1,16}")


def parse_retry_after(value: str | None, now: datetime) -> datetime | None:
    """The moment a ``Retry-After`` header asks us to wait for (RFC 9110 10.2.3):
    delta-seconds or an HTTP-date, capped at ``MAX_RETRY_AFTER`` from ``now``.

    None when the header is absent, malformed, or not in the future — then it
    asks for nothing beyond the normal backoff.
    """
    if value is None:
        return None
    value = value.strip()
    if not value or len(value) > 64:
        return None
    latest = now + MAX_RETRY_AFTER
    # ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
    if _DELTA_SECONDS.fullmatch(value):
        seconds = int(value)
        if seconds <= 0:
            return None
        # Compare before adding: a huge number would overflow the datetime.
        return min(latest, now + timedelta(seconds=min(seconds, _MAX_RETRY_AFTER_SECONDS)))
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        # RFC 850 and asctime dates carry no zone; HTTP-dates are GMT by definition.
        moment = moment.replace(tzinfo=UTC)
    if moment <= now:
        return None
    return min(moment, latest)


def next_attempt_at(attempts: int, now: datetime, rng: random.Random,
                    retry_after: str | None = None) -> datetime | None:
    """When a delivery that failed for the ``attempts``-th time goes again:
    the later of the backoff and the receiver's ``Retry-After``; None if the
    attempts are used up (a Retry-After does not buy extra attempts)."""
    delay = retry_delay(attempts, rng)
    if delay is None:
        return None
    moment = now + delay
    asked = parse_retry_after(retry_after, now)
    return max(moment, asked) if asked is not None else moment


# --- delivery lanes ------------------------------------------------------------------------
# A host's lane walks the fan-out log in order (docs/ARCHITECTURE.md §2): the
# lane is the host's breaker. A failed attempt (network error, timeout, 5xx,
# 408, 429, both signature schemes refused) holds the whole lane back, so a
# host that is down costs one request per backoff step, not one per queued
# activity; a permanent answer for one inbox is recorded and the lane goes on.


@dataclass(frozen=True, slots=True)
class LaneStep:
    """What a lane does after a failed attempt at its head fan-out."""

    attempts: int  # the lane's consecutive failures, as stored
    next_attempt_at: datetime  # when the lane is due again
    give_up: bool  # True: the head's remaining inboxes fail, the cursor moves on


def lane_failed(attempts: int, now: datetime, rng: random.Random,
                retry_after: str | None = None) -> LaneStep:
    """The lane after its ``attempts + 1``-th consecutive failure.

    Below ``MAX_ATTEMPTS`` the head waits for the backoff (or the receiver's
    Retry-After) and is tried again. At ``MAX_ATTEMPTS`` (about two days of
    failures) the head is given up and the lane goes on at once, keeping the
    count at ``MAX_ATTEMPTS - 1``: while the host stays down, every later
    activity gets one attempt and is then given up too, so a host dead for a
    week does not hold its activities for two days each. The first success
    resets the count (``lane_succeeded``).
    """
    failures = attempts + 1
    when = next_attempt_at(failures, now, rng, retry_after)
    if when is None:
        asked = parse_retry_after(retry_after, now)
        return LaneStep(MAX_ATTEMPTS - 1, asked or now, True)
    return LaneStep(failures, when, False)


def lane_succeeded() -> int:
    """The lane's failure count after an inbox of the host accepted a delivery."""
    return 0


def lane_circuit(attempts: int, next_at: datetime) -> datetime | None:
    """What ``host_state.circuit_open_until`` shows for a lane: while it has
    failures, the moment it is tried again; None when it is healthy."""
    return next_at if attempts > 0 else None


# --- catch-up of followed outboxes (federation/outbox_sync.py) ----------------------------

# A peer whose outbox keeps failing is walked less and less often, up to this.
SYNC_BACKOFF_CAP = timedelta(hours=6)


def next_sync_delay(period: timedelta, rng: random.Random) -> timedelta:
    """After a good walk: the period, ±10 %, so the actors a node follows drift
    apart instead of being walked together every period."""
    return period * rng.uniform(0.9, 1.1)


def sync_retry_delay(failures: int, period: timedelta, rng: random.Random) -> timedelta:
    """After ``failures`` failed walks in a row: the period doubled per failure
    (capped), with full jitter down to half of it, so a failing peer costs one
    GET per step and never a burst."""
    exponent = min(max(failures, 1), 30)
    ceiling = min(SYNC_BACKOFF_CAP, period * (1 << exponent))
    return ceiling * rng.uniform(0.5, 1.0)
