"""``manifest.json`` and its minisign signature: what a mirror holds, and the proof that
the node made it (issue 28; docs/ARCHITECTURE.md#10-readers-behind-censorship).

The manifest lists every file of the copy (path, size, SHA-256), the node, the export
time and an ``expires`` time: a copy past it is refused by ``mirror verify``, so an old
copy cannot be passed off as current for ever. The signature's trusted comment repeats
the time and the node, so ``minisign -Vm`` alone shows what was signed, when and by whom.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from node.core import minisign

MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.minisig"
RESERVED = frozenset({MANIFEST, SIGNATURE})
FORMAT = "hambastegi-mirror/1"
MAX_MANIFEST = 64 * 1024 * 1024
SHA256 = re.compile(r"[0-9a-f]{64}")


class ManifestError(ValueError):
    """The manifest is missing, malformed, unsigned or expired; the message says which."""


@dataclass(frozen=True)
class Entry:
    path: str
    size: int
    sha256: str


def digest(data: bytes) -> Entry:
    return Entry("", len(data), hashlib.sha256(data).hexdigest())


def build(node: str, onion: str, files: dict[str, Entry], exported: datetime,
          valid_for: timedelta, public_key: str) -> bytes:
    document = {
        "format": FORMAT, "node": node, "onion": onion or None,
        "exported": exported.isoformat(timespec="seconds"),
        "expires": (exported + valid_for).isoformat(timespec="seconds"),
        "public_key": public_key,
        "files": [{"path": path, "size": e.size, "sha256": e.sha256}
                  for path, e in sorted(files.items())],
    }
    return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)


def trusted_comment(node: str, exported: datetime) -> str:
    return (f"timestamp:{int(exported.timestamp())} "
            f"exported:{exported.isoformat(timespec='seconds')} node:{node}")


def sign(key: minisign.SecretKey, manifest: bytes, node: str, exported: datetime) -> str:
    return key.sign(manifest, trusted_comment(node, exported),
                    untrusted_comment=f"hambastegi mirror of {node}")


def safe_path(path: object) -> str | None:
    """A manifest path that stays inside the copy (relative, no ``..``), else None."""
    if not isinstance(path, str) or not path or len(path) > 1000 or "\\" in path \
            or "\x00" in path:
        return None
    # Plain string checks (41,600 paths are checked before each re-export): no leading
    # "/", no empty, "." or ".." segment.
    if any(part in ("", ".", "..") for part in path.split("/")):
        return None
    return path


@dataclass(frozen=True)
class Manifest:
    node: str
    exported: datetime
    expires: datetime
    files: dict[str, Entry]

    @classmethod
    def parse(cls, data: bytes) -> Manifest:
        if len(data) > MAX_MANIFEST:
            raise ManifestError("manifest.json is too large")
        try:
            document = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ManifestError(f"manifest.json is not JSON: {exc}") from None
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise ManifestError("manifest.json is not a hambastegi mirror manifest")
        try:
            exported = _time(document["exported"])
            expires = _time(document["expires"])
            node = document["node"]
            raw_files: Any = document["files"]
        except KeyError as exc:
            raise ManifestError(f"manifest.json lacks {exc.args[0]!r}") from None
        if not isinstance(node, str) or not isinstance(raw_files, list):
            raise ManifestError("manifest.json has a malformed node or file list")
        files: dict[str, Entry] = {}
        for item in raw_files:
            path = safe_path(item.get("path")) if isinstance(item, dict) else None
            if path is None or path in RESERVED or path in files:
                raise ManifestError(f"manifest.json names a bad path: {str(item)[:120]}")
            size, sha = item.get("size"), item.get("sha256")
            if not isinstance(size, int) or size < 0 or not isinstance(sha, str) \
                    or not SHA256.fullmatch(sha):
                raise ManifestError(f"manifest.json has a bad entry for {path}")
            files[path] = Entry(path, size, sha)
        return cls(node, exported, expires, files)


def _time(value: object) -> datetime:
    if not isinstance(value, str):
        raise ManifestError("manifest.json has a malformed time")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ManifestError(f"manifest.json has a malformed time: {value[:40]!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def verify(directory: Path, public: minisign.PublicKey, now: datetime) -> list[str]:
    """Every problem of the copy in ``directory``: signature, expiry, each file that
    differs, is missing or was added. Empty when the copy is the node's."""
    try:
        data = (directory / MANIFEST).read_bytes()
        signature = (directory / SIGNATURE).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return [f"cannot read {exc.filename}: {exc.strerror}"]
    try:
        comment = minisign.verify(public, data, signature)
        manifest = Manifest.parse(data)
    except (minisign.MinisignError, ManifestError) as exc:
        return [f"{MANIFEST}: {exc}"]
    problems = []
    if f"node:{manifest.node}" not in comment.split():
        problems.append(f"{SIGNATURE}: the trusted comment names another node ({comment})")
    if now >= manifest.expires:
        problems.append(f"{MANIFEST}: expired at {manifest.expires.isoformat()}")
    for path, entry in sorted(manifest.files.items()):
        file = directory / path
        try:
            body = file.read_bytes() if file.is_file() and not file.is_symlink() else None
        except OSError:
            body = None
        if body is None:
            problems.append(f"{path}: missing")
        elif len(body) != entry.size or hashlib.sha256(body).hexdigest() != entry.sha256:
            problems.append(f"{path}: differs from the signed manifest")
    for file in sorted(directory.rglob("*")):
        rel = file.relative_to(directory).as_posix()
        if (file.is_file() or file.is_symlink()) and rel not in manifest.files \
                and rel not in RESERVED:
            problems.append(f"{rel}: not in the signed manifest")
    return problems
