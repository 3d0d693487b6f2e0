"""fan-out log and per-host delivery lanes

The ``delivery`` table (one row per activity and inbox, written when
publishing) gives way to the fan-out log (``fanout``: one row per published
activity) walked by one lane per host (``host_state`` gains a cursor, a lease
and the head's retry state) and ``delivery_failure`` (docs/ARCHITECTURE.md §2).
Followers learn where they are delivered to (``deliver_to``, ``host``).

Rows still pending in ``delivery`` are kept: each activity's undelivered
inboxes become one fan-out with that explicit list, in activity order, and
their hosts' lanes start before them. Finished rows are history only and go.

Revision ID: 0007_fanout_lanes
Revises: 0006_media_variants
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0007_fanout_lanes"
down_revision = "0006_media_variants"
branch_labels = None
depends_on = None

_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _PORTS or not parts.hostname:
        return None
    return parts.scheme, parts.hostname, port if port is not None else _PORTS[parts.scheme]


def _host(url: str) -> str | None:
    # The rule of delivery.targets.inbox_host, frozen here as of this revision.
    if len(url) > 2048:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    host = parts.netloc.lower()
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in host:
        return None
    return host if len(host) <= 256 else None


def _deliver_to(actor_uri: str, inbox: str, shared: str | None) -> str:
    if shared and _origin(shared) is not None and _origin(shared) == _origin(actor_uri) \
            and _host(shared) is not None:
        return shared
    return inbox


def upgrade() -> None:
    now = datetime.now(UTC)
    op.create_table(
        "fanout",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("activity_id", sa.Integer(), sa.ForeignKey("activity.id"), nullable=False),
        sa.Column("followers_of", sa.Integer(), sa.ForeignKey("local_actor.id"), nullable=True),
        sa.Column("inboxes", sa.JSON(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_fanout_activity_id", "fanout", ["activity_id"])
    op.create_table(
        "delivery_failure",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("fanout_id", sa.Integer(), sa.ForeignKey("fanout.id"), nullable=False),
        sa.Column("activity_id", sa.Integer(), sa.ForeignKey("activity.id"), nullable=False),
        sa.Column("host", sa.String(length=256), nullable=False),
        sa.Column("inbox_url", sa.String(length=2048), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=200), nullable=True),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    )
    op.create_index("ix_delivery_failure_activity_id", "delivery_failure", ["activity_id"])
    op.create_index("ix_delivery_failure_at", "delivery_failure", ["at"])
    # host_state is not a watched table (0005): a batch rebuild loses no trigger.
    with op.batch_alter_table("host_state") as batch:
        batch.add_column(sa.Column("cursor", sa.Integer(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("state", sa.String(length=16), nullable=False,
                                   server_default="idle"))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("next_attempt_at", sqlmodel.sql.sqltypes.UTCDateTime(),
                                   nullable=True))
        batch.add_column(sa.Column("lease_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("worker_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("last_status", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("last_error", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("done", sa.JSON(), nullable=True))
        batch.create_check_constraint("ck_host_state_state", "state IN ('idle', 'sending')")
        batch.create_index("ix_host_state_due", ["next_attempt_at"])
    lane_times = sa.table("host_state", sa.column("next_attempt_at",
                                                  sqlmodel.sql.sqltypes.UTCDateTime()))
    op.get_bind().execute(lane_times.update().values(next_attempt_at=now))
    with op.batch_alter_table("host_state") as batch:
        batch.alter_column("next_attempt_at", existing_type=sqlmodel.sql.sqltypes.UTCDateTime(),
                           nullable=False)
    # follower is watched: plain ADD COLUMN (no table rebuild) keeps its triggers.
    op.add_column("follower", sa.Column("deliver_to", sa.String(length=2048), nullable=True))
    op.add_column("follower", sa.Column("host", sa.String(length=256), nullable=True))
    op.create_index("ix_follower_actor_host", "follower", ["local_actor_id", "host"])

    conn = op.get_bind()
    follower = sa.table("follower", sa.column("id", sa.Integer()),
                        sa.column("actor_uri", sa.String()), sa.column("inbox", sa.String()),
                        sa.column("shared_inbox", sa.String()), sa.column("state", sa.String()),
                        sa.column("deliver_to", sa.String()), sa.column("host", sa.String()))
    rows = conn.execute(sa.select(follower.c.id, follower.c.actor_uri, follower.c.inbox,
                                  follower.c.shared_inbox)).all()
    updates = []
    for row_id, actor_uri, inbox, shared in rows:
        target = _deliver_to(actor_uri, inbox, shared)
        updates.append({"fid": row_id, "dt": target, "h": _host(target)})
    if updates:
        conn.execute(follower.update().where(follower.c.id == sa.bindparam("fid"))
                     .values(deliver_to=sa.bindparam("dt"), host=sa.bindparam("h")), updates)

    # Pending deliveries → one explicit fan-out per activity, in activity order.
    fanout = sa.table("fanout", sa.column("id", sa.Integer()),
                      sa.column("activity_id", sa.Integer()),
                      sa.column("inboxes", sa.JSON()), sa.column("created_at", sqlmodel.sql.sqltypes.UTCDateTime()))
    lanes = sa.table("host_state", sa.column("host", sa.String()),
                     sa.column("cursor", sa.Integer()),
                     sa.column("consecutive_failures", sa.Integer()),
                     sa.column("next_attempt_at", sqlmodel.sql.sqltypes.UTCDateTime()))
    pending = conn.execute(sa.text(
        "SELECT activity_id, inbox_url, host FROM delivery "
        "WHERE state IN ('pending', 'sending') ORDER BY activity_id, id")).all()
    by_activity: dict[int, list[str]] = {}
    hosts: set[str] = set()
    for activity_id, inbox_url, host in pending:
        by_activity.setdefault(activity_id, []).append(inbox_url)
        hosts.add(host)
    for activity_id, inboxes in by_activity.items():
        conn.execute(fanout.insert().values(activity_id=activity_id, inboxes=inboxes,
                                            created_at=now))
    known = {h for (h,) in conn.execute(sa.select(lanes.c.host))}
    # Lanes of those hosts start before the first converted fan-out (cursor 0);
    # hosts of followers start at the end of the log (nothing old is sent).
    head = conn.execute(sa.text("SELECT coalesce(max(id), 0) FROM fanout")).scalar_one()
    follower_hosts = {h for (h,) in conn.execute(sa.text(
        "SELECT DISTINCT host FROM follower WHERE state = 'accepted' AND host IS NOT NULL"))}
    if known & hosts:
        conn.execute(lanes.update().where(lanes.c.host.in_(sorted(known & hosts)))
                     .values(cursor=0))
    if known - hosts:
        conn.execute(lanes.update().where(lanes.c.host.in_(sorted(known - hosts)))
                     .values(cursor=head))
    new = [{"host": h, "cursor": 0, "consecutive_failures": 0, "next_attempt_at": now}
           for h in sorted(hosts - known)]
    new += [{"host": h, "cursor": head, "consecutive_failures": 0, "next_attempt_at": now}
            for h in sorted(follower_hosts - hosts - known)]
    if new:
        conn.execute(lanes.insert(), new)
    op.drop_index("ix_delivery_due", table_name="delivery")
    op.drop_table("delivery")


def downgrade() -> None:
    # The old queue comes back empty: what the lanes still owed is not turned
    # back into per-inbox rows.
    op.create_table(
        "delivery",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("activity_id", sa.Integer(), sa.ForeignKey("activity.id"), nullable=False),
        sa.Column("inbox_url", sa.String(length=2048), nullable=False),
        sa.Column("host", sa.String(length=256), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("lease_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("worker_id", sa.String(length=64), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("finished_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.UniqueConstraint("activity_id", "inbox_url"),
        sa.CheckConstraint("state IN ('pending', 'sending', 'sent', 'failed')",
                           name="ck_delivery_state"),
    )
    op.create_index("ix_delivery_due", "delivery", ["state", "next_attempt_at"])
    op.drop_index("ix_follower_actor_host", table_name="follower")
    with op.batch_alter_table("follower") as batch:
        batch.drop_column("host")
        batch.drop_column("deliver_to")
    with op.batch_alter_table("host_state") as batch:
        batch.drop_index("ix_host_state_due")
        batch.drop_constraint("ck_host_state_state", type_="check")
        for name in ("done", "last_error", "last_status", "worker_id", "lease_until",
                     "next_attempt_at", "attempts", "state", "cursor"):
            batch.drop_column(name)
    op.drop_table("delivery_failure")
    op.drop_table("fanout")
