"""``hambastegi mirror export``: the public site as files anyone may host (issue 28;
docs/ARCHITECTURE.md#10-readers-behind-censorship).

The copy is what an anonymous reader of the node sees, by construction: the pages are
requested from the node's own application in this process (no network, the same
handlers, the same redactions: drafts, ``network_only`` and withdrawn campaigns,
withheld names and closed meetings' links are never in a public answer), starting
from the front page and following the links those answers contain. Links are then
made relative (``node/core/links.py``, ``paths.relative``), so the copy works from any
host, a bucket's sub-path or ``file://``; links the copy does not hold point at the
original.

Exporting again: a post's page is rendered again only when what it shows changed (a
keyed hash of its rows, ``fingerprints``; campaigns and bulletins always are), a group's
older page only when one of its posts did; a file is
rewritten only when its bytes differ; files of the earlier export that are no longer
public are removed. The state lives in the data directory, never in the copy.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import os
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from urllib.parse import urljoin, urlsplit

import orjson
from sqlmodel import select

from node.app import NodeApp, create_app
from node.core import links, minisign
from node.core.settings import Settings
from node.federation.runtime import Node
from node.mirror import manifest, paths
from node.mirror.paths import Target
from node.mirror.state import GROUP_KEY, code_version, fingerprints, state_path
from node.storage.models import (
    LocalActor,
    LocalObject,
    MediaFile,
)
from node.web import i18n, listings

log = logging.getLogger("hambastegi")

JSON_FEED_URLS = frozenset({"url", "external_url", "home_page_url", "feed_url", "image",
                            "banner_image", "icon", "favicon", "avatar"})


class MirrorError(ValueError):
    """The export cannot run (a directory that is not an earlier export…)."""


@dataclass
class Options:
    directory: Path
    groups: frozenset[str] = frozenset()
    languages: tuple[str, ...] = ()
    base_path: str = ""  # where the copy is published: makes feed links absolute there
    valid_for: timedelta = timedelta(days=30)


@dataclass
class Result:
    pages: int = 0  # documents rendered by the node in this run
    reused: int = 0  # post documents whose rows had not changed
    written: int = 0  # files whose bytes changed
    removed: int = 0
    files: int = 0
    changed: list[str] = field(default_factory=list)  # the files written
    seconds: float = 0.0


@dataclass
class Done:
    """One exported file: its manifest entry, its file's stat and the documents it
    links to (kept so an unchanged page need not be rendered to know them)."""

    entry: manifest.Entry
    mtime_ns: int
    fingerprint: str = ""
    links: list[list[Any]] = field(default_factory=list)  # Target.as_list() each


def check_directory(directory: Path, public: minisign.PublicKey) -> manifest.Manifest | None:
    """The earlier export in ``directory``, None if it is empty or absent; a non-empty
    directory that is not an export of this node is refused before anything is touched.
    The manifest must carry our signature: it names the files a re-export deletes, so
    a manifest someone else wrote must never name them."""
    if not directory.exists():
        return None
    if not directory.is_dir():
        raise MirrorError(f"{directory} is not a directory")
    if not any(directory.iterdir()):
        return None
    try:
        data = (directory / manifest.MANIFEST).read_bytes()
        minisign.verify(public, data, (directory / manifest.SIGNATURE).read_text(
            encoding="utf-8", errors="replace"))
        return manifest.Manifest.parse(data)
    except (OSError, manifest.ManifestError, minisign.MinisignError) as exc:
        raise MirrorError(f"{directory} is not empty and is not an earlier export of this "
                          f"node ({exc}); nothing was changed") from None


class Exporter:
    def __init__(self, settings: Settings, options: Options) -> None:
        self.settings = settings
        self.options = options
        self.out = options.directory
        self.base = settings.base_url
        self.origin = urlsplit(self.base)[:2]
        self.app = cast(NodeApp, create_app(settings, run_worker=False, run_processor=False))
        self.app.mirror = True
        self.node: Node = self.app.state.node
        self.done: dict[str, Done] = {}
        self.queue: deque[Target] = deque()
        self.seen: set[str] = set()
        self.result = Result()
        self.languages: tuple[str, ...] = ()
        self.group_names: list[str] = []
        self.actor_ids: dict[str, int] = {}
        self.listings: dict[str, list[str]] = {}  # a group's posts, newest first
        self.state_targets: list[Any] = []  # the state's table of link targets
        self.owners: dict[str, str] = {}  # uuid → group, for --group
        self.uploads: dict[str, MediaFile] = {}
        self.variants: dict[int, list[MediaFile]] = defaultdict(list)

    # --- the run ---------------------------------------------------------------------

    async def run(self) -> Result:
        started = time.perf_counter()
        key = minisign.load_or_create(self.settings.data_dir)
        earlier = check_directory(self.out, key.public())
        available = i18n.available()
        wanted = self.options.languages or available
        unknown = [lang for lang in wanted if lang not in available]
        if unknown:
            raise MirrorError(f"no interface language {', '.join(unknown)} "
                              f"(available: {', '.join(available)})")
        self.languages = tuple(wanted)
        await self.node.start()
        try:
            await self._load()
            unknown_groups = self.options.groups - set(self.group_names)
            if unknown_groups:
                raise MirrorError(f"no group {', '.join(sorted(unknown_groups))}")
            state = self._read_state()
            version = code_version([self.base, self.settings.onion_origin,
                                    key.public().encoded(), *self.languages,
                                    self.options.base_path, *sorted(self.options.groups)])
            fps = await fingerprints(self.node, hashlib.sha256(b"mirror-state" + key.seed)
                                     .digest())
            previous = state.get("files", {}) if state.get("version") == version else {}
            table = state.get("targets")
            self.state_targets = table if isinstance(table, list) else []
            await self._crawl(fps, previous)
        finally:
            await self.node.close()
        self._write_root(key.public().encoded())
        self._remove_stale(earlier)
        exported = datetime.now(UTC).replace(microsecond=0)
        entries = {path: d.entry for path, d in self.done.items()}
        body = manifest.build(self.base, self.settings.onion_origin, entries, exported,
                              self.options.valid_for, key.public().encoded())
        self._put(manifest.MANIFEST, body, count=False)
        self._put(manifest.SIGNATURE, manifest.sign(key, body, self.base, exported).encode(),
                  count=False)
        self._write_state(version)
        self.result.files = len(self.done)
        self.result.seconds = time.perf_counter() - started
        return self.result

    async def _load(self) -> None:
        async with self.node.db.read() as session:
            actors = (await session.exec(select(LocalActor))).all()
            names = {a.id: a.username for a in actors}
            self.actor_ids = {a.username: a.id for a in actors if a.id is not None}
            self.group_names = list(names.values())
            for uuid, actor_id in (await session.exec(
                    select(LocalObject.uuid, LocalObject.local_actor_id))).all():
                self.owners[uuid] = names.get(actor_id, "")
            for media in (await session.exec(select(MediaFile))).all():
                self.uploads[media.name] = media
                if media.variant_of is not None:
                    self.variants[media.variant_of].append(media)

    async def _crawl(self, fps: dict[str, str], previous: dict[str, Any]) -> None:
        for lang in self.languages:
            self._enqueue(Target("page", "/", 1, lang))
            self._enqueue(Target("page", "/campaigns", 1, lang))
            for name in self.group_names:
                if self._wanted(Target("page", f"/groups/{name}", 1, lang)):
                    self._enqueue(Target("page", f"/groups/{name}", 1, lang))
        while self.queue:
            target = self.queue.popleft()
            uuid = paths.object_uuid(target.route)
            fingerprint = fps.get(uuid, "") if uuid else ""
            if target.kind == "page" and target.page > 1:
                fingerprint = await self._listing_fingerprint(target, fps)
            if fingerprint and self._reuse(target, fingerprint, previous.get(target.file)):
                continue
            await self._export(target, fingerprint)

    async def _listing_fingerprint(self, target: Target, fps: dict[str, str]) -> str:
        """A group's older page (``?page=2`` …) shows the group and twenty posts: its
        hash is theirs, so a page none of whose posts changed is not rendered again.
        "" when a post on it has no hash (always rendered)."""
        username = target.route.rsplit("/", 1)[1]
        actor_id = self.actor_ids.get(username)
        group = fps.get(GROUP_KEY + username)
        if actor_id is None or group is None:
            return ""
        order = self.listings.get(username)
        if order is None:  # one query per group, not one per page and language
            async with self.node.db.read() as session:
                order = self.listings[username] = await listings.post_uuids(session, actor_id)
        start = (target.page - 1) * listings.PAGE_SIZE
        shown = [fps.get(uuid) for uuid in order[start:start + listings.PAGE_SIZE]]
        more = len(order) > start + listings.PAGE_SIZE
        if not shown or not all(shown):
            return ""
        return hashlib.sha256(json.dumps([group, more, target.page, shown]).encode()).hexdigest()

    def _reuse(self, target: Target, fingerprint: str, old: Any) -> bool:
        """An unchanged post's file, left as it is when it is still what we wrote."""
        if not isinstance(old, dict) or old.get("fp") != fingerprint:
            return False
        try:
            stat = (self.out / target.file).stat()
        except OSError:
            return False
        if stat.st_size != old.get("size") or stat.st_mtime_ns != old.get("mtime_ns"):
            return False
        links = old.get("links")
        if not isinstance(links, list):
            return False
        table = self.state_targets
        resolved = []
        for index in links:
            # Links are indices into one table of targets (a group page or the stylesheet
            # is linked from thousands of posts). Most are already queued: a set lookup.
            if not isinstance(index, int) or not 0 <= index < len(table):
                return False
            raw = table[index]
            resolved.append(raw)
            if isinstance(raw, list) and len(raw) == 5 and raw[4] not in self.seen:
                link = Target.from_list(raw)
                if link is not None:
                    self._enqueue(link)
        links = resolved
        self.done[target.file] = Done(manifest.Entry(target.file, stat.st_size,
                                                     str(old.get("sha256"))),
                                      stat.st_mtime_ns, fingerprint, links)
        self.result.reused += 1
        return True

    async def _export(self, target: Target, fingerprint: str) -> None:
        if target.route.startswith("/media/uploads/"):
            self._copy_upload(target)
            return
        accept = "application/activity+json" if target.kind == "json" else "text/html, */*"
        status, kind, body = await self._get(target.route, target.query, accept)
        if status != 200:
            return
        self.result.pages += 1
        found: list[Target] = []
        if target.kind == "page" and kind.startswith("text/html"):
            body = self._rewrite_html(body, target, found)
            if paths.OBJECT_PAGE.fullmatch(target.route):
                found.append(Target("json", target.route))
        elif target.kind == "file" and target.route.endswith(".atom"):
            body = self._rewrite_html(body, target, found, feed=True)
        elif target.kind == "file" and target.route.endswith(".json"):
            body = self._rewrite_json_feed(body, target, found)
        elif target.kind == "json" and not kind.startswith(("application/activity+json",
                                                             "application/ld+json")):
            return
        for link in found:
            self._enqueue(link)
        self._put(target.file, body, fingerprint=fingerprint,
                  found=[link.as_list() for link in found])

    # --- links -----------------------------------------------------------------------

    def _wanted(self, target: Target) -> bool:
        if not self.options.groups:
            return True
        parts = target.route.split("/")
        if len(parts) > 2 and parts[1] == "groups":
            return parts[2] in self.options.groups
        uuid = paths.object_uuid(target.route)
        if uuid is not None:
            return self.owners.get(uuid) in self.options.groups
        return True

    def _enqueue(self, target: Target) -> None:
        if target.file not in self.seen and self._wanted(target):
            self.seen.add(target.file)
            self.queue.append(target)

    def _mapper(self, target: Target, found: list[Target], *, feed: bool
                ) -> Callable[[str, str], str | None]:
        page_url = self.base + target.route + (f"?{target.query}" if target.query else "")
        lang = target.lang or self.languages[0]

        def mapper(url: str, tag: str) -> str | None:
            if not url or url.startswith("#"):
                return None
            absolute = urljoin(page_url, url)
            parts = urlsplit(absolute)
            if (parts.scheme, parts.netloc) != self.origin:
                return None  # another site: as it was
            linked = paths.target_of(parts.path, parts.query, lang, self.languages)
            if linked is None or not self._wanted(linked):
                return absolute  # not in the copy: the original has it
            found.append(linked)
            fragment = f"#{parts.fragment}" if parts.fragment else ""
            if feed and self.options.base_path:
                return self.options.base_path + linked.file + fragment
            return paths.relative(target.file, linked.file) + fragment

        return mapper

    def _rewrite_html(self, body: bytes, target: Target, found: list[Target], *,
                      feed: bool = False) -> bytes:
        text = body.decode("utf-8", "surrogateescape")
        return links.rewrite(text, self._mapper(target, found, feed=feed)).encode(
            "utf-8", "surrogateescape")

    def _rewrite_json_feed(self, body: bytes, target: Target, found: list[Target]) -> bytes:
        try:
            document = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return body
        mapper = self._mapper(target, found, feed=True)

        def walk(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: (mapper(v, "json") or v) if k in JSON_FEED_URLS and isinstance(v, str)
                        else walk(v) for k, v in value.items()}
            if isinstance(value, list):
                return [walk(v) for v in value]
            return value

        return json.dumps(walk(document), ensure_ascii=False, indent=1).encode()

    # --- files -----------------------------------------------------------------------

    def _copy_upload(self, target: Target) -> None:
        """An upload and all its variants, only if a row records it (as the node serves)."""
        media = self.uploads.get(target.route.rsplit("/", 1)[1])
        if media is None:
            return
        original = media if media.variant_of is None else next(
            (m for m in self.uploads.values() if m.id == media.variant_of), media)
        for item in (original, *self.variants.get(original.id or 0, [])):
            source = self.settings.media_dir / "uploads" / item.name
            try:
                data = source.read_bytes()
            except OSError:
                continue
            name = f"media/uploads/{item.name}"
            self.seen.add(name)
            self._put(name, data)

    def _put(self, name: str, data: bytes, *, count: bool = True, fingerprint: str = "",
             found: list[list[Any]] | None = None) -> None:
        path = self.out / name
        try:
            same = path.stat().st_size == len(data) and path.read_bytes() == data
        except OSError:
            same = False
        if not same:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(path.name + ".partial")
            temporary.write_bytes(data)
            os.replace(temporary, path)
            self.result.written += count
            if count:
                self.result.changed.append(name)
        if count:
            entry = manifest.digest(data)
            self.done[name] = Done(manifest.Entry(name, entry.size, entry.sha256),
                                   path.stat().st_mtime_ns, fingerprint, found or [])

    def _write_root(self, public_key: str) -> None:
        """The copy's front door: one link per language, the original, the onion, the
        key (no script, nothing from elsewhere)."""
        from node.core.languages import autonym

        esc = html.escape
        items = "".join(f'<li><a href="{esc(lang)}/index.html" lang="{esc(lang)}" '
                        f'hreflang="{esc(lang)}">{esc(autonym(lang))}</a></li>'
                        for lang in self.languages)
        onion = self.settings.onion_origin
        page = (
            '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<meta name="referrer" content="no-referrer">'
            f'<title>{esc(self.settings.host)}</title>'
            f'<link rel="canonical" href="{esc(self.base)}/"></head><body>'
            f'<h1 dir="ltr">{esc(self.settings.host)}</h1><ul>{items}</ul>'
            f'<p>Original: <a href="{esc(self.base)}/" dir="ltr" data-original>'
            f'{esc(self.base)}</a></p>'
            + (f'<p>Tor: <a href="{esc(onion)}/" dir="ltr">{esc(onion)}</a></p>' if onion else "")
            + f'<p>minisign -Vm manifest.json -P <code dir="ltr">{esc(public_key)}</code></p>'
            '</body></html>\n')
        self._put("index.html", page.encode())

    def _remove_stale(self, earlier: manifest.Manifest | None) -> None:
        if earlier is None:
            return
        for name in earlier.files:
            if name in self.done:
                continue
            path = self.out / name
            try:
                path.unlink()
            except OSError:
                continue
            self.result.removed += 1
            parent = path.parent
            while parent != self.out and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent

    # --- state -----------------------------------------------------------------------

    def _read_state(self) -> dict[str, Any]:
        try:
            found = orjson.loads(state_path(self.settings, self.out).read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return {}
        return found if isinstance(found, dict) else {}

    def _write_state(self, version: str) -> None:
        targets: list[Any] = []
        index: dict[str, int] = {}  # a target's file → its place in ``targets``

        def place(raw: list[Any]) -> int:
            found = index.get(raw[4])
            if found is None:
                found = index[raw[4]] = len(targets)
                targets.append(raw)
            return found

        files = {name: {"fp": d.fingerprint, "size": d.entry.size, "sha256": d.entry.sha256,
                        "mtime_ns": d.mtime_ns, "links": [place(raw) for raw in d.links]}
                 for name, d in self.done.items() if d.fingerprint}
        path = state_path(self.settings, self.out)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = path.with_name(path.name + ".partial")
        temporary.write_bytes(orjson.dumps({"version": version, "targets": targets,
                                            "files": files}))
        os.replace(temporary, path)

    # --- the node, in process --------------------------------------------------------

    async def _get(self, path: str, query: str, accept: str) -> tuple[int, str, bytes]:
        """One GET answered by the node's application, as a reader's request would be."""
        raw_path = path.encode("utf-8")
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "GET", "scheme": "http", "path": path,
            "raw_path": raw_path, "root_path": "", "query_string": query.encode(),
            "headers": [(b"host", self.settings.host.encode()), (b"accept", accept.encode())],
            "client": ("127.0.0.1", 0), "server": ("127.0.0.1", 0), "state": {},
        }
        status = 500
        kind = ""
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Any) -> None:
            nonlocal status, kind
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", ()):
                    if name.lower() == b"content-type":
                        kind = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, kind, b"".join(chunks)


async def export(settings: Settings, options: Options) -> Result:
    return await Exporter(settings, options).run()
