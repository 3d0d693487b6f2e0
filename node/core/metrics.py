"""Counters and histograms with ``prometheus_client``, added up over every process.

A node runs N web and M worker processes; each counts its own inbox POSTs,
deliveries and request latencies. In multiprocess mode (``configure_multiprocess``,
called by ``serve`` and ``worker``) every process writes its values to small mmap
files in ``<data dir>/metrics``, and /metrics, in whichever web process answers,
adds them all up. Queue depths are read from the database at scrape time, so they
are right across processes without any of this.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def process_identifier() -> str:
    """Host and pid: compose's containers share the metrics volume, and each is pid 1.

    ``_`` separates fields in prometheus_client's file names, so it must not appear.
    prometheus_client calls this on every value written (to notice a fork), so the
    host name is looked up once per process id.
    """
    pid = os.getpid()
    if _identity[0] != pid:
        _identity[:] = [pid, f"{socket.gethostname()}-{pid}".replace("_", "-")]
    return str(_identity[1])


_identity: list[int | str] = [0, ""]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_dead_processes(directory: Path) -> int:
    """Remove the files of this host's processes that are no longer running.

    Run by each process as it starts: a restarted node starts its counters afresh
    (Prometheus reads a drop as a counter reset), and the directory does not grow
    with every restart. Files of other hosts (other containers) are left alone.
    """
    host = process_identifier().rsplit("-", 1)[0]
    removed = 0
    for path in directory.glob("*.db"):
        ident = path.stem.split("_")[-1]
        owner, _, pid = ident.rpartition("-")
        if owner == host and pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
    return removed


class Metrics:
    """prometheus_client is imported with the first value counted, not at import: an
    idle node (and one without HAMBASTEGI_METRICS_TOKEN, whose web process observes no
    latencies, node/app.py) does not carry it (docs/ARCHITECTURE.md#7-the-read-path)."""

    def __init__(self) -> None:
        self.multiproc_dir: Path | None = None
        self._made: dict[str, Any] | None = None
        # Label children by route: ``labels()`` takes a lock and builds a key on every
        # call, and this runs on every request (routes are a fixed, small set).
        self._route_latency: dict[str, Any] = {}

    def _instruments(self) -> dict[str, Any]:
        if self._made is None:
            import prometheus_client
            from prometheus_client import CollectorRegistry, Counter, Histogram

            prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created: noise
            if self.multiproc_dir is not None:
                self._multiprocess_values()
            registry = CollectorRegistry(auto_describe=True)
            self._made = {
                "registry": registry,
                "inbox": Counter("hambastegi_inbox_requests", "Inbox POSTs by outcome.",
                                 ["outcome"], registry=registry),
                "deliveries": Counter("hambastegi_deliveries",
                                      "Delivery attempts by outcome.", ["outcome"],
                                      registry=registry),
                "latency": Histogram("hambastegi_request_seconds",
                                     "HTTP request latency by route.", ["route"],
                                     buckets=LATENCY_BUCKETS, registry=registry),
            }
        return self._made

    def configure_multiprocess(self, directory: Path) -> None:
        """Write this process's values under ``directory`` and read everyone's.

        Must run before the first value is counted (label children are created
        lazily, on first use, with the value class then in force).
        """
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        clean_dead_processes(directory)
        os.environ[MULTIPROC_ENV] = str(directory)
        self.multiproc_dir = directory
        if self._made is not None:
            self._multiprocess_values()

    @staticmethod
    def _multiprocess_values() -> None:
        from prometheus_client import values

        values.ValueClass = values.MultiProcessValue(process_identifier)  # type: ignore[no-untyped-call]

    def inbox(self, outcome: str) -> None:
        self._instruments()["inbox"].labels(outcome).inc()

    def delivery(self, outcome: str, count: int = 1) -> None:
        self._instruments()["deliveries"].labels(outcome).inc(count)

    def observe_request(self, route: str, seconds: float) -> None:
        child = self._route_latency.get(route)
        if child is None:
            child = self._route_latency[route] = self._instruments()["latency"].labels(route)
        child.observe(seconds)

    def render(self, gauges: Iterable[tuple[str, str, dict[str, str], float]] = ()) -> str:
        from prometheus_client import CollectorRegistry, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector

        if self.multiproc_dir is not None:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=str(self.multiproc_dir))  # type: ignore[no-untyped-call]
        else:
            registry = self._instruments()["registry"]
        lines = [generate_latest(registry).decode().rstrip("\n")]
        seen: set[str] = set()
        for name, help_text, labels, reading in gauges:
            if name not in seen:
                lines.append(f"# HELP {name} {help_text}")
                lines.append(f"# TYPE {name} gauge")
                seen.add(name)
            label_text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
            lines.append(f"{name}{{{label_text}}} {reading}" if label_text
                         else f"{name} {reading}")
        return "\n".join(lines) + "\n"


METRICS = Metrics()
