"""Helpers of the client API tests: a group with an editor, an app, a token got
through the node's own authorize page over real HTTP."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from node.accounts import users
from node.groups import operations
from tests.conftest import LiveNode
from tests.workspace_helpers import PASSWORD, csrf_of

REDIRECT = "org.hambastegi.test:/oauth-callback"
TICKET_RE = re.compile(r'name="ticket" value="([^"]+)"')


async def group_with_editor(live: LiveNode, group: str = "tehran", user: str = "sara",
                            language: str = "fa") -> None:
    await operations.create_group(live.node, group, display_name=group.title(),
                                  language=language)
    await users.create_user(live.node, user, groups=(group,))
    await users.set_password(live.node, user, PASSWORD)


async def register(client: httpx.AsyncClient, *, scopes: str = "read write follow",
                   redirect: str = REDIRECT) -> dict[str, Any]:
    response = await client.post("/api/v1/apps", data={
        "client_name": "Test app", "redirect_uris": redirect, "scopes": scopes,
        "website": "https://app.example"})
    assert response.status_code == 200, response.text
    app: dict[str, Any] = response.json()
    return app


async def authorize(client: httpx.AsyncClient, app: dict[str, Any], *, user: str = "sara",
                    password: str = PASSWORD, scope: str = "read write follow",
                    group: str | None = None, redirect: str = REDIRECT,
                    **extra: str) -> httpx.Response:
    """Log in on the authorize page; the answer (302 to the app, or a page)."""
    query = {"response_type": "code", "client_id": app["client_id"],
             "redirect_uri": redirect, "scope": scope, **extra}
    page = await client.get("/oauth/authorize", params=query)
    assert page.status_code == 200, page.text
    form = {k: v for k, v in query.items() if k != "response_type"}
    answer = await client.post("/oauth/authorize", data={
        **form, "csrf": csrf_of(page.text), "username": user, "password": password,
        "decision": "allow"})
    if group is not None and answer.status_code == 200 and 'name="group"' in answer.text:
        ticket = TICKET_RE.search(answer.text)
        assert ticket is not None
        answer = await client.post("/oauth/authorize", data={
            **form, "csrf": csrf_of(answer.text), "ticket": ticket.group(1),
            "username": user, "group": group, "decision": "allow"})
    return answer


def code_of(response: httpx.Response) -> str:
    assert response.status_code == 302, response.text
    query = parse_qs(urlsplit(response.headers["location"]).query)
    return query["code"][0]


async def token_for(live: LiveNode, *, scope: str = "read write follow", user: str = "sara",
                    group: str | None = None) -> str:
    async with httpx.AsyncClient(base_url=live.base_url, timeout=30) as client:
        app = await register(client, scopes=scope)
        code = code_of(await authorize(client, app, scope=scope, user=user, group=group))
        response = await client.post("/oauth/token", data={
            "grant_type": "authorization_code", "code": code, "client_id": app["client_id"],
            "client_secret": app["client_secret"], "redirect_uri": REDIRECT})
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token
