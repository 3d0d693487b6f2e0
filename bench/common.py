"""Shared pieces of the benchmarks: processes, memory, baselines, tables."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
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


def start_sinks(ports: int, *, verify_every: int = 0,
                actor_keys: str | None = None) -> tuple[subprocess.Popen[str], list[int]]:
    cmd = [PYTHON, str(ROOT / "bench" / "sinkserver.py"), "--ports", str(ports),
           "--verify-every", str(verify_every)]
    if actor_keys is not None:
        cmd += ["--actor-keys", actor_keys]
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


Signed = tuple[bytes, dict[str, str]]


@dataclass
class Fired:
    """What a volley of POSTs got: statuses, per-request latencies, wall time."""

    statuses: dict[int, int]
    latencies: list[float]  # seconds, of the requests answered 202
    seconds: float
    started: float = 0.0  # wall clock (time.time()) of the first request

    @property
    def accepted(self) -> int:
        return self.statuses.get(202, 0)

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        """In milliseconds."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _warm(seconds: float) -> None:
    time.sleep(seconds)


def _fire_chunk(url: str, requests: list[Signed], concurrency: int,
                start_at: float, rate: float = 0.0
                ) -> tuple[dict[int, int], list[float], float, float]:
    """One client process's share (runs in a spawned process). ``rate`` > 0:
    open loop, request i is due at start + i / rate, whatever came back, and
    its latency counts from when it was due (a request held up by the client's
    connection limit is charged its wait)."""
    async def run() -> tuple[dict[int, int], list[float], float, float]:
        statuses: dict[int, int] = {}
        latencies: list[float] = []
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            queue = iter(requests)
            if rate > 0:
                await asyncio.sleep(max(0.0, start_at - time.time()))
                started = time.time()
                origin = time.perf_counter()

                async def paced(i: int, body: bytes, headers: dict[str, str]) -> None:
                    due = origin + i / rate
                    await asyncio.sleep(max(0.0, due - time.perf_counter()))
                    async with session.post(url, data=body, headers=headers) as response:
                        await response.read()
                    statuses[response.status] = statuses.get(response.status, 0) + 1
                    if response.status == 202:
                        latencies.append(time.perf_counter() - due)

                await asyncio.gather(*(paced(i, b, h) for i, (b, h) in enumerate(requests)))
                return statuses, latencies, started, time.time()

            async def client() -> None:
                for body, headers in queue:
                    sent = time.perf_counter()
                    async with session.post(url, data=body, headers=headers) as response:
                        await response.read()
                    statuses[response.status] = statuses.get(response.status, 0) + 1
                    if response.status == 202:
                        latencies.append(time.perf_counter() - sent)

            await asyncio.sleep(max(0.0, start_at - time.time()))
            started = time.time()
            await asyncio.gather(*(client() for _ in range(concurrency)))
            return statuses, latencies, started, time.time()

    return asyncio.run(run())


async def fire_from_processes(url: str, requests: list[Signed], *, concurrency: int,
                              processes: int = 2, rate: float = 0.0) -> Fired:
    """POST pre-signed requests from ``processes`` client processes (the node
    under test keeps its core; one Python client would be the bottleneck),
    ``concurrency`` connections in all, starting together. ``rate`` > 0: an
    open loop offering that many requests/s in all (at most ``concurrency``
    open connections); else a closed loop (each connection sends its next
    request when the last is answered)."""
    chunks = [requests[i::processes] for i in range(processes)]
    per = max(1, concurrency // processes)
    loop = asyncio.get_running_loop()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        # Every process is up (spawned, aiohttp imported) before the clock starts.
        await asyncio.gather(*(loop.run_in_executor(pool, _warm, 0.3)
                               for _ in range(processes)))
        start_at = time.time() + 0.5 + len(requests) / 20_000
        results = await asyncio.gather(*(
            loop.run_in_executor(pool, _fire_chunk, url, chunk, per, start_at,
                                 rate / processes)
            for chunk in chunks))
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    for chunk_statuses, chunk_latencies, _, _ in results:
        for status, n in chunk_statuses.items():
            statuses[status] = statuses.get(status, 0) + n
        latencies.extend(chunk_latencies)
    seconds = max(r[3] for r in results) - min(r[2] for r in results)
    return Fired(statuses, latencies, seconds, min(r[2] for r in results))


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


def spy_on(pid: int, path: str) -> subprocess.Popen[bytes]:
    """py-spy sampling process ``pid`` (collapsed stacks with threads into ``path``,
    summarised by bench/spysummary.py) until sent SIGINT (``stop_spy``).
    BENCH_PYSPY_GIL=1: only samples holding the GIL (Python CPU time)."""
    only_gil = ["--gil"] if os.environ.get("BENCH_PYSPY_GIL") else []
    spy = subprocess.Popen(
        [str(Path(PYTHON).parent / "py-spy"), "record", "--pid", str(pid),
         "--format", "raw", "--rate", "200", "--threads", *only_gil, "--output", path],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)  # attached before the timed part starts
    return spy


def stop_spy(spy: subprocess.Popen[bytes]) -> None:
    spy.send_signal(signal.SIGINT)
    spy.wait(timeout=30)


class Server:
    """A `hambastegi serve` (or the bare baseline app) in its own process."""

    def __init__(self, argv: list[str], env: dict[str, str], port: int) -> None:
        self.port = port
        # BENCH_SERVER_LOG=file: the servers' stderr (crashes, warnings) goes there.
        log = os.environ.get("BENCH_SERVER_LOG")
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                                     stderr=open(log, "ab") if log else subprocess.DEVNULL)
        # Generous: on a machine shared with other work, starting (imports,
        # migrations) has taken over 30 s.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"server on {port} did not start")

    def profile(self, path: str) -> None:
        """Sample this process with py-spy until stop() or stop_profile()
        (collapsed stacks in ``path``)."""
        self._spy: subprocess.Popen[bytes] | None = spy_on(self.proc.pid, path)

    def stop_profile(self) -> None:
        spy: subprocess.Popen[bytes] | None = getattr(self, "_spy", None)
        if spy is not None:
            stop_spy(spy)
            self._spy = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss(self) -> float:
        return rss_mb(self.proc.pid)

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process (all threads), from /proc: on a
        shared machine the cost per request is steadier than requests/s."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.stop_profile()
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


def start_node(data_dir: str, *, spy: bool = True, worker: bool = True,
               **extra: str) -> Server:
    """`hambastegi serve`; BENCH_PROFILE=file.txt runs it under pyinstrument,
    BENCH_PYSPY=file.txt samples it with py-spy (collapsed stacks; summarise them
    with bench/spysummary.py) from its start, or, with ``spy=False``, when the
    caller calls ``profile`` (the timed part only)."""
    port = free_port()
    env = node_env(data_dir, port, **extra)
    argv = [PYTHON, "-m", "node.cli.main", "serve", "--port", str(port)]
    if not worker:
        argv.append("--no-worker")
    if os.environ.get("BENCH_PROFILE"):
        argv = [PYTHON, "-m", "pyinstrument", "-r", "text", "-o",
                os.environ["BENCH_PROFILE"], *argv[1:]]
    server = Server(argv, env, port)
    if spy and os.environ.get("BENCH_PYSPY"):
        server.profile(os.environ["BENCH_PYSPY"])
    return server


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
