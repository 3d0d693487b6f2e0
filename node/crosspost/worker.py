"""The crosspost worker: beside the delivery worker in ``serve`` and ``worker``, with its
own client and its own rows, so a down or slow service never holds a fediverse lane or
the inbox (docs/ARCHITECTURE.md §2c).

Each round claims the oldest due row of each connection that may send, checks the
pacing (20 messages a minute per Telegram channel from the connection's recent sends,
30 a second per bot in memory), does the row's action and settles it. ``clock`` is
injectable: tests drive time by hand, never by sleeping.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import col, select

from node.core.idle import wait_for_work
from node.crosspost import queue
from node.crosspost.content import Image, Post, read_post
from node.crosspost.http import ServiceClient
from node.crosspost.pacing import BOT_PER_SECOND, SECOND, Outcome, earliest_send
from node.federation.fetch import allow_all_policy, public_address_policy
from node.federation.runtime import USER_AGENT, Node
from node.media import uploads
from node.storage.db import utcnow
from node.storage.models import LocalActor, MediaFile, RemoteActor

log = logging.getLogger("hambastegi.crosspost")

# The variant Telegram and Bluesky get (media/uploads.py VARIANT_SIDES).
IMAGE_SIDE = 1280


def service_client(node: Node) -> ServiceClient:
    policy = allow_all_policy if node.settings.allow_private_networks else public_address_policy
    return ServiceClient(policy=policy, user_agent=USER_AGENT)


class CrosspostWorker:
    def __init__(self, node: Node, *, clock: Callable[[], datetime] = utcnow,
                 batch: int = 32, lease: timedelta = timedelta(minutes=2),
                 poll_seconds: float | None = None) -> None:
        self.node = node
        self.clock = clock
        self.batch = batch
        self.lease = lease
        self.poll = poll_seconds if poll_seconds is not None else node.settings.worker_poll_seconds
        self.worker_id = f"crosspost-{uuid.uuid4().hex[:12]}"
        self.client = service_client(node)
        self._wake = asyncio.Event()
        # Per bot (hash of its token): sends in the last second (pacing.BOT_PER_SECOND).
        self._bots: dict[str, list[datetime]] = {}
        self._key: bytes | None = None
        self.bluesky_sessions: dict[int, Any] = {}

    async def close(self) -> None:
        await self.client.close()

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and send until ``stop``. Each row runs as its own task, and claiming goes
        on while rows are in flight: a channel whose service hangs holds only its own row
        (its connection is busy while the row is leased), never the other connections."""
        inflight: set[asyncio.Task[None]] = set()
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    started = await self._start(inflight)
                except Exception:  # a bad round must not end the worker
                    log.exception("crosspost round failed")
                    started = 0
                if started:
                    continue
                waiter = asyncio.ensure_future(
                    wait_for_work(self._wake, stop, None, self.poll))
                try:
                    await asyncio.wait({waiter, *inflight}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiter.cancel()
        finally:
            for task in inflight:
                task.cancel()
            await asyncio.gather(*inflight, return_exceptions=True)
            await self.client.close()

    async def _start(self, inflight: set[asyncio.Task[None]]) -> int:
        room = self.batch - len(inflight)
        if room <= 0:
            return 0
        now = self.clock()
        claimed = await queue.claim(self.node.db, self.worker_id, now, limit=room,
                                    lease=self.lease)
        if claimed and self._key is None:
            from node.crosspost.secrets import secrets_key

            self._key = await secrets_key(self.node.db)
        for one in claimed:
            task = asyncio.create_task(self._one(one, now))
            inflight.add(task)
            task.add_done_callback(inflight.discard)
        return len(claimed)

    async def run_once(self) -> int:
        """One round, waited for whole: claim, send, settle (tests drive the clock with
        it). Returns the rows handled."""
        now = self.clock()
        claimed = await queue.claim(self.node.db, self.worker_id, now, limit=self.batch,
                                    lease=self.lease)
        if not claimed:
            return 0
        if self._key is None:
            # cryptography comes with the first row, not with an idle node
            # (tests/test_idle_imports.py).
            from node.crosspost.secrets import secrets_key

            self._key = await secrets_key(self.node.db)
        await asyncio.gather(*(self._one(c, now) for c in claimed))
        return len(claimed)

    async def _one(self, claimed: queue.Claimed, now: datetime) -> None:
        from node.crosspost.secrets import SecretError, context_of, unseal

        account, item = claimed.account, claimed.item
        assert self._key is not None
        try:
            secret = unseal(self._key, account.secret,
                            context_of(account.service, account.local_actor_id, account.target))
        except SecretError as exc:
            await queue.settle(self.node.db, claimed, Outcome("pause", str(exc)), item.remote,
                               now, sent_at=[])
            return
        post = read_post(item.document) if item.document and item.action != "delete" else None
        try:
            if account.service == "bridgy":
                await self._companion(claimed, now)
            elif account.service == "telegram":
                await self._telegram(claimed, secret, post, now)
            else:
                from node.crosspost.bluesky.send import run_bluesky

                await run_bluesky(self, claimed, secret, post, now)
        except Exception:
            log.exception("crosspost attempt failed", extra={"item": item.id,
                                                             "service": account.service})
            await queue.settle(self.node.db, claimed,
                               Outcome("retry", "internal error (see the node's log)"),
                               item.remote, now, sent_at=[])

    async def _telegram(self, claimed: queue.Claimed, token: str, post: Post | None,
                        now: datetime) -> None:
        from node.crosspost.telegram.api import BotApi
        from node.crosspost.telegram.send import count_messages, perform

        account, item = claimed.account, claimed.item
        needed = count_messages(item.action, post, item.remote)
        recent = [datetime.fromisoformat(s) for s in account.recent]
        bot = hashlib.sha256(token.encode()).hexdigest()
        bot_recent = [t for t in self._bots.get(bot, []) if t > now - SECOND]
        at = max(earliest_send(recent, now, needed),
                 earliest_send(bot_recent, now, needed, limit=BOT_PER_SECOND, window=SECOND))
        if at > now:
            await queue.postpone(self.node.db, claimed, at,
                                 "paced: 20 messages a minute per Telegram channel")
            return
        api = BotApi(self.client, self.node.settings.telegram_api, token)
        chat = account.remote_id or account.target
        result = await perform(api, chat, item.action, post, item.remote, self.load_image)
        self._bots[bot] = [*bot_recent, *[now] * result.calls]
        if result.outcome.kind != "done":
            log.info("telegram refused or failed", extra={
                "item": item.id, "outcome": result.outcome.kind,
                "reason": result.outcome.reason})
        await queue.settle(self.node.db, claimed, result.outcome, result.remote, now,
                           sent_at=[now] * result.calls)

    async def _companion(self, claimed: queue.Claimed, now: datetime) -> None:
        """A call's companion Note, to the bridge bot's inbox only, through the fan-out
        log like any activity (no request here): FEDERATION.md "Bridgy Fed"."""
        from node.crosspost.bridgy import companion_id, companion_note
        from node.federation import publishing
        from node.federation.crosspost_log import PUBLIC

        account, item = claimed.account, claimed.item
        note_id = companion_id(item.object_uri)
        derived = uuid.uuid5(uuid.NAMESPACE_URL, f"{note_id}#{item.version}#{item.action}").hex
        async with self.node.db.write() as session:
            actor = await session.get(LocalActor, account.local_actor_id)
            bot = (await session.exec(select(RemoteActor).where(
                RemoteActor.uri == account.target))).first()
            if actor is None or bot is None:
                outcome = Outcome("fail", "the bridge's bot is not known here")
            else:
                inbox = bot.shared_inbox or bot.inbox
                if item.action == "delete" or not item.document:
                    kind, obj = "Delete", {"id": note_id, "type": "Tombstone",
                                           "formerType": "Note"}
                else:
                    kind = "Create" if item.action == "create" else "Update"
                    obj = companion_note(item.document, note_id, self.node.urls.actor(
                        actor.username))
                await publishing.record_activity(
                    session, actor, self.node.urls, activity_type=kind, obj=obj,
                    to=[PUBLIC], inboxes=[inbox], in_outbox=False, activity_uuid=derived)
                outcome = Outcome("done")
        self.node.changed()
        remote = {} if item.action == "delete" else {"records": [{"uri": note_id}]}
        await queue.settle(self.node.db, claimed, outcome, remote, now, sent_at=[])

    async def load_image(self, image: Image) -> tuple[bytes, str] | None:
        """The 1280 px variant of one of our uploads (else the upload itself)."""
        ref = self.node.urls.parse_local(image.url)
        if ref is None or ref.kind != "media" or ref.key != "uploads":
            return None  # only our uploads (/media/uploads/<name>), never a fetch
        name = ref.rest.lstrip("/")
        if not uploads.valid_name(name):
            return None
        async with self.node.db.read() as session:
            original = (await session.exec(select(MediaFile).where(
                MediaFile.name == name))).first()
            if original is None:
                return None
            variants = (await session.exec(select(MediaFile).where(
                col(MediaFile.variant_of) == original.id))).all()
        choice = original
        fitting = [v for v in variants if max(v.width, v.height) <= IMAGE_SIDE]
        if max(original.width, original.height) > IMAGE_SIDE and fitting:
            choice = max(fitting, key=lambda v: max(v.width, v.height))
        path = Path(self.node.settings.media_dir) / "uploads" / choice.name
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except OSError:
            return None
        return data, choice.media_type
