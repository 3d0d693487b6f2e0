"""Node settings: environment variables first, then an optional ``KEY=VALUE`` file.

The file alternative exists for admins who prefer a config file over a systemd
``Environment=`` list: point ``HAMBASTEGI_CONFIG`` (or ``--config``) at it.
Environment variables always win over the file, so a one-off override works.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

PREFIX = "HAMBASTEGI_"
DEFAULT_BASE_URL = "http://127.0.0.1:8000"
MIN_METRICS_TOKEN = 24
FEDERATION_MODES = ("open", "allowlist")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it."""


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def read_config_file(path: Path) -> dict[str, str]:
    """Parse a ``KEY=VALUE`` file (``#`` comments, optional quotes)."""
    values: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"cannot read config file {path}: {exc.strerror}") from exc
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise SettingsError(f"{path}:{number}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def local_base_url(host: str, port: int) -> str:
    """The base URL a node listening on ``host:port`` is reached at from this machine."""
    if host in {"", "0.0.0.0", "::"}:  # noqa: S104 (every interface: loopback reaches it)
        host = "127.0.0.1"
    elif ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    return f"http://{host}:{port}"


def normalise_database_url(url: str) -> str:
    """Map the URLs admins write to SQLAlchemy's async drivers.

    ``postgresql://…`` → asyncpg, ``sqlite:///…`` → aiosqlite: the event loop
    must never block on the database (DESIGN.md, performance shape).
    """
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("sqlite://") and not url.startswith("sqlite+"):
        return "sqlite+aiosqlite://" + url.split("://", 1)[1]
    if url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
        return url
    raise SettingsError(
        "HAMBASTEGI_DATABASE_URL must start with postgresql:// or sqlite:///"
    )


def _service_url(value: str | None, default: str, name: str) -> str:
    url = (value or "").strip().rstrip("/") or default
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise SettingsError(f"{name} must be an http(s) URL")
    return url


@dataclass(frozen=True)
class Settings:
    base_url: str
    data_dir: Path
    database_url: str
    allow_private_networks: bool = False
    delivery_concurrency: int = 64
    worker_poll_seconds: float = 1.0
    # How long a worker owns a claimed host lane without renewing it (it renews
    # every third of it); a crashed worker's lanes are due again after it
    # (federation/delivery/lanes.py).
    delivery_lease_seconds: float = 10.0
    # Host lanes one worker claims at a time (at most ``delivery_concurrency``).
    delivery_batch: int = 500
    # Publish who follows each group (off: only the count; see collections.py).
    show_followers: bool = False
    log_level: str = "INFO"
    # Slow and silent clients (node/core/server.py): the request head must arrive within
    # header_timeout, the body within body_timeout of it; idle keep-alive connections
    # close after keepalive_timeout; connections beyond max_connections are refused.
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keepalive_timeout: float = 5.0
    max_connections: int = 4096
    # /metrics answers only requests bearing this token; empty: /metrics is 404.
    metrics_token: str = ""
    # How often each followed actor's outbox is checked for what we missed
    # (federation/outbox_sync.py); the first check runs at start.
    sync_seconds: float = 300.0
    # A header the reverse proxy sets to the client's address (X-Real-IP), read only to
    # key login throttling by a keyed hash of it (node/accounts/throttle.py); empty: the
    # connection's address, which behind a proxy is the proxy's own.
    client_address_header: str = ""
    # Peer policy (federation/policy.py): "open" federates with every peer not
    # blocked; "allowlist" only with domains allowed by `hambastegi allow`.
    federation_mode: str = "open"
    # Like Mastodon's secure mode: actor-scoped ActivityPub documents only for
    # signed GETs from permitted peers (federation/authorized_fetch.py).
    authorized_fetch: bool = False
    # The Telegram Bot API's base URL (crosspost/telegram/api.py): a local Bot API
    # server, or a proxy where Telegram is blocked; the tests' fake.
    telegram_api: str = "https://api.telegram.org"

    @property
    def host(self) -> str:
        """The authority part of the base URL (host[:port]) — the WebFinger domain."""
        return urlsplit(self.base_url).netloc

    @property
    def domain(self) -> str:
        return self.host

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

    @classmethod
    def load(
        cls,
        environ: Mapping[str, str] | None = None,
        config_file: Path | None = None,
        default_base_url: str = DEFAULT_BASE_URL,
    ) -> Settings:
        """``default_base_url`` is used when HAMBASTEGI_BASE_URL is not set
        (``serve`` passes its own address, so ids and WebFinger match it)."""
        env = dict(os.environ if environ is None else environ)
        file_path = config_file or (
            Path(env[PREFIX + "CONFIG"]) if env.get(PREFIX + "CONFIG") else None
        )
        merged: dict[str, str] = {}
        if file_path is not None:
            merged.update(read_config_file(file_path))
        merged.update({k: v for k, v in env.items() if k.startswith(PREFIX)})

        base_url = (merged.get(PREFIX + "BASE_URL") or default_base_url).rstrip("/")
        parts = urlsplit(base_url)
        if parts.scheme not in {"http", "https"} or not parts.netloc or parts.path:
            raise SettingsError(
                "HAMBASTEGI_BASE_URL must be like https://node.example (no path)"
            )
        data_dir = Path(merged.get(PREFIX + "DATA_DIR", "./data")).expanduser().resolve()
        default_db = f"sqlite:///{data_dir / 'hambastegi.sqlite3'}"
        db_url = merged.get(PREFIX + "DATABASE_URL") or default_db
        try:
            concurrency = int(merged.get(PREFIX + "DELIVERY_CONCURRENCY", "64"))
            poll = float(merged.get(PREFIX + "WORKER_POLL_SECONDS", "1.0"))
            lease = float(merged.get(PREFIX + "DELIVERY_LEASE_SECONDS", "10"))
            batch = int(merged.get(PREFIX + "DELIVERY_BATCH", "500"))
            header_timeout = float(merged.get(PREFIX + "HEADER_TIMEOUT", "10"))
            body_timeout = float(merged.get(PREFIX + "BODY_TIMEOUT", "30"))
            keepalive_timeout = float(merged.get(PREFIX + "KEEPALIVE_TIMEOUT", "5"))
            max_connections = int(merged.get(PREFIX + "MAX_CONNECTIONS", "4096"))
            sync_seconds = float(merged.get(PREFIX + "SYNC_SECONDS", "300"))
        except ValueError as exc:
            raise SettingsError(f"malformed number in settings: {exc}") from exc
        if min(header_timeout, body_timeout, keepalive_timeout) <= 0 or max_connections < 1:
            raise SettingsError("HAMBASTEGI_HEADER_TIMEOUT, _BODY_TIMEOUT, _KEEPALIVE_TIMEOUT "
                                "and _MAX_CONNECTIONS must be positive")
        if not sync_seconds > 0:
            raise SettingsError("HAMBASTEGI_SYNC_SECONDS must be positive")
        if concurrency < 1 or poll <= 0 or lease <= 0 or batch < 1:
            raise SettingsError("delivery concurrency and poll interval must be positive")
        metrics_token = merged.get(PREFIX + "METRICS_TOKEN", "").strip()
        if metrics_token and len(metrics_token) < MIN_METRICS_TOKEN:
            raise SettingsError(
                f"HAMBASTEGI_METRICS_TOKEN must be at least {MIN_METRICS_TOKEN} characters")
        federation_mode = merged.get(PREFIX + "FEDERATION", "open").strip().lower() or "open"
        if federation_mode not in FEDERATION_MODES:
            raise SettingsError("HAMBASTEGI_FEDERATION must be 'open' or 'allowlist'")
        return cls(
            base_url=base_url,
            data_dir=data_dir,
            database_url=normalise_database_url(db_url),
            allow_private_networks=_truthy(merged.get(PREFIX + "ALLOW_PRIVATE_NETWORKS")),
            delivery_concurrency=concurrency,
            worker_poll_seconds=poll,
            delivery_lease_seconds=lease,
            delivery_batch=batch,
            show_followers=_truthy(merged.get(PREFIX + "SHOW_FOLLOWERS")),
            log_level=merged.get(PREFIX + "LOG_LEVEL", "INFO").upper(),
            metrics_token=metrics_token,
            client_address_header=merged.get(PREFIX + "CLIENT_ADDRESS_HEADER", "").strip(),
            header_timeout=header_timeout,
            body_timeout=body_timeout,
            keepalive_timeout=keepalive_timeout,
            max_connections=max_connections,
            sync_seconds=sync_seconds,
            federation_mode=federation_mode,
            authorized_fetch=_truthy(merged.get(PREFIX + "AUTHORIZED_FETCH")),
            telegram_api=_service_url(merged.get(PREFIX + "TELEGRAM_API"),
                                      "https://api.telegram.org", "HAMBASTEGI_TELEGRAM_API"),
        )
