"""The one way to read ids from JSON and to turn local URLs back into names."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.core.jsonsafe import as_id, as_list
from node.core.urls import LocalRef, Urls

URLS = Urls("https://node.example")


@pytest.mark.parametrize(("value", "expected"), [
    ("https://a.example/x", "https://a.example/x"),
    ({"id": "https://a.example/x", "type": "Note"}, "https://a.example/x"),
    ("ftp://a.example/x", None),
    ("javascript:alert(1)", None),
    ({"id": 5}, None),
    (["https://a.example/x"], None),
    (None, None),
    ("https://a.example/" + "x" * 3000, None),
])
def test_as_id_accepts_only_http_ids(value: object, expected: str | None) -> None:
    assert as_id(value) == expected


def test_as_list_wraps_single_values() -> None:
    assert as_list(None) == []
    assert as_list("a") == ["a"]
    assert as_list(["a", "b"]) == ["a", "b"]


@pytest.mark.parametrize("username", ["koeln", "mena_fa", "a-b"])
def test_parse_local_inverts_every_actor_url(username: str) -> None:
    assert URLS.parse_local(URLS.actor(username)) == LocalRef("actor", username)
    assert URLS.parse_local(URLS.inbox(username)) == LocalRef("actor", username, "/inbox")
    assert URLS.parse_local(URLS.key_id(username)) == LocalRef("actor", username, "#main-key")


def test_parse_local_names_objects_activities_media_and_the_instance_actor() -> None:
    assert URLS.parse_local(URLS.object("abc")) == LocalRef("object", "abc")
    assert URLS.parse_local(URLS.object("abc") + "/organizers") == LocalRef(
        "object", "abc", "/organizers")
    assert URLS.parse_local(URLS.activity("u1")) == LocalRef("activity", "u1")
    assert URLS.parse_local(URLS.media("n.png")) == LocalRef("media", "n.png")
    assert URLS.parse_local(URLS.actor("instance")) == LocalRef("actor", "instance")


@pytest.mark.parametrize("uri", [
    None, "", "https://other.example/groups/x", "https://node.example.evil/groups/x",
    "https://node.example/groups/", "https://node.example/unknown/x", "https://node.example",
])
def test_parse_local_refuses_what_is_not_ours(uri: str | None) -> None:
    assert URLS.parse_local(uri) is None


@given(st.text(max_size=200))
def test_parse_local_never_raises(tail: str) -> None:
    ref = URLS.parse_local("https://node.example/" + tail)
    assert ref is None or ref.key
