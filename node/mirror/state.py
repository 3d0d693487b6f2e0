"""What a re-export needs to know without rendering (issue 28;
docs/ARCHITECTURE.md#10-readers-behind-censorship): a keyed hash of the rows each post's
page shows, one of what every page shows (templates, catalogues, options), and where
the state of an export directory is kept — in the data directory, never in the copy.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
from sqlmodel import col, select

from node.core.settings import Settings
from node.federation.runtime import Node
from node.storage.models import (
    Campaign,
    Cosigner,
    Event,
    LocalActor,
    LocalObject,
    NewsBulletin,
    NewsItem,
)

# Bumped when the export's own output changes shape: every page is rendered again.
EXPORT_VERSION = "3"
WEB = Path(__file__).resolve().parent.parent / "web"
GROUP_KEY = "group:"  # a group's row in ``fingerprints``


def state_path(settings: Settings, directory: Path) -> Path:
    name = hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:24]
    return settings.data_dir / "mirror-state" / f"{name}.json"


def code_version(extra: Iterable[str]) -> str:
    """What every page depends on besides its rows: templates, catalogues, stylesheet."""
    digest = hashlib.sha256(EXPORT_VERSION.encode())
    for folder in ("templates", "locale", "static"):
        for file in sorted((WEB / folder).rglob("*")):
            if file.is_file():
                digest.update(file.relative_to(WEB).as_posix().encode())
                digest.update(file.read_bytes())
    for value in extra:
        digest.update(b"\0" + value.encode())
    return digest.hexdigest()


async def fingerprints(node: Node, key: bytes) -> dict[str, str]:
    """A keyed hash of the rows each post's page shows, by uuid. Campaigns (consent
    decides what shows) and bulletins (they list other posts) are absent: always
    rendered again. Keyed so the hashes say nothing about rows that are not public."""
    async with node.db.read() as session:
        objects = (await session.exec(select(LocalObject))).all()
        actors = {a.id: a for a in (await session.exec(select(LocalActor))).all()}
        events = {e.object_id: e for e in (await session.exec(select(Event))).all()}
        news = {n.object_id: n for n in (await session.exec(select(NewsItem))).all()}
        cosigners: dict[int, list[Any]] = defaultdict(list)
        for row in (await session.exec(select(Cosigner))).all():
            cosigners[row.event_id].append(row.model_dump(mode="json"))
        always = set((await session.exec(
            select(Campaign.object_id).where(col(Campaign.object_id).is_not(None)))).all())
        always |= set((await session.exec(select(NewsBulletin.object_id))).all())
    found = {}

    def keyed(rows: Any) -> str:
        # orjson: 10,000 posts' rows are serialised on every export (issue 28's re-export
        # goal); keys sorted so the same rows give the same hash.
        return hmac.new(key, orjson.dumps(rows, option=orjson.OPT_SORT_KEYS, default=str),
                        hashlib.sha256).hexdigest()

    for group in actors.values():
        found[GROUP_KEY + group.username] = keyed(group.model_dump(mode="json"))
    for obj in objects:
        if obj.id in always:
            continue
        event = events.get(obj.id or 0)
        actor = actors.get(obj.local_actor_id)
        rows = [obj.model_dump(mode="json"),
                actor.model_dump(mode="json") if actor else None,
                event.model_dump(mode="json") if event else None,
                sorted(cosigners.get(event.id or 0, []), key=str) if event else None,
                news[obj.id].model_dump(mode="json") if obj.id in news else None]
        found[obj.uuid] = keyed(rows)
    return found
