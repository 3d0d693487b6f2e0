"""`kill -9` of the mail worker in the middle of 10,000 mails: after a restart every
subscriber has the bulletin, and the duplicates are at most what was in flight
(the rows leased to the killed worker and not recorded) — issue 26, "What it must show"."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, insert
from sqlmodel import select

from node.groups import operations
from node.mail import queue
from node.news import bulletin
from node.news import operations as news
from node.storage.db import Database, utcnow
from node.storage.models import MailQueueItem, MailSubscriber, MailSubscription
from node.storage.states import MailState, SubscriberState
from tests.conftest import DatabaseFactory, start_live_node, stop_live_node, wait_for
from tests.mail_helpers import DOMAIN, SmtpServer

RECIPIENTS = 10_000


def _worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "node.cli.main", "worker"], env=env,
                            stdout=subprocess.DEVNULL, stderr=log.open("ab"))


async def _count(db: Database, *states: MailState) -> int:
    async with db.read() as session:
        return int((await session.exec(select(func.count()).select_from(MailQueueItem).where(
            MailQueueItem.state.in_([s.value for s in states])))).one())  # type: ignore[attr-defined]


async def test_kill_9_mid_send_loses_nothing_and_repeats_only_what_was_in_flight(
        tmp_path: Path, databases: DatabaseFactory, smtp: SmtpServer) -> None:
    url = await databases.new()
    live = await start_live_node(tmp_path, url)
    try:
        node = live.node
        group = await operations.create_group(node, "koeln", display_name="Köln",
                                              language="de")
        now = utcnow()
        async with node.db.write() as session:
            conn = await session.connection()
            await conn.execute(insert(MailSubscriber), [
                {"id": i, "group_id": group.id, "address": f"r{i}@example.net",
                 "state": SubscriberState.CONFIRMED.value, "language": "de",
                 "bulletins": True, "calls": False, "nonce": f"{i:032x}", "consent": "test",
                 "created_at": now, "confirmed_at": now, "soft_bounce_days": 0}
                for i in range(1, RECIPIENTS + 1)])
            await conn.execute(insert(MailSubscription), [
                {"subscriber_id": i, "language": "de"} for i in range(1, RECIPIENTS + 1)])
        await news.create_item(node, "koeln", {"language": "de", "versions": {
            "de": {"title": "Streik", "text": "Text"}}})
        await bulletin.publish(node, "koeln", on_published=queue.on_bulletin)
    finally:
        await stop_live_node(live)

    db = Database(url)
    env = {**os.environ, "HAMBASTEGI_DATA_DIR": str(tmp_path / "worker"),
           "HAMBASTEGI_DATABASE_URL": url, "HAMBASTEGI_BASE_URL": "https://node.example",
           "HAMBASTEGI_SMTP_URL": smtp.url, "HAMBASTEGI_MAIL_FROM": f"bulletin@{DOMAIN}",
           "HAMBASTEGI_MAIL_RATE": "0", "HAMBASTEGI_MAIL_LEASE_SECONDS": "3",
           "HAMBASTEGI_WORKER_POLL_SECONDS": "0.2"}
    log = tmp_path / "worker.log"
    try:
        assert await _count(db, MailState.PENDING) == RECIPIENTS
        first = _worker(env, log)
        try:
            async def some_sent() -> bool:
                return smtp.sink.count() >= RECIPIENTS // 4
            await wait_for(some_sent, timeout=120, what="a quarter of the mails")
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        in_flight = await _count(db, MailState.SENDING)
        received_at_kill = smtp.sink.count()
        assert received_at_kill < RECIPIENTS, "killed too late to test anything"
        assert in_flight > 0  # it was killed with mail in hand

        second = _worker(env, log)
        try:
            async def all_sent() -> bool:
                return await _count(db, MailState.SENT) == RECIPIENTS
            await wait_for(all_sent, timeout=180, what="every mail recorded as sent")
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(20)
        got = [r.rcpt_to for r in smtp.sink.received]
        assert set(got) == {f"r{i}@example.net" for i in range(1, RECIPIENTS + 1)}
        duplicates = len(got) - RECIPIENTS
        assert duplicates <= in_flight, (duplicates, in_flight)
    finally:
        await db.dispose()
