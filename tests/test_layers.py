"""Imports point down: a lower layer never imports a higher one (docs/ARCHITECTURE.md).

Read from the source with ``ast`` so lazy imports inside functions count too:
an arrow is an arrow, whenever it is followed.
"""

from __future__ import annotations

import ast
from pathlib import Path

NODE = Path(__file__).resolve().parent.parent / "node"

# Rank of each subpackage.
LAYERS = {
    "core": 0,
    "storage": 1, "media": 1,
    "federation": 2,
    "groups": 3, "accounts": 3,
    "calls": 4, "news": 4, "networks": 4, "campaigns": 4, "mail": 4, "crosspost": 4,
    "web": 5, "api": 5, "clientapi": 5,
    # the static mirror renders pages through the app (node/app.py), beside it
    "mirror": 6,
    # modules directly in node/ (the app, the inbound handler table) compose the above
    "cli": 7,  # the CLI starts the app
}
TOP = 6


def _layer(module: str) -> tuple[str, int] | None:
    parts = module.split(".")
    if parts[0] != "node":
        return None
    if len(parts) == 1 or parts[1] == "__version__":
        return "version", 0  # node/__init__.py holds only the version
    return parts[1], LAYERS.get(parts[1], TOP)


def _module_name(path: Path) -> str:
    rel = path.relative_to(NODE.parent).with_suffix("")
    return ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[int, str]] = []
    for item in ast.walk(tree):
        if isinstance(item, ast.Import):
            found.extend((item.lineno, alias.name) for alias in item.names)
        elif isinstance(item, ast.ImportFrom) and item.module and item.level == 0:
            if item.module == "node":
                found.extend((item.lineno, f"node.{alias.name}") for alias in item.names)
            else:
                found.append((item.lineno, item.module))
    return found


def upward_imports() -> list[str]:
    wrong: list[str] = []
    for path in sorted(NODE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        here = _layer(_module_name(path))
        assert here is not None
        for line, target in _imports(path):
            there = _layer(target)
            if there is None or there[0] == here[0]:
                continue
            if there[1] > here[1]:
                wrong.append(f"{path.relative_to(NODE.parent)}:{line} imports {target}")
    return wrong


def test_every_subpackage_has_a_layer() -> None:
    packages = {p.name for p in NODE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages - {"storage"} <= set(LAYERS), packages - set(LAYERS)


def test_imports_point_down() -> None:
    assert upward_imports() == []
