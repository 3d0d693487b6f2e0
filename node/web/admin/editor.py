"""Writing calls and news: one flow for both (new, draft, preview, publish, edit).

The form's buttons: ``languages`` (show field sets for the languages listed),
``draft`` (keep it as a draft), ``preview`` (keep it and show it as it will read),
``publish``. Publishing calls the operation the API calls (one code path: what the
browser publishes federates exactly like the CLI), then the draft row goes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from node.accounts import drafts
from node.calls import operations as calls
from node.federation.runtime import Node
from node.groups.errors import OperationError
from node.news import operations as news
from node.storage.models import Draft
from node.web.admin import forms
from node.web.admin.guard import Ctx, page, workspace
from node.web.admin.uploads import UploadProblem, take_image
from node.web.i18n import N_


@dataclass(frozen=True)
class Kind:
    name: str  # "call" | "news", as in draft.kind
    template: str
    body_from_form: Callable[[Mapping[str, Any], list[str]], dict[str, Any]]
    fields_of: Callable[[Mapping[str, Any]], dict[str, Any]]
    upload_field: str
    media_field: str
    create: Callable[[Node, str, dict[str, Any]], Awaitable[str]]
    update: Callable[[Node, str, dict[str, Any], int | None], Awaitable[str]]


async def _update_call(node: Node, uuid: str, body: dict[str, Any], group: int | None) -> str:
    return await calls.update_call(node, uuid, body, allowed_actor=group)


async def _update_news(node: Node, uuid: str, body: dict[str, Any], group: int | None) -> str:
    return await news.replace_item(node, uuid, body, allowed_actor=group)


KINDS = {
    "call": Kind("call", "call_form.html", forms.call_body, forms.call_fields, "flyer",
                 "flyer_media", calls.create_call, _update_call),
    "news": Kind("news", "news_form.html", forms.news_body, forms.news_fields, "photo",
                 "photo_media", news.create_item, _update_news),
}


def show_form(ctx: Ctx, kind: Kind, body: Mapping[str, Any], languages: list[str], *,
              draft_id: int | None = None, editing: str | None = None, message: str = "",
              notice: str = "", status_code: int = 200) -> Response:
    group = ctx.group_name
    if editing is not None:
        action = f"/admin/groups/{group}/{kind.name}/{editing}/edit"
    elif draft_id is not None:
        action = f"/admin/groups/{group}/drafts/{draft_id}"
    else:
        action = f"/admin/groups/{group}/{kind.name}/new"
    return page(ctx, kind.template, status_code, languages=languages,
                f=kind.fields_of(body), action=action, draft_id=draft_id, editing=editing,
                message=message, notice=notice, kinds=forms.KINDS,
                join_modes=forms.JOIN_MODES)


async def submit(request: Request, ctx: Ctx, kind: Kind, *, draft_id: int | None = None,
                 editing: str | None = None) -> Response:
    """Handle a POST of the call or news form."""
    assert ctx.form is not None and ctx.group is not None
    languages = forms.language_list(ctx.field("languages"), ctx.group.language)
    values: dict[str, Any] = {k: v for k, v in ctx.form.items() if isinstance(v, str)}
    try:
        uploaded = await take_image(ctx, kind.upload_field)
    except UploadProblem as exc:
        return show_form(ctx, kind, kind.body_from_form(values, languages), languages,
                         draft_id=draft_id, editing=editing, message=str(exc),
                         status_code=400)
    if uploaded is not None:
        values[kind.media_field] = uploaded
    body = kind.body_from_form(values, languages)
    action = ctx.field("action", "draft")
    if action == "languages":
        return show_form(ctx, kind, body, languages, draft_id=draft_id, editing=editing)
    if action == "publish":
        try:
            if editing is not None:
                url = await kind.update(ctx.node, editing, body, ctx.group.id)
            else:
                url = await kind.create(ctx.node, ctx.group_name, body)
        except OperationError as exc:
            return show_form(ctx, kind, body, languages, draft_id=draft_id, editing=editing,
                             message=str(exc), status_code=exc.status)
        if draft_id is not None:
            await drafts.delete(ctx.node, draft_id)
        uuid = url.rsplit("/", 1)[-1]
        return RedirectResponse(f"/admin/groups/{ctx.group_name}/posts/{uuid}?notice=published",
                                status_code=303)
    if editing is not None:
        return show_form(ctx, kind, body, languages, editing=editing,
                         message=N_("A published post is changed by publishing it again."),
                         status_code=400)
    try:
        draft = await drafts.save(ctx.node, ctx.group, kind.name, body, draft_id=draft_id,
                                  account_id=ctx.user.id)
    except OperationError as exc:  # the form comes back as typed, with the reason
        return show_form(ctx, kind, body, languages, draft_id=draft_id, message=str(exc),
                         status_code=exc.status)
    where = f"/admin/groups/{ctx.group_name}/drafts/{draft.id}"
    if action == "preview":
        return RedirectResponse(where + "/preview", status_code=303)
    return RedirectResponse(where + "?notice=saved", status_code=303)


def _new(kind: Kind) -> Callable[[Request], Awaitable[Response]]:
    async def handler(request: Request, ctx: Ctx) -> Response:
        if request.method == "POST":
            return await submit(request, ctx, kind)
        assert ctx.group is not None
        languages = forms.language_list(request.query_params.get("languages", ""),
                                        ctx.group.language)
        return show_form(ctx, kind, {"language": languages[0]}, languages)

    return workspace(handler)


async def own_draft(ctx: Ctx, draft_id: int) -> Draft:
    draft = await drafts.get(ctx.node, draft_id)
    if ctx.group is None or draft.local_actor_id != ctx.group.id:
        raise OperationError("no such draft", status=404)
    return draft


async def _draft(request: Request, ctx: Ctx) -> Response:
    draft = await own_draft(ctx, request.path_params["draft_id"])
    kind = KINDS[draft.kind]
    if request.method == "POST":
        return await submit(request, ctx, kind, draft_id=draft.id)
    assert ctx.group is not None
    languages = forms.body_languages(kind.name, draft.body) or [ctx.group.language]
    extra = request.query_params.get("languages")
    if extra:
        languages = forms.language_list(extra, ctx.group.language)
    notice = N_("Draft saved. It is not public.") if request.query_params.get("notice") else ""
    return show_form(ctx, kind, draft.body, languages, draft_id=draft.id, notice=notice)


async def _edit(request: Request, ctx: Ctx) -> Response:
    """Edit a published call or news item: the form filled with what is published."""
    kind = KINDS.get(request.path_params["kind"])
    if kind is None:
        raise OperationError("no such page", status=404)
    uuid = request.path_params["uuid"]
    body = await published_body(ctx, kind.name, uuid)
    if request.method == "POST":
        return await submit(request, ctx, kind, editing=uuid)
    return show_form(ctx, kind, body, forms.body_languages(kind.name, body), editing=uuid)


async def published_body(ctx: Ctx, kind: str, uuid: str) -> dict[str, Any]:
    from node.federation import publishing
    from node.storage.models import Event, NewsItem

    async with ctx.node.db.read() as session:
        obj = await publishing.get_object(session, uuid)
        if obj is None or ctx.group is None or obj.local_actor_id != ctx.group.id \
                or obj.deleted_at is not None:
            raise OperationError("no such post", status=404)
        if kind == "call":
            event = await calls.event_for(session, obj)
            assert isinstance(event, Event)
            return forms.published_call_body(obj, event)
        from sqlmodel import select

        item = (await session.exec(select(NewsItem).where(
            NewsItem.object_id == obj.id))).first()
        if item is None:
            raise OperationError("no such news item", status=404)
        return {"language": obj.language, "versions": item.versions, "photos": [
            {"media": p["media"], "alt": p.get("alt", {})} for p in item.photos],
            "hashtags": item.hashtags, "sources": item.sources,
            **({"country": item.country} if item.country else {})}


new_call = _new(KINDS["call"])
new_news = _new(KINDS["news"])
draft_form = workspace(_draft)
edit_published = workspace(_edit)
