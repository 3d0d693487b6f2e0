"""Accounts of the workspace: login, cookies, CSRF, throttling, sessions, links
(issue 14, points 3 and "Bad input")."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlmodel import select
from starlette.responses import Response

from node.accounts import login as login_check
from node.accounts import sessions, users
from node.groups import operations
from node.groups.errors import OperationError
from node.storage.models import AccountSession, LoginFailure
from node.web.admin.guard import set_cookie
from tests.conftest import LiveNode
from tests.workspace_helpers import PASSWORD, Clock, csrf_of, logged_in, login, make_user


@pytest.fixture
async def clock(live_node: LiveNode) -> Clock:
    clock = Clock()
    live_node.app.state.admin_clock = clock
    return clock


@pytest.fixture
async def client(live_node: LiveNode) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_node.base_url, timeout=30) as c:
        yield c


async def test_login_sets_an_httponly_samesite_cookie_and_a_fresh_session_id(
        live_node: LiveNode, client: httpx.AsyncClient) -> None:
    await make_user(live_node, "root", admin=True)
    first = await login(client, "root")
    assert first.status_code == 303
    cookie = next(v for k, v in first.headers.multi_items()
                  if k == "set-cookie" and v.startswith("hb_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # the test node's base URL is http
    old = client.cookies["hb_session"]
    await login(client, "root")
    new = client.cookies["hb_session"]
    assert new != old
    # The id the browser had before is dead: a planted id is worth nothing.
    async with live_node.node.db.read() as session:
        assert len((await session.exec(select(AccountSession))).all()) == 1
    async with httpx.AsyncClient(base_url=live_node.base_url, cookies={"hb_session": old}
                                 ) as stale:
        assert (await stale.get("/admin")).status_code == 303


def test_cookies_are_secure_when_the_base_url_is_https() -> None:
    response = Response()
    node = SimpleNamespace(settings=SimpleNamespace(base_url="https://node.example"))
    set_cookie(response, node, "hb_session", "x")  # type: ignore[arg-type]
    assert "Secure" in response.headers["set-cookie"]


async def test_login_without_a_valid_token_is_refused_and_opens_no_session(
        live_node: LiveNode, client: httpx.AsyncClient) -> None:
    await make_user(live_node, "root", admin=True)
    await client.get("/login")
    for token in ("", "0" * 64):
        response = await client.post("/login", data={"username": "root", "password": PASSWORD,
                                                     "csrf": token})
        assert response.status_code == 403
    async with live_node.node.db.read() as session:
        assert (await session.exec(select(AccountSession))).all() == []


async def test_wrong_password_and_unknown_account_get_the_same_answer(
        live_node: LiveNode, client: httpx.AsyncClient) -> None:
    await make_user(live_node, "root", admin=True)
    wrong = await login(client, "root", "not the password")
    unknown = await login(client, "nobody", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert login_check.WRONG in wrong.text and login_check.WRONG in unknown.text
    assert wrong.text.replace("root", "X") == unknown.text.replace("nobody", "X").replace(
        csrf_of(unknown.text), csrf_of(wrong.text))


async def test_an_unknown_account_costs_a_password_hash_too(live_node: LiveNode) -> None:
    """Timing: without the dummy hash an unknown name would answer in a few ms."""
    node = live_node.node
    await make_user(live_node, "root", admin=True)
    clock = Clock()

    clients = iter(range(1, 100))

    async def duration(name: str) -> float:
        # A new client each time, and fewer than six tries a name: never throttled.
        started = time.perf_counter()
        with pytest.raises(OperationError) as refused:
            await login_check.authenticate(node, name, "wrong password",
                                           f"198.51.100.{next(clients)}", clock())
        assert refused.value.status == 401
        return time.perf_counter() - started

    await duration("warm-up")
    known = min([await duration("root") for _ in range(3)])
    unknown = min([await duration("nobody") for _ in range(3)])
    assert unknown > known * 0.4, (known, unknown)


async def test_the_sixth_failure_in_fifteen_minutes_is_429_even_with_the_password(
        live_node: LiveNode, client: httpx.AsyncClient, clock: Clock) -> None:
    await make_user(live_node, "root", admin=True)
    for _ in range(5):
        assert (await login(client, "root", "wrong")).status_code == 401
    sixth = await login(client, "root")
    assert sixth.status_code == 429
    assert "too many failed logins" in sixth.text
    # No address is stored: only keyed hashes.
    async with live_node.node.db.read() as session:
        keys = [f.key for f in (await session.exec(select(LoginFailure))).all()]
    assert keys and all(len(k) == 64 and "127" not in k for k in keys)
    clock.advance(minutes=16)
    assert (await login(client, "root")).status_code == 303


async def test_failures_against_many_accounts_from_one_client_are_throttled(
        live_node: LiveNode, client: httpx.AsyncClient, clock: Clock) -> None:
    await make_user(live_node, "root", admin=True)
    for index in range(5):
        assert (await login(client, f"guess{index}", "wrong")).status_code == 401
    assert (await login(client, "root")).status_code == 429


async def test_logout_ends_every_session_of_the_account(live_node: LiveNode) -> None:
    await make_user(live_node, "root", admin=True)
    async with logged_in(live_node, "root") as phone, logged_in(live_node, "root") as laptop:
        token = csrf_of((await phone.get("/admin")).text)
        assert (await phone.post("/logout", data={"csrf": token})).status_code == 303
        assert (await laptop.get("/admin")).status_code == 303  # to /login
        assert (await phone.get("/admin")).status_code == 303


async def test_logout_needs_the_token(live_node: LiveNode) -> None:
    await make_user(live_node, "root", admin=True)
    async with logged_in(live_node, "root") as browser:
        assert (await browser.post("/logout", data={})).status_code == 403
        assert (await browser.get("/admin")).status_code == 200


async def test_a_password_change_ends_the_other_sessions(live_node: LiveNode) -> None:
    await make_user(live_node, "root", admin=True)
    async with logged_in(live_node, "root") as phone, logged_in(live_node, "root") as laptop:
        token = csrf_of((await phone.get("/admin/password")).text)
        new = "another long password"
        bad = await phone.post("/admin/password", data={
            "csrf": token, "current": "wrong", "password": new, "password_again": new})
        assert bad.status_code == 400
        changed = await phone.post("/admin/password", data={
            "csrf": token, "current": PASSWORD, "password": new, "password_again": new})
        assert changed.status_code == 303
        assert (await laptop.get("/admin")).status_code == 303
        assert (await phone.get("/admin")).status_code == 200  # its fresh session
    async with httpx.AsyncClient(base_url=live_node.base_url) as other:
        assert (await login(other, "root")).status_code == 401
        assert (await login(other, "root", new)).status_code == 303


async def test_the_cli_password_change_logs_the_account_out(live_node: LiveNode) -> None:
    await make_user(live_node, "root", admin=True)
    async with logged_in(live_node, "root") as browser:
        await users.set_password(live_node.node, "root", "set from the shell")
        assert (await browser.get("/admin")).status_code == 303


async def test_idle_and_absolute_timeouts(live_node: LiveNode, clock: Clock) -> None:
    await make_user(live_node, "root", admin=True)
    policy = sessions.SessionPolicy()
    async with logged_in(live_node, "root") as browser:
        clock.advance(seconds=policy.idle.total_seconds() - 60)
        assert (await browser.get("/admin")).status_code == 200
        clock.advance(seconds=policy.idle.total_seconds() + 1)
        assert (await browser.get("/admin")).status_code == 303
    async with logged_in(live_node, "root") as browser:
        # Active every hour: the idle limit never strikes, the absolute one does.
        elapsed = timedelta()
        while elapsed + timedelta(hours=1) < policy.absolute:
            clock.advance(hours=1)
            elapsed += timedelta(hours=1)
            assert (await browser.get("/admin")).status_code == 200, elapsed
        clock.advance(hours=1)
        assert (await browser.get("/admin")).status_code == 303


async def test_a_set_password_link_works_once_and_expires(
        live_node: LiveNode, client: httpx.AsyncClient, clock: Clock) -> None:
    node = live_node.node
    await operations.create_group(node, "koeln", display_name="Köln", language="de")
    await users.create_user(node, "ali", groups=("koeln",))
    token = await users.create_link(node, "ali", now=clock())
    path = f"/admin/set-password/{token}"
    page = await client.get(path)
    assert page.status_code == 200 and "ali" in page.text
    differ = await client.post(path, data={"csrf": csrf_of(page.text), "password": PASSWORD,
                                           "password_again": PASSWORD + "x"})
    assert differ.status_code == 400
    done = await client.post(path, data={"csrf": csrf_of(page.text), "password": PASSWORD,
                                         "password_again": PASSWORD})
    assert done.status_code == 303
    assert (await client.get(path)).status_code == 404  # used up
    assert (await login(client, "ali")).status_code == 303
    late = await users.create_link(node, "ali", now=clock())
    clock.advance(hours=48, seconds=1)
    assert (await client.get(f"/admin/set-password/{late}")).status_code == 404
    assert (await client.get("/admin/set-password/forged-token-forged-token")).status_code \
        == 404


async def test_hostile_login_forms(live_node: LiveNode, client: httpx.AsyncClient) -> None:
    await make_user(live_node, "root", admin=True)
    page = await client.get("/login")
    token = csrf_of(page.text)
    huge = await client.post("/login", data={"username": "x" * 70_000, "password": "y",
                                             "csrf": token})
    assert huge.status_code == 413
    odd = await client.post("/login", content=b"\xff\xfe%%%=&&username",
                            headers={"content-type": "application/x-www-form-urlencoded"})
    assert odd.status_code == 403
    script = await login(client, "<script>alert(1)</script>", "x")
    assert script.status_code == 401 and "<script>alert" not in script.text


async def test_behind_a_proxy_clients_are_told_apart_by_the_configured_header(
        tmp_path: Any, database_url: str) -> None:
    from tests.conftest import start_live_node, stop_live_node

    live = await start_live_node(tmp_path, database_url,
                                 {"HAMBASTEGI_CLIENT_ADDRESS_HEADER": "X-Real-IP"})
    try:
        await make_user(live, "root", admin=True)
        async with httpx.AsyncClient(base_url=live.base_url) as proxy:
            for index in range(5):
                response = await _login_from(proxy, f"guess{index}", "203.0.113.5")
                assert response.status_code == 401
            assert (await _login_from(proxy, "root", "203.0.113.5")).status_code == 429
            # Another client behind the same proxy is not locked out.
            assert (await _login_from(proxy, "root", "203.0.113.6")).status_code == 303
    finally:
        await stop_live_node(live)


async def _login_from(client: httpx.AsyncClient, name: str, address: str) -> httpx.Response:
    page = await client.get("/login")
    return await client.post("/login", headers={"X-Real-IP": address}, data={
        "username": name, "password": PASSWORD if name == "root" else "wrong",
        "csrf": csrf_of(page.text)})
