"""Read path: WebFinger, actor, outbox page and an HTML event page under wrk,
against a bare Starlette JSON endpoint under the same uvicorn.

    .venv/bin/python bench/readpath.py [--seconds 5] [--connections 32]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import cli, node_env, start_bare, start_node, table

AS = "Accept: application/activity+json"


def wrk(url: str, seconds: int, connections: int, header: str | None = None) -> float:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", url]
    if header:
        cmd[1:1] = ["-H", header]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} error responses")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert match, out
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    with tempfile.TemporaryDirectory() as tmp:
        node = start_node(tmp)
        env = node_env(tmp, node.port)
        cli(env, "group", "create", "koeln", "--display-name", "Köln", "--language", "de")
        for i in range(25):
            cli(env, "publish", "note", "koeln", "--text", f"Nachricht {i}")
        call = {"language": "de", "title": {"de": "Kundgebung"}, "text": {"de": "Kommt!"},
                "start": "2027-06-08T12:00", "timezone": "Europe/Zurich",
                "place": {"name": "Place des Nations", "city": "Genève"}}
        (Path(tmp) / "call.json").write_text(json.dumps(call))
        event = cli(env, "publish", "call", "koeln", "--json", str(Path(tmp) / "call.json"))
        idle_rss = node.rss()
        bare = start_bare()
        try:
            host = f"127.0.0.1:{node.port}"
            baseline = wrk(f"{bare.base}/json", args.seconds, args.connections)
            rows = []
            for name, url, header in (
                ("WebFinger", f"{node.base}/.well-known/webfinger?resource=acct:koeln@{host}",
                 None),
                ("actor (AS JSON)", f"{node.base}/groups/koeln", AS),
                ("outbox page", f"{node.base}/groups/koeln/outbox?page=1", AS),
                ("HTML event page", event, "Accept: text/html"),
            ):
                rate = wrk(url, args.seconds, args.connections, header)
                rows.append([name, rate, f"{rate / baseline:.0%}"])
            busy_rss = node.rss()
        finally:
            bare.stop()
            node.stop()
    rows.insert(0, ["bare Starlette JSON (baseline)", baseline, "100%"])
    print(table(f"Read path (wrk, {args.connections} connections, {args.seconds} s each)",
                ["endpoint", "requests/s", "ratio to bare"], rows))
    print(f"\nnode RSS idle {idle_rss:.1f} MB (one `hambastegi serve` process, worker "
          f"included), after the read load {busy_rss:.1f} MB")


if __name__ == "__main__":
    main()
