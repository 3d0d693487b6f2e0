"""The crosspost parts that read what others wrote or answered: pacing decisions,
hostile Bot API and PDS answers, hostile documents and markup, refused addresses,
settings. Nothing here may raise where an outcome is due, or leak a token."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from node.core.settings import Settings, SettingsError
from node.crosspost.bluesky.xrpc import Pds, XrpcError
from node.crosspost.content import read_post
from node.crosspost.http import ServiceClient, ServiceUnreachable
from node.crosspost.pacing import (
    MAX_ATTEMPTS,
    earliest_send,
    gives_up,
    remember,
    retry_delay,
    telegram_outcome,
)
from node.crosspost.telegram.api import BotApi
from node.crosspost.telegram.format import MESSAGE_LIMIT, pack, plan, subset, units
from node.crosspost.telegram.send import perform
from node.federation.crosspost_log import PUBLIC, qualifies
from node.federation.fetch import allow_all_policy, public_address_policy
from tests.conftest import free_port
from tests.crosspost_fakes import TOKEN

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


# --- pacing ----------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(1, 5)), min_size=1, max_size=40))
def test_sending_at_the_earliest_time_never_puts_more_than_20_in_a_minute(
        posts: list[tuple[int, int]]) -> None:
    now, recent, sent = T0, list[datetime](), list[datetime]()
    for gap, count in posts:
        now = now + timedelta(seconds=gap)
        at = earliest_send(recent, now, count)
        assert at >= now
        now = at
        sent += [at] * count
        recent = remember(recent, [at] * count, at)
    for start in sent:
        assert sum(start <= t < start + timedelta(minutes=1) for t in sent) <= 20


def test_a_429_waits_its_retry_after_and_403_pauses_and_5xx_retries() -> None:
    assert telegram_outcome(429, "Too Many", 7).delay == timedelta(seconds=7)
    assert telegram_outcome(429, "Too Many", 7).paced
    assert telegram_outcome(429, "Too Many", None).delay == timedelta(seconds=30)
    assert telegram_outcome(429, "x", 10**9).delay == timedelta(days=1)  # hostile: capped
    assert telegram_outcome(403, "bot was kicked", None).kind == "pause"
    assert telegram_outcome(502, "Bad Gateway", None).kind == "retry"
    assert telegram_outcome(400, "message can't be deleted", None).kind == "fail"
    assert retry_delay(1) == timedelta(seconds=30) and retry_delay(2) == timedelta(minutes=1)
    assert retry_delay(40) == timedelta(hours=6)
    assert not gives_up(MAX_ATTEMPTS - 1) and gives_up(MAX_ATTEMPTS)


# --- hostile answers -------------------------------------------------------------------

class Hostile:
    def __init__(self) -> None:
        self.answer: web.Response = web.json_response({})
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        return self.answer


@pytest.fixture
async def hostile() -> AsyncIterator[Hostile]:
    server = Hostile()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    server.runner = web.AppRunner(app, access_log=None)
    await server.runner.setup()
    port = free_port()
    await web.TCPSite(server.runner, "127.0.0.1", port).start()
    server.url = f"http://127.0.0.1:{port}"
    yield server
    await server.runner.cleanup()


POST = read_post({"type": "Note", "id": "https://node.example/objects/1",
                  "contentMap": {"fa": "<p>سلام</p>"}})


async def _attempt(url: str) -> Any:
    client = ServiceClient(policy=allow_all_policy, user_agent="test")
    try:
        return await perform(BotApi(client, url, TOKEN), "@c", "create", POST, {},
                             _no_image)
    finally:
        await client.close()


async def _no_image(image: Any) -> None:
    return None


@pytest.mark.parametrize("answer, kind", [
    (lambda: web.Response(text="<html>proxy error</html>", status=502), "retry"),
    (lambda: web.Response(text="not json at all", status=200), "retry"),
    (lambda: web.json_response([1, 2, 3]), "retry"),
    (lambda: web.json_response({"ok": True, "result": {"no": "message_id"}}), "retry"),
    (lambda: web.json_response({"ok": True, "result": {"message_id": "7"}}), "retry"),
    (lambda: web.Response(body=b"{" + b" " * 2_000_000 + b"}", status=200), "retry"),
    (lambda: web.json_response({"ok": False, "error_code": "x", "description": 5}, status=400),
     "fail"),
    (lambda: web.json_response({"ok": False, "error_code": 429, "parameters":
                                {"retry_after": "soon"}}, status=429), "retry"),
])
async def test_hostile_bot_api_answers_become_outcomes_never_exceptions(
        hostile: Hostile, answer: Any, kind: str, caplog: pytest.LogCaptureFixture) -> None:
    hostile.answer = answer()
    caplog.set_level(logging.DEBUG)
    result = await _attempt(hostile.url)
    assert result.outcome.kind == kind
    assert result.remote == {"parts": []}  # nothing recorded as sent
    assert TOKEN not in result.outcome.reason and TOKEN not in caplog.text


async def test_an_unreachable_bot_api_is_a_retry_and_names_no_url() -> None:
    result = await _attempt(f"http://127.0.0.1:{free_port()}")
    assert result.outcome.kind == "retry"
    assert "network error" in result.outcome.reason and TOKEN not in result.outcome.reason
    assert "127.0.0.1" not in result.outcome.reason


async def test_loopback_and_private_services_are_refused_without_the_test_setting() -> None:
    client = ServiceClient(policy=public_address_policy, user_agent="test")
    try:
        for url in ("http://127.0.0.1:9/x", "http://[::1]:9/x", "http://10.0.0.1/x",
                    "http://localhost:9/x", "ftp://api.telegram.org/x",
                    "http://user:pw@api.telegram.org/x"):
            with pytest.raises(ServiceUnreachable):
                await client.request("POST", url, json={})
    finally:
        await client.close()


async def test_a_pds_answering_junk_is_an_xrpc_error(hostile: Hostile) -> None:
    client = ServiceClient(policy=allow_all_policy, user_agent="test")
    try:
        hostile.answer = web.json_response({"accessJwt": 1, "did": None})
        with pytest.raises(XrpcError, match="BadSession"):
            await Pds(client, hostile.url, T0).login("a.example", "pw")
        hostile.answer = web.Response(text="<html>", status=500)
        with pytest.raises(XrpcError) as raised:
            await Pds(client, hostile.url, T0).login("a.example", "pw")
        assert raised.value.status == 500
        hostile.answer = web.json_response({"error": "RateLimitExceeded"}, status=429,
                                           headers={"RateLimit-Reset": "not a number"})
        with pytest.raises(XrpcError) as limited:
            await Pds(client, hostile.url, T0).login("a.example", "pw")
        assert limited.value.status == 429 and limited.value.reset_in is None
    finally:
        await client.close()


# --- hostile documents and markup --------------------------------------------------------

@pytest.mark.parametrize("doc", [
    {"type": "Note"},
    {"type": "Note", "contentMap": ["x"], "nameMap": {"fa": 5}, "attachment": "x"},
    {"type": "Event", "startTime": "not a date", "location": [1, {"address": 5}],
     "attachment": [None, {"type": "Image", "url": ["x"], "mediaType": "image/png"}],
     "tag": [{"type": "Hashtag", "name": None}], "url": [{"rel": "canonical"}]},
    {"type": "Article", "contentMap": {"fa": "<p><p><b><i>" * 500}, "url": "javascript:x"},
])
def test_hostile_documents_are_read_without_raising(doc: dict[str, Any]) -> None:
    post = read_post(doc)
    for part in plan(post):
        assert units(part.text) <= MESSAGE_LIMIT
    assert not post.link.startswith("javascript:")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("<>&\"'/ab =ipsclor\n")), max_size=300))
def test_any_markup_comes_out_as_balanced_telegram_html(fragment: str) -> None:
    out = subset(fragment)
    stack: list[str] = []
    from html.parser import HTMLParser

    class Check(HTMLParser):
        def handle_starttag(self, tag: str, attrs: Any) -> None:
            assert tag in {"b", "i", "u", "s", "a", "code", "pre", "blockquote"}
            stack.append(tag)

        def handle_endtag(self, tag: str) -> None:
            assert stack.pop() == tag

    Check().feed(out)
    assert stack == []


def test_a_paragraph_longer_than_a_message_is_cut_and_one_word_too() -> None:
    messages = pack(["x" * 9000, "y " * 3000], MESSAGE_LIMIT)
    assert all(units(m) <= MESSAGE_LIMIT for m in messages)
    assert sum(m.count("x") for m in messages) == 9000


def test_only_public_top_level_posts_qualify() -> None:
    note = {"type": "Note", "id": "https://n.example/objects/1"}
    assert qualifies(note, [PUBLIC])
    assert not qualifies(note, ["https://n.example/groups/k/followers"])
    assert not qualifies({**note, "inReplyTo": "https://x.example/1"}, [PUBLIC])
    assert not qualifies({**note, "type": "Article", "consent": "name_withheld"}, [PUBLIC])
    assert not qualifies({**note, "type": "Article", "consent": "network_only"}, [PUBLIC])
    assert qualifies({**note, "type": "Article", "consent": "public"}, [PUBLIC])
    assert not qualifies({**note, "type": "Group"}, [PUBLIC])


def test_the_telegram_api_setting_must_be_an_http_url() -> None:
    base = {"HAMBASTEGI_DATA_DIR": "/tmp/x"}
    assert Settings.load(environ=base).telegram_api == "https://api.telegram.org"
    assert Settings.load(environ={**base, "HAMBASTEGI_TELEGRAM_API": "http://10.0.0.2:8081/"}
                         ).telegram_api == "http://10.0.0.2:8081"
    with pytest.raises(SettingsError, match="HAMBASTEGI_TELEGRAM_API"):
        Settings.load(environ={**base, "HAMBASTEGI_TELEGRAM_API": "file:///etc/passwd"})
