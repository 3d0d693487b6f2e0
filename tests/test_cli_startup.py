"""The CLI starts fast: ``--help`` and usage errors load no database, crypto, HTTP
client or web code; each command's handler is imported when it runs
(node/cli/main.py). Behaviour, not timing: bench figures are in the README."""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from node.cli.main import build_parser

HEAVY = ("sqlalchemy", "sqlmodel", "cryptography", "aiohttp", "starlette", "alembic",
         "uvicorn", "asyncpg", "aiosqlite", "PIL", "nh3")

PROBE = """
import json, sys
from node.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
else:
    code = 0
heavy = sorted({name.split(".")[0] for name in sys.modules} & set(json.loads(HEAVY)))
print(json.dumps({"code": code, "heavy": heavy}))
"""


def loaded_by(*argv: str) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.replace("json.loads(HEAVY)", repr(list(HEAVY))), *argv],
        capture_output=True, text=True, timeout=60, check=True)
    outcome: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return outcome


@pytest.mark.parametrize("argv", [
    ("--help",),
    ("publish", "note", "--help"),
    ("publish", "call", "--help"),
    ("network", "join", "--help"),
    ("publish",),                       # a usage error: subcommand missing
    ("group", "create"),                # a usage error: argument missing
    ("user", "create", "--help"),
    ("no-such-command",),
])
def test_help_and_usage_errors_load_no_heavy_module(argv: tuple[str, ...]) -> None:
    outcome = loaded_by(*argv)
    assert outcome["code"] in (0, 2)
    assert outcome["heavy"] == []


def test_building_the_parser_loads_no_heavy_module() -> None:
    code = ("import sys; from node.cli.main import build_parser; build_parser(); "
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.strip() == "[]"


def _leaves(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                found.extend(_leaves(child))
    return found or [parser]


def test_every_command_names_a_handler_that_exists() -> None:
    leaves = _leaves(build_parser())
    assert len(leaves) > 30
    for leaf in leaves:
        ref = leaf.get_default("func")
        assert isinstance(ref, str), leaf.prog
        module, _, name = ref.partition(":")
        assert callable(getattr(importlib.import_module(module), name)), ref



def test_the_worker_runs_on_uvloop_and_short_commands_on_asyncio(tmp_path: Path) -> None:
    """``hambastegi worker`` sends on the loop ``serve`` uses (bench/profiles/README.md:
    the loop's own cost is a quarter of a delivery's CPU); one-shot commands keep asyncio's
    loop and never import uvloop."""
    import asyncio

    from node.cli.common import prepare, with_node
    from node.core.settings import Settings

    settings = Settings.load(environ={"HAMBASTEGI_DATA_DIR": str(tmp_path)})
    prepare(settings)

    async def loop_of(node: object) -> str:
        return type(asyncio.get_running_loop()).__module__

    assert with_node(settings, loop_of, fast_loop=True).startswith("uvloop")
    assert with_node(settings, loop_of).startswith("asyncio")
