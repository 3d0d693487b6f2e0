"""The bulletin by e-mail (issue 26): subscribers, suppressions, mails and their queue.

Addresses live only in ``mail_subscriber.address``; they are never logged and
never leave the node except in the mail sent to them and an admin's export.
What stays of an address after an unsubscribe, a hard bounce or a complaint is
a keyed hash (``mail_suppression``), so an import cannot add it back and
nobody without the node's key can say whose it was (node/mail/subscriptions.py).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from node.storage.db import utcnow
from node.storage.states import MailState, SubscriberState, check_constraint


class MailSubscriber(SQLModel, table=True):
    """An address on a group's lists: the languages it reads (``mail_subscription``)
    and the kinds of mail it wants. Mailed only once confirmed; a pending one is
    forgotten after 7 days. ``nonce`` keys its tokens (confirm, unsubscribe,
    VERP): a new nonce voids every link sent before."""

    __tablename__ = "mail_subscriber"
    __table_args__ = (
        UniqueConstraint("group_id", "address"),
        CheckConstraint(check_constraint("state", SubscriberState),
                        name="ck_mail_subscriber_state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="local_actor.id", index=True)
    address: str = Field(max_length=254)
    state: str = Field(default=SubscriberState.PENDING, max_length=16)
    # The language of the confirmation mail and of the pages it links to.
    language: str = Field(max_length=16)
    bulletins: bool = True
    calls: bool = False
    nonce: str = Field(max_length=32)
    # How consent was given: "form" or an import's --consent text.
    consent: str = Field(default="form", max_length=500)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    confirmed_at: datetime | None = None
    # Soft bounces (4.x.x) count once a day; the third day suppresses (bounces.py).
    soft_bounce_days: int = 0
    last_soft_bounce: date | None = None


class MailSubscription(SQLModel, table=True):
    """One language list of a group that a subscriber reads."""

    __tablename__ = "mail_subscription"
    __table_args__ = (UniqueConstraint("subscriber_id", "language"),
                      Index("ix_mail_subscription_language", "language"))

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(foreign_key="mail_subscriber.id", index=True)
    language: str = Field(max_length=16)


class MailSuppression(SQLModel, table=True):
    """An address that left a group's lists (unsubscribed, bounced, complained),
    kept only as a keyed hash (keys.keyed_hash with the node's "mail" key)."""

    __tablename__ = "mail_suppression"
    __table_args__ = (UniqueConstraint("group_id", "address_hash"),)

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="local_actor.id", index=True)
    address_hash: str = Field(max_length=64)
    reason: str = Field(max_length=16)  # unsubscribed | bounced | complaint
    created_at: datetime = Field(default_factory=utcnow)


class MailMessage(SQLModel, table=True):
    """A mail to many recipients: a bulletin, an action call's change, or one
    confirmation. Unique by (group, kind, ref): publishing or enqueueing the same
    thing twice makes no second message, so nobody gets it twice."""

    __tablename__ = "mail_message"
    __table_args__ = (UniqueConstraint("group_id", "kind", "ref"),)

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="local_actor.id", index=True)
    kind: str = Field(max_length=16)  # bulletin | call | confirm
    ref: str = Field(max_length=200)  # bulletin number, call id and change, subscriber
    # {lang: {"subject", "text", "html", "url"}}: composed once at enqueue time.
    versions: dict[str, Any] = Field(default_factory=dict,
                                     sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class MailQueueItem(SQLModel, table=True):
    """One mail to one recipient (``MailState``; node/mail/queue.py): claimed with a
    lease, retried by the pure policy of node/mail/policy.py. Unique by
    (message, subscriber): a recipient is queued once per message."""

    __tablename__ = "mail_queue"
    __table_args__ = (
        UniqueConstraint("message_id", "subscriber_id"),
        Index("ix_mail_queue_due", "state", "next_attempt_at"),
        CheckConstraint(check_constraint("state", MailState), name="ck_mail_queue_state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="mail_message.id", index=True)
    # No foreign key: a subscriber deleted while mail waits leaves the row, which
    # then fails as "gone" (its address is not kept anywhere else).
    subscriber_id: int = Field(index=True)
    language: str = Field(max_length=16)
    state: str = Field(default=MailState.PENDING, max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    lease_until: datetime | None = None
    worker_id: str | None = Field(default=None, max_length=64)
    last_status: int | None = None
    last_error: str | None = Field(default=None, max_length=200)
    sent_at: datetime | None = None


class MailThrottle(SQLModel, table=True):
    """A subscription attempt, keyed by a keyed hash of the client address or of
    the target address (never either itself); rows expire (subscriptions.py)."""

    __tablename__ = "mail_throttle"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64, index=True)
    at: datetime = Field(default_factory=utcnow, index=True)
