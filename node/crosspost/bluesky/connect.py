"""Connecting a Bluesky account: the app password must log in (createSession) at the
account's PDS, else nothing is stored and the editor reads the PDS's reason."""

from __future__ import annotations

import re

from node.crosspost import connections
from node.crosspost.bluesky.xrpc import Pds, XrpcError
from node.crosspost.worker import service_client
from node.federation.runtime import Node
from node.groups.errors import OperationError
from node.storage.db import utcnow
from node.storage.models import CrosspostAccount

# A handle is a domain name (atproto.com/specs/handle), at most 253 characters.
HANDLE = re.compile(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]"
                    r"([a-z0-9-]{0,61}[a-z0-9])?")


async def connect(node: Node, actor_name: str, handle: str, password: str, *,
                  pds: str = "https://bsky.social") -> CrosspostAccount:
    handle = handle.strip().lstrip("@").lower()
    if not HANDLE.fullmatch(handle):
        raise OperationError("the handle must be like name.bsky.social")
    pds = pds.strip().rstrip("/")
    if not re.fullmatch(r"https?://[^/\s?#@]+", pds):
        raise OperationError("--pds must be the PDS's base URL, like https://bsky.social")
    if not password.strip():
        raise OperationError("an app password is needed")
    actor = await connections.local_actor(node, actor_name)
    client = service_client(node)
    try:
        session = await Pds(client, pds, utcnow()).login(handle, password.strip())
    except XrpcError as exc:
        reason = exc.message or exc.error
        raise OperationError(f"Bluesky refused the login: {reason}") from None
    finally:
        await client.close()
    return await connections.store(node, actor, "bluesky", handle, password.strip(),
                                   remote_id=session.did, endpoint=pds,
                                   session_state=session.dumps())
