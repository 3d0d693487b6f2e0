"""Pure decisions of the crosspost queue: when the next message may go, what an
answer means, when to try again (docs/ARCHITECTURE.md §2c). No I/O, no clock:
``now`` is always an argument, so tests drive time by hand.

Telegram's limits (core.telegram.org/bots/faq, "broadcasting to users"): about 20
messages a minute to one group or channel and 30 a second per bot; beyond them the
API answers 429 with ``parameters.retry_after`` seconds. Bluesky's PDS answers 429
with ``RateLimit-Reset`` (epoch seconds) (docs.bsky.app, "Rate Limits").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

CHANNEL_PER_MINUTE = 20
BOT_PER_SECOND = 30
MINUTE = timedelta(minutes=1)
SECOND = timedelta(seconds=1)
MAX_ATTEMPTS = 10
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=6)
# Recent sends kept per destination: exactly what the window needs.
KEEP = CHANNEL_PER_MINUTE


def earliest_send(recent: Sequence[datetime], now: datetime, count: int, *,
                  limit: int = CHANNEL_PER_MINUTE, window: timedelta = MINUTE) -> datetime:
    """The first time ≥ now at which ``count`` more messages keep every window of
    length ``window`` at ``limit`` messages or fewer, given the times of recent sends.

    A message sent at s counts in the window ending at t while s > t - window, so it
    stops counting at s + window. ``count`` beyond ``limit`` is treated as ``limit``
    (a post is at most a few messages; it must not wait for ever).
    """
    count = min(max(count, 1), limit)
    live = sorted(s for s in recent if s > now - window)
    over = len(live) + count - limit
    if over <= 0:
        return now
    return max(now, live[over - 1] + window)


def remember(recent: Sequence[datetime], sent: Sequence[datetime], now: datetime, *,
             window: timedelta = MINUTE, keep: int = KEEP) -> list[datetime]:
    """The recent-sends list after ``sent``: only those still inside the window."""
    return sorted(s for s in [*recent, *sent] if s > now - window)[-keep:]


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to: ``done``; ``retry`` (after ``delay``, counted as an
    attempt unless ``paced``); ``fail`` (permanent, with the reason shown in status);
    ``pause`` (the connection stops until an editor connects again)."""

    kind: str  # done | retry | fail | pause
    reason: str = ""
    delay: timedelta = timedelta(0)
    paced: bool = False


def telegram_outcome(status: int, description: str, retry_after: int | None) -> Outcome:
    """What a Bot API error answer means (core.telegram.org/bots/api#making-requests)."""
    if status == 429:
        seconds = retry_after if retry_after is not None and retry_after >= 0 else 30
        return Outcome("retry", f"paced by Telegram: retry after {seconds} s",
                       timedelta(seconds=min(seconds, 86_400)), paced=True)
    if status in (401, 403, 404):
        # 401: token revoked; 403: the bot was removed or lost its rights;
        # 404 on a method call: the token no longer names a bot.
        return Outcome("pause", f"Telegram refused ({status}): {description}")
    if status >= 500 or status == 0:
        return Outcome("retry", f"Telegram unavailable ({status or 'network'}): {description}")
    return Outcome("fail", f"Telegram refused ({status}): {description}")


def bluesky_outcome(status: int, error: str, reset_in: float | None) -> Outcome:
    """What an XRPC error answer means (atproto.com/specs/xrpc#error-responses)."""
    if status == 429:
        seconds = reset_in if reset_in is not None and reset_in >= 0 else 60
        return Outcome("retry", f"paced by Bluesky: retry after {int(seconds)} s",
                       timedelta(seconds=min(seconds, 86_400)), paced=True)
    if status == 401 and error not in ("ExpiredToken", "InvalidToken"):
        return Outcome("pause", f"Bluesky refused the login ({status}): {error}")
    if status >= 500 or status == 0:
        return Outcome("retry", f"Bluesky unavailable ({status or 'network'}): {error}")
    return Outcome("fail", f"Bluesky refused ({status}): {error}")


def retry_delay(attempts: int) -> timedelta:
    """Doubling from 30 s, at most 6 hours (``attempts`` ≥ 1: failures so far)."""
    delay: timedelta = FIRST_RETRY * (2 ** min(max(attempts - 1, 0), 20))
    return min(delay, LONGEST_RETRY)


def gives_up(attempts: int) -> bool:
    """Ten failed attempts (about a day): the row is failed, shown in status."""
    return attempts >= MAX_ATTEMPTS
