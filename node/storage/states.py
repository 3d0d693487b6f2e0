"""The states of every stateful row, and the transitions between them.

Each concept's states are a ``StrEnum`` (the values are what the database
stores, guarded there by a CHECK constraint: migration ``0003_states``); the
moves between them are decided here, in one place per concept, so a handler
or an operation never invents a state or skips a step.

Three concepts are the same shape, "a request someone decides": a follow
request to one of our groups, a co-signing invitation (on both sides) and a
join request to a meeting. ``decide`` is their one rule: a pending request
becomes accepted or rejected once; deciding a decided one is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar


class InboxState(StrEnum):
    """pending → processing (leased) → done | failed; a failed attempt returns
    to pending with a backoff (docs/ARCHITECTURE.md §3 has the diagram)."""

    PENDING = "pending"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"


class LaneState(StrEnum):
    """A host's delivery lane (``host_state``): idle, or sending (leased to one
    worker until ``lease_until``). What is left to send is the fan-out log
    after the lane's cursor (docs/ARCHITECTURE.md §2 has the diagram)."""

    IDLE = "idle"
    SENDING = "sending"


class FollowerState(StrEnum):
    """A remote actor's follow of one of our groups. A rejected request is
    answered with Reject and its row deleted; ``rejected`` only names the decision."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class FollowingState(StrEnum):
    """One of our groups following a remote actor: the remote decides, and may
    reject later (Mastodon removes a follower that way)."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class CosignerState(StrEnum):
    """Author side: a group we invited to co-sign one of our events."""

    INVITED = "invited"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"


class InvitationState(StrEnum):
    """Invited side: an invitation one of our groups received."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"


class ParticipationState(StrEnum):
    """A remote actor's Join of one of our meetings."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    LEFT = "left"


class MembershipState(StrEnum):
    """A group's membership of a network (node/networks/): on the network's node
    (``network_membership``) and on the member's node (``network_join``)."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    LEFT = "left"
    REMOVED = "removed"


class SubscriberState(StrEnum):
    """A mail subscriber (node/mail/subscriptions.py): pending until the address's
    owner confirms (double opt-in), then confirmed. Unsubscribed, bounced or
    complained-about addresses are deleted, not kept in a state: what remains of
    them is a keyed hash in ``mail_suppression``."""

    PENDING = "pending"
    CONFIRMED = "confirmed"


class MailState(StrEnum):
    """One mail to one recipient (``mail_queue``), the twin of the inbox queue::

        pending ──claim──▶ sending ──2xx──▶ sent
           ▲                  │ ├──5xx──▶ bounced   (a hard bounce: the address is suppressed)
           └──── 4xx/down ────┘ └─────▶ failed     (attempts used up; or no subscriber left)

    A pending row with attempts > 0 is "deferred" in ``mail status``."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    BOUNCED = "bounced"
    FAILED = "failed"


# --- deciding a pending request ------------------------------------------------------------

S = TypeVar("S", bound=StrEnum)


class NotificationType(StrEnum):
    """What a client API notification is about (Mastodon's notification types that a
    group account receives; node/clientapi/notifications.py)."""

    MENTION = "mention"
    FOLLOW = "follow"
    FOLLOW_REQUEST = "follow_request"
    FAVOURITE = "favourite"
    REBLOG = "reblog"
    UPDATE = "update"


class AlreadyDecided(Exception):
    """The request was decided before (or was never a pending request)."""

    def __init__(self, state: str) -> None:
        super().__init__(f"the request is already {state}")
        self.state = state


@dataclass(frozen=True, slots=True)
class Request(Generic[S]):
    """The three states of one kind of request."""

    pending: S
    accepted: S
    rejected: S


FOLLOW_REQUEST = Request(FollowerState.PENDING, FollowerState.ACCEPTED, FollowerState.REJECTED)
# What the invited group's answer does to our Cosigner row.
COSIGN_INVITE = Request(CosignerState.INVITED, CosignerState.ACCEPTED, CosignerState.DECLINED)
# What our editors' answer does to the Invitation we received.
COSIGN_INVITATION = Request(InvitationState.PENDING, InvitationState.ACCEPTED,
                            InvitationState.DECLINED)
JOIN_REQUEST = Request(ParticipationState.PENDING, ParticipationState.ACCEPTED,
                       ParticipationState.REJECTED)
# A group's application to a network (both sides).
MEMBERSHIP_REQUEST = Request(MembershipState.PENDING, MembershipState.ACCEPTED,
                             MembershipState.REJECTED)


def decide(request: Request[S], current: str, *, accept: bool) -> S:
    """The state a pending request moves to; ``AlreadyDecided`` otherwise."""
    if current != request.pending:
        raise AlreadyDecided(current)
    return request.accepted if accept else request.rejected


# --- the other moves, one function per concept -----------------------------------------------


def withdraw_cosigning(current: str) -> CosignerState:
    """Only an accepted co-signature can be withdrawn (Undo{Accept})."""
    if current != CosignerState.ACCEPTED:
        raise AlreadyDecided(current)
    return CosignerState.WITHDRAWN


def withdraw_invitation(current: str) -> InvitationState:
    if current != InvitationState.ACCEPTED:
        raise AlreadyDecided(current)
    return InvitationState.WITHDRAWN


def following_answered(current: str, *, accepted: bool) -> FollowingState:
    """The followed actor's Accept settles a pending follow; its Reject ends the
    follow whatever its state (a later Reject is how a remote removes us)."""
    if not accepted:
        return FollowingState.REJECTED
    if current == FollowingState.REJECTED:
        raise AlreadyDecided(current)
    return FollowingState.ACCEPTED


def join_state(*, cancelled: bool, join_mode: str) -> ParticipationState:
    """The state a Join starts in: decided at once unless editors must approve."""
    if cancelled or join_mode in ("invite", "external"):
        return ParticipationState.REJECTED
    if join_mode == "restricted":
        return ParticipationState.PENDING
    return ParticipationState.ACCEPTED


def left(current: str) -> ParticipationState:
    """Leave: any participation ends (a pending request is thereby withdrawn)."""
    return ParticipationState.LEFT


def check_constraint(column: str, states: type[StrEnum]) -> str:
    """The SQL of a CHECK constraint allowing exactly the enum's values."""
    values = ", ".join(f"'{state.value}'" for state in states)
    return f"{column} IN ({values})"


class CrosspostState(StrEnum):
    """One post's copy on one outside service (``crosspost_item``; issue 27):
    pending (due at ``next_attempt_at``) → sending (leased) → sent | failed;
    an edit or delete on the node makes a sent row pending again with the new
    ``action``; ``skipped``: nothing to do there (deleted before it was sent)."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"


class CrosspostAccountState(StrEnum):
    """A connection to a Telegram channel or Bluesky account: active, or paused
    by the service's answer (the bot was removed, the password revoked) until
    an editor connects it again."""

    ACTIVE = "active"
    PAUSED = "paused"
