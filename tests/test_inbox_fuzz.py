"""Property test of the inbox's JSON checks: whatever JSON a signed sender
posts, check_shape, check_authority and the content checks either accept it
or raise ``Rejected`` with a 4xx — never another exception (a 500).

A few thousand examples run in CI. For a longer run, raise the count:
``HAMBASTEGI_FUZZ_EXAMPLES=200000 .venv/bin/python -m pytest -q tests/test_inbox_fuzz.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.core.settings import Settings
from node.federation.inbox import Rejected, check_authority, check_content, check_shape
from node.federation.runtime import Node
from node.inbound import INBOUND
from node.storage import migrate
from tests.fuzzing import examples

EXAMPLES = examples(3000)
ACTOR = "https://remote.example/users/alice"

# Strings that matter to the checks, mixed with arbitrary text.
NASTY = st.sampled_from([
    "http://[::1", "https://[::1/x", "http://[zz]/", "https://remote.example:99999/x",
    "https://remote.example:-1/", "http://", "https://", "https://@/", "http://a b/",
    "https://remote.example/users/alice", "https://remote.example/objects/1",
    "https://other.example/x", ACTOR + "/activities/1", "\x00", "", "Event", "Note",
    "Create", "Update", "Delete", "Follow", "Undo", "Accept", "Invite", "Join",
    "2030-01-01T10:00:00Z", "not a date", "Atlantis/Capital", "Europe/Zurich",
    "x" * 3000, "https://remote.example/" + "a" * 2100,
])
TEXT = st.one_of(NASTY, st.text(max_size=40))
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                   TEXT)
KEYS = st.sampled_from(["id", "type", "actor", "object", "attributedTo", "name",
                        "startTime", "endTime", "timezone", "location", "content", "tag",
                        "latitude", "longitude", "inReplyTo", "to", "target", "context",
                        "summary", "url"])
JSON = st.recursive(
    SCALAR,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.one_of(KEYS, st.text(max_size=8)),
                                               children, max_size=6)),
    max_leaves=25,
)
# Ids that often pass the first checks, so the later ones get exercised too.
URL = st.one_of(NASTY, st.builds(lambda tail: f"{ACTOR}/{tail}", st.text(max_size=20)),
                st.builds(lambda host, tail: f"https://{host}/{tail}", st.text(max_size=12),
                          st.text(max_size=8)))
TYPES = st.sampled_from(["Create", "Update", "Delete", "Follow", "Undo", "Accept", "Reject",
                         "Like", "Announce", "Invite", "Join", "Leave"])
OBJECT = st.one_of(
    URL, JSON,
    st.fixed_dictionaries({"id": st.one_of(URL, JSON)}, optional={
        "type": st.one_of(st.sampled_from(["Event", "Note", "Person", "Follow"]), JSON),
        "attributedTo": st.one_of(st.just(ACTOR), URL, JSON), "name": st.one_of(TEXT, JSON),
        "startTime": st.one_of(TEXT, JSON), "endTime": st.one_of(TEXT, JSON),
        "timezone": st.one_of(TEXT, JSON), "location": JSON, "content": JSON, "tag": JSON}),
)
ACTIVITY = st.fixed_dictionaries(
    {},
    optional={"id": st.one_of(URL, JSON), "type": st.one_of(TYPES, TEXT, JSON),
              "actor": st.one_of(st.just(ACTOR), URL, JSON), "object": OBJECT,
              "to": JSON},
)


@pytest.fixture(scope="module")
def node_and_loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, Any]]:
    # Module-scoped: hypothesis runs thousands of examples against one database.
    path: Path = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite+aiosqlite:///{path / 'fuzz.sqlite3'}"
    migrate.upgrade(url)
    node = Node(Settings.load(environ={"HAMBASTEGI_BASE_URL": "http://127.0.0.1:9",
                                       "HAMBASTEGI_DATA_DIR": str(path),
                                       "HAMBASTEGI_DATABASE_URL": url}), inbound=INBOUND)
    loop = asyncio.new_event_loop()
    yield node, loop
    loop.run_until_complete(node.db.dispose())
    loop.close()


async def run_checks(node: Node, activity: dict[str, Any]) -> None:
    activity_id, activity_type, actor_id = check_shape(activity)
    await check_authority(node, activity, actor_id, activity_id, activity_type)
    check_content(node, activity, activity_type)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(activity=ACTIVITY)
def test_inbox_checks_only_ever_reject_with_a_4xx(node_and_loop: tuple[Node, Any],
                                                  activity: dict[str, Any]) -> None:
    node, loop = node_and_loop
    try:
        loop.run_until_complete(run_checks(node, activity))
    except Rejected as rejected:
        assert 400 <= rejected.status < 500
        assert rejected.reason and rejected.detail
