"""Status changes and the detention record; days in detention are computed, never typed.

The record is a list of periods ``{"arrested", "released"}`` (ISO dates, the
last one open while the person is held). A status that ends custody
(``on_bail``, ``released``, ``died_in_custody``) closes the open period on its
date; ``detained`` while no period is open (after ``released``, ``on_bail``, or a
trial or sentence met outside) opens a new one (a new arrest). Bail and death in
custody need the person held; ``released`` also ends a case met outside (an
acquittal while on bail). Anything else that would make the record lie is
refused with a reason.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from node.campaigns.dossier import CampaignError, status

ENDS_CUSTODY = frozenset({"on_bail", "released", "died_in_custody"})
# Only someone held can be bailed or die in custody.
NEEDS_CUSTODY = frozenset({"on_bail", "died_in_custody"})
# Where a status may go next while the record says so. ``released`` goes nowhere
# but a new arrest (``detained`` with its date); death in custody is final.
NEXT: dict[str, frozenset[str]] = {
    "detained": frozenset({"on_trial", "sentenced", "on_bail", "released", "died_in_custody"}),
    "on_trial": frozenset({"detained", "sentenced", "on_bail", "released",
                           "died_in_custody"}),
    "sentenced": frozenset({"on_trial", "on_bail", "released", "died_in_custody"}),
    "on_bail": frozenset({"detained", "on_trial", "sentenced", "released"}),
    "released": frozenset({"detained"}),
    "died_in_custody": frozenset(),
}


def first_record(arrested: date, released: date | None) -> list[dict[str, Any]]:
    return [{"arrested": arrested.isoformat(),
             "released": released.isoformat() if released else None}]


def held(record: list[dict[str, Any]]) -> bool:
    return bool(record) and record[-1].get("released") is None


def last_change(timeline: list[dict[str, Any]]) -> date | None:
    """The date of the latest status change in a campaign's timeline: a change
    met outside custody (a release while on bail) leaves no mark in the record."""
    dates = [entry["date"] for entry in timeline
             if entry.get("status") and isinstance(entry.get("date"), str)]
    return date.fromisoformat(max(dates)) if dates else None


def change(current: str, new: Any, record: list[dict[str, Any]], when: date,
           *, today: date, after: date | None = None) -> list[dict[str, Any]]:
    """The detention record after ``current`` → ``new`` on ``when``, or CampaignError.
    ``after``: the date of the last change of status (``last_change``)."""
    new = status(new)
    if when > today:
        raise CampaignError(f"the date {when.isoformat()} is in the future")
    last = record[-1] if record else None
    if last is not None:
        latest = date.fromisoformat(last["released"] or last["arrested"])
        if when < latest:
            raise CampaignError(f"the date {when.isoformat()} is before the last entry of "
                                f"the detention record ({latest.isoformat()})")
    if after is not None and when < after:
        raise CampaignError(f"the date {when.isoformat()} is before the last change of "
                            f"status ({after.isoformat()})")
    if new == current:
        raise CampaignError(f"the status is already {current}")
    # A new arrest: ``detained`` whenever no period is open (a sentence met outside
    # being served, say), whatever NEXT says while the person is held.
    rearrest = new == "detained" and not held(record) and current != "died_in_custody"
    if new not in NEXT.get(current, frozenset()) and not rearrest:
        if current == "released":
            raise CampaignError(f"{current} → {new} makes no sense without a new arrest: "
                                "record it first as status detained with the arrest date")
        if current == "died_in_custody":
            raise CampaignError("died_in_custody is final; correct a mistaken entry by "
                                "editing the campaign")
        if new in NEEDS_CUSTODY and not held(record):
            raise _not_held(current, new, record)
        raise CampaignError(f"{current} → {new} is not a possible change of status")
    if new in NEEDS_CUSTODY and not held(record):
        raise _not_held(current, new, record)
    out = [dict(period) for period in record]
    if new in ENDS_CUSTODY:
        if held(out):
            out[-1]["released"] = when.isoformat()
    elif not held(out):
        if new != "detained":
            # on_bail → on_trial/sentenced: the person stays out until detained again.
            return out
        out.append({"arrested": when.isoformat(), "released": None})
    return out


def _not_held(current: str, new: str, record: list[dict[str, Any]]) -> CampaignError:
    since = f" since {record[-1]['released']}" if record and record[-1]["released"] else ""
    return CampaignError(f"{current} → {new}: the person is not in custody{since}; record "
                         "the arrest first as status detained with its date")


def days_in_detention(record: list[dict[str, Any]], *, today: date) -> int:
    """Days held, summed over the periods; an open period counts until today."""
    total = 0
    for period in record:
        start = date.fromisoformat(period["arrested"])
        end = date.fromisoformat(period["released"]) if period.get("released") else today
        total += max(0, (end - start).days)
    return total
