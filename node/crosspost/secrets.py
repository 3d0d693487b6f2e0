"""Bot tokens and app passwords at rest: sealed with AES-GCM under a node key.

The key is a ``node_secret`` row (accounts/keys.py), so this keeps the secrets out of
anything that shows or copies the crosspost tables alone (status, logs, a careless
SELECT); whoever holds the whole database holds the key too, which the admin guide
says (deploy/README.md). The row's id and service are the associated data, so a sealed
value copied onto another connection does not open.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from node.accounts.keys import node_key
from node.storage.db import Database

KEY_NAME = "crosspost-secrets"
NONCE = 12


class SecretError(ValueError):
    """A sealed value does not open (another node's key, or tampered)."""


def seal(key: bytes, plain: str, context: str) -> bytes:
    nonce = os.urandom(NONCE)
    return nonce + AESGCM(key).encrypt(nonce, plain.encode(), context.encode())


def unseal(key: bytes, sealed: bytes, context: str) -> str:
    try:
        return AESGCM(key).decrypt(sealed[:NONCE], sealed[NONCE:], context.encode()).decode()
    except (InvalidTag, ValueError) as exc:
        raise SecretError("the stored secret does not open with this node's key") from exc


async def secrets_key(db: Database) -> bytes:
    return await node_key(db, KEY_NAME)


def context_of(service: str, actor_id: int, target: str) -> str:
    return f"{service}\x00{actor_id}\x00{target}"
