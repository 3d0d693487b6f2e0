"""Exporting a static mirror (issue 28): a node with 10,000 posts, each in three
languages, exported in three interface languages; then the same export again after one
post was edited.

    .venv/bin/python bench/mirror.py [--posts 10000] [--groups 10]

The goals (issue 28): a full export of at least 200 pages/s on one core, a re-export
after one edit in under 5 s. The baseline, measured in the same run, is the node
answering the same post pages in process (the app's own rendering, nothing written):
the ratio is what crawling, rewriting links, hashing and writing add to it.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
import uuid as uuids
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlmodel import select

from bench.common import table
from node.core.settings import Settings
from node.federation.runtime import Node
from node.groups import operations
from node.inbound import INBOUND
from node.mirror.export import Exporter, Options, Result
from node.storage import migrate
from node.storage.models import LocalObject

TEXTS = {"fa": "<p>کارگران پتروشیمی ماهشهر برای دومین هفته در اعتصاب هستند. #همبستگی</p>" * 4,
         "de": "<p>Die Arbeiter in Mahshahr streiken die zweite Woche. #Solidarität</p>" * 4,
         "en": "<p>Workers in Mahshahr are on strike for a second week. #solidarity</p>" * 4}


async def seed(settings: Settings, posts: int, groups: int) -> str:
    """Groups with one post published the ordinary way, then copies of its row (the
    pages do not care how a row got there; publishing 10,000 would time the wrong thing).
    Returns one post's id, to edit."""
    node = Node(settings, inbound=INBOUND)
    await node.start()
    try:
        first = ""
        for g in range(groups):
            name = f"group{g}"
            await operations.create_group(node, name, display_name=f"Group {g}", language="fa")
            object_id = await operations.publish_note(node, name, text="First post")
            first = first or object_id
            async with node.db.write() as session:
                model = (await session.exec(select(LocalObject).where(
                    LocalObject.uuid == object_id.rsplit("/", 1)[1]))).one()
                for i in range(posts // groups - 1):
                    session.add(LocalObject(
                        uuid=uuids.uuid4().hex, local_actor_id=model.local_actor_id,
                        object_type="Note", language="fa", contents=dict(TEXTS),
                        published=model.published - timedelta(minutes=i + 1)))
        return first
    finally:
        await node.close()


async def baseline(settings: Settings, count: int) -> float:
    """Post pages per second as the node renders them in process, nothing written."""
    exporter = Exporter(settings, Options(Path(tempfile.mkdtemp())))
    await exporter.node.start()
    try:
        async with exporter.node.db.read() as session:
            ids = (await session.exec(select(LocalObject.uuid).limit(count))).all()
        started = time.perf_counter()
        for lang in ("en", "fa", "de"):
            for uuid in ids:
                status, _, _ = await exporter._get(f"/objects/{uuid}", f"lang={lang}",
                                                   "text/html")
                assert status == 200
        return 3 * len(ids) / (time.perf_counter() - started)
    finally:
        await exporter.node.close()


async def edit(settings: Settings, object_id: str) -> None:
    node = Node(settings, inbound=INBOUND)
    await node.start()
    try:
        await operations.edit_note(node, object_id, text="First post, corrected")
    finally:
        await node.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--posts", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hb-mirror-bench-"))
    url = f"sqlite+aiosqlite:///{work / 'db.sqlite3'}"
    migrate.upgrade(url)
    settings = Settings.load(environ={"HAMBASTEGI_BASE_URL": "https://node.example",
                                      "HAMBASTEGI_DATA_DIR": str(work / "data"),
                                      "HAMBASTEGI_DATABASE_URL": url})
    started = time.perf_counter()
    object_id = asyncio.run(seed(settings, args.posts, args.groups))
    print(f"seeded {args.posts} posts in {args.groups} groups in "
          f"{time.perf_counter() - started:.1f} s", file=sys.stderr)
    cpu = time.process_time()
    base_wall = asyncio.run(baseline(settings, 1000))
    base_cpu = 3000 / (time.process_time() - cpu)
    out = work / "mirror"
    options = Options(out, languages=("en", "fa", "de"))

    def run() -> tuple[Result, float]:
        cpu = time.process_time()
        result = asyncio.run(Exporter(settings, options).run())
        return result, time.process_time() - cpu

    full, full_cpu = run()
    again, again_cpu = run()
    asyncio.run(edit(settings, object_id))
    edited, edited_cpu = run()
    # CPU seconds of the whole process (the database's thread included) and wall
    # seconds: on a shared machine the wall clock also counts other processes' turns.
    print(table(f"mirror export, {args.posts} posts x 3 languages",
                ["what", "rendered", "files", "CPU s", "wall s", "pages per CPU s",
                 "vs baseline"],
                [["post pages rendered in process (baseline)", 3000, 0, 3000 / base_cpu,
                  3000 / base_wall, base_cpu, 1.0],
                 ["full export", full.pages, full.files, full_cpu, full.seconds,
                  full.pages / full_cpu, full.pages / full_cpu / base_cpu],
                 ["export again, nothing changed", again.pages, again.files, again_cpu,
                  again.seconds, again.pages / again_cpu, again.pages / again_cpu / base_cpu],
                 ["export again after one edit", edited.pages, edited.files, edited_cpu,
                  edited.seconds, edited.pages / edited_cpu,
                  edited.pages / edited_cpu / base_cpu]]))
    print(f"after the edit: {edited.written} files written ({', '.join(edited.changed[:6])}"
          f"{' …' if len(edited.changed) > 6 else ''}), {edited.removed} removed")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
