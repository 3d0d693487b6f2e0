"""The Mastodon apps a user authorised (node/clientapi), and revoking one: the same
operations as `hambastegi user apps` and `user revoke-app`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from node.clientapi import apps
from node.web.admin.guard import Ctx, page, workspace
from node.web.i18n import N_

NOTICES = {"revoked": N_("The app was revoked.")}


async def _apps(request: Request, ctx: Ctx) -> Response:
    rows = await apps.authorised_apps(ctx.node, ctx.user.username)
    return page(ctx, "apps.html", apps=rows,
                notice=NOTICES.get(request.query_params.get("notice", ""), ""))


async def _revoke(request: Request, ctx: Ctx) -> Response:
    if not await apps.revoke_for_user(ctx.node, ctx.user.username,
                                      request.path_params["token_id"]):
        return page(ctx, "message.html", 404, title=N_("Not found"),
                    message=N_("No such app authorisation."))
    return RedirectResponse("/admin/apps?notice=revoked", status_code=303)


authorised = workspace(_apps)
revoke = workspace(_revoke)
