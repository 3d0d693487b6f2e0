"""What an editor sees: their groups, and per group its drafts, posts, followers
(count and hosts), follow and join requests, co-signing invitations and replies;
per post its delivery status per host (delivery.delivery_status)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import Response

from node.accounts import drafts, users
from node.calls import cosign, participation
from node.crosspost import status as crosspost_status
from node.federation import delivery, publishing
from node.groups import operations
from node.groups.errors import OperationError
from node.storage.models import Activity, Event, Follower, LocalObject
from node.web.admin import forms
from node.web.admin.guard import Ctx, page, workspace
from node.web.i18n import N_

NOTICES = {
    "published": N_("Published. Followers' servers receive it now; the table below shows "
                    "where it arrived."),
    "saved": N_("Draft saved. It is not public."),
    "password": N_("Password changed. Your other sessions were logged out."),
    "done": N_("Done."),
    "deleted": N_("Draft deleted."),
    "bulletin": N_("Bulletin published. Its mails go out now; their progress is shown "
                   "under Mailing lists."),
}
RECENT_POSTS = 30
# Stored words the pages show through the catalogue (``_(state)``): event statuses,
# delivery states per host (delivery.delivery_status), co-signers' answers, states on
# Telegram / Bluesky (crosspost/status.py).
SHOWN_STATES = (N_("scheduled"), N_("postponed"), N_("cancelled"), N_("delivered"),
                N_("sent"), N_("skipped"), N_("retrying"), N_("waiting"), N_("failed"),
                N_("invited"), N_("accepted"), N_("declined"), N_("withdrawn"))


def notice(request: Request) -> str:
    return NOTICES.get(request.query_params.get("notice", ""), "")


async def _home(request: Request, ctx: Ctx) -> Response:
    groups = await users.visible_groups(ctx.node, ctx.user)
    return page(ctx, "dashboard.html", groups=groups, notice=notice(request))


async def _group(request: Request, ctx: Ctx) -> Response:
    assert ctx.group is not None
    node, group = ctx.node, ctx.group
    async with node.db.read() as session:
        posts = list((await session.exec(
            select(LocalObject).where(LocalObject.local_actor_id == group.id,
                                      col(LocalObject.deleted_at).is_(None))
            .order_by(col(LocalObject.published).desc()).limit(RECENT_POSTS))).all())
        events = {e.object_id: e for e in (await session.exec(select(Event).where(
            col(Event.object_id).in_([p.id for p in posts])))).all()} if posts else {}
        # Counted in the database: a group may have a million followers.
        hosts = dict((await session.exec(
            select(Follower.host, func.count()).where(
                Follower.local_actor_id == group.id, Follower.state == "accepted")
            .group_by(Follower.host))).all())
    news_ids = await _news_objects(ctx, [p.id or 0 for p in posts])
    mail_counts: list[tuple[str, str, int]] = []
    mail_progress: list[Any] = []
    if node.settings.mail_enabled:
        from node.mail import queue, subscriptions

        # Counts only: the workspace never shows a subscriber's address (issue 26).
        mail_counts = await subscriptions.counts(node, group)
        mail_progress = await queue.progress(node.db, group_id=group.id, limit=5)
    return page(
        ctx, "group.html", notice=notice(request),
        drafts=[{"draft": d, "title": _draft_title(d.kind, d.body)}
                for d in await drafts.of_group(node, group)],
        posts=[{"obj": p, "event": events.get(p.id or 0), "title": _title(p),
                "kind": "call" if p.id in events else ("news" if p.id in news_ids else None),
                "url": node.urls.object(p.uuid)} for p in posts],
        follower_count=sum(hosts.values()),
        follower_hosts=sorted(((h or "?"), n) for h, n in hosts.items()),
        follow_requests=await operations.follow_requests(node, group.username),
        join_requests=await participation.pending(node, group.username),
        invitations=[i for i in await cosign.invitations(node, group.username)
                     if i.state == "pending"],
        replies=await operations.replies(node, group.username),
        mail_counts=mail_counts, mail_progress=mail_progress,
    )


async def _news_objects(ctx: Ctx, ids: list[int]) -> set[int]:
    from node.storage.models import NewsItem

    if not ids:
        return set()
    async with ctx.node.db.read() as session:
        return set((await session.exec(select(NewsItem.object_id).where(
            col(NewsItem.object_id).in_(ids)))).all())


def _title(obj: LocalObject) -> str:
    from node.core.text import html_to_plain

    if obj.names:
        return obj.names.get(obj.language) or next(iter(obj.names.values()))
    text = obj.contents.get(obj.language) or next(iter(obj.contents.values()), "")
    plain = html_to_plain(text)
    return plain[:80] + ("…" if len(plain) > 80 else "")


def _draft_title(kind: str, body: dict[str, Any]) -> str:
    languages = forms.body_languages(kind, body)
    if kind == "call":
        titles = body.get("title") or {}
        found = next((titles[lang] for lang in languages if lang in titles), "")
    else:
        versions = body.get("versions") or {}
        found = next((versions[lang].get("title") or versions[lang].get("text", "")
                      for lang in languages if lang in versions), "")
    return str(found)[:80] or "(untitled)"


async def _post(request: Request, ctx: Ctx) -> Response:
    """One post: where each of its activities arrived, host by host."""
    assert ctx.group is not None
    node = ctx.node
    async with node.db.read() as session:
        obj = await publishing.get_object(session, request.path_params["uuid"])
        if obj is None or obj.local_actor_id != ctx.group.id:
            raise OperationError("no such post", status=404)
        event = (await session.exec(select(Event).where(Event.object_id == obj.id))).first()
        activities = list((await session.exec(
            select(Activity).where(Activity.object_uri == node.urls.object(obj.uuid))
            .order_by(col(Activity.id)))).all())
        statuses = [{"activity": a, "hosts": await delivery.delivery_status(session, a.id or 0)}
                    for a in activities]
        outside = await crosspost_status.of_post(session, node.urls, obj)
    cosigners = (await cosign.cosigners(node, obj.uuid, allowed_actor=ctx.group.id)
                 if event is not None else [])
    return page(ctx, "post.html", obj=obj, event=event, title=_title(obj),
                url=node.urls.object(obj.uuid), statuses=statuses, cosigners=cosigners,
                outside=outside,
                notice=notice(request))


home = workspace(_home)
group_page = workspace(_group)
post_page = workspace(_post)
