"""Shared pieces of the benchmarks: processes, memory, baselines, tables."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def rss_mb(pid: int | None = None) -> float:
    """Resident memory of a process, from /proc (Linux)."""
    status = Path(f"/proc/{pid or os.getpid()}/status").read_text()
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_sinks(ports: int, *, verify_every: int = 0) -> tuple[subprocess.Popen[str], list[int]]:
    cmd = [PYTHON, str(ROOT / "bench" / "sinkserver.py"), "--ports", str(ports),
           "--verify-every", str(verify_every)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    return proc, json.loads(line)["ports"]


async def sink_stats(port: int) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, \
            session.get(f"http://127.0.0.1:{port}/_stats") as response:
        return dict(await response.json())


async def sink_key(port: int, key_id: str, pem: str) -> None:
    """Tell the sinks the signing key, so they verify without fetching it."""
    async with aiohttp.ClientSession() as session, \
            session.post(f"http://127.0.0.1:{port}/_key", json={"key_id": key_id, "pem": pem}):
        pass


async def sink_reset(port: int) -> None:
    async with aiohttp.ClientSession() as session, \
            session.post(f"http://127.0.0.1:{port}/_reset"):
        pass


async def sink_fail(port: int, ports: list[int], seconds: float) -> None:
    """Make those sink hosts answer 503 for ``seconds``."""
    async with aiohttp.ClientSession() as session, \
            session.post(f"http://127.0.0.1:{port}/_fail",
                         json={"ports": ports, "seconds": seconds}):
        pass


class HangingServer:
    """Accepts connections and reads requests, never answers: a host that
    stalls whoever waits on it."""

    def __init__(self) -> None:
        self.port = 0
        self.requests = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        self.requests += 1
        await reader.read()  # until the client gives up

    async def stop(self) -> None:
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()


class PeakRss:
    """Samples this process's RSS while running (peak in MB)."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.start = 0.0
        self.peak = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, rss_mb())
            await asyncio.sleep(self.interval)  # a sampler, not synchronisation

    def __enter__(self) -> PeakRss:
        self.start = self.peak = rss_mb()
        self._task = asyncio.get_running_loop().create_task(self._sample())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
        self.peak = max(self.peak, rss_mb())


def rsa_sign_rate(seconds: float = 1.0) -> float:
    """Baseline: RSA-2048 PKCS#1 v1.5 SHA-256 signatures per second on one core."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    message = b"(request-target): post /inbox\nhost: example.org\ndate: x\ndigest: y" * 2
    count = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        count += 1
    return count / (time.perf_counter() - started)


async def raw_post_rate(urls: list[str], body: bytes, concurrency: int) -> float:
    """Baseline: plain aiohttp POSTs (no signing, no queue) to the same sinks."""
    connector = aiohttp.TCPConnector(limit=256, limit_per_host=8)
    semaphore = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def post(url: str) -> None:
            async with semaphore, session.post(
                    url, data=body, headers={"Content-Type": "application/activity+json"}
            ) as response:
                await response.read()

        started = time.perf_counter()
        await asyncio.gather(*(post(u) for u in urls))
        return len(urls) / (time.perf_counter() - started)


def table(title: str, headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [f"\n## {title}", "| " + " | ".join(h.ljust(w) for h, w in zip(cells[0], widths,
                                                                            strict=True)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for row in cells[1:]:
        lines.append("| " + " | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True))
                     + " |")
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


class Server:
    """A `hambastegi serve` (or the bare baseline app) in its own process."""

    def __init__(self, argv: list[str], env: dict[str, str], port: int) -> None:
        self.port = port
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"server on {port} did not start")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss(self) -> float:
        return rss_mb(self.proc.pid)

    def stop(self) -> None:
        # SIGINT: uvicorn shuts down cleanly (and a profiler writes its report).
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=30)


def node_env(data_dir: str, port: int, **extra: str) -> dict[str, str]:
    return {**os.environ, "HAMBASTEGI_DATA_DIR": data_dir,
            "HAMBASTEGI_BASE_URL": f"http://127.0.0.1:{port}",
            "HAMBASTEGI_ALLOW_PRIVATE_NETWORKS": "1", "HAMBASTEGI_LOG_LEVEL": "WARNING",
            **extra}


def cli(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([PYTHON, "-m", "node.cli.main", *args], env=env, capture_output=True,
                            text=True, check=True, cwd=ROOT)
    return result.stdout.strip()


def start_node(data_dir: str, **extra: str) -> Server:
    """`hambastegi serve`; BENCH_PROFILE=file.txt runs it under pyinstrument."""
    port = free_port()
    env = node_env(data_dir, port, **extra)
    argv = [PYTHON, "-m", "node.cli.main", "serve", "--port", str(port)]
    if os.environ.get("BENCH_PROFILE"):
        argv = [PYTHON, "-m", "pyinstrument", "-r", "text", "-o",
                os.environ["BENCH_PROFILE"], *argv[1:]]
    return Server(argv, env, port)


# The server stacks the bare app is measured on (bench/readpath.py); the node runs the
# first one (node/core/server.py, deploy/README.md).
STACKS = {
    "uvicorn httptools+uvloop": ["-m", "uvicorn", "--http", "httptools", "--loop", "uvloop"],
    "uvicorn h11+asyncio": ["-m", "uvicorn", "--http", "h11", "--loop", "asyncio"],
    "granian (asgi, 1 worker)": ["-m", "granian", "--interface", "asgi", "--workers", "1"],
}


def start_bare(stack: str = "uvicorn httptools+uvloop") -> Server:
    port = free_port()
    args = STACKS[stack]
    if args[1] == "uvicorn":
        argv = [PYTHON, *args, "bench.bare_app:app", "--port", str(port),
                "--no-access-log", "--log-level", "warning"]
    else:
        argv = [PYTHON, *args, "--port", str(port), "--no-access-log", "--log-level",
                "warning", "bench.bare_app:app"]
    return Server(argv, {**os.environ, "PYTHONPATH": str(ROOT)}, port)
