"""Tables. One class per table; queues carry explicit states.

Conventions: datetimes are aware UTC (``db.utcnow``); URIs are full URLs;
no table stores an IP address (DESIGN.md, safety defaults).
Domain tables for news, campaigns and networks come later and hang off
``local_actor`` and ``local_object`` the same way events do.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Column, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from node.storage.db import utcnow
from node.storage.states import (
    CosignerState,
    FollowerState,
    FollowingState,
    InboxState,
    InvitationState,
    LaneState,
    MembershipState,
    ParticipationState,
    check_constraint,
)

# --- local actors -----------------------------------------------------------


class LocalActor(SQLModel, table=True):
    """A group (or the instance Application actor, FEP-2677) hosted here."""

    __tablename__ = "local_actor"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True, index=True)
    actor_type: str = Field(default="Group", max_length=32)  # Group | Application
    display_name: str = Field(max_length=200)
    # Per-language texts: {"fa": "...", "de": "..."}; the primary language first.
    names: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    summaries: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    language: str = Field(default="en", max_length=16)
    manually_approves_followers: bool = False
    discoverable: bool = True
    indexable: bool = True
    # [{"name": "Website", "url": "https://..."}] → PropertyValue attachments.
    links: list[dict[str, str]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    icon_path: str | None = Field(default=None, max_length=200)
    image_path: str | None = Field(default=None, max_length=200)
    rsa_private_pem: str = Field(sa_column=Column(Text, nullable=False))
    rsa_public_pem: str = Field(sa_column=Column(Text, nullable=False))
    ed25519_private_pem: str = Field(sa_column=Column(Text, nullable=False))
    ed25519_public_multibase: str = Field(max_length=80)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


# --- remote actors and relations ---------------------------------------------


class RemoteActor(SQLModel, table=True):
    """A cached remote actor document: what we need to verify and deliver."""

    __tablename__ = "remote_actor"

    id: int | None = Field(default=None, primary_key=True)
    uri: str = Field(max_length=2048, unique=True, index=True)
    actor_type: str = Field(default="Person", max_length=32)
    username: str | None = Field(default=None, max_length=256)
    domain: str = Field(max_length=256, index=True)
    display_name: str | None = Field(default=None, max_length=400)
    inbox: str = Field(max_length=2048)
    shared_inbox: str | None = Field(default=None, max_length=2048)
    url: str | None = Field(default=None, max_length=2048)
    public_key_id: str | None = Field(default=None, max_length=2048, index=True)
    public_key_pem: str | None = Field(default=None, sa_column=Column(Text))
    # FEP-521a assertionMethod keys: [{"id": ..., "multibase": ...}]
    assertion_keys: list[dict[str, str]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    raw: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    fetched_at: datetime = Field(default_factory=utcnow)
    deleted: bool = False


class Follower(SQLModel, table=True):
    """A remote actor following one of our groups (pending until accepted)."""

    __tablename__ = "follower"
    __table_args__ = (
        UniqueConstraint("local_actor_id", "actor_uri"),
        Index("ix_follower_actor_host", "local_actor_id", "host"),
        CheckConstraint(check_constraint("state", FollowerState), name="ck_follower_state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    local_actor_id: int = Field(foreign_key="local_actor.id", index=True)
    actor_uri: str = Field(max_length=2048)
    inbox: str = Field(max_length=2048)
    shared_inbox: str | None = Field(default=None, max_length=2048)
    follow_activity_id: str = Field(max_length=2048)
    state: str = Field(default=FollowerState.PENDING, max_length=16)
    created_at: datetime = Field(default_factory=utcnow)
    # Where activities to followers go for this one (its shared inbox if on its
    # own origin, else its inbox: delivery.targets.deliver_to) and that URL's
    # host, the lane it is served by. Set when the row is written.
    deliver_to: str | None = Field(default=None, max_length=2048)
    host: str | None = Field(default=None, max_length=256)


class Following(SQLModel, table=True):
    """One of our groups following a remote actor."""

    __tablename__ = "following"
    __table_args__ = (
        UniqueConstraint("local_actor_id", "target_uri"),
        CheckConstraint(check_constraint("state", FollowingState), name="ck_following_state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    local_actor_id: int = Field(foreign_key="local_actor.id", index=True)
    target_uri: str = Field(max_length=2048)
    follow_activity_id: str = Field(max_length=2048, unique=True)
    state: str = Field(default=FollowingState.PENDING, max_length=16)
    created_at: datetime = Field(default_factory=utcnow)


# --- what we publish -----------------------------------------------------------


class LocalObject(SQLModel, table=True):
    """A post of ours (Note now; Article, Event … later), served at /objects/<uuid>."""

    __tablename__ = "local_object"

    id: int | None = Field(default=None, primary_key=True)
    uuid: str = Field(max_length=64, unique=True, index=True)
    local_actor_id: int = Field(foreign_key="local_actor.id", index=True)
    object_type: str = Field(default="Note", max_length=32)
    language: str = Field(default="en", max_length=16)
    # Per-language texts; the object's language first. Content is sanitised HTML.
    names: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    summaries: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    contents: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    in_reply_to: str | None = Field(default=None, max_length=2048)
    # Extra type-specific fields (Event details etc.), already in AS vocabulary.
    extra: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    published: datetime = Field(default_factory=utcnow)
    updated: datetime | None = None
    deleted_at: datetime | None = None
    pinned_at: datetime | None = None


class Activity(SQLModel, table=True):
    """An activity we sent. The body is serialised once; deliveries point at it."""

    __tablename__ = "activity"

    id: int | None = Field(default=None, primary_key=True)
    uuid: str = Field(max_length=64, unique=True, index=True)
    local_actor_id: int = Field(foreign_key="local_actor.id", index=True)
    activity_type: str = Field(max_length=32)
    object_uri: str | None = Field(default=None, max_length=2048, index=True)
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    # Listed in the public outbox (Create/Update/Delete/Announce of public posts).
    in_outbox: bool = Field(default=True)
    published: datetime = Field(default_factory=utcnow)


class Fanout(SQLModel, table=True):
    """One published activity that goes somewhere: the fan-out log.

    The id is the log position; every host's lane (``HostState.cursor``) walks
    the log in id order, so one row stands for every follower of the actor
    (``followers_of``) and/or a short explicit list of inboxes (``inboxes``:
    an Accept, an invitation, mentions). No per-inbox rows are written when
    publishing (docs/ARCHITECTURE.md §2).
    """

    __tablename__ = "fanout"
    # AUTOINCREMENT on SQLite: a log position is never reused, even after the
    # newest row was deleted.
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    activity_id: int = Field(foreign_key="activity.id", index=True)
    followers_of: int | None = Field(default=None, foreign_key="local_actor.id")
    inboxes: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)


class HostState(SQLModel, table=True):
    """Per remote host: its delivery lane over the fan-out log, the signature
    scheme it accepts, and its failure record (the lane is the breaker).

    ``cursor``: the last fan-out fully handled for this host. ``attempts``:
    consecutive failed attempts of the fan-out at the head; ``done``: inboxes of
    the head fan-out already sent, so a retry does not repeat them.
    """

    __tablename__ = "host_state"
    __table_args__ = (
        Index("ix_host_state_due", "next_attempt_at"),
        CheckConstraint(check_constraint("state", LaneState), name="ck_host_state_state"),
    )

    host: str = Field(primary_key=True, max_length=256)
    cursor: int = 0
    state: str = Field(default=LaneState.IDLE, max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    lease_until: datetime | None = None
    worker_id: str | None = Field(default=None, max_length=64)
    last_status: int | None = None
    last_error: str | None = Field(default=None, max_length=200)
    done: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    consecutive_failures: int = 0
    circuit_open_until: datetime | None = None
    signature_scheme: str | None = Field(default=None, max_length=16)  # cavage | rfc9421
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None


class DeliveryFailure(SQLModel, table=True):
    """An inbox that did not get a fan-out: a permanent answer, a refused
    address, or attempts used up. The lane moved on; this is the record."""

    __tablename__ = "delivery_failure"

    id: int | None = Field(default=None, primary_key=True)
    fanout_id: int = Field(foreign_key="fanout.id")
    activity_id: int = Field(foreign_key="activity.id", index=True)
    host: str = Field(max_length=256)
    inbox_url: str = Field(max_length=2048)
    status: int | None = None
    error: str | None = Field(default=None, max_length=200)
    at: datetime = Field(default_factory=utcnow, index=True)


# --- what we receive -----------------------------------------------------------


class InboxItem(SQLModel, table=True):
    """A verified inbound activity, stored before the 202; processed after.

    States (``InboxState``): pending → processing (leased to ``worker_id``
    until ``lease_until``) → done | failed (node/federation/inbox_queue.py).
    Unique by activity id: idempotency.
    """

    __tablename__ = "inbox_item"
    __table_args__ = (
        Index("ix_inbox_due", "state", "next_attempt_at"),
        CheckConstraint(check_constraint("state", InboxState), name="ck_inbox_item_state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    activity_id: str = Field(max_length=2048, unique=True)
    activity_type: str = Field(max_length=64)
    actor_uri: str = Field(max_length=2048)
    # The local actor whose inbox received it; None for the shared inbox.
    recipient_id: int | None = Field(default=None, foreign_key="local_actor.id")
    body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    state: str = Field(default=InboxState.PENDING, max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    lease_until: datetime | None = None
    worker_id: str | None = Field(default=None, max_length=64)
    last_error: str | None = Field(default=None, max_length=400)
    received_at: datetime = Field(default_factory=utcnow)
    processed_at: datetime | None = None


class Interaction(SQLModel, table=True):
    """A Like or Announce of one of our objects (counted, undone by Undo)."""

    __tablename__ = "interaction"

    id: int | None = Field(default=None, primary_key=True)
    activity_id: str = Field(max_length=2048, unique=True)
    interaction_type: str = Field(max_length=16)  # Like | Announce
    actor_uri: str = Field(max_length=2048, index=True)
    object_uri: str = Field(max_length=2048, index=True)
    created_at: datetime = Field(default_factory=utcnow)


class RemoteObject(SQLModel, table=True):
    """A remote post we keep: a reply to one of ours (held for moderation), or a
    post of an actor one of our groups follows (federation/remote_posts.py)."""

    __tablename__ = "remote_object"

    id: int | None = Field(default=None, primary_key=True)
    uri: str = Field(max_length=2048, unique=True)
    actor_uri: str = Field(max_length=2048, index=True)
    object_type: str = Field(max_length=32)
    in_reply_to: str | None = Field(default=None, max_length=2048, index=True)
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    moderation_state: str = Field(default="pending", max_length=16)  # pending|approved|hidden
    received_at: datetime = Field(default_factory=utcnow)
    deleted: bool = False
    # The object's own ``published`` (None when it gave none or nonsense).
    published_at: datetime | None = Field(default=None, index=True)
    # How it reached us: inbox | backfill | sync (federation/outbox_sync.py).
    source: str = Field(default="inbox", max_length=16)


class SyncState(SQLModel, table=True):
    """Catch-up of one followed actor's outbox (federation/outbox_sync.py):
    when it is due, what its newest item was, how it has been failing, and which
    worker holds it now (a lease, so two serve processes never walk it at once)."""

    __tablename__ = "sync_state"

    actor_uri: str = Field(primary_key=True, max_length=2048)
    next_sync_at: datetime = Field(default_factory=utcnow, index=True)
    last_synced_at: datetime | None = None
    # The first item of the outbox's first page at the last good walk: when the
    # page still starts with it, nothing changed.
    first_item_id: str | None = Field(default=None, max_length=2048)
    # The first page's URL (on the actor's origin): one GET per cheap check.
    first_page: str | None = Field(default=None, max_length=2048)
    # Set once a whole bounded walk succeeded; NULL asks for one (a new follow,
    # a network join, or a walk cut short: the gap is walked again).
    backfilled_at: datetime | None = None
    failures: int = 0
    last_error: str | None = Field(default=None, max_length=200)
    lease_until: datetime | None = None
    worker_id: str | None = Field(default=None, max_length=64)


class ApiToken(SQLModel, table=True):
    """A bearer token for the JSON API. Only its SHA-256 is stored."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    label: str = Field(max_length=200)
    # None = all groups (admin token); else the one group it may act for.
    local_actor_id: int | None = Field(default=None, foreign_key="local_actor.id")
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None


# --- events: action calls, meetings, conferences (issue 3) ------------------------


class Event(SQLModel, table=True):
    """The event details of a LocalObject whose type is Event.

    Texts (title, description, one-line summary) stay per language on the
    LocalObject; this row holds what calendars and maps need.
    """

    __tablename__ = "event"

    id: int | None = Field(default=None, primary_key=True)
    object_id: int = Field(foreign_key="local_object.id", unique=True, index=True)
    kind: str = Field(default="action", max_length=16)  # action | meeting | conference
    start_time: datetime
    end_time: datetime | None = None
    timezone: str = Field(max_length=64)  # IANA name, e.g. Europe/Zurich
    status: str = Field(default="scheduled", max_length=16)  # scheduled|postponed|cancelled
    # {"name", "street", "postcode", "city", "country", "latitude", "longitude"}
    place: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    online_url: str | None = Field(default=None, max_length=2048)
    target: str | None = Field(default=None, max_length=300)  # e.g. the ILO
    hashtags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # {"path": "uploads/<random>.jpg", "media_type": "image/jpeg", "alt": "..."}
    flyer: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    contact_links: list[dict[str, str]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    join_mode: str = Field(default="external", max_length=16)  # free|restricted|invite|external
    category: str | None = Field(default=None, max_length=64)
    # iCalendar SEQUENCE: bumped on every change so calendars replace their copy.
    sequence: int = 0


class Cosigner(SQLModel, table=True):
    """A group invited to co-sign one of our events (author side)."""

    __tablename__ = "cosigner"
    __table_args__ = (
        UniqueConstraint("event_id", "actor_uri"),
        CheckConstraint(check_constraint("state", CosignerState), name="ck_cosigner_state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="event.id", index=True)
    actor_uri: str = Field(max_length=2048)
    inbox: str = Field(max_length=2048)
    display_name: str | None = Field(default=None, max_length=400)
    state: str = Field(default=CosignerState.INVITED, max_length=16)
    invite_activity_id: str = Field(max_length=2048, unique=True)
    response_activity_id: str | None = Field(default=None, max_length=2048)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Invitation(SQLModel, table=True):
    """An invitation one of our groups received to co-sign a remote event."""

    __tablename__ = "invitation"
    __table_args__ = (
        CheckConstraint(check_constraint("state", InvitationState), name="ck_invitation_state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    local_actor_id: int = Field(foreign_key="local_actor.id", index=True)
    inviter_uri: str = Field(max_length=2048)
    event_uri: str = Field(max_length=2048)
    invite_activity_id: str = Field(max_length=2048, unique=True)
    # The event as fetched from its origin (sanitised), for the editors to read.
    event: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    state: str = Field(default=InvitationState.PENDING, max_length=16)
    response_activity_id: str | None = Field(default=None, max_length=2048)
    announce_activity_id: str | None = Field(default=None, max_length=2048)
    received_at: datetime = Field(default_factory=utcnow)


class Participation(SQLModel, table=True):
    """Join/Leave of a meeting or conference. Private to the organising group."""

    __tablename__ = "participation"
    __table_args__ = (
        UniqueConstraint("event_id", "actor_uri"),
        CheckConstraint(check_constraint("state", ParticipationState),
                        name="ck_participation_state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="event.id", index=True)
    actor_uri: str = Field(max_length=2048)
    inbox: str = Field(max_length=2048)
    join_activity_id: str = Field(max_length=2048)
    state: str = Field(default=ParticipationState.PENDING, max_length=16)
    created_at: datetime = Field(default_factory=utcnow)


class MediaFile(SQLModel, table=True):
    """An uploaded image, re-encoded without metadata, under a random name."""

    __tablename__ = "media_file"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True, index=True)
    media_type: str = Field(max_length=64)
    width: int
    height: int
    size: int
    # The group that uploaded it; only that group may use it (None: uploaded
    # before owners were recorded, or by an admin without --group).
    local_actor_id: int | None = Field(default=None, foreign_key="local_actor.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    # A smaller copy of the upload ``variant_of`` (its own random name); None: an original.
    variant_of: int | None = Field(default=None, foreign_key="media_file.id", index=True)
    # The placeholder Mastodon shows while the image loads (https://blurha.sh).
    blurhash: str | None = Field(default=None, max_length=100)
    # Where to crop around (Mastodon's focalPoint): -1..1, y = 1 is the top.
    focus_x: float | None = None
    focus_y: float | None = None


# --- news items in many languages (issue 13) ------------------------------------------


class NewsItem(SQLModel, table=True):
    """What an editor wrote for a news item, kept to re-render it after a change.

    The rendered texts and the wire fields live on the item's LocalObject (so
    pages, outbox and fetches serve it like any post); this row keeps the
    Markdown per language and the shared parts (node/news/items.py).
    """

    __tablename__ = "news_item"

    id: int | None = Field(default=None, primary_key=True)
    object_id: int = Field(foreign_key="local_object.id", unique=True, index=True)
    # {lang: {"title": ..., "text": <Markdown>, "summary": ...}}
    versions: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # [{"media", "path", "media_type", "width", "height", "blurhash", "focalPoint",
    #   "alt": {lang: text}}]
    photos: list[dict[str, Any]] = Field(default_factory=list,
                                         sa_column=Column(JSON, nullable=False))
    hashtags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    sources: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    country: str | None = Field(default=None, max_length=2)
    sectors: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # "item", or "bulletin": a numbered digest of items, always an Article.
    kind: str = Field(default="item", max_length=16)
    created_at: datetime = Field(default_factory=utcnow)


class NewsBulletin(SQLModel, table=True):
    """Bulletin number N of a group: the items published in (period_start, period_end].

    Rows stay when a bulletin is deleted, so a number is never given twice."""

    __tablename__ = "news_bulletin"
    __table_args__ = (UniqueConstraint("group_id", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="local_actor.id", index=True)
    number: int
    object_id: int = Field(foreign_key="local_object.id", unique=True)
    period_start: datetime
    period_end: datetime
    # The items listed (local_object ids), in the order listed.
    item_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class NewsChannel(SQLModel, table=True):
    """A language channel: the actor ``GROUP_LANG`` publishing one language of a group."""

    __tablename__ = "news_channel"
    __table_args__ = (UniqueConstraint("group_id", "language"),)

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="local_actor.id", index=True)
    actor_id: int = Field(foreign_key="local_actor.id", unique=True)
    language: str = Field(max_length=16)
    created_at: datetime = Field(default_factory=utcnow)


class NewsCopy(SQLModel, table=True):
    """A channel's own one-language object for an item (or an action call)."""

    __tablename__ = "news_copy"
    __table_args__ = (UniqueConstraint("source_object_id", "channel_id"),)

    id: int | None = Field(default=None, primary_key=True)
    source_object_id: int = Field(foreign_key="local_object.id", index=True)
    channel_id: int = Field(foreign_key="news_channel.id", index=True)
    object_id: int = Field(foreign_key="local_object.id", unique=True)


# --- networks of groups (issue 15; node/networks/) ------------------------------------


class Network(SQLModel, table=True):
    """A network: the local ``Group`` actor ``actor_id`` whose members are groups
    on any node (told apart from other groups by this row, as channels are by
    ``news_channel``)."""

    __tablename__ = "network"

    id: int | None = Field(default=None, primary_key=True)
    actor_id: int = Field(foreign_key="local_actor.id", unique=True)
    created_at: datetime = Field(default_factory=utcnow)


class NetworkMembership(SQLModel, table=True):
    """A group's application to / membership of one of our networks (network side).

    Pending, rejected and removed rows are the admins' business only; accepted
    rows are the public directory and the ``members`` collection."""

    __tablename__ = "network_membership"
    __table_args__ = (
        UniqueConstraint("network_id", "member_uri"),
        CheckConstraint(check_constraint("state", MembershipState),
                        name="ck_network_membership_state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    network_id: int = Field(foreign_key="network.id", index=True)
    member_uri: str = Field(max_length=2048, index=True)
    inbox: str = Field(max_length=2048)
    join_activity_id: str = Field(max_length=2048)
    state: str = Field(default=MembershipState.PENDING, max_length=16)
    # The public directory: name (from the actor document), city, country
    # (ISO 3166-1 alpha-2), node (the member's host), languages (BCP 47).
    name: str = Field(max_length=200)
    city: str | None = Field(default=None, max_length=100)
    country: str | None = Field(default=None, max_length=2)
    node_host: str = Field(max_length=256)
    languages: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class NetworkJoin(SQLModel, table=True):
    """One of our groups' Join of a network (member side): only the network
    actor's answer to exactly this Join, while pending, changes it."""

    __tablename__ = "network_join"
    __table_args__ = (
        UniqueConstraint("local_actor_id", "network_uri"),
        CheckConstraint(check_constraint("state", MembershipState),
                        name="ck_network_join_state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    local_actor_id: int = Field(foreign_key="local_actor.id", index=True)
    network_uri: str = Field(max_length=2048)
    network_inbox: str = Field(max_length=2048)
    join_activity_id: str = Field(max_length=2048, unique=True)
    state: str = Field(default=MembershipState.PENDING, max_length=16)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


# --- accounts, sessions and drafts of the editors' workspace (issue 14) ----------------


class Account(SQLModel, table=True):
    """A person who logs in to /admin: the node's admin, or an editor of some groups.

    ``password_hash`` is argon2id (node/accounts/passwords.py); None until the
    one-time link is used."""

    __tablename__ = "account"
    __table_args__ = (CheckConstraint("role IN ('admin', 'editor')", name="ck_account_role"),)

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True, index=True)
    role: str = Field(default="editor", max_length=16)
    password_hash: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    password_changed_at: datetime | None = None


class AccountGroup(SQLModel, table=True):
    """A group an editor may act for."""

    __tablename__ = "account_group"

    account_id: int = Field(foreign_key="account.id", primary_key=True)
    local_actor_id: int = Field(foreign_key="local_actor.id", primary_key=True)


class AccountSession(SQLModel, table=True):
    """A logged-in browser. Only the SHA-256 of the cookie's random id is stored."""

    __tablename__ = "account_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)


class PasswordLink(SQLModel, table=True):
    """A one-time set-password link (its token's SHA-256), valid until ``expires_at``."""

    __tablename__ = "password_link"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    expires_at: datetime


class LoginFailure(SQLModel, table=True):
    """A failed login, keyed by an HMAC of the account name or of the client address
    (never the address itself: DESIGN.md, safety defaults); rows expire."""

    __tablename__ = "login_failure"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64, index=True)
    at: datetime = Field(default_factory=utcnow, index=True)


class NodeSecret(SQLModel, table=True):
    """Random keys the node makes once (CSRF tokens, throttling keys)."""

    __tablename__ = "node_secret"

    name: str = Field(max_length=32, primary_key=True)
    value: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class Draft(SQLModel, table=True):
    """An unpublished call or news item: the same JSON body the CLI and API take.

    A draft is never a LocalObject, so no page, feed, collection or fetch can serve it;
    publishing runs the same operation as the API, then the row goes."""

    __tablename__ = "draft"
    __table_args__ = (CheckConstraint("kind IN ('call', 'news')", name="ck_draft_kind"),)

    id: int | None = Field(default=None, primary_key=True)
    local_actor_id: int = Field(foreign_key="local_actor.id", index=True)
    kind: str = Field(max_length=16)
    body: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_by: int | None = Field(default=None, foreign_key="account.id")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
# --- campaigns for imprisoned workers (issue 16) ------------------------------------


class Campaign(SQLModel, table=True):
    """A dossier on one imprisoned worker, kept as the editors wrote it.

    ``data`` holds the validated input (names per script, texts per language,
    photo, "what you can do", per-field consent); ``detentions`` and
    ``timeline`` grow with status changes and updates. What the public sees is
    rendered from this row onto ``object_id`` (node/campaigns/render.py) only
    while the consent allows: a ``network_only`` campaign has no public object
    (node/campaigns/consent.py, fail closed).
    """

    __tablename__ = "campaign"

    id: int | None = Field(default=None, primary_key=True)
    uuid: str = Field(max_length=64, unique=True, index=True)
    group_id: int = Field(foreign_key="local_actor.id", index=True)
    # The public LocalObject while one exists (None: never public, or withdrawn).
    object_id: int | None = Field(default=None, foreign_key="local_object.id", index=True)
    language: str = Field(max_length=16)
    country: str | None = Field(default=None, max_length=2, index=True)
    status: str = Field(max_length=20)
    visibility: str = Field(default="public", max_length=20)
    network: str | None = Field(default=None, max_length=2048)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # [{"arrested": "YYYY-MM-DD", "released": "YYYY-MM-DD" | None}], oldest first.
    detentions: list[dict[str, Any]] = Field(default_factory=list,
                                             sa_column=Column(JSON, nullable=False))
    # [{"date", "versions": {lang: text}, "sources", "by": actor URI, "note": URL}]
    timeline: list[dict[str, Any]] = Field(default_factory=list,
                                           sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    withdrawn_at: datetime | None = None


class CampaignOwner(SQLModel, table=True):
    """A group of another node invited to co-own a campaign (owning side)."""

    __tablename__ = "campaign_owner"
    __table_args__ = (UniqueConstraint("campaign_id", "actor_uri"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    actor_uri: str = Field(max_length=2048)
    inbox: str = Field(max_length=2048)
    state: str = Field(default="invited", max_length=16)  # invited|accepted|rejected|withdrawn
    invite_activity_id: str = Field(max_length=2048, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
# --- peer policy (issue 15 point 5) -------------------------------------------


class DomainRule(SQLModel, table=True):
    """A domain an admin blocked or (allowlist mode) allowed; subdomains included.
    ``domain`` is in normal form (core/domains.py)."""

    __tablename__ = "domain_rule"
    __table_args__ = (
        UniqueConstraint("domain", "kind"),
        CheckConstraint("kind IN ('block', 'allow')", name="ck_domain_rule_kind"),
    )

    id: int | None = Field(default=None, primary_key=True)
    domain: str = Field(max_length=253)
    kind: str = Field(max_length=8)  # block | allow
    note: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow)


class Peer(SQLModel, table=True):
    """What we learned of a remote node: its software from NodeInfo (cached)."""

    __tablename__ = "peer"

    host: str = Field(primary_key=True, max_length=256)  # as lanes name it: host[:port]
    software: str | None = Field(default=None, max_length=64)
    version: str | None = Field(default=None, max_length=64)
    nodeinfo_fetched_at: datetime | None = None
    # Why the last NodeInfo fetch failed (a stable code), None when it worked.
    nodeinfo_error: str | None = Field(default=None, max_length=64)
