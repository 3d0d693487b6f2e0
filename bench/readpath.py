"""Read path: WebFinger, actor, outbox page and the HTML group and event pages of a
`hambastegi serve` under wrk, against a bare Starlette JSON endpoint on the same
server stack (uvicorn with httptools and uvloop); and that bare app on each candidate
stack, so the choice of server is a measurement (deploy/README.md). One run, one
machine: every ratio is against a baseline measured minutes earlier.

    .venv/bin/python bench/readpath.py [--seconds 5] [--connections 32]

granian is not a dependency; to include it: .venv/bin/pip install granian.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import STACKS, cli, node_env, start_bare, start_node, table

AS = "Accept: application/activity+json"
HTML = "Accept: text/html"
NODE_STACK = "uvicorn httptools+uvloop"


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


def bare_rate(stack: str, seconds: int, connections: int) -> float | None:
    if stack.startswith("granian") and importlib.util.find_spec("granian") is None:
        return None
    bare = start_bare(stack)
    try:
        return wrk(f"{bare.base}/json", seconds, connections)
    finally:
        bare.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    seconds, conns = args.seconds, args.connections
    stacks = {stack: bare_rate(stack, seconds, conns) for stack in STACKS}
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
        try:
            host = f"127.0.0.1:{node.port}"
            rows: list[tuple[str, float]] = []
            for name, url, header in (
                ("WebFinger", f"{node.base}/.well-known/webfinger?resource=acct:koeln@{host}",
                 None),
                ("actor (AS JSON)", f"{node.base}/groups/koeln", AS),
                ("outbox page", f"{node.base}/groups/koeln/outbox?page=1", AS),
                ("HTML group page", f"{node.base}/groups/koeln", HTML),
                ("HTML event page", event, HTML),
            ):
                rows.append((name, wrk(url, seconds, conns, header)))
            busy_rss = node.rss()
        finally:
            node.stop()
    # The same-stack baseline, measured before and after the node: the mean of both
    # evens out some of the drift of a shared machine.
    after = bare_rate(NODE_STACK, seconds, conns)
    before = stacks[NODE_STACK]
    assert before is not None and after is not None
    baseline = (before + after) / 2
    print(table(f"Read path (wrk, {conns} connections, {seconds} s each; node on {NODE_STACK})",
                ["endpoint", "requests/s", "ratio to bare"],
                [[f"bare Starlette JSON on {NODE_STACK} (baseline)", baseline, "100%"],
                 *[[name, rate, f"{rate / baseline:.0%}"] for name, rate in rows]]))
    print(table(f"Server stacks: the bare app on each (wrk, {conns} connections)",
                ["stack", "requests/s", f"ratio to {NODE_STACK}"],
                [[stack, "not installed" if rate is None else rate,
                  "" if rate is None else f"{rate / baseline:.0%}"]
                 for stack, rate in stacks.items()]))
    print(f"\nbaseline runs: {before:,.0f} before the node, {after:,.0f} after")
    print(f"node RSS idle {idle_rss:.1f} MB (one `hambastegi serve` process, worker "
          f"included), after the read load {busy_rss:.1f} MB")


if __name__ == "__main__":
    main()
