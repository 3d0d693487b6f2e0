"""`hambastegi user …`: accounts of the workspace from the shell (issue 14, point 3)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import DatabaseFactory, cli_environment, run_cli


async def test_user_create_prints_a_one_time_link_or_takes_the_password_on_stdin(
        tmp_path: Path, databases: DatabaseFactory) -> None:
    env = await cli_environment(tmp_path, databases)
    assert run_cli(env, "group", "create", "koeln", "--language", "de").returncode == 0
    created = run_cli(env, "user", "create", "ali", "--group", "koeln")
    assert created.returncode == 0, created.stderr
    link = created.stdout.strip().splitlines()[-1]
    assert link.startswith("https://node.example/admin/set-password/") and len(link) > 60
    piped = _with_stdin(env, "long password 1\n", "user", "create", "root", "--admin",
                        "--password-stdin")
    assert piped.returncode == 0 and "password is set" in piped.stdout
    listed = run_cli(env, "user", "list").stdout
    assert "ali\teditor\tkoeln\tnot set" in listed and "root\tadmin\t*\tset" in listed
    for args, message in ((("user", "create", "ali", "--group", "koeln"), "exists already"),
                          (("user", "create", "bob"), "needs at least one --group"),
                          (("user", "create", "bob", "--group", "nowhere"), "no group"),
                          (("user", "create", "Bad Name", "--admin"), "user name"),
                          (("user", "delete", "nobody"), "no user")):
        refused = run_cli(env, *args)
        assert refused.returncode == 1 and message in refused.stderr, refused.stderr
    assert run_cli(env, "user", "delete", "ali").returncode == 0
    assert "ali" not in run_cli(env, "user", "list").stdout


def _with_stdin(env: dict[str, str], stdin: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "node.cli.main", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=60, check=False)
