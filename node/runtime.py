"""The running node: settings, database, URLs, the guarded client, background tasks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from node import keys, signatures
from node.cache import DocCache
from node.db import Database
from node.delivery import DeliveryWorker
from node.fetch import GuardedClient, allow_all_policy, public_address_policy
from node.groups import ensure_instance_actor
from node.models import LocalActor
from node.settings import Settings
from node.urls import INSTANCE_USERNAME, Urls

log = logging.getLogger("hambastegi")

USER_AGENT = "Hambastegi/0.1 (+https://codeberg.org/hambastegi)"

Scheme = Literal["cavage", "rfc9421"]


class ActorSigner:
    """Signs requests as one local actor with its RSA key (what Mastodon verifies)."""

    def __init__(self, actor: LocalActor, urls: Urls) -> None:
        key = keys.load_private_pem(actor.rsa_private_pem)
        if not isinstance(key, RSAPrivateKey):
            raise TypeError("actor's main key must be RSA")
        self._key = key
        self.key_id = urls.key_id(actor.username)

    def __call__(
        self, method: str, url: str, body: bytes | None, scheme: Scheme
    ) -> Mapping[str, str]:
        if scheme == "rfc9421":
            return signatures.sign_rfc9421(
                method=method, url=url, body=body, key_id=self.key_id, private_key=self._key
            )
        return signatures.sign_cavage(
            method=method, url=url, body=body, key_id=self.key_id, private_key=self._key
        )


class Node:
    def __init__(self, settings: Settings, db: Database | None = None) -> None:
        self.settings = settings
        self.db = db or Database(settings.database_url)
        self.urls = Urls(settings.base_url)
        self.client = GuardedClient(
            policy=allow_all_policy if settings.allow_private_networks else public_address_policy,
            user_agent=USER_AGENT,
        )
        self.inbox_wake = asyncio.Event()
        self.doc_cache = DocCache()
        # Set by the in-process delivery worker so publishing sends at once.
        self.delivery_wake: Callable[[], None] = lambda: None
        self._instance_signer: ActorSigner | None = None

    async def start(self) -> None:
        await self.client.start()
        async with self.db.write() as session:
            instance = await ensure_instance_actor(session)
        self._instance_signer = ActorSigner(instance, self.urls)

    async def close(self) -> None:
        await self.client.close()
        await self.db.dispose()

    def delivery_worker(self) -> DeliveryWorker:
        """A delivery worker over this node's database and client."""
        return DeliveryWorker(
            self.db, self.client, self.urls,
            concurrency=self.settings.delivery_concurrency,
            poll_seconds=self.settings.worker_poll_seconds,
            lease=timedelta(seconds=self.settings.delivery_lease_seconds),
        )

    @property
    def instance_signer(self) -> ActorSigner:
        """Signs the node's own GETs (authorized-fetch servers require it)."""
        if self._instance_signer is None:
            raise RuntimeError("node not started")
        return self._instance_signer

    @property
    def instance_username(self) -> str:
        return INSTANCE_USERNAME
