"""Summarise py-spy's collapsed stacks (``--format raw``): the functions with
the most samples on the stack (inclusive) and at the top of it (self).

    .venv/bin/python bench/spysummary.py profile.txt [--top 25] [--match node/]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

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
    total = 0
    for line in Path(args.file).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [short(f) for f in stack.split(";")]
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
    print(f"{total} samples")
    for kind, n in threads.most_common():
        print(f"{n / total:6.1%}  thread: {kind}")
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
