"""OAuth 2 of the client API (issue 29, point 1 and "Bad input and safety"): codes are
single-use, expire, are bound to their redirect URI and PKCE challenge; a failed
exchange issues nothing; the authorize page is the workspace login."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import httpx
from sqlalchemy import func
from sqlmodel import select

from node.accounts import users
from node.clientapi import apps
from node.groups import operations
from node.storage.models import OAuthApp, OAuthToken
from tests.clientapi_helpers import REDIRECT, authorize, code_of, group_with_editor, register
from tests.conftest import LiveNode
from tests.workspace_helpers import PASSWORD, Clock, csrf_of


async def tokens(live: LiveNode) -> int:
    async with live.node.db.read() as session:
        return int((await session.exec(select(func.count()).select_from(OAuthToken))).one())


def exchange(app: dict[str, Any], code: str, **overrides: str) -> dict[str, str]:
    return {"grant_type": "authorization_code", "code": code, "client_id": app["client_id"],
            "client_secret": app["client_secret"], "redirect_uri": REDIRECT, **overrides}


async def test_a_code_gives_one_token_and_never_a_second(live_node: LiveNode) -> None:
    await group_with_editor(live_node)
    async with httpx.AsyncClient(base_url=live_node.base_url) as client:
        app = await register(client)
        code = code_of(await authorize(client, app))
        first = await client.post("/oauth/token", data=exchange(app, code))
        assert first.status_code == 200 and first.json()["token_type"] == "Bearer"
        assert first.json()["scope"] == "read write follow"
        again = await client.post("/oauth/token", data=exchange(app, code))
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
        me = await client.get("/api/v1/accounts/verify_credentials", headers={
            "Authorization": f"Bearer {first.json()['access_token']}"})
        assert me.status_code == 200 and me.json()["acct"] == "tehran"
    assert await tokens(live_node) == 1


async def test_wrong_code_other_redirect_or_other_app_issue_nothing(
        live_node: LiveNode) -> None:
    await group_with_editor(live_node)
    async with httpx.AsyncClient(base_url=live_node.base_url) as client:
        app = await register(client)
        other = await register(client)
        wrong = await client.post("/oauth/token", data=exchange(app, "not-a-code"))
        assert wrong.json()["error"] == "invalid_grant" and wrong.status_code == 400
        code = code_of(await authorize(client, app))
        moved = await client.post("/oauth/token", data=exchange(
            app, code, redirect_uri="org.hambastegi.test:/elsewhere"))
        assert moved.status_code == 400 and moved.json()["error"] == "invalid_grant"
        # The failed exchange used the code up (RFC 6749 §10.5).
        right = await client.post("/oauth/token", data=exchange(app, code))
        assert right.json()["error"] == "invalid_grant"
        code = code_of(await authorize(client, app))
        stolen = await client.post("/oauth/token", data=exchange(other, code))
        assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
        bad_secret = await client.post("/oauth/token", data=exchange(
            app, code, client_secret="guess"))
        assert bad_secret.status_code == 401 and bad_secret.json()["error"] == "invalid_client"
    assert await tokens(live_node) == 0


async def test_an_expired_code_is_refused(live_node: LiveNode) -> None:
    await group_with_editor(live_node)
    clock = Clock()
    clock.advance(minutes=-11)  # the code was issued 11 minutes ago
    live_node.app.state.admin_clock = clock
    async with httpx.AsyncClient(base_url=live_node.base_url) as client:
        app = await register(client)
        code = code_of(await authorize(client, app))
        answer = await client.post("/oauth/token", data=exchange(app, code))
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"
    assert "expired" in answer.json()["error_description"]
    assert await tokens(live_node) == 0


def challenge_of(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def test_pkce_s256_binds_the_code_to_the_verifier(live_node: LiveNode) -> None:
    await group_with_editor(live_node)
    verifier = "v" * 43 + "erifier-of-the-app"
    async with httpx.AsyncClient(base_url=live_node.base_url) as client:
        app = await register(client)
        code = code_of(await authorize(client, app, code_challenge=challenge_of(verifier),
                                       code_challenge_method="S256"))
        wrong = await client.post("/oauth/token", data=exchange(
            app, code, code_verifier="x" * 50))
        assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
        code = code_of(await authorize(client, app, code_challenge=challenge_of(verifier),
                                       code_challenge_method="S256"))
        missing = await client.post("/oauth/token", data=exchange(app, code))
        assert missing.json()["error"] == "invalid_grant"
        code = code_of(await authorize(client, app, code_challenge=challenge_of(verifier),
                                       code_challenge_method="S256"))
        # A public client: the verifier without the secret.
        public = {k: v for k, v in exchange(app, code, code_verifier=verifier).items()
                  if k != "client_secret"}
        right = await client.post("/oauth/token", data=public)
        assert right.status_code == 200, right.text
        plain = await client.get("/oauth/authorize", params={
            "response_type": "code", "client_id": app["client_id"], "redirect_uri": REDIRECT,
            "code_challenge": verifier, "code_challenge_method": "plain"}, follow_redirects=False)
        assert plain.status_code == 302 and "error=invalid_request" in plain.headers["location"]
    assert await tokens(live_node) == 1


async def test_an_unregistered_redirect_uri_gets_a_page_and_no_redirect(
        live_node: LiveNode) -> None:
    await group_with_editor(live_node)
    async with httpx.AsyncClient(base_url=live_node.base_url) as client:
        app = await register(client)
        for uri in ("https://evil.example/cb", REDIRECT + "x", REDIRECT.upper()):
            answer = await client.get("/oauth/authorize", params={
                "response_type": "code", "client_id": app["client_id"], "redirect_uri": uri})
            assert answer.status_code == 400 and "location" not in answer.headers
        unknown = await client.get("/oauth/authorize", params={
            "response_type": "code", "client_id": "nobody", "redirect_uri": REDIRECT})
        assert unknown.status_code == 400


async def test_registration_refuses_hostile_redirect_uris_and_bodies(live_node: LiveNode) -> None:
    async with httpx.AsyncClient(base_url=live_node.base_url) as client:
        for uri in ("javascript:alert(1)", "http://example.com/cb", "https://x.example/#frag",
                    "data:text/html,hi", "no-scheme", "https://a.example/\nhttps://b"):
            answer = await client.post("/api/v1/apps", data={
                "client_name": "x", "redirect_uris": uri if "\n" not in uri else "javascript:x"})
            assert answer.status_code == 422, (uri, answer.text)
            assert "error" in answer.json()
        for uri in (REDIRECT, "com.tapbots.Ivory.19300:/request_token", apps.OOB,
                    "https://app.example/cb", "http://127.0.0.1:4000/cb"):
            ok = await client.post("/api/v1/apps", json={"client_name": "x",
                                                         "redirect_uris": [uri]})
            assert ok.status_code == 200 and ok.json()["redirect_uris"] == [uri]
        for body in ({"client_name": "", "redirect_uris": REDIRECT},
                     {"client_name": "x" * 201, "redirect_uris": REDIRECT},
                     {"client_name": "x", "redirect_uris": REDIRECT, "scopes": "admin:write"},
                     {"client_name": "x"}):
            assert (await client.post("/api/v1/apps", data=body)).status_code == 422
        huge = await client.post("/api/v1/apps", content=b"a=" + b"x" * 300_000,
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert huge.status_code == 413
        broken = await client.post("/api/v1/apps", content=b"{not json",
                                   headers={"Content-Type": "application/json"})
        assert broken.status_code == 400
    async with live_node.node.db.read() as session:
        stored = (await session.exec(select(OAuthApp))).all()
    assert len(stored) == 5
    assert all(row.client_secret_hash != "" and len(row.client_secret_hash) == 64
               for row in stored)


async def test_the_authorize_page_throttles_and_checks_csrf_like_the_login(
        live_node: LiveNode) -> None:
    await group_with_editor(live_node)
    async with httpx.AsyncClient(base_url=live_node.base_url) as client:
        app = await register(client)
        for _ in range(5):
            wrong = await authorize(client, app, password="wrong password!")
            assert wrong.status_code == 401 and "location" not in wrong.headers
        blocked = await authorize(client, app)  # the right password, too late
        assert blocked.status_code == 429
    async with httpx.AsyncClient(base_url=live_node.base_url) as client:
        page = await client.get("/oauth/authorize", params={
            "response_type": "code", "client_id": app["client_id"], "redirect_uri": REDIRECT})
        assert "form-action 'self' org.hambastegi.test:" in \
            page.headers["content-security-policy"]
        forged = await client.post("/oauth/authorize", data={
            "client_id": app["client_id"], "redirect_uri": REDIRECT, "csrf": "0" * 64,
            "username": "sara", "password": PASSWORD})
        assert forged.status_code == 403
        denied = await client.post("/oauth/authorize", data={
            "client_id": app["client_id"], "redirect_uri": REDIRECT, "state": "s1",
            "csrf": csrf_of(page.text), "decision": "deny"})
        assert denied.status_code == 302
        assert "error=access_denied" in denied.headers["location"]
        assert "state=s1" in denied.headers["location"]
    assert await tokens(live_node) == 0


async def test_out_of_band_shows_the_code_on_a_page(live_node: LiveNode) -> None:
    await group_with_editor(live_node)
    async with httpx.AsyncClient(base_url=live_node.base_url) as client:
        app = await register(client, redirect=apps.OOB)
        page = await authorize(client, app, redirect=apps.OOB)
        assert page.status_code == 200
        import re

        code = re.search(r'<code id="code" dir="ltr">([^<]+)</code>', page.text)
        assert code is not None
        answer = await client.post("/oauth/token", data=exchange(
            app, code.group(1), redirect_uri=apps.OOB))
        assert answer.status_code == 200


async def test_an_editor_of_two_groups_chooses_one_and_cannot_forge_another(
        live_node: LiveNode) -> None:
    for name in ("tehran", "ahvaz", "tabriz"):
        await operations.create_group(live_node.node, name, display_name=name, language="fa")
    await users.create_user(live_node.node, "sara", groups=("tehran", "ahvaz"))
    await users.set_password(live_node.node, "sara", PASSWORD)
    async with httpx.AsyncClient(base_url=live_node.base_url) as client:
        app = await register(client)
        forged = await authorize(client, app, group="tabriz")
        assert forged.status_code == 200 and 'name="group"' in forged.text
        assert "tabriz" not in forged.text
        code = code_of(await authorize(client, app, group="ahvaz"))
        token = (await client.post("/oauth/token", data=exchange(app, code))).json()
        me = await client.get("/api/v1/accounts/verify_credentials", headers={
            "Authorization": f"Bearer {token['access_token']}"})
        assert me.json()["acct"] == "ahvaz"


async def test_a_token_ends_when_its_user_loses_the_group_or_is_deleted(
        live_node: LiveNode) -> None:
    from tests.clientapi_helpers import token_for

    await group_with_editor(live_node)
    token = await token_for(live_node)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=live_node.base_url) as client:
        assert (await client.get("/api/v1/timelines/home", headers=headers)).status_code == 200
        await users.delete_user(live_node.node, "sara")
        gone = await client.get("/api/v1/timelines/home", headers=headers)
        assert gone.status_code == 401 and gone.json() == {
            "error": "The access token is invalid"}


async def test_client_credentials_and_revoke(live_node: LiveNode) -> None:
    async with httpx.AsyncClient(base_url=live_node.base_url) as client:
        app = await register(client)
        answer = await client.post("/oauth/token", data={
            "grant_type": "client_credentials", "client_id": app["client_id"],
            "client_secret": app["client_secret"], "scope": "read"})
        assert answer.status_code == 200
        token = answer.json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        me = await client.get("/api/v1/apps/verify_credentials", headers=headers)
        assert me.status_code == 200 and me.json()["name"] == "Test app"
        assert "client_secret" not in me.json()
        # An app token is no user: user endpoints answer Mastodon's 422.
        home = await client.get("/api/v1/timelines/home", headers=headers)
        assert home.status_code == 422
        wrong = await client.post("/oauth/revoke", data={
            "client_id": app["client_id"], "client_secret": "nope", "token": token})
        assert wrong.status_code == 401
        revoked = await client.post("/oauth/revoke", data={
            "client_id": app["client_id"], "client_secret": app["client_secret"],
            "token": token})
        assert revoked.status_code == 200
        after = await client.get("/api/v1/apps/verify_credentials", headers=headers)
        assert after.status_code == 401
        grant = await client.post("/oauth/token", data={
            "grant_type": "password", "client_id": app["client_id"],
            "client_secret": app["client_secret"], "username": "a", "password": "b"})
        assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"


async def test_metadata_says_what_the_server_supports(live_node: LiveNode) -> None:
    async with httpx.AsyncClient(base_url=live_node.base_url) as client:
        meta = (await client.get("/.well-known/oauth-authorization-server")).json()
    assert meta["authorization_endpoint"] == f"{live_node.base_url}/oauth/authorize"
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert "password" not in meta["grant_types_supported"]


def test_scopes_cover_their_granular_parts() -> None:
    granted = frozenset({"read", "write:statuses"})
    assert apps.allows(granted, "read:notifications")
    assert apps.allows(granted, "profile")
    assert apps.allows(granted, "write:statuses")
    assert not apps.allows(granted, "write:media")
    assert apps.allows(frozenset({"follow"}), "write:follows")
    assert not apps.allows(frozenset({"follow"}), "read:statuses")


async def test_the_workspace_lists_a_users_apps_and_revokes_one(live_node: LiveNode) -> None:
    from tests.clientapi_helpers import token_for
    from tests.workspace_helpers import logged_in

    await group_with_editor(live_node)
    await users.create_user(live_node.node, "reza", groups=("tehran",))
    await users.set_password(live_node.node, "reza", PASSWORD)
    token = await token_for(live_node)
    others = await token_for(live_node, user="reza")
    async with logged_in(live_node, "sara") as browser:
        listed = await browser.get("/admin/apps")
        assert listed.status_code == 200 and "Test app" in listed.text
        import re

        row = re.search(r'action="/admin/apps/(\d+)/revoke"', listed.text)
        assert row is not None and listed.text.count("/revoke") == 1  # not reza's
        async with live_node.node.db.read() as session:
            reza_token = (await session.exec(select(OAuthToken).where(
                OAuthToken.id != int(row.group(1))))).one()
        foreign = await browser.post(f"/admin/apps/{reza_token.id}/revoke",
                                     data={"csrf": csrf_of(listed.text)})
        assert foreign.status_code == 404
        no_csrf = await browser.post(f"/admin/apps/{row.group(1)}/revoke", data={})
        assert no_csrf.status_code == 403
        revoked = await browser.post(f"/admin/apps/{row.group(1)}/revoke",
                                     data={"csrf": csrf_of(listed.text)})
        assert revoked.status_code == 303
    async with httpx.AsyncClient(base_url=live_node.base_url) as client:
        mine = await client.get("/api/v1/timelines/home",
                                headers={"Authorization": f"Bearer {token}"})
        theirs = await client.get("/api/v1/timelines/home",
                                  headers={"Authorization": f"Bearer {others}"})
    assert mine.status_code == 401 and theirs.status_code == 200
