"""Helpers of the workspace tests: accounts, logging in over real HTTP, forms."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from node.accounts import users
from tests.conftest import LiveNode

PASSWORD = "correct horse battery"
CSRF_RE = re.compile(r'name="csrf" value="([0-9a-f]+)"')


def png(size: int = 64) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (size, size), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


class Clock:
    """The workspace's clock, moved by tests (app.state.admin_clock)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


async def make_user(live: LiveNode, name: str, *, admin: bool = False,
                    groups: tuple[str, ...] = ()) -> None:
    await users.create_user(live.node, name, admin=admin, groups=groups)
    await users.set_password(live.node, name, PASSWORD)


def csrf_of(html: str) -> str:
    found = CSRF_RE.search(html)
    assert found is not None, "no CSRF token in the page"
    return found.group(1)


async def login(client: httpx.AsyncClient, name: str, password: str = PASSWORD
                ) -> httpx.Response:
    page = await client.get("/login")
    return await client.post("/login", data={"username": name, "password": password,
                                             "csrf": csrf_of(page.text)})


@contextlib.asynccontextmanager
async def logged_in(live: LiveNode, name: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live.base_url, timeout=30) as client:
        response = await login(client, name)
        assert response.status_code == 303 and response.headers["location"] == "/admin"
        yield client


async def form_token(client: httpx.AsyncClient, path: str = "/admin") -> str:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    return csrf_of(response.text)


def call_form(**overrides: Any) -> dict[str, str]:
    form = {"languages": "fa de", "language": "fa", "title_fa": "اعتصاب کارگران",
            "title_de": "Streik der Arbeiter", "text_fa": "همه بیایید", "text_de": "Kommt alle",
            "kind": "action", "start": "2031-05-01T17:00", "timezone": "Europe/Berlin",
            "place_name": "Rathaus", "place_city": "Köln", "join_mode": "external",
            "action": "publish"}
    form.update(overrides)
    return form
