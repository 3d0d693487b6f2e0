"""Node-wide moderation in the workspace: block and unblock a domain (issue 14,
point 2). Admins only: a block acts on every group of the node. The form calls the
operations the CLI and API call (node/federation/policy.py; docs/ARCHITECTURE.md §9),
so a block from the browser removes the domain's followers exactly like
``hambastegi policy block``."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from node.federation import policy
from node.web.admin.guard import Ctx, forbidden, page, workspace
from node.web.i18n import N_

NOTICES = {
    "blocked": N_("Blocked. Its followers were removed; nothing more goes to it."),
    "unblocked": N_("Block lifted. Its followers come back only when they follow again."),
    "unchanged": N_("Nothing to change."),
}


async def _show(ctx: Ctx, status_code: int = 200, message: str = "", domain: str = "",
                note: str = "", notice: str = "") -> Response:
    return page(ctx, "moderation.html", status_code, message=message, notice=notice,
                blocks=await policy.list_rules(ctx.node, "block"), domain=domain, note=note)


async def _moderation(request: Request, ctx: Ctx) -> Response:
    if not ctx.user.is_admin:
        return forbidden(ctx, N_("Only the node's admins block domains."))
    if request.method == "GET":
        return await _show(ctx, notice=NOTICES.get(request.query_params.get("notice", ""), ""))
    domain, note = ctx.field("domain")[:300], ctx.field("note")[:policy.MAX_NOTE + 10]
    try:
        if ctx.field("action") == "unblock":
            change = await policy.unblock_domain(ctx.node, domain)
            done = "unblocked"
        else:
            change = await policy.block_domain(ctx.node, domain, note or None)
            done = "blocked"
    except policy.PolicyError as exc:
        # The reason in the form, what was typed kept; nothing stored (policy._domain
        # refuses before any write).
        return await _show(ctx, 400, str(exc), domain, note)
    result = done if change.changed or change.followers_removed else "unchanged"
    return RedirectResponse(f"/admin/moderation?notice={quote(result)}", status_code=303)


moderation = workspace(_moderation)
