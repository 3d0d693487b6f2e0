"""A SQLite node that has started its workers and answered read requests carries neither
cryptography, argon2 nor SQLAlchemy's PostgreSQL dialect: they are imported on first use (#17,
idle memory; the figure is in the README's Performance section, measured by bench/readpath.py).

A module-level import of either anywhere on the serving path makes this fail."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROBE = """
import asyncio, json, sys
import httpx
from node.app import create_app
from node.core.settings import Settings

async def main() -> None:
    settings = Settings.load({"HAMBASTEGI_DATA_DIR": sys.argv[1]})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=settings.base_url) as client:
            statuses = [(await client.get(path)).status_code
                        for path in ("/", "/groups/demo", "/.well-known/nodeinfo")]
    lazy = ("cryptography", "sqlalchemy.dialects.postgresql", "argon2")
    loaded = sorted(name for name in sys.modules if name.startswith(lazy))
    print(json.dumps({"statuses": statuses, "loaded": loaded}))

asyncio.run(main())
"""


def test_an_idle_sqlite_node_loads_no_crypto_and_no_postgres_dialect(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    subprocess.run([sys.executable, "-m", "node.cli.main", "group", "create", "demo",
                    "--display-name", "Demo", "--language", "fa"], check=True, timeout=120,
                   env={"HAMBASTEGI_DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin"},
                   capture_output=True)
    result = subprocess.run([sys.executable, "-c", PROBE, str(data_dir)], capture_output=True,
                            text=True, timeout=120, check=True)
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["statuses"] == [200, 200, 200], outcome
    assert outcome["loaded"] == [], outcome
