"""Migrations form one line, and what later ones do never undoes earlier ones."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory

from node.storage import migrate
from node.storage.db import Database
from node.storage.migrate import MIGRATIONS
from tests.conftest import DatabaseFactory

_spec = importlib.util.spec_from_file_location(
    "change_counter", MIGRATIONS / "versions" / "0005_change_counter.py")
assert _spec is not None and _spec.loader is not None
CHANGE_COUNTER = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(CHANGE_COUNTER)
# Tables given the triggers by later migrations: remote_object in 0012_sync (network
# views and feeds are built from followed actors' posts).
# oauth_token, account and account_group in 0019_client_api (cached token callers).
WATCHED = (*CHANGE_COUNTER.WATCHED, "remote_object", "oauth_token", "account", "account_group")


def test_migrations_form_a_single_line() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    script = ScriptDirectory.from_config(config)
    assert len(script.get_heads()) == 1
    revisions = list(script.walk_revisions())
    assert all(len(r._all_down_revisions) <= 1 for r in revisions)
    files = sorted(p.name for p in Path(MIGRATIONS, "versions").glob("0*.py"))
    assert len(files) == len(revisions)


async def test_every_watched_table_bumps_the_change_counter(db: Database) -> None:
    """A later SQLite batch migration recreates its table and would silently drop
    the change-counter triggers: every watched table must still bump it."""
    async with db.write() as session:
        before = (await session.exec(sa.text("SELECT value FROM change_counter"))).one()[0]
        names = await session.run_sync(lambda s: sa.inspect(s.connection()).get_table_names())
    assert set(WATCHED) <= set(names)
    for table in WATCHED:
        async with db.write() as session:
            # An UPDATE that changes no row still fires a statement-level trigger on
            # PostgreSQL; on SQLite row triggers need a row, so delete of nothing is
            # not enough there: compare the trigger catalogue instead.
            if db.is_sqlite:
                found = (await session.exec(sa.text(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' "
                    f"AND tbl_name = '{table}' AND name LIKE 'change_counter_%'"))).one()[0]
                assert found == 3, table
            else:
                await session.exec(sa.text(f"DELETE FROM {table} WHERE false"))
    if not db.is_sqlite:
        async with db.read() as session:
            after = (await session.exec(sa.text("SELECT value FROM change_counter"))).one()[0]
        assert after == before + len(WATCHED)


async def test_pending_deliveries_survive_the_move_to_lanes(databases: DatabaseFactory) -> None:
    """0007 turns each activity's unfinished deliveries into one fan-out with an
    explicit list, gives their hosts lanes before it, and gives followers their
    delivery target; finished rows are history and go."""
    url = await databases.new("0006_media_variants")
    db = Database(url)
    now = datetime.now(UTC)
    try:
        async with db.write() as session:
            await session.exec(sa.text(  # type: ignore[call-overload]
                "INSERT INTO local_actor (id, username, actor_type, display_name, names, "
                "summaries, language, manually_approves_followers, discoverable, indexable, "
                "links, rsa_private_pem, rsa_public_pem, ed25519_private_pem, "
                "ed25519_public_multibase, created_at, updated_at) VALUES (1, 'koeln', "
                "'Group', 'Köln', '{}', '{}', 'de', false, true, true, '[]', 'x', 'x', 'x', "
                "'z', :now, :now)").bindparams(now=now))
            for activity_id in (1, 2):
                await session.exec(sa.text(  # type: ignore[call-overload]
                    "INSERT INTO activity (id, uuid, local_actor_id, activity_type, body, "
                    "in_outbox, published) VALUES (:id, :uuid, 1, 'Create', :body, true, :now)"
                ).bindparams(id=activity_id, uuid=f"a{activity_id}", body=b"{}", now=now))
            rows = [(1, "https://a.example/inbox", "a.example", "sent"),
                    (1, "https://b.example/inbox", "b.example", "pending"),
                    (2, "https://b.example/inbox", "b.example", "sending"),
                    (2, "https://c.example/u/inbox", "c.example", "failed")]
            for activity_id, inbox, host, state in rows:
                await session.exec(sa.text(  # type: ignore[call-overload]
                    "INSERT INTO delivery (activity_id, inbox_url, host, state, attempts, "
                    "next_attempt_at, created_at) VALUES (:a, :i, :h, :s, 1, :now, :now)"
                ).bindparams(a=activity_id, i=inbox, h=host, s=state, now=now))
            await session.exec(sa.text(  # type: ignore[call-overload]
                "INSERT INTO follower (local_actor_id, actor_uri, inbox, shared_inbox, "
                "follow_activity_id, state, created_at) VALUES (1, 'https://d.example/u/1', "
                "'https://d.example/u/1/inbox', 'https://d.example/inbox', 'f1', 'accepted', "
                ":now)").bindparams(now=now))
        await db.dispose()
        await asyncio.to_thread(migrate.upgrade, url)
        db = Database(url)
        async with db.read() as session:
            fanouts = (await session.exec(sa.text(  # type: ignore[call-overload]
                "SELECT id, activity_id, inboxes FROM fanout ORDER BY id"))).all()
            lanes = dict((await session.exec(sa.text(  # type: ignore[call-overload]
                "SELECT host, cursor FROM host_state"))).all())
            follower = (await session.exec(sa.text(  # type: ignore[call-overload]
                "SELECT deliver_to, host FROM follower"))).one()
            tables = await session.run_sync(
                lambda s: sa.inspect(s.connection()).get_table_names())
    finally:
        await db.dispose()
    assert [(a, json.loads(i) if isinstance(i, str) else i) for _, a, i in fanouts] == [
        (1, ["https://b.example/inbox"]), (2, ["https://b.example/inbox"])]
    # b's lane starts before both; the follower's host starts at the end of the log.
    assert lanes == {"b.example": 0, "d.example": fanouts[-1][0]}
    assert tuple(follower) == ("https://d.example/inbox", "d.example")
    assert "delivery" not in tables
