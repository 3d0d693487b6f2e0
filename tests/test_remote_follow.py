"""Follow a group from the reader's own server: the handle form on the group page.
Only the reader's server is mocked (a loopback aiohttp server answering WebFinger)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from aiohttp import web

from node.groups import operations
from node.web.remote_follow import FollowError, parse_handle, subscribe_url
from tests.conftest import LiveNode
from tests.fediverse.servers import LoopbackServer

SUBSCRIBE = "http://ostatus.org/schema/1.0/subscribe"


class ReaderServer(LoopbackServer):
    """The reader's Mastodon: WebFinger answers whatever ``links`` the test sets."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[Any] = []
        self.status = 200
        self.route("GET", "/.well-known/webfinger", self._webfinger)

    async def _webfinger(self, request: web.Request) -> web.Response:
        return web.json_response({"subject": request.query.get("resource"),
                                  "links": self.links}, status=self.status,
                                 content_type="application/jrd+json")


@pytest.fixture
async def reader() -> Any:
    async with ReaderServer() as server:
        yield server


async def follow(live: LiveNode, handle: str | bytes) -> httpx.Response:
    content = handle if isinstance(handle, bytes) else None
    data = None if content is not None else {"handle": handle}
    async with httpx.AsyncClient() as client:
        return await client.post(
            live.url("/groups/tehran/remote-follow"), data=data, content=content,
            headers={"Content-Type": "application/x-www-form-urlencoded",
                     "Accept-Language": "en"})


async def test_a_good_handle_is_sent_to_its_servers_follow_page(live_node: LiveNode,
                                                                reader: Any) -> None:
    await operations.create_group(live_node.node, "tehran", display_name="T", language="fa")
    reader.links = [{"rel": "self", "type": "application/activity+json", "href": "x"},
                    {"rel": SUBSCRIBE, "template": reader.url("/authorize_interaction?uri={uri}")}]
    response = await follow(live_node, f"@maryam@{reader.authority}")
    assert response.status_code == 303
    actor = live_node.node.urls.actor("tehran")
    assert response.headers["location"] == reader.url(
        "/authorize_interaction?uri=") + quote(actor, safe="")
    asked = [r.path for r in reader.requests if r.route == "/.well-known/webfinger"]
    assert asked == ["/.well-known/webfinger?" + urlencode(
        {"resource": f"acct:maryam@{reader.authority}"})]


@pytest.mark.parametrize("links", [
    [],  # no remote follow offered
    [{"rel": SUBSCRIBE, "template": "javascript:alert(1)//{uri}"}],
    [{"rel": SUBSCRIBE, "template": "data:text/html,<script>alert(1)</script>{uri}"}],
    [{"rel": SUBSCRIBE, "template": "https://evil.example/no-placeholder"}],
    [{"rel": SUBSCRIBE, "template": ["not", "a", "string"]}],
    [{"rel": SUBSCRIBE, "template": "https://x.example/" + "a" * 5000 + "{uri}"}],
    "not a list",
])
async def test_a_server_without_a_usable_template_gets_a_clear_message(
        live_node: LiveNode, reader: Any, links: Any) -> None:
    await operations.create_group(live_node.node, "tehran", display_name="T", language="fa")
    reader.links = links
    response = await follow(live_node, f"maryam@{reader.authority}")
    assert response.status_code == 400
    assert "does not offer following from another site" in response.text
    assert "location" not in response.headers and "<script>alert" not in response.text


@pytest.mark.parametrize("handle, message", [
    ("", "Please enter your handle"),
    ("maryam", "That is not a handle"),
    ("@maryam@", "That is not a handle"),
    ("@a@b@c", "That is not a handle"),
    ("@maryam@localhost", "That server name is not valid"),
    ("@maryam@exa mple.org", "That is not a handle"),
    ("@maryam@evil.example/path", "That is not a handle"),
    ("@<script>alert(1)</script>@example.org", "That is not a handle"),
    ("@maryam@" + "a" * 400 + ".org", "too long"),
    ("@ma\u202eryam@example.org", "That is not a handle"),
])
async def test_malformed_and_hostile_handles_are_refused_without_a_request(
        live_node: LiveNode, handle: str, message: str) -> None:
    await operations.create_group(live_node.node, "tehran", display_name="T", language="fa")
    response = await follow(live_node, handle)
    assert response.status_code == 400
    assert message in response.text
    assert "<script>alert(1)" not in response.text  # the handle is echoed as text only


async def test_an_unreachable_or_private_server_is_said_plainly(live_node: LiveNode,
                                                                reader: Any) -> None:
    await operations.create_group(live_node.node, "tehran", display_name="T", language="fa")
    reader.status = 404
    response = await follow(live_node, f"maryam@{reader.authority}")
    assert response.status_code == 400 and "could not be reached" in response.text
    await reader.stop()
    response = await follow(live_node, f"maryam@{reader.authority}")
    assert response.status_code == 400 and "could not be reached" in response.text


async def test_an_oversized_form_is_refused(live_node: LiveNode) -> None:
    await operations.create_group(live_node.node, "tehran", display_name="T", language="fa")
    response = await follow(live_node, b"handle=" + b"a" * 10_000)
    assert response.status_code == 400 and "too long" in response.text


async def test_the_message_is_in_the_readers_language(live_node: LiveNode) -> None:
    await operations.create_group(live_node.node, "tehran", display_name="T", language="fa")
    async with httpx.AsyncClient() as client:
        response = await client.post(live_node.url("/groups/tehran/remote-follow"),
                                     data={"handle": "nope"})
    assert response.status_code == 400
    assert 'lang="fa" dir="rtl"' in response.text and "این نشانی کاربری نیست" in response.text


async def test_an_unknown_group_is_404(live_node: LiveNode) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(live_node.url("/groups/nobody/remote-follow"),
                                     data={"handle": "a@b.org"})
    assert response.status_code == 404


def test_parse_handle_accepts_both_forms_and_lowercases_the_host() -> None:
    assert parse_handle("@Maryam@Mastodon.Social") == ("Maryam", "mastodon.social")
    assert parse_handle("  maryam@example.org ") == ("maryam", "example.org")
    with pytest.raises(FollowError):
        parse_handle("maryam@exa_mple.org")


def test_subscribe_url_escapes_the_actor_id_into_the_template() -> None:
    url = subscribe_url({"links": [{"rel": SUBSCRIBE,
                                    "template": "https://m.example/authorize_interaction?uri={uri}"}]},
                        "https://node.example/groups/a?b=c&d")
    assert url == ("https://m.example/authorize_interaction?uri="
                   "https%3A%2F%2Fnode.example%2Fgroups%2Fa%3Fb%3Dc%26d")
