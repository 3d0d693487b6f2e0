"""Shared fixtures: fresh databases (SQLite always; PostgreSQL when
HAMBASTEGI_TEST_DATABASE_URL is set) and real node processes on loopback."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from node.core.settings import normalise_database_url
from node.storage import migrate
from node.storage.db import Database

PG_URL = os.environ.get("HAMBASTEGI_TEST_DATABASE_URL")
# Network I/O inside a write transaction raises in every test and test node.
os.environ["HAMBASTEGI_STRICT_TRANSACTIONS"] = "1"
T = TypeVar("T")


# --- databases ----------------------------------------------------------------------


class DatabaseFactory:
    """Creates fresh, migrated databases and drops them at the end."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.created: list[str] = []

    async def new(self, revision: str = "head") -> str:
        if PG_URL is None:
            path = self.tmp_path / f"db-{secrets.token_hex(4)}.sqlite3"
            url = f"sqlite+aiosqlite:///{path}"
        else:
            name = f"hb_{secrets.token_hex(6)}"
            admin = await asyncpg.connect(PG_URL)
            try:
                await admin.execute(f'CREATE DATABASE "{name}"')
            finally:
                await admin.close()
            self.created.append(name)
            parts = urlsplit(normalise_database_url(PG_URL))
            url = urlunsplit((parts.scheme, parts.netloc, "/" + name, "", ""))
        await asyncio.to_thread(migrate.upgrade, url, revision)
        return url

    async def drop_all(self) -> None:
        if PG_URL is None or not self.created:
            return
        admin = await asyncpg.connect(PG_URL)
        try:
            for name in self.created:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
async def databases(tmp_path: Path) -> AsyncIterator[DatabaseFactory]:
    factory = DatabaseFactory(tmp_path)
    yield factory
    await factory.drop_all()


@pytest.fixture
async def database_url(databases: DatabaseFactory) -> str:
    return await databases.new()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


# --- waiting on conditions ------------------------------------------------------------


async def wait_for(check: Callable[[], Awaitable[T]], *, timeout: float = 20.0,
                   interval: float = 0.05, what: str = "condition") -> T:
    """Poll ``check`` until it returns a truthy value; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- real nodes ---------------------------------------------------------------------


class NodeProcess:
    """A node as admins run it: `hambastegi serve` in its own process."""

    def __init__(self, name: str, data_dir: Path, database_url: str, *,
                 port: int | None = None, public_port: int | None = None,
                 extra_env: dict[str, str] | None = None) -> None:
        self.name = name
        self.port = port or free_port()
        self.public_port = public_port or self.port
        self.base_url = f"http://127.0.0.1:{self.public_port}"
        self.host = f"127.0.0.1:{self.public_port}"
        self.data_dir = data_dir
        self.database_url = database_url
        self.env = {
            **os.environ,
            "HAMBASTEGI_BASE_URL": self.base_url,
            "HAMBASTEGI_DATA_DIR": str(data_dir),
            "HAMBASTEGI_DATABASE_URL": database_url,
            "HAMBASTEGI_ALLOW_PRIVATE_NETWORKS": "1",
            "HAMBASTEGI_WORKER_POLL_SECONDS": "0.2",
            **(extra_env or {}),
        }
        self.env.pop("HAMBASTEGI_CONFIG", None)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / f"{name}.log"
        self._db: Database | None = None

    def cli(self, *args: str, check: bool = True, input_text: str | None = None
            ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "node.cli.main", *args], env=self.env, capture_output=True,
            text=True, timeout=60, input=input_text, check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"hambastegi {' '.join(args)} failed: {result.stderr}")
        return result

    def start(self, *extra_args: str) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "node.cli.main", "serve", "--host", "127.0.0.1",
             "--port", str(self.port), *extra_args],
            env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"node {self.name} exited: {self.log_path.read_text()}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)  # polling for readiness, not synchronising on time
        raise AssertionError(f"node {self.name} did not become healthy")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def db(self) -> Database:
        if self._db is None:
            self._db = Database(self.database_url)
        return self._db

    async def close_db(self) -> None:
        if self._db is not None:
            await self._db.dispose()
            self._db = None

    def actor_url(self, username: str) -> str:
        return f"{self.base_url}/groups/{username}"


class NodeFactory:
    def __init__(self, tmp_path: Path, databases: DatabaseFactory) -> None:
        self.tmp_path = tmp_path
        self.databases = databases
        self.nodes: list[NodeProcess] = []

    async def create(self, name: str, *, start: bool = True, **kwargs: Any) -> NodeProcess:
        url = await self.databases.new()
        node = NodeProcess(name, self.tmp_path / name, url, **kwargs)
        self.nodes.append(node)
        if start:
            await asyncio.to_thread(node.start)
        return node

    async def close(self) -> None:
        for node in self.nodes:
            await asyncio.to_thread(node.stop)
            await node.close_db()


@pytest.fixture
async def nodes(tmp_path: Path, databases: DatabaseFactory) -> AsyncIterator[NodeFactory]:
    factory = NodeFactory(tmp_path, databases)
    yield factory
    await factory.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def repo_root() -> Iterator[Path]:
    yield Path(__file__).resolve().parent.parent


# --- a node in the test's own event loop (real HTTP on loopback) ------------------------


class LiveNode:
    def __init__(self, app: Any, server: Any, port: int, address: str = "127.0.0.1") -> None:
        self.app = app
        self.server = server
        self.port = port
        self.address = address
        self.host = f"{address}:{port}"
        self.base_url = f"http://{address}:{port}"

    @property
    def node(self) -> Any:
        return self.app.state.node

    def url(self, path: str) -> str:
        return self.base_url + path


async def start_live_node(tmp_path: Path, database_url: str,
                          extra_env: dict[str, str] | None = None, *,
                          address: str = "127.0.0.1") -> LiveNode:
    """``address``: another loopback address (127.0.0.2, …: all reach lo on Linux)
    gives the node a host name of its own, for tests of per-domain policy."""
    import uvicorn

    from node.app import create_app
    from node.core.settings import Settings

    port = free_port()
    settings = Settings.load(environ={
        "HAMBASTEGI_BASE_URL": f"http://{address}:{port}",
        "HAMBASTEGI_DATA_DIR": str(tmp_path / f"live-{port}"),
        "HAMBASTEGI_DATABASE_URL": database_url,
        "HAMBASTEGI_ALLOW_PRIVATE_NETWORKS": "1",
        "HAMBASTEGI_WORKER_POLL_SECONDS": "0.1",
        **(extra_env or {}),
    })
    app = create_app(settings)
    config = uvicorn.Config(app, host=address, port=port, log_config=None,
                            access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    live = LiveNode(app, server, port, address)
    live.task = asyncio.create_task(server.serve())  # type: ignore[attr-defined]

    async def started() -> bool:
        if live.task.done():  # type: ignore[attr-defined]
            live.task.result()  # type: ignore[attr-defined]
        return bool(server.started)

    await wait_for(started, what="live node start")
    return live


async def stop_live_node(live: LiveNode) -> None:
    live.server.should_exit = True
    await live.task  # type: ignore[attr-defined]


@pytest.fixture
async def live_node(tmp_path: Path, database_url: str) -> AsyncIterator[LiveNode]:
    live = await start_live_node(tmp_path, database_url)
    yield live
    await stop_live_node(live)


@pytest.fixture
async def remote() -> AsyncIterator[Any]:
    from tests.fediverse import FakeRemote

    fake = FakeRemote()
    await fake.start()
    yield fake
    await fake.stop()


async def cli_environment(tmp_path: Path, databases: DatabaseFactory) -> dict[str, str]:
    """The environment of a `hambastegi` command on a fresh database of its own."""
    return {**os.environ, "HAMBASTEGI_DATA_DIR": str(tmp_path / "data"),
            "HAMBASTEGI_DATABASE_URL": await databases.new(),
            "HAMBASTEGI_BASE_URL": "https://node.example"}


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run `hambastegi ARGS` as a user would, without raising on failure."""
    return subprocess.run([sys.executable, "-m", "node.cli.main", *args], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


# --- mail (issue 26): a real SMTP server and a node that mails through it ----------------


@pytest.fixture
def smtp() -> Iterator[Any]:
    from tests.mail_helpers import SmtpServer

    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def mail_node(tmp_path: Path, databases: DatabaseFactory, smtp: Any
                    ) -> AsyncIterator[LiveNode]:
    from tests.mail_helpers import DOMAIN

    url = await databases.new()
    live = await start_live_node(tmp_path, url, {
        "HAMBASTEGI_SMTP_URL": smtp.url, "HAMBASTEGI_MAIL_FROM": f"bulletin@{DOMAIN}",
        "HAMBASTEGI_MAIL_RATE": "0"})
    live.database_url = url  # type: ignore[attr-defined]
    yield live
    await stop_live_node(live)
