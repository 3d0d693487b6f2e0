"""The delivery queue's pure policy: backoff, status meaning, Retry-After, breaker."""

from __future__ import annotations

import itertools
import random
import statistics
from datetime import UTC, datetime, timedelta

import pytest

from node.federation import retry
from node.federation.retry import (
    MAX_ATTEMPTS,
    MAX_RETRY_AFTER,
    after_knock,
    backoff_ceiling,
    classify_status,
    next_attempt_at,
    parse_retry_after,
    retry_delay,
)

NOW = datetime(2025, 3, 8, 12, 0, 0, tzinfo=UTC)


# --- backoff ---------------------------------------------------------------------------


def schedule(rng: random.Random) -> list[timedelta]:
    """The waits of one delivery that fails every time."""
    delays = []
    attempts = 1
    while (delay := retry_delay(attempts, rng)) is not None:
        delays.append(delay)
        attempts += 1
    return delays


def test_attempts_end_with_none() -> None:
    rng = random.Random(1)
    assert len(schedule(rng)) == MAX_ATTEMPTS - 1  # 16 attempts, 15 waits between them
    assert retry_delay(MAX_ATTEMPTS, rng) is None
    assert retry_delay(MAX_ATTEMPTS + 5, rng) is None
    assert retry_delay(MAX_ATTEMPTS - 1, rng) is not None


def test_ceilings_grow_then_cap() -> None:
    ceilings = [backoff_ceiling(n) for n in range(1, MAX_ATTEMPTS)]
    assert ceilings[0] == timedelta(minutes=1)
    assert all(b >= a for a, b in itertools.pairwise(ceilings))
    assert ceilings[1] == 2 * ceilings[0]
    assert ceilings[-1] == retry.BACKOFF_CAP
    assert backoff_ceiling(0) == backoff_ceiling(1)  # nonsense input stays sane
    assert backoff_ceiling(10_000) == retry.BACKOFF_CAP


def test_delays_stay_within_their_jitter_bounds() -> None:
    rng = random.Random(2)
    for attempts in range(1, MAX_ATTEMPTS):
        ceiling = backoff_ceiling(attempts)
        samples = [retry_delay(attempts, rng) for _ in range(300)]
        assert all(s is not None and retry.MIN_DELAY <= s <= ceiling for s in samples)
        # Jitter: the samples really spread over the window.
        seconds = [s.total_seconds() for s in samples if s is not None]
        assert len(set(seconds)) > 250
        spread = max(seconds) - min(seconds)
        assert spread > 0.8 * (ceiling - retry.MIN_DELAY).total_seconds()


def test_delays_grow_on_average() -> None:
    rng = random.Random(3)
    means = [statistics.fmean(d.total_seconds() for d in
                              (retry_delay(n, rng) for _ in range(2000)) if d is not None)
             for n in range(1, MAX_ATTEMPTS)]
    # Strictly growing until the cap, then flat (within sampling noise).
    uncapped = [m for n, m in zip(range(1, MAX_ATTEMPTS), means, strict=True)
                if backoff_ceiling(n) < retry.BACKOFF_CAP]
    assert uncapped == sorted(uncapped)
    assert means[-1] > 20 * means[0]


def test_a_whole_schedule_takes_about_two_days() -> None:
    rng = random.Random(4)
    totals = [sum(schedule(rng), timedelta()) for _ in range(2000)]
    mean = sum(totals, timedelta()) / len(totals)
    assert timedelta(hours=40) < mean < timedelta(hours=56), mean
    # Nearly every delivery is still being tried after a day and given up within four.
    inside = [t for t in totals if timedelta(days=1) < t < timedelta(days=4)]
    assert len(inside) > 0.97 * len(totals)


def test_delays_are_reproducible_with_a_seeded_rng() -> None:
    assert schedule(random.Random(7)) == schedule(random.Random(7))
    assert schedule(random.Random(7)) != schedule(random.Random(8))


def test_next_attempt_takes_the_later_of_backoff_and_retry_after() -> None:
    rng = random.Random(5)
    plain = next_attempt_at(1, NOW, rng)
    assert plain is not None and NOW + retry.MIN_DELAY <= plain <= NOW + timedelta(minutes=1)
    asked = next_attempt_at(1, NOW, rng, "3600")
    assert asked == NOW + timedelta(hours=1)
    # A Retry-After shorter than the backoff does not shorten it.
    short = next_attempt_at(12, NOW, rng, "1")
    assert short is not None and short >= NOW + retry.MIN_DELAY
    # Nor does it buy attempts beyond the limit.
    assert next_attempt_at(MAX_ATTEMPTS, NOW, rng, "60") is None


# --- classify ------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "verdict"), [
    (200, "sent"), (201, "sent"), (202, "sent"), (204, "sent"), (299, "sent"),
    (400, "knock"), (401, "knock"),
    (408, "retry"), (429, "retry"),
    (500, "retry"), (502, "retry"), (503, "retry"), (504, "retry"), (599, "retry"),
    (404, "permanent"), (410, "permanent"), (403, "permanent"), (405, "permanent"),
    (413, "permanent"), (415, "permanent"), (422, "permanent"), (451, "permanent"),
    (301, "permanent"), (302, "permanent"), (307, "permanent"), (308, "permanent"),
    (100, "retry"), (0, "retry"), (600, "retry"), (999, "retry"),
])
def test_classify_status(status: int, verdict: str) -> None:
    assert classify_status(status) == verdict


def test_after_a_double_knock() -> None:
    # Both schemes refused: the receiver probably could not fetch our key yet.
    assert after_knock(401) == "retry"
    assert after_knock(400) == "retry"
    # The second knock may meet another answer: it counts as such.
    assert after_knock(503) == "retry"
    assert after_knock(429) == "retry"
    assert after_knock(404) == "permanent"
    assert after_knock(410) == "permanent"


# --- Retry-After -----------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    ("120", NOW + timedelta(seconds=120)),
    (" 30 ", NOW + timedelta(seconds=30)),
    ("0", None),
    ("Sat, 08 Mar 2025 13:00:00 GMT", NOW + timedelta(hours=1)),  # IMF-fixdate
    ("Saturday, 08-Mar-25 13:00:00 GMT", NOW + timedelta(hours=1)),  # RFC 850
    ("Sat Mar  8 13:00:00 2025", NOW + timedelta(hours=1)),  # asctime, no zone: GMT
    ("Sat, 08 Mar 2025 14:00:00 +0100", NOW + timedelta(hours=1)),  # zone honoured
    ("Sat, 08 Mar 2025 11:00:00 GMT", None),  # the past: no wait beyond backoff
    ("Sat, 08 Mar 2025 12:00:00 GMT", None),  # now
])
def test_retry_after_forms(value: str, expected: datetime | None) -> None:
    assert parse_retry_after(value, NOW) == expected


@pytest.mark.parametrize("value", [
    None, "", "   ", "soon", "-5", "1.5", "12s", "0x10", "²", "١٢٠", "1e3",
    "Sat, 32 Mar 2025 13:00:00 GMT", "Mon, 08 Foo 2025 13:00:00 GMT", "tomorrow at noon",
    "9" * 80, "Sat, 08 Mar 99999 13:00:00 GMT",
])
def test_retry_after_garbage(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None


def test_retry_after_is_capped_at_two_days() -> None:
    assert parse_retry_after("999999999", NOW) == NOW + MAX_RETRY_AFTER
    assert parse_retry_after("9" * 16, NOW) == NOW + MAX_RETRY_AFTER
    assert parse_retry_after("Fri, 31 Dec 2100 23:59:59 GMT", NOW) == NOW + MAX_RETRY_AFTER
    just_under = MAX_RETRY_AFTER - timedelta(seconds=1)
    assert parse_retry_after(str(int(just_under.total_seconds())), NOW) == NOW + just_under


def test_retry_after_results_are_aware_utc() -> None:
    moment = parse_retry_after("Sat Mar  8 13:00:00 2025", NOW)
    assert moment is not None and moment.utcoffset() == timedelta(0)


# --- delivery lanes ------------------------------------------------------------------------


def test_a_failing_lane_backs_off_and_keeps_its_place() -> None:
    rng = random.Random(7)
    step = retry.lane_failed(0, NOW, rng)
    assert (step.attempts, step.give_up) == (1, False)
    assert NOW + retry.MIN_DELAY <= step.next_attempt_at <= NOW + timedelta(minutes=1)
    later = retry.lane_failed(5, NOW, rng)
    assert (later.attempts, later.give_up) == (6, False)
    assert later.next_attempt_at <= NOW + retry.backoff_ceiling(6)


def test_a_lane_honours_retry_after() -> None:
    step = retry.lane_failed(0, NOW, random.Random(1), "7200")
    assert step.next_attempt_at == NOW + timedelta(hours=2) and not step.give_up


def test_a_lane_gives_up_its_head_when_attempts_are_used_up_and_goes_on_at_once() -> None:
    rng = random.Random(3)
    step = retry.lane_failed(retry.MAX_ATTEMPTS - 1, NOW, rng)
    assert step.give_up
    assert step.next_attempt_at == NOW
    # Still failing: the next activity gets one attempt, then is given up too.
    again = retry.lane_failed(step.attempts, NOW, rng)
    assert again.give_up and again.attempts == retry.MAX_ATTEMPTS - 1
    # A Retry-After is still honoured when going on.
    asked = retry.lane_failed(step.attempts, NOW, rng, "60")
    assert asked.give_up and asked.next_attempt_at == NOW + timedelta(minutes=1)


def test_a_whole_lane_schedule_has_sixteen_attempts() -> None:
    rng = random.Random(11)
    attempts, tries = 0, 1
    while True:
        step = retry.lane_failed(attempts, NOW, rng)
        if step.give_up:
            break
        attempts, tries = step.attempts, tries + 1
    assert tries == retry.MAX_ATTEMPTS


def test_lane_success_and_circuit() -> None:
    assert retry.lane_succeeded() == 0
    assert retry.lane_circuit(0, NOW) is None
    assert retry.lane_circuit(3, NOW + timedelta(minutes=5)) == NOW + timedelta(minutes=5)


def test_deliver_to_uses_a_shared_inbox_only_on_the_followers_origin() -> None:
    from node.federation.delivery import deliver_to

    a = "https://a.example"
    assert deliver_to(f"{a}/u/1", f"{a}/u/1/inbox", f"{a}/inbox") == f"{a}/inbox"
    assert deliver_to(f"{a}/u/1", f"{a}/u/1/inbox", "https://b.example/inbox") == \
        f"{a}/u/1/inbox"
    assert deliver_to(f"{a}/u/1", f"{a}/u/1/inbox", "https://a.example:8443/inbox") == \
        f"{a}/u/1/inbox"
    assert deliver_to(f"{a}/u/1", f"{a}/u/1/inbox", "https://a.example:443/inbox") == \
        "https://a.example:443/inbox"
    assert deliver_to(f"{a}/u/1", f"{a}/u/1/inbox", None) == f"{a}/u/1/inbox"
    assert deliver_to("not a url", f"{a}/u/1/inbox", f"{a}/inbox") == f"{a}/u/1/inbox"


def test_bound_inboxes_keeps_shared_inboxes_first_the_most_used_first() -> None:
    from node.federation.delivery import bound_inboxes

    a = "https://a.example"
    personal = [(f"{a}/u/{i}/inbox", False, 1) for i in range(10)]
    assert len(bound_inboxes("a.example", personal, per_host=3)) == 3
    mixed = [*personal, (f"{a}/small", True, 2), (f"{a}/inbox", True, 9)]
    kept = bound_inboxes("a.example", mixed, per_host=3)
    assert f"{a}/inbox" in kept and f"{a}/small" in kept and len(kept) == 3
    # The same URL counted twice (two rows of a GROUP BY) is one inbox.
    assert bound_inboxes("a.example", [(f"{a}/x", False, 1), (f"{a}/x", True, 1)]) == [f"{a}/x"]
