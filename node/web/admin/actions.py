"""The workspace's buttons that change something other than a text: preview and
publish a draft, delete it, publish a bulletin, postpone or cancel a call, invite co-signers, answer
invitations, approve follow and join requests, hide a reply. Each calls the
operation the CLI and API call, limited to the group of the page
(``allowed_actor``), so an editor cannot reach another group's posts by id."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from node.accounts import drafts
from node.calls import cosign, participation
from node.calls import operations as calls
from node.calls.events import contents_from
from node.groups import operations
from node.groups.errors import OperationError
from node.news.items import render_markdown
from node.web import i18n
from node.web.admin import forms
from node.web.admin.editor import KINDS, own_draft
from node.web.admin.guard import Ctx, back_to_group, page, workspace
from node.web.i18n import N_


async def _preview(request: Request, ctx: Ctx) -> Response:
    """The draft as it will read, rendered here; nothing is sent anywhere."""
    draft = await own_draft(ctx, request.path_params["draft_id"])
    body = draft.body
    languages = forms.body_languages(draft.kind, body)
    versions = []
    for lang in languages:
        if draft.kind == "call":
            title = (body.get("title") or {}).get(lang, "")
            text = (body.get("text") or {}).get(lang, "")
            html = contents_from({lang: text})[lang] if text else ""
        else:
            version = (body.get("versions") or {}).get(lang) or {}
            title = version.get("title", "")
            html = render_markdown(str(version.get("text", "")))
        versions.append({"lang": lang, "dir": i18n.direction(lang), "title": title,
                         "html": Markup(html)})  # noqa: S704 - escaped / sanitised above
    if draft.kind == "call":
        media, alt = (body.get("flyer") or {}).get("media"), (body.get("flyer") or {}).get(
            "alt", "")
    else:
        photo = (body.get("photos") or [{}])[0]
        media = photo.get("media")
        alt = (photo.get("alt") or {}).get(body.get("language", ""), "")
    return page(ctx, "preview.html", draft=draft, versions=versions,
                image=ctx.node.urls.media(f"uploads/{media}") if media else None, alt=alt,
                start=body.get("start", ""), timezone=body.get("timezone", ""))


async def _publish_draft(request: Request, ctx: Ctx) -> Response:
    draft = await own_draft(ctx, request.path_params["draft_id"])
    kind = KINDS[draft.kind]
    try:
        url = await kind.create(ctx.node, ctx.group_name, draft.body)
    except OperationError as exc:
        return page(ctx, "message.html", exc.status, title=N_("Not published"),
                    message=f"{exc} — edit the draft and try again.",
                    back=f"/admin/groups/{ctx.group_name}/drafts/{draft.id}")
    await drafts.delete(ctx.node, draft.id or 0)
    return RedirectResponse(
        f"/admin/groups/{ctx.group_name}/posts/{url.rsplit('/', 1)[-1]}?notice=published",
        status_code=303)


async def _delete_draft(request: Request, ctx: Ctx) -> Response:
    draft = await own_draft(ctx, request.path_params["draft_id"])
    await drafts.delete(ctx.node, draft.id or 0)
    return back_to_group(ctx, "deleted")


async def _status(request: Request, ctx: Ctx) -> Response:
    assert ctx.group is not None
    start = ctx.field("start") or None
    await calls.change_status(ctx.node, request.path_params["uuid"], ctx.field("status"),
                              start=start, allowed_actor=ctx.group.id)
    return RedirectResponse(
        f"/admin/groups/{ctx.group_name}/posts/{request.path_params['uuid']}?notice=done",
        status_code=303)


async def _invite(request: Request, ctx: Ctx) -> Response:
    assert ctx.group is not None
    await cosign.invite(ctx.node, request.path_params["uuid"], ctx.field("target"),
                        allowed_actor=ctx.group.id)
    return RedirectResponse(
        f"/admin/groups/{ctx.group_name}/posts/{request.path_params['uuid']}?notice=done",
        status_code=303)


def _decision(decide: Callable[[Ctx, int, bool], Awaitable[None]]
              ) -> Callable[[Request], Awaitable[Response]]:
    async def handler(request: Request, ctx: Ctx) -> Response:
        answer = request.path_params["answer"]
        if answer not in ("accept", "reject", "decline"):
            raise OperationError("no such answer", status=404)
        await decide(ctx, request.path_params["item_id"], answer == "accept")
        return back_to_group(ctx, "done")

    return workspace(handler)


async def _follow(ctx: Ctx, item_id: int, accept: bool) -> None:
    await operations.decide_follow_request(ctx.node, ctx.group_name, item_id, accept=accept)


async def _join(ctx: Ctx, item_id: int, accept: bool) -> None:
    await participation.decide(ctx.node, ctx.group_name, item_id, accept=accept)


async def _invitation(ctx: Ctx, item_id: int, accept: bool) -> None:
    await cosign.respond(ctx.node, ctx.group_name, item_id, accept=accept)


async def _publish_bulletin(request: Request, ctx: Ctx) -> Response:
    """Bulletin N+1, as `hambastegi bulletin publish`: its mails are queued with it
    (node/mail/queue.bulletin_hook) and their progress shows on the group's page."""
    from node.mail.queue import bulletin_hook
    from node.news import bulletin

    try:
        await bulletin.publish(ctx.node, ctx.group_name,
                               on_published=bulletin_hook(ctx.node.settings))
    except OperationError as exc:
        return page(ctx, "message.html", exc.status, title=N_("Not published"),
                    message=str(exc), back=f"/admin/groups/{ctx.group_name}")
    return back_to_group(ctx, "bulletin")


async def _hide(request: Request, ctx: Ctx) -> Response:
    assert ctx.group is not None
    await operations.hide_reply(ctx.node, request.path_params["item_id"], hidden=True,
                                allowed_actor=ctx.group.id)
    return back_to_group(ctx, "done")


preview = workspace(_preview)
publish_draft = workspace(_publish_draft)
delete_draft = workspace(_delete_draft)
change_status = workspace(_status)
invite = workspace(_invite)
follow_request = _decision(_follow)
join_request = _decision(_join)
invitation = _decision(_invitation)
hide_reply = workspace(_hide)
publish_bulletin = workspace(_publish_bulletin)
