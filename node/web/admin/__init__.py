"""The editors' workspace under /admin (issue 14): one module per concern.

guard (session, CSRF, roles), auth (login, logout, passwords), dashboard (groups,
posts, delivery status), editor (writing calls and news, drafts), actions (the
other buttons), moderation (blocking domains, admins only), apps (Mastodon apps
authorised, revoking), forms (HTML forms ↔
API bodies), uploads (images in forms).
Templates: node/web/templates/admin/."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from node.web.admin import actions, apps, auth, dashboard, editor, moderation

STYLESHEET = Path(__file__).resolve().parent.parent / "templates" / "admin" / "admin.css"


async def stylesheet(request: Request) -> Response:
    # A file of our own, not inline: a strict style-src needs no 'unsafe-inline'.
    return Response(STYLESHEET.read_bytes(), media_type="text/css",
                    headers={"Cache-Control": "public, max-age=3600"})


G = "/admin/groups/{group}"
BOTH = ["GET", "POST"]

routes = [
    Route("/login", auth.login_form, methods=BOTH),
    Route("/logout", auth.logout, methods=["POST"]),
    Route("/admin", dashboard.home),
    Route("/admin/admin.css", stylesheet),
    Route("/admin/password", auth.password, methods=BOTH),
    Route("/admin/moderation", moderation.moderation, methods=BOTH),
    Route("/admin/apps", apps.authorised),
    Route("/admin/apps/{token_id:int}/revoke", apps.revoke, methods=["POST"]),
    Route("/admin/set-password/{token}", auth.set_password, methods=BOTH),
    Route(G, dashboard.group_page),
    Route(G + "/call/new", editor.new_call, methods=BOTH),
    Route(G + "/news/new", editor.new_news, methods=BOTH),
    Route(G + "/{kind}/{uuid}/edit", editor.edit_published, methods=BOTH),
    Route(G + "/drafts/{draft_id:int}", editor.draft_form, methods=BOTH),
    Route(G + "/drafts/{draft_id:int}/preview", actions.preview),
    Route(G + "/drafts/{draft_id:int}/publish", actions.publish_draft, methods=["POST"]),
    Route(G + "/drafts/{draft_id:int}/delete", actions.delete_draft, methods=["POST"]),
    Route(G + "/posts/{uuid}", dashboard.post_page),
    Route(G + "/posts/{uuid}/status", actions.change_status, methods=["POST"]),
    Route(G + "/posts/{uuid}/invite", actions.invite, methods=["POST"]),
    Route(G + "/follow-requests/{item_id:int}/{answer}", actions.follow_request,
          methods=["POST"]),
    Route(G + "/join-requests/{item_id:int}/{answer}", actions.join_request, methods=["POST"]),
    Route(G + "/invitations/{item_id:int}/{answer}", actions.invitation, methods=["POST"]),
    Route(G + "/replies/{item_id:int}/hide", actions.hide_reply, methods=["POST"]),
    Route(G + "/bulletin", actions.publish_bulletin, methods=["POST"]),
]
