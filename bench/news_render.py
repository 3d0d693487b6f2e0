"""Rendering a news item: Markdown through the allowlist into every version's
document, against the same texts as plain notes (escape + linkify) in the same run.

    .venv/bin/python bench/news_render.py [--seconds 2]

What an editor's change costs before anything is written: an item with nine
versions of ~3,000 characters is rendered once per change (and once more per
language channel); the baseline is what a plain note's text costs.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import table
from node.core.text import plain_to_html
from node.core.urls import Urls
from node.news.items import Version, render, render_markdown

LANGUAGES = ("fa", "ar", "ckb", "kmr", "tr", "en", "fr", "de", "sv")
PARAGRAPH = ("Workers at the **petrochemical plant** in Mahshahr have been on strike for "
             "a second week; see [the report](https://news.example/report) and #solidarity. ")
TEXT = "\n\n".join([PARAGRAPH * 3] * 6)  # ~3,000 characters


def rate(work: Callable[[], object], seconds: float) -> float:
    work()
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        work()
        done += 1
    return done / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    urls = Urls("https://node.example")
    # A different text per language, as translations are (the cache must not help).
    versions = {lang: Version(title=f"Strike ({lang})", text=f"{lang}: {TEXT}")
                for lang in LANGUAGES}

    def item() -> object:
        render_markdown.cache_clear()  # a change: every text is new to the cache
        return render(versions=versions, primary="fa", photos=[], hashtags=["solidarity"],
                      sources=["https://news.example/report"], country="IR", sectors=["oil"],
                      urls=urls, self_url="https://node.example/objects/x",
                      sibling_url={lang: f"https://node.example/objects/x#v-{lang}"
                                   for lang in LANGUAGES})

    baseline = rate(lambda: [plain_to_html(TEXT) for _ in LANGUAGES], args.seconds)
    markdown = rate(lambda: [render_markdown.__wrapped__(TEXT) for _ in LANGUAGES],
                    args.seconds)
    whole = rate(item, args.seconds)
    print(table("news item, 9 versions x ~3,000 characters (per second)",
                ["what", "per second", "ms each", "vs plain notes"],
                [["9 plain notes (baseline)", baseline, 1000 / baseline, 1.0],
                 ["9 versions, Markdown + nh3", markdown, 1000 / markdown, baseline / markdown],
                 ["whole item document", whole, 1000 / whole, baseline / whole]]))


if __name__ == "__main__":
    main()
