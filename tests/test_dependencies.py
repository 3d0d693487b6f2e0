"""Runtime dependencies are the ones the node uses; each is explained in the README."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Distribution name → the module the node imports (or names as a SQLAlchemy driver).
MODULES = {"pillow": "PIL", "http-sfv": "http_sfv", "prometheus-client": "prometheus_client",
           "markdown-it-py": "markdown_it", "argon2-cffi": "argon2",
           "python-multipart": "python_multipart", "dkimpy": "dkim",
           "atproto": "atproto_client"}


def runtime_dependencies() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [re.split(r"[\[<>=!~ ]", dep, maxsplit=1)[0].lower()
            for dep in project["dependencies"]]


def node_source() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "node").rglob("*.py"))


def test_every_runtime_dependency_is_used_by_the_node() -> None:
    source = node_source()
    unused = []
    for dist in runtime_dependencies():
        module = MODULES.get(dist, dist.replace("-", "_"))
        imported = re.search(rf"^\s*(import|from) {module}\b", source, flags=re.MULTILINE)
        driver = f"+{module}://" in source  # aiosqlite, asyncpg: named in database URLs
        if not (imported or driver):
            unused.append(dist)
    assert not unused, f"runtime dependencies the node never uses: {unused}"


def test_every_runtime_dependency_is_in_the_readme_table() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Dependencies and why", 1)[1].split("\n## ", 1)[0]
    named = {name.strip().split(" ")[0].lower()
             for row in table.splitlines() if row.startswith("| ")
             for name in row.split("|")[1].split(",")}
    missing = [d for d in runtime_dependencies() if d.split("[")[0] not in named]
    assert not missing, f"not explained in README's dependency table: {missing}"
