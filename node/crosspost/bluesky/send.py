"""What one queue row does on Bluesky: create the post record, re-post it when its
text changed (Bluesky has no edit: delete, then create), delete it.

``remote``: ``{"records": [{"uri", "cid"}], "digest"}`` (the text's hash decides
whether an edit re-posts). The session (access and refresh tokens) is kept sealed on
the connection and renewed through refreshSession; a login refused pauses it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import update
from sqlmodel import col

from node.crosspost import queue
from node.crosspost.bluesky.format import MAX_IMAGES, InvalidRecord, check, draft, record
from node.crosspost.bluesky.xrpc import Pds, Session, XrpcError
from node.crosspost.content import Post
from node.crosspost.pacing import Outcome, bluesky_outcome
from node.crosspost.secrets import context_of, seal, unseal
from node.storage.models import CrosspostAccount

if TYPE_CHECKING:
    from node.crosspost.worker import CrosspostWorker

POST = "app.bsky.feed.post"
DEFAULT_PDS = "https://bsky.social"
# The image blob limit of app.bsky.embed.images (maxSize 1,000,000 bytes).
BLOB_LIMIT = 1_000_000


async def _delete(pds: Pds, remote: dict[str, Any]) -> None:
    assert pds.session is not None
    records = list(remote.get("records") or [])
    while records:
        uri = str(records[0]["uri"])
        await pds.call("POST", "com.atproto.repo.deleteRecord", body={
            "repo": pds.session.did, "collection": POST, "rkey": uri.rsplit("/", 1)[-1]})
        records.pop(0)
        remote["records"] = list(records)


async def _create(worker: CrosspostWorker, pds: Pds, post: Post, now: datetime,
                  remote: dict[str, Any]) -> None:
    assert pds.session is not None
    d = draft(post)
    blobs: list[tuple[dict[str, Any], str]] = []
    for image in post.images[:MAX_IMAGES]:
        loaded = await worker.load_image(image)
        if loaded is None or len(loaded[0]) > BLOB_LIMIT:
            continue
        answer = await pds.call("POST", "com.atproto.repo.uploadBlob", data=loaded[0],
                                content_type=loaded[1])
        blob = answer.get("blob") if isinstance(answer, dict) else None
        if isinstance(blob, dict):
            blobs.append((blob, image.alt))
    rec = record(d, post, now, blobs)
    try:
        check(rec)
    except InvalidRecord as exc:
        raise XrpcError(422, "InvalidRecord", str(exc)) from None  # a failure, not a retry
    created = await pds.call("POST", "com.atproto.repo.createRecord", body={
        "repo": pds.session.did, "collection": POST, "record": rec})
    if not isinstance(created, dict) or not isinstance(created.get("uri"), str):
        raise XrpcError(502, "BadAnswer", "createRecord answered without a uri")
    remote["records"] = [{"uri": created["uri"], "cid": created.get("cid")}]
    remote["digest"] = d.digest


async def run_bluesky(worker: CrosspostWorker, claimed: queue.Claimed, password: str,
                      post: Post | None, now: datetime) -> None:
    account, item = claimed.account, claimed.item
    assert worker._key is not None
    context = context_of(account.service, account.local_actor_id, account.target)
    pds = Pds(worker.client, account.endpoint or DEFAULT_PDS, now)
    if account.session:
        pds.session = Session.loads(unseal(worker._key, account.session, context))
    remote: dict[str, Any] = dict(item.remote)
    outcome = Outcome("done")
    try:
        if pds.session is None:
            await pds.login(account.remote_id or account.target, password)
        if item.action == "delete" or post is None:
            await _delete(pds, remote)
        elif item.action == "update" and remote.get("records"):
            if remote.get("digest") != draft(post).digest:
                await _delete(pds, remote)
                await _create(worker, pds, post, now, remote)
        else:
            await _create(worker, pds, post, now, remote)
    except XrpcError as exc:
        outcome = bluesky_outcome(exc.status, exc.error, exc.reset_in)
        if exc.status == 401 and pds.session is not None and not pds.renewed:
            # The stored session is dead (refresh token expired): log in again next time.
            pds.session = None
            outcome = Outcome("retry", f"Bluesky session ended: {exc.error}")
    if pds.renewed or pds.session is None:
        sealed = seal(worker._key, pds.session.dumps(), context) if pds.session else None
        async with worker.node.db.write() as session:
            await session.exec(update(CrosspostAccount)
                               .where(col(CrosspostAccount.id) == account.id)
                               .values(session=sealed))
    await queue.settle(worker.node.db, claimed, outcome, remote, now, sent_at=[now])
