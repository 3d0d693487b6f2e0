"""What the Telegram/Bluesky queue costs a publish (issue 27), same run, same database:
notes published with the hook switched off (the baseline: publishing before issue 27), by
a group with no connection (the usual case: one more SELECT), and by a group with a
Telegram channel and a Bluesky account (two queue rows in the same transaction).

    .venv/bin/python bench/crosspost_publish.py [--posts 400] [--database-url URL]

SQLite in a temporary directory unless a database URL is given (it must be empty).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlmodel import select

from bench.common import table
from node.core.settings import Settings
from node.crosspost import connections
from node.federation import crosspost_log, publishing
from node.federation.runtime import Node
from node.groups import operations
from node.storage import migrate
from node.storage.models import LocalActor


async def _no_hook(*args: object, **kwargs: object) -> None:
    return None


async def publish(node: Node, name: str, posts: int) -> float:
    async with node.db.read() as session:
        actor = (await session.exec(select(LocalActor).where(
            LocalActor.username == name))).one()
    started = time.perf_counter()
    for n in range(posts):
        async with node.db.write() as session:
            await publishing.publish_note(session, actor, node.urls, text=f"Streik {n}")
    return (time.perf_counter() - started) / posts * 1e6


async def run(database_url: str, data_dir: Path, posts: int) -> None:
    settings = Settings.load(environ={"HAMBASTEGI_DATA_DIR": str(data_dir),
                                      "HAMBASTEGI_DATABASE_URL": database_url})
    node = Node(settings)
    await node.start()
    try:
        for name in ("plain", "connected"):
            await operations.create_group(node, name, display_name=name, language="de")
        actor = await connections.local_actor(node, "connected")
        await connections.store(node, actor, "telegram", "@bench", "1:" + "x" * 35)
        await connections.store(node, actor, "bluesky", "bench.example", "app-pass")
        await publish(node, "plain", 20)  # warm
        rows = []
        hook = crosspost_log.record
        for _ in range(2):  # alternate, so drift favours none
            crosspost_log.record = _no_hook
            try:
                base = await publish(node, "plain", posts)
            finally:
                crosspost_log.record = hook
            plain = await publish(node, "plain", posts)
            queued = await publish(node, "connected", posts)
            rows.append(["before issue 27 (hook off)", f"{base:.0f}", "1.00"])
            rows.append(["no connection (one SELECT)", f"{plain:.0f}", f"{plain / base:.2f}"])
            rows.append(["Telegram + Bluesky", f"{queued:.0f}", f"{queued / base:.2f}"])
        print(table(f"publish_note, {posts} posts each ({settings.database_url.split(':')[0]})",
                    ["group", "µs per publish", "ratio"], rows))
    finally:
        await node.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--posts", type=int, default=400)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.sqlite3"
        migrate.upgrade(Settings.load(environ={"HAMBASTEGI_DATA_DIR": tmp,
                                               "HAMBASTEGI_DATABASE_URL": url}).database_url)
        asyncio.run(run(url, Path(tmp), args.posts))


if __name__ == "__main__":
    main()
