"""A follow that cannot be done says why: the address guard, no such account, an
unreachable host, or a bad answer (CLI: one line; API: the error text and a fitting status)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from node.groups import operations
from tests.conftest import LiveNode, NodeFactory, free_port, start_live_node, stop_live_node
from tests.fediverse import FakeRemote


@pytest.fixture
async def guarded_node(tmp_path: Path, database_url: str) -> AsyncIterator[LiveNode]:
    live = await start_live_node(tmp_path, database_url,
                                 {"HAMBASTEGI_ALLOW_PRIVATE_NETWORKS": "0"})
    yield live
    await stop_live_node(live)


async def api_follow(live: LiveNode, target: str) -> httpx.Response:
    await operations.create_group(live.node, "koeln", display_name="Köln", language="de")
    token = await operations.create_token(live.node, "test")
    async with httpx.AsyncClient() as client:
        return await client.post(live.url("/api/v1/groups/koeln/follow"),
                                 json={"target": target},
                                 headers={"Authorization": f"Bearer {token}"}, timeout=60)


async def test_api_follow_refused_by_the_address_guard_says_so(guarded_node: LiveNode,
                                                               remote: FakeRemote) -> None:
    remote.add_actor("alice")
    response = await api_follow(guarded_node, f"alice@127.0.0.1:{remote.port}")
    assert response.status_code == 422
    assert "private or local address" in response.json()["error"]


async def test_api_follow_of_a_missing_account_says_no_such_account(live_node: LiveNode,
                                                                    remote: FakeRemote) -> None:
    response = await api_follow(live_node, f"nobody@127.0.0.1:{remote.port}")
    assert response.status_code == 404
    assert "no such account" in response.json()["error"]


async def test_api_follow_of_an_unreachable_host_says_unreachable(live_node: LiveNode) -> None:
    response = await api_follow(live_node, f"alice@127.0.0.1:{free_port()}")
    assert response.status_code == 502
    assert "unreachable" in response.json()["error"]


async def test_api_follow_with_a_bad_answer_says_bad_answer(live_node: LiveNode,
                                                            remote: FakeRemote) -> None:
    actor = remote.add_actor("alice")
    actor.doc_override = {"id": actor.id, "type": "Person", "preferredUsername": "alice"}
    response = await api_follow(live_node, f"alice@127.0.0.1:{remote.port}")
    assert response.status_code == 502
    assert "bad answer" in response.json()["error"]


async def test_api_follow_of_a_malformed_handle_is_400(live_node: LiveNode) -> None:
    response = await api_follow(live_node, "not a handle")
    assert response.status_code == 400
    assert "@user@host" in response.json()["error"]


async def test_cli_follow_errors_are_one_line_and_say_why(nodes: NodeFactory,
                                                          remote: FakeRemote) -> None:
    node = await nodes.create("cli", start=False)
    node.cli("group", "create", "koeln")
    remote.add_actor("alice")
    cases = [
        ({}, f"nobody@127.0.0.1:{remote.port}", "no such account"),
        ({}, f"alice@127.0.0.1:{free_port()}", "unreachable"),
        ({"HAMBASTEGI_ALLOW_PRIVATE_NETWORKS": "0"}, f"alice@127.0.0.1:{remote.port}",
         "private or local address"),
    ]
    for env, target, message in cases:
        node.env.update({"HAMBASTEGI_ALLOW_PRIVATE_NETWORKS": "1", **env})
        result = await asyncio.to_thread(node.cli, "follow", "koeln", target, check=False)
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("hambastegi: "), result.stderr
        assert message in lines[0] and target in lines[0]
