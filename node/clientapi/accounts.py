"""Accounts: the group itself (verify_credentials, update_credentials), any account
by id or handle, its statuses, followers and following, relationships, follow and
unfollow. Account ids: a group's row id; a remote actor's row id above
entities.REMOTE_ACCOUNT_BASE."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from node.clientapi import timelines
from node.clientapi.context import Call, endpoint
from node.clientapi.entities import REMOTE_ACCOUNT_BASE, group_account, remote_account
from node.clientapi.pagination import Window
from node.clientapi.params import NOT_FOUND, ApiError
from node.federation import local_actors
from node.groups import operations
from node.storage.models import Follower, Following, LocalActor, RemoteActor
from node.storage.states import FollowerState, FollowingState

MAX_FIELDS = 4


async def verify_credentials(call: Call) -> Response:
    async with call.node.db.read() as session:
        group = await session.get(LocalActor, call.group.id)
        assert group is not None
        pending = len((await session.exec(select(Follower.id).where(
            Follower.local_actor_id == group.id,
            Follower.state == FollowerState.PENDING))).all())
        return JSONResponse(await group_account(session, call.node.urls, group,
                                                with_source=True, follow_requests=pending,
                                                cache=call.node.doc_cache))


async def update_credentials(call: Call) -> Response:
    """PATCH: display_name, note, locked, fields_attributes, avatar, header,
    discoverable, indexable — through the same operation as `hambastegi edit group`."""
    params = call.params
    changes: dict[str, Any] = {}
    if (name := params.text("display_name", limit=1000)) is not None:
        changes["display_name"] = name
    if (note := params.text("note", limit=10_000)) is not None:
        changes["summary"] = note
    for flag, field in (("locked", "manually_approves_followers"),
                        ("discoverable", "discoverable"), ("indexable", "indexable")):
        if flag in params.values:
            changes[field] = params.flag(flag)
    fields = _fields(params.values)
    if fields is not None:
        changes["links"] = fields
    for kind in ("avatar", "header"):
        upload = params.file(kind)
        if upload is not None:
            data = await upload.read(12 * 1024 * 1024)
            changes[kind] = await operations.upload_media(call.node, data,
                                                          group=call.group.username)
    if changes:
        await operations.edit_group(call.node, call.group.username, changes)
    return await verify_credentials(call)


def _fields(values: dict[str, Any]) -> list[dict[str, str]] | None:
    """``fields_attributes[0][name]`` (forms) or ``fields_attributes`` (JSON)."""
    found: dict[str, dict[str, str]] = {}
    given = values.get("fields_attributes")
    if isinstance(given, list):
        for index, item in enumerate(given[:MAX_FIELDS + 1]):
            if isinstance(item, dict):
                found[str(index)] = {k: v for k, v in item.items() if isinstance(v, str)}
    elif isinstance(given, dict):
        for index, item in list(given.items())[:MAX_FIELDS + 1]:
            if isinstance(item, dict):
                found[str(index)] = {k: v for k, v in item.items() if isinstance(v, str)}
    for key, value in values.items():
        if key.startswith("fields_attributes[") and isinstance(value, str):
            parts = key[len("fields_attributes["):].rstrip("]").split("][")
            if len(parts) == 2 and parts[1] in {"name", "value"} and len(found) <= MAX_FIELDS:
                found.setdefault(parts[0], {})[parts[1]] = value
    if not found:
        return None
    if len(found) > MAX_FIELDS:
        raise ApiError(f"Validation failed: at most {MAX_FIELDS} profile fields")
    return [{"name": f.get("name", ""), "url": f.get("value", "")}
            for _, f in sorted(found.items()) if f.get("name") or f.get("value")]


async def account_by_id(call: Call, value: str) -> tuple[LocalActor | None, RemoteActor | None]:
    if not value.isdigit() or len(value) > 19:
        raise ApiError(NOT_FOUND, 404)
    number = int(value)
    async with call.node.db.read() as session:
        if number >= REMOTE_ACCOUNT_BASE:
            remote = await session.get(RemoteActor, number - REMOTE_ACCOUNT_BASE)
            if remote is not None and not remote.deleted:
                return None, remote
        else:
            group = await session.get(LocalActor, number)
            if group is not None and group.actor_type == "Group":
                return group, None
    raise ApiError(NOT_FOUND, 404)


async def _entity(call: Call, group: LocalActor | None, remote: RemoteActor | None
                  ) -> dict[str, Any]:
    if group is not None:
        async with call.node.db.read() as session:
            return await group_account(session, call.node.urls, group)
    assert remote is not None
    return remote_account(remote)


async def show(call: Call) -> Response:
    group, remote = await account_by_id(call, call.request.path_params["id"])
    return JSONResponse(await _entity(call, group, remote))


async def lookup(call: Call) -> Response:
    acct = (call.params.text("acct", limit=400) or "").lstrip("@")
    user, _, host = acct.partition("@")
    async with call.node.db.read() as session:
        if not host or host.lower() == call.node.settings.host.lower():
            group = await local_actors.get_group(session, user)
            if group is not None and group.actor_type == "Group":
                return JSONResponse(await group_account(session, call.node.urls, group))
        else:
            remote = (await session.exec(select(RemoteActor).where(
                RemoteActor.username == user, RemoteActor.domain == host.lower(),
                col(RemoteActor.deleted).is_(False)))).first()
            if remote is not None:
                return JSONResponse(remote_account(remote))
    raise ApiError(NOT_FOUND, 404)


async def statuses(call: Call) -> Response:
    """GET /api/v1/accounts/:id/statuses: a group's posts (``pinned``,
    ``exclude_replies``, ``only_media``); a remote actor's stored posts."""
    group, remote = await account_by_id(call, call.request.path_params["id"])
    window = Window.of(call.params)
    page = await timelines.account_page(
        call, group=group, remote=remote, window=window, pinned=call.params.flag("pinned"),
        exclude_replies=call.params.flag("exclude_replies"),
        only_media=call.params.flag("only_media"))
    return await timelines.answer(call, page)


async def _relation_rows(call: Call, follower: bool) -> list[RemoteActor]:
    group, _ = await account_by_id(call, call.request.path_params["id"])
    if group is None or group.id != call.group.id:
        return []  # other accounts' collections: not ours to show
    async with call.node.db.read() as session:
        if follower:
            uris = select(Follower.actor_uri).where(
                Follower.local_actor_id == group.id, Follower.state == FollowerState.ACCEPTED)
        else:
            uris = select(Following.target_uri).where(
                Following.local_actor_id == group.id,
                Following.state == FollowingState.ACCEPTED)
        return list((await session.exec(select(RemoteActor).where(
            col(RemoteActor.uri).in_(uris)).order_by(col(RemoteActor.id).desc())
            .limit(80))).all())


async def followers(call: Call) -> Response:
    return JSONResponse([remote_account(a) for a in await _relation_rows(call, True)])


async def following(call: Call) -> Response:
    return JSONResponse([remote_account(a) for a in await _relation_rows(call, False)])


async def relationship(call: Call, account_id: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": account_id, "following": False, "showing_reblogs": True, "notifying": False,
        "languages": None, "followed_by": False, "blocking": False, "blocked_by": False,
        "muting": False, "muting_notifications": False, "requested": False,
        "requested_by": False, "domain_blocking": False, "endorsed": False, "note": ""}
    try:
        _, remote = await account_by_id(call, account_id)
    except ApiError:
        return out
    if remote is None:
        return out
    async with call.node.db.read() as session:
        mine = (await session.exec(select(Following).where(
            Following.local_actor_id == call.group.id,
            Following.target_uri == remote.uri))).first()
        theirs = (await session.exec(select(Follower).where(
            Follower.local_actor_id == call.group.id,
            Follower.actor_uri == remote.uri))).first()
    out["following"] = mine is not None and mine.state == FollowingState.ACCEPTED
    out["requested"] = mine is not None and mine.state == FollowingState.PENDING
    out["followed_by"] = theirs is not None and theirs.state == FollowerState.ACCEPTED
    out["requested_by"] = theirs is not None and theirs.state == FollowerState.PENDING
    return out


async def relationships(call: Call) -> Response:
    ids = call.params.items("id", limit=40)
    return JSONResponse([await relationship(call, value) for value in ids])


async def follow(call: Call) -> Response:
    _, remote = await account_by_id(call, call.request.path_params["id"])
    if remote is None:
        raise ApiError("Validation failed: a group follows accounts of other servers", 422)
    await operations.follow(call.node, call.group.username, remote.uri)
    return JSONResponse(await relationship(call, call.request.path_params["id"]))


async def unfollow(call: Call) -> Response:
    _, remote = await account_by_id(call, call.request.path_params["id"])
    if remote is not None:
        try:
            await operations.unfollow(call.node, call.group.username, remote.uri)
        except operations.OperationError as exc:
            if exc.status != 404:
                raise
    return JSONResponse(await relationship(call, call.request.path_params["id"]))


routes = [
    Route("/api/v1/accounts/verify_credentials",
          endpoint(verify_credentials, scope="profile"), methods=["GET"]),
    Route("/api/v1/accounts/update_credentials",
          endpoint(update_credentials, scope="write:accounts", uploads=True),
          methods=["PATCH"]),
    Route("/api/v1/accounts/lookup", endpoint(lookup, scope="read:accounts"), methods=["GET"]),
    Route("/api/v1/accounts/relationships",
          endpoint(relationships, scope="read:follows"), methods=["GET"]),
    Route("/api/v1/accounts/{id}", endpoint(show, scope="read:accounts"), methods=["GET"]),
    Route("/api/v1/accounts/{id}/statuses", endpoint(statuses, scope="read:statuses"),
          methods=["GET"]),
    Route("/api/v1/accounts/{id}/followers", endpoint(followers, scope="read:accounts"),
          methods=["GET"]),
    Route("/api/v1/accounts/{id}/following", endpoint(following, scope="read:accounts"),
          methods=["GET"]),
    Route("/api/v1/accounts/{id}/follow", endpoint(follow, scope="write:follows"),
          methods=["POST"]),
    Route("/api/v1/accounts/{id}/unfollow", endpoint(unfollow, scope="write:follows"),
          methods=["POST"]),
]
