"""`hambastegi token list / revoke`, and the API refusing a revoked token at once."""

from __future__ import annotations

import httpx

from tests.conftest import NodeFactory


async def test_revoked_token_is_refused_by_a_running_node_at_once(nodes: NodeFactory) -> None:
    node = await nodes.create("tokens")
    node.cli("group", "create", "koeln", "--display-name", "Köln", "--language", "de")
    token = node.cli("token", "create", "--label", "script", "--group", "koeln").stdout.strip()
    other = node.cli("token", "create", "--label", "admin").stdout.strip()
    url = f"{node.base_url}/api/v1/groups/koeln/follow-requests"
    async with httpx.AsyncClient() as client:
        before = await client.get(url, headers={"Authorization": f"Bearer {token}"})
        assert before.status_code == 200

        listed = node.cli("token", "list").stdout
        header, *lines = listed.strip().splitlines()
        assert header.split("\t") == ["id", "label", "group", "created", "state"]
        rows = [line.split("\t") for line in lines]
        assert [row[1:3] for row in rows] == [["script", "koeln"], ["admin", "*"]]
        assert all(row[4] == "active" for row in rows)
        assert token not in listed and other not in listed  # only hashes are stored

        node.cli("token", "revoke", rows[0][0])
        after = await client.get(url, headers={"Authorization": f"Bearer {token}"})
        still = await client.get(url, headers={"Authorization": f"Bearer {other}"})
    assert after.status_code == 401
    assert still.status_code == 200
    relisted = [line.split("\t")
                for line in node.cli("token", "list").stdout.splitlines()[1:]]
    assert relisted[0][4].startswith("revoked ") and relisted[1][4] == "active"


async def test_revoking_an_unknown_or_revoked_token_is_a_one_line_error(
        nodes: NodeFactory) -> None:
    node = await nodes.create("tokens", start=False)
    node.cli("token", "create")
    assert node.cli("token", "revoke", "1").returncode == 0
    for token_id in ("1", "99"):
        result = node.cli("token", "revoke", token_id, check=False)
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "no active token" in lines[0]
    (only,) = node.cli("token", "list").stdout.splitlines()[1:]
    assert only.startswith("1\tapi\t*\t") and "\trevoked " in only
