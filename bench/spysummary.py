"""Summarise py-spy's collapsed stacks (``--format raw``): the share of samples
per kind of work (signing, HTTP client, DB, JSON, web framework, ...: the
innermost frame that names one decides), then the functions with the most
samples on the stack (inclusive) and at the top of it (self).

    .venv/bin/python bench/spysummary.py profile.txt [--top 25] [--match node/]
"""

from __future__ import annotations

import argparse
import linecache
import re
from collections import Counter
from pathlib import Path

# Kinds of work, tried from the innermost frame outwards: the first frame that
# matches one of these decides the sample's kind.
KINDS: list[tuple[str, re.Pattern[str]]] = [
    ("signing/verifying (RSA, digests)", re.compile(
        r"sign_cavage|sign_rfc9421|RequestSigner|verify_cavage|verify_rfc9421|"
        r"signatures/|_sha256|load_p\w*_pem|keys\.py|cryptography/")),
    ("JSON", re.compile(r"json/|orjson|JSONDecoder|json\.")),
    ("DB (SQLAlchemy, aiosqlite, asyncpg, sqlite3)", re.compile(
        r"sqlalchemy/|aiosqlite/|asyncpg/|sqlite3|sqlmodel/|node/storage/")),
    ("HTTP client (aiohttp)", re.compile(r"aiohttp/(client|connector|http_writer|"
                                         r"client_reqrep|client_proto|payload|helpers|"
                                         r"streams|resolver|tracing|cookiejar)|yarl/|"
                                         r"multidict/")),
    ("web framework/server (starlette, uvicorn, httptools)", re.compile(
        r"starlette/|uvicorn/|httptools|h11/|node/web/|node/app\.py")),
    ("node code (federation, inbox, delivery)", re.compile(r"node/")),
    ("event loop, tasks, threads (asyncio, uvloop, concurrent)", re.compile(
        r"asyncio/|uvloop/|concurrent/|threading\.py|selectors\.py|socket\.py")),
]


# py-spy counts a thread blocked in these C calls as active: a pool thread or
# aiosqlite's thread waiting for work is idle, not working.
WAITING = re.compile(r"\.get\(|\.wait\(|\.acquire\(")
WAIT_FILES = ("concurrent/futures/thread.py", "aiosqlite/core.py", "threading.py", "queue.py")


def waiting(raw_leaf: str) -> bool:
    """The innermost frame (raw, ``func (path:line)``) is a thread waiting for work."""
    match = re.match(r"^[^ ]+ \((?P<file>[^:]+):(?P<line>\d+)\)$", raw_leaf)
    if match is None or not match["file"].endswith(WAIT_FILES):
        return False
    return bool(WAITING.search(linecache.getline(match["file"], int(match["line"]))))


def kind_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, pattern in KINDS:
            if pattern.search(frame):
                return name
    return "other"


FRAME = re.compile(r"^(?P<func>[^ ]+) \((?P<file>[^:]+)(?::\d+)?\)$")


def short(frame: str) -> str:
    match = FRAME.match(frame)
    if match is None:
        return frame
    path = match["file"]
    for marker in ("site-packages/", "/node/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == "/node/":
                path = "node/" + path
            break
    return f"{match['func']} ({path})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("file")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--match", default="", help="only frames whose text contains this")
    parser.add_argument("--thread", choices=("event loop", "aiosqlite", "other"),
                        help="only this kind of thread (needs py-spy --threads)")
    args = parser.parse_args()
    threads: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    total = idle = 0
    for line in Path(args.file).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        raw = stack.split(";")
        if waiting(raw[-1]):
            idle += n
            continue
        total += n
        frames = [short(f) for f in raw]
        if frames[0].startswith("thread ("):  # py-spy --threads: the thread first
            # The main thread runs the loop; sqlalchemy's greenlets show as
            # stacks of their own, without the loop's frames.
            kind = "event loop" if "MainThread" in frames[0] else \
                "aiosqlite" if any("aiosqlite" in f for f in frames) else "other"
            threads[kind] += n
            frames = frames[1:]
            if args.thread is not None and kind != args.thread:
                continue
        if not frames:
            continue
        for frame in set(frames):
            inclusive[frame] += n
        own[frames[-1]] += n
        kinds[kind_of(frames)] += n
    print(f"{total} samples of work ({idle} more of threads waiting for work left out: "
          "pool and aiosqlite threads blocked on their queues)")
    for kind, n in threads.most_common():
        print(f"{n / total:6.1%}  thread: {kind}")
    print("\nby kind of work (the innermost frame that names one):")
    for kind, n in kinds.most_common():
        print(f"{n / total:6.1%}  {kind}")
    for title, counter in (("inclusive", inclusive), ("self", own)):
        print(f"\n{title}:")
        shown = 0
        for frame, n in counter.most_common():
            if args.match not in frame:
                continue
            print(f"{n / total:6.1%}  {frame}")
            shown += 1
            if shown >= args.top:
                break


if __name__ == "__main__":
    main()
