"""Sending a bulletin by e-mail: 10,000 mails through one mail worker at
HAMBASTEGI_MAIL_RATE=0 to a local SMTP sink (aiosmtpd in its own process), each
composed, DKIM-signed and sent over reused connections; beside it, in the same run,
the floors: DKIM signing alone (OpenSSL's RSA under dkimpy, and dkimpy's own
pure-Python RSA), and composing alone (issue 26, "Speed": at least 500 mails/s).

    .venv/bin/python bench/mail.py [--mails 10000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert
from sqlmodel import select

from bench.common import PYTHON, free_port, table
from node.core.settings import Settings
from node.federation.runtime import Node
from node.groups import operations
from node.mail import compose, dkim, queue
from node.mail.queue import Claimed
from node.mail.worker import MailWorker
from node.news import bulletin
from node.news import operations as news
from node.storage import migrate
from node.storage.db import utcnow
from node.storage.models import MailQueueItem, MailSubscriber, MailSubscription
from node.storage.states import MailState, SubscriberState

DOMAIN = "news.example.org"
SINK = """
import sys, time
from aiosmtpd.controller import Controller
class H:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"
c = Controller(H(), hostname="127.0.0.1", port=int(sys.argv[1]))
c.start()
print("ready", flush=True)
sys.stdin.read()
c.stop()
"""


def rate(work: Callable[[], object], seconds: float = 1.5) -> float:
    work()
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        work()
        done += 1
    return done / (time.perf_counter() - started)


async def seed(node: Node, mails: int) -> None:
    group = await operations.create_group(node, "koeln", display_name="Köln", language="de")
    now = utcnow()
    async with node.db.write() as session:
        conn = await session.connection()
        await conn.execute(insert(MailSubscriber), [
            {"id": i, "group_id": group.id, "address": f"r{i}@example.net",
             "state": SubscriberState.CONFIRMED.value, "language": "de", "bulletins": True,
             "calls": False, "nonce": f"{i:032x}", "consent": "bench", "created_at": now,
             "confirmed_at": now, "soft_bounce_days": 0} for i in range(1, mails + 1)])
        await conn.execute(insert(MailSubscription), [
            {"subscriber_id": i, "language": "de"} for i in range(1, mails + 1)])
    text = "\n\n".join(["Workers at the **petrochemical plant** in Mahshahr strike. " * 4] * 4)
    for n in range(12):
        await news.create_item(node, "koeln", {"language": "de", "versions": {
            "de": {"title": f"Meldung {n}", "text": text}}})
    await bulletin.publish(node, "koeln", on_published=queue.on_bulletin)
    await dkim.make_key(node.db, "bench", DOMAIN)


def main(args: argparse.Namespace) -> None:
    port = free_port()
    sink = subprocess.Popen([PYTHON, "-c", SINK, str(port)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert sink.stdout is not None and sink.stdin is not None
    sink.stdout.readline()
    try:
        asyncio.run(measure(args, port))
    finally:
        sink.stdin.close()
        sink.wait(10)


async def measure(args: argparse.Namespace, port: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="mailbench-"))
    url = args.database_url or f"sqlite:///{tmp / 'bench.sqlite3'}"
    settings = Settings.load(environ={
        "HAMBASTEGI_BASE_URL": "https://node.example", "HAMBASTEGI_DATA_DIR": str(tmp),
        "HAMBASTEGI_DATABASE_URL": url, "HAMBASTEGI_SMTP_URL": f"smtp://127.0.0.1:{port}",
        "HAMBASTEGI_MAIL_FROM": f"bulletin@{DOMAIN}", "HAMBASTEGI_MAIL_RATE": "0"})
    await asyncio.to_thread(migrate.upgrade, settings.database_url)
    node = Node(settings)
    await node.start()
    try:
        await seed(node, args.mails)
        worker = MailWorker(node)
        started = time.perf_counter()
        await worker.run_once()
        seconds = time.perf_counter() - started
        async with node.db.read() as session:
            sent = (await session.exec(select(func.count()).select_from(MailQueueItem).where(
                MailQueueItem.state == MailState.SENT))).one()
        assert sent == args.mails, (sent, args.mails)

        # The floors, with the same key and a mail of the same bulletin.
        key = await dkim.load_key(node.db, DOMAIN)
        assert key is not None
        async with node.db.read() as session:
            row = (await session.exec(select(MailQueueItem))).first()
            subscriber = (await session.exec(select(MailSubscriber))).first()
        assert row is not None and subscriber is not None
        message = worker._messages[row.message_id]
        claimed = Claimed(row.id or 0, row.message_id, row.subscriber_id, row.language, 0)
        raw, _ = worker.render(claimed, message, subscriber)
        unsigned = raw.split(b"\r\nFrom: ", 1)[1]
        unsigned = b"From: " + unsigned
        fast, slow = dkim.Signer(key), dkim.Signer(key, fast=False)
        fast_rate = rate(lambda: fast.sign(unsigned))
        slow_rate = rate(lambda: slow.sign(unsigned), 3.0)
        prepared = worker._prepared(row.message_id, message, "de")
        compose_rate = rate(lambda: compose.render(
            prepared, "r1@example.net", "<1@x>",
            unsubscribe_url="https://node.example/mail/unsubscribe/1-x"))
        render_rate = rate(lambda: worker.render(claimed, message, subscriber))
        total = args.mails / seconds
        print(table(f"{args.mails:,} mails, one worker, MAIL_RATE=0, {len(raw):,} bytes a mail "
                    f"({settings.database_url.split(':')[0]})",
                    ["what", "per second", "vs. sending"], [
                        ["sending: claim, compose, sign, SMTP, record", total, 1.0],
                        ["render one mail (compose + sign), no I/O", render_rate,
                         render_rate / total],
                        ["compose only (MIME, no signature)", compose_rate,
                         compose_rate / total],
                        ["DKIM sign: dkimpy + OpenSSL RSA (used)", fast_rate,
                         fast_rate / total],
                        ["DKIM sign: dkimpy's pure-Python RSA", slow_rate, slow_rate / total],
                    ]))
        print(f"\ngoal: >= 500 mails/s with DKIM: {'met' if total >= 500 else 'NOT met'} "
              f"({total:,.0f}/s, {seconds:.1f} s)")
    finally:
        await node.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mails", type=int, default=10_000)
    parser.add_argument("--database-url")
    main(parser.parse_args())
