"""Node settings: environment variables first, then an optional ``KEY=VALUE`` file.

The file alternative exists for admins who prefer a config file over a systemd
``Environment=`` list: point ``HAMBASTEGI_CONFIG`` (or ``--config``) at it.
Environment variables always win over the file, so a one-off override works.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

PREFIX = "HAMBASTEGI_"
DEFAULT_BASE_URL = "http://127.0.0.1:8000"
MIN_METRICS_TOKEN = 24
FEDERATION_MODES = ("open", "allowlist")
# A v3 onion address (rend-spec-v3 §6): base32 of the 32-byte key, a 2-byte checksum
# and the version byte, 56 characters, then ".onion". v2 (16 characters) is dead since
# Tor 0.4.6 and is refused like any other malformed name.
ONION_V3 = re.compile(r"[a-z2-7]{55}d\.onion")


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
    # Connections one client address may hold open (node/core/server.py); behind a proxy
    # (client_address_header set) requests in flight per client address instead. Not
    # lower: readers behind one carrier-grade NAT or one Tor exit share an address.
    max_connections_per_address: int = 256
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
    # The bulletin by e-mail (node/mail/): where mail goes (smtp://user:pass@host:587
    # with STARTTLS, smtps://host:465, smtp://localhost:25 plain to a local relay; empty:
    # no mail is sent and nothing is queued), the From address (its domain names the
    # DKIM signature and the VERP bounce addresses), mails per second (0: no limit),
    # and the lease of a claimed mail (a crashed worker's mails go again after it).
    smtp_url: str = ""
    mail_from: str = ""
    mail_rate: float = 10.0
    mail_lease_seconds: float = 60.0
    # The node's v3 onion address (HAMBASTEGI_ONION_HOSTNAME or the ``hostname`` file Tor
    # writes, HAMBASTEGI_ONION_HOSTNAME_FILE); empty: no onion service
    # (docs/ARCHITECTURE.md#10-readers-behind-censorship).
    onion_hostname: str = ""
    # The Telegram Bot API's base URL (crosspost/telegram/api.py): a local Bot API
    # server, or a proxy where Telegram is blocked; the tests' fake.
    telegram_api: str = "https://api.telegram.org"

    @property
    def mail_enabled(self) -> bool:
        return bool(self.smtp_url and self.mail_from)

    @property
    def host(self) -> str:
        """The authority part of the base URL (host[:port]) — the WebFinger domain."""
        return urlsplit(self.base_url).netloc

    @property
    def domain(self) -> str:
        return self.host

    @property
    def onion_origin(self) -> str:
        """``http://<onion>`` (an onion service needs no TLS: Tor encrypts and
        authenticates the address), or "" without one."""
        return f"http://{self.onion_hostname}" if self.onion_hostname else ""

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
            per_address = int(merged.get(PREFIX + "MAX_CONNECTIONS_PER_ADDRESS", "256"))
            sync_seconds = float(merged.get(PREFIX + "SYNC_SECONDS", "300"))
            mail_rate = float(merged.get(PREFIX + "MAIL_RATE", "10"))
            mail_lease = float(merged.get(PREFIX + "MAIL_LEASE_SECONDS", "60"))
        except ValueError as exc:
            raise SettingsError(f"malformed number in settings: {exc}") from exc
        if min(header_timeout, body_timeout, keepalive_timeout) <= 0 \
                or min(max_connections, per_address) < 1:
            raise SettingsError("HAMBASTEGI_HEADER_TIMEOUT, _BODY_TIMEOUT, _KEEPALIVE_TIMEOUT, "
                                "_MAX_CONNECTIONS and _MAX_CONNECTIONS_PER_ADDRESS must be "
                                "positive")
        if not sync_seconds > 0:
            raise SettingsError("HAMBASTEGI_SYNC_SECONDS must be positive")
        if concurrency < 1 or poll <= 0 or lease <= 0 or batch < 1:
            raise SettingsError("delivery concurrency and poll interval must be positive")
        if not mail_rate >= 0 or not mail_lease > 0:
            raise SettingsError("HAMBASTEGI_MAIL_RATE must be 0 (no limit) or more, "
                                "HAMBASTEGI_MAIL_LEASE_SECONDS positive")
        smtp_url = merged.get(PREFIX + "SMTP_URL", "").strip()
        if smtp_url:
            parts = urlsplit(smtp_url)
            try:
                parts.port  # noqa: B018 (raises on a malformed port)
            except ValueError as exc:
                raise SettingsError("HAMBASTEGI_SMTP_URL has a malformed port") from exc
            if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
                raise SettingsError("HAMBASTEGI_SMTP_URL must be smtp://[user:pass@]host[:port] "
                                    "or smtps://user:pass@host[:port]")
        mail_from = merged.get(PREFIX + "MAIL_FROM", "").strip()
        if mail_from and (mail_from.count("@") != 1 or any(c in mail_from for c in "\r\n<> ")):
            raise SettingsError("HAMBASTEGI_MAIL_FROM must be an address like news@node.example")
        metrics_token = merged.get(PREFIX + "METRICS_TOKEN", "").strip()
        if metrics_token and len(metrics_token) < MIN_METRICS_TOKEN:
            raise SettingsError(
                f"HAMBASTEGI_METRICS_TOKEN must be at least {MIN_METRICS_TOKEN} characters")
        federation_mode = merged.get(PREFIX + "FEDERATION", "open").strip().lower() or "open"
        if federation_mode not in FEDERATION_MODES:
            raise SettingsError("HAMBASTEGI_FEDERATION must be 'open' or 'allowlist'")
        onion = read_onion_hostname(merged.get(PREFIX + "ONION_HOSTNAME", ""),
                                    merged.get(PREFIX + "ONION_HOSTNAME_FILE", ""))
        return cls(
            onion_hostname=onion,
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
            max_connections_per_address=per_address,
            sync_seconds=sync_seconds,
            federation_mode=federation_mode,
            authorized_fetch=_truthy(merged.get(PREFIX + "AUTHORIZED_FETCH")),
            smtp_url=smtp_url,
            mail_from=mail_from,
            mail_rate=mail_rate,
            mail_lease_seconds=mail_lease,
            telegram_api=_service_url(merged.get(PREFIX + "TELEGRAM_API"),
                                      "https://api.telegram.org", "HAMBASTEGI_TELEGRAM_API"),
        )


def valid_onion(name: str) -> bool:
    """A v3 onion address whose checksum and version byte are right (rend-spec-v3 §6:
    base32(PUBKEY | CHECKSUM | VERSION), CHECKSUM = SHA3-256(".onion checksum" | PUBKEY |
    VERSION)[:2], VERSION = 3); a typo in one character fails the checksum."""
    if not ONION_V3.fullmatch(name):
        return False
    raw = base64.b32decode(name[:56].upper())
    pubkey, checksum, version = raw[:32], raw[32:34], raw[34:]
    expected = hashlib.sha3_256(b".onion checksum" + pubkey + version).digest()[:2]
    return version == b"\x03" and checksum == expected


def read_onion_hostname(value: str, file_name: str) -> str:
    """The onion address from the setting or from Tor's ``hostname`` file; the node
    refuses to start with anything that is not a v3 onion address."""
    value = value.strip()
    source = "HAMBASTEGI_ONION_HOSTNAME"
    if not value and file_name.strip():
        path = Path(file_name.strip()).expanduser()
        source = f"HAMBASTEGI_ONION_HOSTNAME_FILE ({path})"
        try:
            value = path.read_text(encoding="ascii", errors="replace")[:200].strip()
        except OSError as exc:
            raise SettingsError(f"cannot read {source}: {exc.strerror}") from exc
    if not value:
        return ""
    name = value.lower()
    if not valid_onion(name):
        shown = value[:80].encode("ascii", "backslashreplace").decode()
        raise SettingsError(
            f"{source} must be a v3 onion address (56 base32 characters + .onion), "
            f"got {shown!r}")
    return name
