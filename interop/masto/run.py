"""Run check.mjs (npm's masto) against a fresh node: starts `hambastegi serve` on SQLite,
makes a group and an editor, logs in through the node's authorize page, posts five
statuses, then runs the script. Needs node and npm (`npm install` runs here first).

    .venv/bin/python interop/masto/run.py
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

HERE = Path(__file__).resolve().parent
PASSWORD = "correct horse battery"
REDIRECT = "org.hambastegi.masto:/callback"


def main() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "HAMBASTEGI_BASE_URL": base, "HAMBASTEGI_DATA_DIR": tmp,
               "HAMBASTEGI_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/node.db",
               "HAMBASTEGI_ALLOW_PRIVATE_NETWORKS": "1"}

        def cli(*args: str, stdin: str | None = None) -> None:
            subprocess.run([sys.executable, "-m", "node.cli.main", *args], env=env,
                           input=stdin, text=True, check=True, capture_output=True)

        cli("group", "create", "tehran", "--display-name", "Tehran", "--language", "fa")
        cli("user", "create", "sara", "--group", "tehran", "--password-stdin",
            stdin=PASSWORD + "\n")
        server = subprocess.Popen([sys.executable, "-m", "node.cli.main", "serve", "--host",
                                   "127.0.0.1", "--port", str(port)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{base}/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            token = login(base)
            for i in range(5):
                httpx.post(f"{base}/api/v1/statuses", json={"status": f"پیام {i}"},
                           headers={"Authorization": f"Bearer {token}"}).raise_for_status()
            subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=HERE,
                           check=True)
            return subprocess.run(["node", "check.mjs", base, token, "5"], cwd=HERE).returncode
        finally:
            server.terminate()
            server.wait(timeout=15)


def login(base: str) -> str:
    with httpx.Client(base_url=base) as client:
        app = client.post("/api/v1/apps", data={"client_name": "masto check",
                                                "redirect_uris": REDIRECT,
                                                "scopes": "read write"}).json()
        query = {"response_type": "code", "client_id": app["client_id"],
                 "redirect_uri": REDIRECT, "scope": "read write"}
        page = client.get("/oauth/authorize", params=query)
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        assert csrf is not None
        answer = client.post("/oauth/authorize", data={
            **query, "csrf": csrf.group(1), "username": "sara", "password": PASSWORD,
            "decision": "allow"})
        code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
        token = client.post("/oauth/token", data={
            "grant_type": "authorization_code", "code": code, "client_id": app["client_id"],
            "client_secret": app["client_secret"], "redirect_uri": REDIRECT}).json()
        return str(token["access_token"])


if __name__ == "__main__":
    sys.exit(main())
