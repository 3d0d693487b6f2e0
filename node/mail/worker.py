"""The mail worker: claims rows of the mail queue, composes and signs each
recipient's mail, sends it over a few reused SMTP connections at
``HAMBASTEGI_MAIL_RATE`` mails a second (0: no limit), records outcomes.

Outcomes are written every ``FLUSH_ROWS`` mails or ``FLUSH_SECONDS``, so a
``kill -9`` sends again at most the rows claimed and not yet recorded (one
claim, ``BATCH`` rows at most), when their lease runs out. A 5xx answer is a
hard bounce: the row ends ``bounced`` and the address is suppressed at once.
A server that is down defers every mail it was given (4xx-like, backoff) and
the worker waits for the next due row; nothing else of the node waits for it.
docs/ARCHITECTURE.md §1 "Mail".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select as sa_select
from sqlalchemy import update
from sqlmodel import col, select

from node.core.idle import IdleWait, wait_for_work
from node.federation.runtime import Node
from node.mail import addresses, compose, policy, queue
from node.mail.dkim import Signer, load_key
from node.mail.queue import Claimed, Outcome
from node.mail.smtp import SmtpSender, SmtpTarget
from node.mail.subscriptions import forget_unconfirmed, mail_key
from node.storage.db import utcnow
from node.storage.models import LocalActor, MailMessage, MailQueueItem, MailSubscriber
from node.storage.states import MailState

log = logging.getLogger("hambastegi.mail")

BATCH = 200
FLUSH_ROWS = 50
FLUSH_SECONDS = 0.5
CONNECTIONS = 4
MESSAGE_CACHE = 64
FORGET_EVERY = 3600.0  # seconds between looks for unconfirmed subscribers past 7 days


@dataclass(frozen=True, slots=True)
class _Message:
    group: str
    group_name: str
    kind: str
    versions: dict[str, Any]


class MailWorker:
    def __init__(self, node: Node, *, rate: float | None = None,
                 connections: int = CONNECTIONS, batch: int = BATCH,
                 lease: timedelta | None = None, poll_seconds: float | None = None,
                 idle_wait: IdleWait | None = None, worker_id: str | None = None) -> None:
        settings = node.settings
        self.node = node
        self.rate = settings.mail_rate if rate is None else rate
        self.connections = max(1, connections if self.rate == 0 or self.rate >= 20 else 1)
        self.batch = batch
        self.lease = lease or timedelta(seconds=settings.mail_lease_seconds)
        self.poll_seconds = poll_seconds or settings.worker_poll_seconds
        self.idle_wait = idle_wait
        self.worker_id = worker_id or secrets.token_hex(8)
        self.target = SmtpTarget.parse(settings.smtp_url)
        self.from_address = settings.mail_from
        self.domain = addresses.domain_of(settings.mail_from)
        self._senders = [SmtpSender(self.target, local_hostname=self.domain)
                         for _ in range(self.connections)]
        self._rng = random.Random()
        self._wake = asyncio.Event()
        self._messages: OrderedDict[int, _Message] = OrderedDict()
        self._prepared_cache: dict[tuple[int, str], compose.Prepared] = {}
        self._signer: Signer | None = None
        self._key: bytes = b""
        self._next_slot = 0.0
        self.idle = False
        self.sent = self.retried = self.bounced = self.failed = 0

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        log.info("mail worker started", extra={"smtp": self.target.describe(),
                                               "rate": self.rate})
        try:
            loop = asyncio.get_running_loop()
            forget_at = 0.0
            while not stop.is_set():
                self._wake.clear()
                if loop.time() >= forget_at:
                    forget_at = loop.time() + FORGET_EVERY
                    await self._forget_unconfirmed()
                try:
                    claimed = await self.run_batch(stop)
                except Exception:  # the database went away, say: leases retry the work
                    log.exception("mail batch failed", extra={"worker_id": self.worker_id})
                    claimed = 0
                if claimed:
                    continue
                self.idle = True
                try:
                    await wait_for_work(self._wake, stop, self.idle_wait, self.poll_seconds)
                finally:
                    self.idle = False
        finally:
            await self.close()

    async def _forget_unconfirmed(self) -> None:
        """Pending subscribers older than 7 days go, also when nobody subscribes."""
        try:
            async with self.node.db.write() as session:
                gone = await forget_unconfirmed(session, utcnow())
        except Exception:  # the database went away: the next hour tries again
            log.exception("forgetting unconfirmed subscribers failed")
            return
        if gone:
            log.info("unconfirmed subscribers forgotten", extra={"count": gone})

    async def run_once(self) -> int:
        """Send until nothing is due (tests); returns the rows claimed."""
        total = 0
        while claimed := await self.run_batch(None):
            total += claimed
        return total

    async def close(self) -> None:
        for sender in self._senders:
            await sender.close()

    async def _prepare(self) -> None:
        self._key = await mail_key(self.node)
        # Read each batch (one small row): a key made or replaced by `mail dkim-key`
        # signs the next batch, without a restart.
        key = await load_key(self.node.db, self.domain)
        if key is None:
            if self._signer is None:
                log.warning("no DKIM key: mail goes unsigned (hambastegi mail dkim-key)")
        elif self._signer is None or self._signer.key != key:
            self._signer = Signer(key)

    async def run_batch(self, stop: asyncio.Event | None) -> int:
        if not await queue.due(self.node.db):
            return 0
        await self._prepare()
        claimed = await queue.claim(self.node.db, self.worker_id, self.batch, self.lease)
        if not claimed:
            return 0
        held = {c.id for c in claimed}
        renewer = asyncio.create_task(self._keep_leases(held))
        try:
            await self._send_batch(claimed, held, stop)
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
        return len(claimed)

    async def _send_batch(self, claimed: Sequence[Claimed], held: set[int],
                          stop: asyncio.Event | None) -> None:
        subscribers = await self._subscribers({c.subscriber_id for c in claimed})
        await self._load_messages({c.message_id for c in claimed})
        todo = list(claimed)
        todo.reverse()
        buffer: list[Outcome] = []
        loop = asyncio.get_running_loop()
        flush_at = [loop.time() + FLUSH_SECONDS]
        lock = asyncio.Lock()

        async def flush(force: bool = False) -> None:
            if buffer and (force or len(buffer) >= FLUSH_ROWS or loop.time() >= flush_at[0]):
                chunk = buffer[:]
                buffer.clear()
                flush_at[0] = loop.time() + FLUSH_SECONDS
                async with lock:
                    await self._record(chunk, held)

        async def lane(sender: SmtpSender) -> None:
            while todo and (stop is None or not stop.is_set()):
                item = todo.pop()
                if item.id not in held:
                    continue
                await self._pace()
                buffer.append(await self._one(sender, item, subscribers.get(item.subscriber_id)))
                await flush()

        await asyncio.gather(*(lane(s) for s in self._senders))
        await flush(force=True)
        # Rows not reached (stop): released at once instead of waiting out the lease.
        if todo:
            await self._release([c.id for c in todo if c.id in held])

    async def _pace(self) -> None:
        if self.rate <= 0:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        slot = max(self._next_slot, now)
        self._next_slot = slot + 1.0 / self.rate
        if slot > now:
            await asyncio.sleep(slot - now)  # the rate limit itself, not synchronisation

    async def _one(self, sender: SmtpSender, item: Claimed,
                   subscriber: MailSubscriber | None) -> Outcome:
        message = self._messages.get(item.message_id)
        if subscriber is None or message is None:
            return Outcome(item.id, item.attempts, "gone", error="recipient_gone")
        try:
            raw, envelope_from = self.render(item, message, subscriber)
        except Exception:  # a bug costs this mail a retry, not the batch
            log.exception("composing a mail failed", extra={"mail_queue_id": item.id})
            return Outcome(item.id, item.attempts, "retry", error="compose_error")
        reply = await sender.send(envelope_from, subscriber.address, raw)
        verdict = policy.classify_reply(reply.code)
        return Outcome(item.id, item.attempts, verdict, reply.code, reply.text)

    def render(self, item: Claimed, message: _Message,
               subscriber: MailSubscriber) -> tuple[bytes, str]:
        """The signed bytes of one recipient's mail and its envelope sender (VERP)."""
        base = self.node.urls.base
        sid, nonce = subscriber.id or 0, subscriber.nonce
        if message.kind == "confirm":
            language = subscriber.language
            prepared = self._prepared(item.message_id, message, language)
            token = addresses.make_token(self._key, "confirm", sid, nonce)
            raw = compose.render(prepared, subscriber.address,
                                 f"<confirm.{item.message_id}.{sid}@{self.domain}>",
                                 confirm_url=f"{base}/mail/confirm/{token}")
        else:
            language = item.language if item.language in message.versions \
                else next(iter(message.versions))
            prepared = self._prepared(item.message_id, message, language)
            token = addresses.make_token(self._key, "unsubscribe", sid, nonce)
            raw = compose.render(prepared, subscriber.address,
                                 f"<{message.kind}.{item.message_id}.{sid}@{self.domain}>",
                                 unsubscribe_url=f"{base}/mail/unsubscribe/{token}")
        if self._signer is not None:
            raw = self._signer.sign(raw) + raw
        return raw, addresses.verp_address(self._key, sid, nonce, self.domain)

    def _prepared(self, message_id: int, message: _Message,
                  language: str) -> compose.Prepared:
        cache_key = (message_id, language)
        found = self._prepared_cache.get(cache_key)
        if found is None:
            if message.kind == "confirm":
                version = compose.confirm_versions(language, message.group_name)[language]
                list_id = None
            else:
                version = message.versions[language]
                list_id = compose.list_id(message.group, language, self.domain,
                                          message.group_name)
            found = compose.prepare(version, language, message.group_name,
                                    self.from_address, list_id)
            if len(self._prepared_cache) > MESSAGE_CACHE * 4:
                self._prepared_cache.clear()
            self._prepared_cache[cache_key] = found
        return found

    async def _subscribers(self, ids: set[int]) -> dict[int, MailSubscriber]:
        async with self.node.db.read() as session:
            rows = (await session.exec(select(MailSubscriber).where(
                col(MailSubscriber.id).in_(sorted(ids))))).all()
            for row in rows:
                session.expunge(row)
        return {r.id or 0: r for r in rows}

    async def _load_messages(self, ids: set[int]) -> None:
        missing = ids - set(self._messages)
        if missing:
            async with self.node.db.read() as session:
                rows = (await (await session.connection()).execute(
                    sa_select(col(MailMessage.id), col(MailMessage.kind),
                              col(MailMessage.versions), col(LocalActor.username),
                              col(LocalActor.display_name))
                    .join(LocalActor, col(LocalActor.id) == col(MailMessage.group_id))
                    .where(col(MailMessage.id).in_(sorted(missing))))).all()
            for mid, kind, versions, username, name in rows:
                self._messages[int(mid or 0)] = _Message(username, name or username, kind,
                                                         versions)
        while len(self._messages) > MESSAGE_CACHE:
            self._messages.popitem(last=False)

    async def _record(self, outcomes: list[Outcome], held: set[int]) -> None:
        recorded, bounced = await queue.complete(self.node.db, self.worker_id, outcomes,
                                                 self._rng, self._key)
        for outcome in outcomes:
            held.discard(outcome.item_id)
        for state in recorded.values():
            if state == MailState.SENT:
                self.sent += 1
            elif state == MailState.PENDING:
                self.retried += 1
            elif state == MailState.BOUNCED:
                self.bounced += 1
            else:
                self.failed += 1
        for sid in bounced:
            log.info("hard bounce: address suppressed", extra={"subscriber_id": sid})

    async def _release(self, ids: Sequence[int]) -> None:
        if ids:
            async with self.node.db.write() as session:
                await session.exec(update(MailQueueItem).where(
                    col(MailQueueItem.id).in_(list(ids)),
                    col(MailQueueItem.worker_id) == self.worker_id,
                    col(MailQueueItem.state) == MailState.SENDING)
                    .values(state=MailState.PENDING, lease_until=None))

    async def _keep_leases(self, held: set[int]) -> None:
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)  # the renewal period
            try:
                still = await queue.renew(self.node.db, self.worker_id, sorted(held),
                                          self.lease)
            except Exception:
                log.exception("mail lease renewal failed", extra={"worker_id": self.worker_id})
                continue
            held.intersection_update(still)
