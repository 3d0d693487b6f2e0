"""Process-local counters and histograms, rendered in Prometheus text format.

Deliberately tiny: a few dicts, no dependency. Queue depths are read from the
database when /metrics is scraped, so they are right across processes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.inbox_outcomes: Counter[str] = Counter()
        self.deliveries: Counter[str] = Counter()
        self.latency_counts: Counter[tuple[str, float]] = Counter()
        self.latency_sum: dict[str, float] = {}
        self.latency_total: Counter[str] = Counter()

    def inbox(self, outcome: str) -> None:
        self.inbox_outcomes[outcome] += 1

    def delivery(self, outcome: str, count: int = 1) -> None:
        self.deliveries[outcome] += count

    def observe_request(self, route: str, seconds: float) -> None:
        for bucket in LATENCY_BUCKETS:
            if seconds <= bucket:
                self.latency_counts[(route, bucket)] += 1
        self.latency_sum[route] = self.latency_sum.get(route, 0.0) + seconds
        self.latency_total[route] += 1

    def render(self, gauges: Iterable[tuple[str, str, dict[str, str], float]] = ()) -> str:
        lines: list[str] = []

        def emit(name: str, kind: str, help_text: str) -> None:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")

        emit("hambastegi_inbox_requests_total", "counter", "Inbox POSTs by outcome.")
        for outcome, value in sorted(self.inbox_outcomes.items()):
            lines.append(f'hambastegi_inbox_requests_total{{outcome="{outcome}"}} {value}')
        emit("hambastegi_deliveries_total", "counter", "Delivery attempts by outcome.")
        for outcome, value in sorted(self.deliveries.items()):
            lines.append(f'hambastegi_deliveries_total{{outcome="{outcome}"}} {value}')
        emit("hambastegi_request_seconds", "histogram", "HTTP request latency by route.")
        for route in sorted(self.latency_total):
            for bucket in LATENCY_BUCKETS:
                count = self.latency_counts[(route, bucket)]
                lines.append(
                    f'hambastegi_request_seconds_bucket{{route="{route}",le="{bucket}"}} {count}'
                )
            total = self.latency_total[route]
            lines.append(f'hambastegi_request_seconds_bucket{{route="{route}",le="+Inf"}} {total}')
            lines.append(
                f'hambastegi_request_seconds_sum{{route="{route}"}} {self.latency_sum[route]}'
            )
            lines.append(f'hambastegi_request_seconds_count{{route="{route}"}} {total}')
        seen: set[str] = set()
        for name, help_text, labels, reading in gauges:
            if name not in seen:
                emit(name, "gauge", help_text)
                seen.add(name)
            label_text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
            lines.append(f"{name}{{{label_text}}} {reading}" if label_text
                         else f"{name} {reading}")
        return "\n".join(lines) + "\n"


METRICS = Metrics()
