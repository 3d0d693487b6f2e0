"""The `hambastegi` command as scripts use it: stable names, one-line errors."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.conftest import DatabaseFactory, NodeFactory, cli_environment, run_cli


@pytest.fixture
async def env(tmp_path: Path, databases: DatabaseFactory) -> dict[str, str]:
    return await cli_environment(tmp_path, databases)


run = run_cli


async def test_group_publish_edit_delete_token(env: dict[str, str]) -> None:
    created = run(env, "group", "create", "koeln", "--display-name", "Köln", "--language", "de")
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == "https://node.example/groups/koeln"
    listed = run(env, "group", "list")
    assert "koeln\thttps://node.example/groups/koeln\tKöln" in listed.stdout
    published = run(env, "publish", "note", "koeln", "--text", "Hallo", "--lang", "de")
    assert published.returncode == 0
    note_id = published.stdout.strip()
    assert note_id.startswith("https://node.example/objects/")
    assert run(env, "edit", "note", note_id, "--text", "Tschüss").returncode == 0
    assert run(env, "delete", note_id).returncode == 0
    token = run(env, "token", "create", "--label", "script")
    assert token.returncode == 0 and token.stdout.strip().startswith("hb_")
    status = run(env, "status")
    assert "deliveries queued: none" in status.stdout and "failing hosts: none" in status.stdout


@pytest.mark.parametrize("args, message", [
    (["group", "create", "Bad Name"], "invalid group name"),
    (["group", "create", "instance"], "reserved"),
    (["group", "create", "ok", "--language", "xx-!"], "invalid language"),
    (["publish", "note", "nobody", "--text", "x"], "no group named"),
    (["delete", "https://node.example/objects/none"], "no such post"),
    (["follow", "nobody", "x@y"], "no group named"),
])
async def test_errors_are_one_line_and_exit_non_zero(env: dict[str, str], args: list[str],
                                                     message: str) -> None:
    result = run(env, *args)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hambastegi: ") and message in lines[0]


async def test_duplicate_group_and_bad_settings(env: dict[str, str]) -> None:
    assert run(env, "group", "create", "koeln").returncode == 0
    again = run(env, "group", "create", "koeln")
    assert again.returncode == 1 and "already exists" in again.stderr
    bad = run({**env, "HAMBASTEGI_BASE_URL": "ftp://x"}, "group", "list")
    assert bad.returncode == 1 and "HAMBASTEGI_BASE_URL" in bad.stderr
    bad_db = run({**env, "HAMBASTEGI_DATABASE_URL": "mysql://x"}, "group", "list")
    assert bad_db.returncode == 1 and "HAMBASTEGI_DATABASE_URL" in bad_db.stderr


async def test_config_file_is_read_and_env_wins(env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "node.env"
    config.write_text("# settings\nHAMBASTEGI_BASE_URL=https://from-file.example\n")
    file_env = {k: v for k, v in env.items() if k != "HAMBASTEGI_BASE_URL"}
    created = run({**file_env, "HAMBASTEGI_CONFIG": str(config)}, "group", "create", "a")
    assert created.stdout.strip() == "https://from-file.example/groups/a"
    both = run({**env, "HAMBASTEGI_CONFIG": str(config)}, "group", "create", "b")
    assert both.stdout.strip() == "https://node.example/groups/b"


async def test_serve_without_base_url_uses_its_own_port(nodes: NodeFactory) -> None:
    node = await nodes.create("bare", start=False)
    node.env.pop("HAMBASTEGI_BASE_URL")
    await asyncio.to_thread(node.start, "--demo")
    host = f"127.0.0.1:{node.port}"
    async with httpx.AsyncClient() as client:
        finger = await client.get(f"http://{host}/.well-known/webfinger",
                                  params={"resource": f"acct:demo@{host}"})
        assert finger.status_code == 200
        actor_url = next(link["href"] for link in finger.json()["links"]
                         if link["rel"] == "self")
        assert actor_url == f"http://{host}/groups/demo"
        actor = await client.get(actor_url, headers={"Accept": "application/activity+json"})
    assert actor.json()["id"] == actor_url


@pytest.mark.parametrize(("host", "expected"), [
    ("127.0.0.1", "http://127.0.0.1:8123"), ("0.0.0.0", "http://127.0.0.1:8123"),
    ("::1", "http://[::1]:8123"), ("::", "http://127.0.0.1:8123"),
    ("localhost", "http://localhost:8123"),
])
def test_serve_default_base_url_follows_host_and_port(host: str, expected: str) -> None:
    from node.cli.common import load_settings
    from node.cli.main import build_parser

    args = build_parser().parse_args(["serve", "--host", host, "--port", "8123"])
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("HAMBASTEGI_BASE_URL", raising=False)
        patch.delenv("HAMBASTEGI_CONFIG", raising=False)
        assert load_settings(args).base_url == expected
        patch.setenv("HAMBASTEGI_BASE_URL", "https://node.example")
        assert load_settings(args).base_url == "https://node.example"
