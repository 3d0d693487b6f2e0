"""Input that arrives before authentication: malformed requests get a 4xx, never a 500."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.federation.webfinger import BadResource, parse_resource
from node.groups import operations
from tests.conftest import LiveNode, start_live_node, stop_live_node
from tests.fuzzing import examples

HOST = "node.example:8443"
FAKE_NODE = cast(Any, SimpleNamespace(settings=SimpleNamespace(host=HOST)))


@pytest.fixture
async def group(live_node: LiveNode) -> str:
    await operations.create_group(live_node.node, "koeln", display_name="Köln", language="de")
    return live_node.node.urls.actor("koeln")


@pytest.mark.parametrize("resource", ["http://[", "https://[::1/groups/koeln",
                                      "http://[zz]/groups/koeln", "https://]/actor"])
async def test_webfinger_broken_url_resource_is_400(live_node: LiveNode, group: str,
                                                    resource: str) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(live_node.url("/.well-known/webfinger"),
                                    params={"resource": resource})
    assert response.status_code == 400
    assert "error" in response.json()


@pytest.mark.parametrize("path", [
    "/.well-known/webfinger?resource=http://%5B",
    "/.well-known/webfinger?resource=acct:%FF%FE@x",
    "/.well-known/webfinger?resource=acct:koeln@%5B",
    "/nodeinfo/%00",
    "/groups/%00",
    "/groups/koeln/outbox?page=-1",
    "/groups/koeln/outbox?page=abc",
    "/groups/koeln/outbox?page=99999999999999999999999",
    "/groups/koeln/followers?page=%00",
    "/objects/%2e%2e",
    "/objects/not-a-uuid/calendar.ics",
    "/groups/%ff/calendar.ics",
    "/media/avatar/..%2f..%2fetc%2fpasswd",
    "/media/%00/x.png",
    "/activities/%5B",
    "/.well-known/webfinger?resource=acct:%00@127.0.0.1",
    "/groups/koeln/outbox?page=%00",
])
async def test_malformed_public_requests_are_never_500(live_node: LiveNode, group: str,
                                                       path: str) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(live_node.url(path),
                                    headers={"Accept": "application/activity+json"})
    assert 400 <= response.status_code < 500, (path, response.status_code)


# --- the WebFinger resource parser, fuzzed ----------------------------------------------

PREFIXES = st.sampled_from(["", "acct:", "acct:@", "http://", "https://", f"https://{HOST}",
                            f"http://{HOST}/groups/", f"https://{HOST}/@", "https://[",
                            "http://[::1]", f"acct:koeln@{HOST}"])
TAILS = st.text(alphabet=st.characters(codec="utf-8"), max_size=80) | st.text(
    alphabet="[]:@/%?#.-_acktp0123456789ABCDEF", max_size=40)


@settings(max_examples=examples(3000), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prefix=PREFIXES, tail=TAILS)
def test_webfinger_resource_parser_raises_only_bad_resource(prefix: str, tail: str) -> None:
    resource = prefix + tail
    try:
        username = parse_resource(resource, FAKE_NODE)
    except BadResource:
        return
    assert username is None or isinstance(username, str)


@settings(max_examples=examples(1000), deadline=None)
@given(user=st.from_regex(r"[a-z0-9_]{1,20}", fullmatch=True))
def test_webfinger_resource_parser_finds_local_accounts(user: str) -> None:
    assert parse_resource(f"acct:{user}@{HOST}", FAKE_NODE) == user
    assert parse_resource(f"https://{HOST}/groups/{user}", FAKE_NODE) == user
    assert parse_resource(f"acct:{user}@elsewhere.example", FAKE_NODE) is None


# --- response headers ---------------------------------------------------------------------


def csp_directives(value: str) -> dict[str, list[str]]:
    parts = [p.split() for p in value.split(";") if p.strip()]
    return {p[0]: p[1:] for p in parts}


async def test_every_kind_of_response_carries_the_security_headers(live_node: LiveNode,
                                                                   group: str) -> None:
    async with httpx.AsyncClient() as client:
        actor = await client.get(group, headers={"Accept": "application/activity+json"})
        icon = actor.json()["icon"]["url"]
        responses = {
            "json": actor,
            "webfinger": await client.get(live_node.url("/.well-known/webfinger"), params={
                "resource": f"acct:koeln@127.0.0.1:{live_node.port}"}),
            "ics": await client.get(live_node.url("/groups/koeln/calendar.ics")),
            "media": await client.get(icon),
            "html": await client.get(group, headers={"Accept": "text/html"}),
            "404": await client.get(live_node.url("/groups/nobody"),
                                    headers={"Accept": "application/activity+json"}),
            "health": await client.get(live_node.url("/health")),
        }
    for kind, response in responses.items():
        assert response.status_code < 500, kind
        headers = response.headers
        assert headers["x-content-type-options"] == "nosniff", kind
        assert headers["referrer-policy"] == "no-referrer", kind
        assert headers["x-frame-options"] == "DENY", kind
        csp = csp_directives(headers["content-security-policy"])
        assert csp["frame-ancestors"] == ["'none'"], kind
        assert csp["base-uri"] == ["'none'"], kind
        assert csp["object-src"] == ["'none'"], kind
        assert csp["form-action"] in (["'self'"], ["'none'"]), kind
        scripts = csp.get("script-src", csp["default-src"])
        assert "'unsafe-inline'" not in scripts and "*" not in scripts, kind
    assert csp_directives(responses["html"].headers["content-security-policy"])[
        "form-action"] == ["'self'"]


# --- /metrics is for the operator only ---------------------------------------------------


async def test_metrics_are_not_served_without_a_metrics_token_setting(
        live_node: LiveNode) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(live_node.url("/metrics"))
    assert response.status_code == 404
    assert "hambastegi_" not in response.text


async def test_metrics_need_the_configured_bearer_token(tmp_path: Path,
                                                        database_url: str) -> None:
    secret = "m" * 32
    live = await start_live_node(tmp_path, database_url, {"HAMBASTEGI_METRICS_TOKEN": secret})
    try:
        async with httpx.AsyncClient() as client:
            missing = await client.get(live.url("/metrics"))
            wrong = await client.get(live.url("/metrics"),
                                     headers={"Authorization": "Bearer " + "x" * 32})
            right = await client.get(live.url("/metrics"),
                                     headers={"Authorization": f"Bearer {secret}"})
    finally:
        await stop_live_node(live)
    assert missing.status_code == 401 and wrong.status_code == 401
    assert "hambastegi_" not in missing.text + wrong.text
    assert right.status_code == 200 and "hambastegi_request_seconds" in right.text


def test_a_short_metrics_token_is_refused_by_the_settings() -> None:
    from node.core.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match="HAMBASTEGI_METRICS_TOKEN"):
        Settings.load(environ={"HAMBASTEGI_METRICS_TOKEN": "short"})
