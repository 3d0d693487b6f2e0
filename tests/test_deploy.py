"""The deploy files against the code they run.

No container engine runs on the test machines, so the files are parsed: every command in them
must be a real `hambastegi` command line, every setting one the loader reads, and nothing in
them may weaken the safety defaults (client addresses in logs, the private-network switch,
public metrics, root in the image).
"""

from __future__ import annotations

import configparser
import dataclasses
import json
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from node.cli.main import build_parser
from node.core.settings import Settings, read_config_file

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
CADDYFILE = DEPLOY / "Caddyfile"
SYSTEMD = DEPLOY / "systemd"
WEB_UNIT = SYSTEMD / "hambastegi-web.service"
WORKER_UNIT = SYSTEMD / "hambastegi-worker@.service"
ENV_EXAMPLE = SYSTEMD / "hambastegi.env.example"
BINARY = "/opt/hambastegi/.venv/bin/hambastegi"
APP_SERVICES = ("web", "worker", "migrate")
# Read by compose and Caddy (the node's public name), deliberately not a node setting.
COMPOSE_ONLY = {"HAMBASTEGI_DOMAIN"}
PRIVATE_SWITCH = "HAMBASTEGI_ALLOW_PRIVATE_NETWORKS"
VARIABLE = re.compile(r"\bHAMBASTEGI_[A-Z0-9_]*[A-Z0-9]\b")


def known_settings() -> set[str]:
    source = (ROOT / "node" / "core" / "settings.py").read_text(encoding="utf-8")
    names = {"HAMBASTEGI_" + n for n in re.findall(r'PREFIX \+ "([A-Z_]+)"', source)}
    return names | {"HAMBASTEGI_CONFIG"}


def deploy_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.is_file())


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def service(name: str) -> dict[str, Any]:
    services = compose()["services"]
    assert name in services, f"compose has no service {name!r}"
    return dict(services[name])


def environment(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's `${X}`, `${X:-default}` and `${X:?error}` (required)."""

    def sub(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        if op and op.endswith("-") and not env.get(name):
            return arg
        if name not in env:
            raise KeyError(f"{name} is required by the compose file")
        return env[name]

    return re.sub(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}", sub, value)


def cli(argv: list[str]) -> Any:
    try:
        return build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"not a hambastegi command line: {argv}")


def command_argv(svc: dict[str, Any]) -> list[str]:
    command = svc["command"]
    return shlex.split(command) if isinstance(command, str) else [str(a) for a in command]


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text(encoding="utf-8"), source=str(path))
    return parser


def exec_argv(path: Path) -> list[str]:
    argv = shlex.split(unit(path)["Service"]["ExecStart"])
    assert argv[0] == BINARY, f"{path.name} runs {argv[0]}, not the venv's hambastegi"
    return argv[1:]


def readme_settings() -> set[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Settings", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(HAMBASTEGI_[A-Z_]+)`", section, flags=re.MULTILINE))


# --- the settings the deploy files may use -------------------------------------------------

def test_settings_set_is_derived_from_the_loader() -> None:
    names = known_settings()
    assert {"HAMBASTEGI_BASE_URL", "HAMBASTEGI_DATABASE_URL", "HAMBASTEGI_DATA_DIR",
            PRIVATE_SWITCH} <= names
    assert not COMPOSE_ONLY & names


def test_settings_given_to_the_node_are_ones_the_loader_reads() -> None:
    known = known_settings()
    given: dict[str, set[str]] = {
        f"compose:{name}": set(environment(service(name))) for name in APP_SERVICES
    }
    given["env example"] = set(read_config_file(ENV_EXAMPLE))
    for path in (WEB_UNIT, WORKER_UNIT):
        assignments = unit(path)["Service"].get("Environment", "")
        given[path.name] = {a.split("=", 1)[0] for a in shlex.split(assignments)}
    for where, names in given.items():
        assert names <= known, f"{where}: unknown settings {sorted(names - known)}"


def test_deploy_files_name_no_unknown_setting() -> None:
    allowed = known_settings() | COMPOSE_ONLY
    for path in deploy_files():
        unknown = set(VARIABLE.findall(path.read_text(encoding="utf-8"))) - allowed
        assert not unknown, f"{path.relative_to(ROOT)} names unknown settings {sorted(unknown)}"


def test_private_network_switch_appears_in_no_deploy_file() -> None:
    assert PRIVATE_SWITCH in known_settings()  # still the name the loader reads
    suffix = PRIVATE_SWITCH.removeprefix("HAMBASTEGI_")
    for path in deploy_files():
        assert suffix not in path.read_text(encoding="utf-8"), path.relative_to(ROOT)


# --- docker compose ------------------------------------------------------------------------

def test_compose_defines_database_migration_web_workers_and_proxy() -> None:
    assert {"db", "web", "worker", "migrate", "caddy"} <= set(compose()["services"])


@pytest.mark.parametrize(("name", "subcommand"),
                         [("web", "serve"), ("worker", "worker"), ("migrate", "init")])
def test_compose_commands_are_real_cli_command_lines(name: str, subcommand: str) -> None:
    svc = service(name)
    assert "entrypoint" not in svc, "the image's entrypoint is hambastegi; don't override it"
    args = cli(command_argv(svc))
    assert args.command == subcommand


def test_compose_web_serves_on_all_interfaces_without_an_in_process_worker() -> None:
    args = cli(command_argv(service("web")))
    assert (args.host, args.port, args.no_worker) == ("0.0.0.0", 8000, True)


def test_compose_runs_two_worker_replicas() -> None:
    assert service("worker")["deploy"]["replicas"] == 2


def test_compose_web_and_workers_start_after_migrations_on_a_healthy_database() -> None:
    assert service("migrate")["depends_on"]["db"]["condition"] == "service_healthy"
    for name in ("web", "worker"):
        depends = service(name)["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["db"]["condition"] == "service_healthy", name


def test_compose_database_is_postgres_16_on_a_named_volume_with_a_health_check() -> None:
    db = service("db")
    assert db["image"] == "postgres:16"
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    volume = db["volumes"][0].split(":")[0]
    assert volume in compose()["volumes"]


def test_compose_app_services_build_the_deploy_image_and_share_the_media_volume() -> None:
    for name in APP_SERVICES:
        svc = service(name)
        assert svc["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}, name
        assert (ROOT / svc["build"]["dockerfile"]) == DOCKERFILE
        if name != "migrate":
            assert "media:/data" in svc["volumes"], name
    assert "media" in compose()["volumes"]


def test_compose_settings_load_into_a_postgres_node_with_https_ids() -> None:
    host_env = {"HAMBASTEGI_DOMAIN": "node.example", "POSTGRES_PASSWORD": "0a1b2c"}
    for name in APP_SERVICES:
        env = {k: interpolate(v, host_env) for k, v in environment(service(name)).items()}
        assert env["HAMBASTEGI_BASE_URL"] == "https://node.example", name
        assert env["HAMBASTEGI_DATABASE_URL"] == (
            "postgresql://hambastegi:0a1b2c@db:5432/hambastegi"), name
        assert env["HAMBASTEGI_DATA_DIR"] == "/data", name
        settings = Settings.load(environ=env)
        assert settings.database_url.startswith("postgresql+asyncpg://"), name
        assert not settings.allow_private_networks


def test_compose_fails_without_a_domain_or_database_password() -> None:
    env = environment(service("web"))
    with pytest.raises(KeyError, match="HAMBASTEGI_DOMAIN"):
        interpolate(env["HAMBASTEGI_BASE_URL"], {})
    with pytest.raises(KeyError, match="POSTGRES_PASSWORD"):
        interpolate(env["HAMBASTEGI_DATABASE_URL"], {})


def test_compose_publishes_ports_only_through_caddy() -> None:
    for name, svc in compose()["services"].items():
        if name != "caddy":
            assert "ports" not in svc, f"{name} must only be reachable through the proxy"
    ports = {str(p).split("/")[0] for p in service("caddy")["ports"]}
    assert ports == {"80:80", "443:443"}


def test_compose_caddy_uses_the_deploy_caddyfile_and_keeps_certificates() -> None:
    caddy = service("caddy")
    assert caddy["image"] == "caddy:2"
    mounts = {v.split(":")[1]: v.split(":")[0] for v in caddy["volumes"]}
    assert (DEPLOY / mounts["/etc/caddy/Caddyfile"]).resolve() == CADDYFILE
    assert mounts["/data"] in compose()["volumes"]
    assert mounts["/config"] in compose()["volumes"]


# --- Dockerfile ----------------------------------------------------------------------------

def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1])
            for line in lines if line and not line.startswith("#")]


def test_image_is_python_311_slim_installing_the_repository() -> None:
    steps = dockerfile_instructions()
    assert steps[0] == ("FROM", "python:3.11-slim")
    assert any(op == "RUN" and re.search(r"\bpip install \.(\s|$)", arg) for op, arg in steps)


def test_image_runs_hambastegi_as_an_unprivileged_user() -> None:
    steps = dockerfile_instructions()
    users = [arg for op, arg in steps if op == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    entrypoints = [arg for op, arg in steps if op == "ENTRYPOINT"]
    assert json.loads(entrypoints[-1]) == ["hambastegi"]


def test_build_context_sends_only_what_the_image_copies() -> None:
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [p.strip() for p in ignore if p.strip() and not p.startswith("#")]
    assert patterns[0] == "*", "deny by default: ./data holds the database and keys"
    sources = [src for op, arg in dockerfile_instructions() if op == "COPY"
               for src in arg.split()[:-1] if not src.startswith("--")]
    assert sources
    for src in sources:
        assert "!" + src.rstrip("/").removeprefix("./") in patterns, src


# --- systemd -------------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "subcommand"),
                         [(WEB_UNIT, "serve"), (WORKER_UNIT, "worker")])
def test_systemd_units_run_real_cli_command_lines(path: Path, subcommand: str) -> None:
    assert cli(exec_argv(path)).command == subcommand


def test_systemd_web_listens_on_loopback_only_and_leaves_delivery_to_workers() -> None:
    args = cli(exec_argv(WEB_UNIT))
    assert (args.host, args.port, args.no_worker) == ("127.0.0.1", 8000, True)


def test_systemd_worker_unit_is_a_template_that_can_be_enabled() -> None:
    assert WORKER_UNIT.name.endswith("@.service")
    assert unit(WORKER_UNIT)["Install"]["WantedBy"]
    assert unit(WEB_UNIT)["Install"]["WantedBy"]


@pytest.mark.parametrize("path", [WEB_UNIT, WORKER_UNIT], ids=lambda p: p.name)
def test_systemd_units_are_hardened_and_restart(path: Path) -> None:
    svc = unit(path)["Service"]
    expected = {
        "User": "hambastegi",
        "EnvironmentFile": "/etc/hambastegi/hambastegi.env",
        "NoNewPrivileges": "true",
        "ProtectSystem": "strict",
        "ReadWritePaths": "/var/lib/hambastegi",
        "PrivateTmp": "true",
        "ProtectHome": "true",
        "Restart": "on-failure",
    }
    assert {k: svc.get(k) for k in expected} == expected


@pytest.mark.parametrize("path", [WEB_UNIT, WORKER_UNIT], ids=lambda p: p.name)
def test_systemd_units_raise_the_open_files_limit(path: Path) -> None:
    assert int(unit(path)["Service"]["LimitNOFILE"]) >= 65536


def test_compose_app_services_raise_the_open_files_limit() -> None:
    for name in ("web", "worker"):
        nofile = service(name)["ulimits"]["nofile"]
        assert min(nofile["soft"], nofile["hard"]) >= 65536, name


def test_env_example_data_dir_is_the_path_the_units_may_write() -> None:
    data_dir = Path(read_config_file(ENV_EXAMPLE)["HAMBASTEGI_DATA_DIR"])
    for path in (WEB_UNIT, WORKER_UNIT):
        writable = [Path(p) for p in unit(path)["Service"]["ReadWritePaths"].split()]
        assert any(data_dir.is_relative_to(w) for w in writable), path.name


def test_env_example_documents_every_setting_of_the_readme() -> None:
    documented = readme_settings()
    assert "HAMBASTEGI_BASE_URL" in documented  # the README table was found
    missing = documented - {PRIVATE_SWITCH} - set(read_config_file(ENV_EXAMPLE))
    assert not missing, f"env example lacks {sorted(missing)}"


def test_env_example_is_a_loadable_settings_file_without_secrets() -> None:
    settings = Settings.load(environ={}, config_file=ENV_EXAMPLE)
    assert settings.base_url.startswith("https://")
    assert not settings.allow_private_networks
    values = read_config_file(ENV_EXAMPLE)
    assert urlsplit(values["HAMBASTEGI_DATABASE_URL"]).password is None


# --- Caddy ---------------------------------------------------------------------------------

Block = tuple[list[str], list[Any]]


def caddy_blocks() -> list[Block]:
    """The Caddyfile as nested (tokens, children) blocks; comments dropped."""
    root: list[Block] = []
    stack = [root]
    for raw in CADDYFILE.read_text(encoding="utf-8").splitlines():
        tokens = shlex.split(raw, comments=True)
        if not tokens:
            continue
        if tokens == ["}"]:
            stack.pop()
            continue
        opens = tokens[-1] == "{"
        block: Block = (tokens[:-1] if opens else tokens, [])
        stack[-1].append(block)
        if opens:
            stack.append(block[1])
    assert len(stack) == 1, "unbalanced braces in the Caddyfile"
    return root


def site() -> list[Block]:
    sites = [children for tokens, children in caddy_blocks()
             if tokens == ["{$HAMBASTEGI_DOMAIN}"]]
    assert len(sites) == 1, "one site block for {$HAMBASTEGI_DOMAIN}"
    return sites[0]


def find(blocks: list[Block], *head: str) -> list[Block]:
    return [b for b in blocks if tuple(b[0][: len(head)]) == head]


def test_caddy_access_log_drops_client_addresses_and_headers() -> None:
    logs = find(site(), "log")
    assert logs, "the site logs through a filter (or not at all)"
    for _, children in logs:
        (fmt,) = find(children, "format", "filter")
        fields = find(fmt[1], "fields")
        entries = [tokens for _, sub in fields for tokens, _ in sub] + [
            tokens for tokens, _ in fmt[1] if tokens[0] not in {"wrap", "fields"}]
        for field in ("request>remote_ip", "request>client_ip", "request>headers"):
            assert [field, "delete"] in entries, field


def test_caddy_proxies_to_web_with_host_unchanged_and_nothing_stripped() -> None:
    blocks = site()
    proxies = find(blocks, "reverse_proxy")
    assert [tokens for tokens, _ in proxies] == [["reverse_proxy", "web:8000"]]
    for _, children in proxies:
        assert not [t for t, _ in children if t[:2] == ["header_up", "Host"]]
    for directive in ("handle_path", "uri", "rewrite", "header_up"):
        assert not find(blocks, directive), directive
    assert find(blocks, "header", "-Server")


def test_caddy_answers_404_for_metrics() -> None:
    blocks = site()
    matchers = {tokens[0] for tokens, _ in blocks
                if tokens[0].startswith("@") and tokens[1:2] == ["path"]
                and "/metrics" in tokens[2:]}
    assert matchers, "a path matcher for /metrics"
    assert any(tokens[1:] == [m, "404"] for tokens, _ in find(blocks, "respond")
               for m in matchers)


# --- one client address, many connections (the proxies' per-address limits) --------------

NGINX = DEPLOY / "nginx.conf"
NFTABLES = DEPLOY / "nftables-per-address.nft"


def per_address_default() -> int:
    (found,) = [f for f in dataclasses.fields(Settings) if f.name == "max_connections_per_address"]
    assert isinstance(found.default, int)
    return found.default


def nginx_blocks(text: str) -> list[Block]:
    """nginx's syntax as nested (tokens, children): `name args;` and `name args { … }`."""
    root: list[Block] = []
    stack = [root]
    words: list[str] = []
    source = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    for token in re.findall(r'"[^"]*"|[{};]|[^\s{};]+', source):
        if token == "{":
            block: Block = (words, [])
            stack[-1].append(block)
            stack.append(block[1])
            words = []
        elif token == "}":
            assert not words, f"unterminated directive {words}"
            stack.pop()
        elif token == ";":
            stack[-1].append((words, []))
            words = []
        else:
            words.append(token)
    assert len(stack) == 1 and not words, "unbalanced braces in nginx.conf"
    return root


def test_nginx_limits_requests_per_client_address_like_the_node() -> None:
    top = nginx_blocks(NGINX.read_text(encoding="utf-8"))
    (zone,) = find(top, "limit_conn_zone")
    assert zone[0][1] == "$binary_remote_addr"
    name = zone[0][2].removeprefix("zone=").split(":")[0]
    servers = [children for tokens, children in top if tokens == ["server"]]
    assert len(servers) == 2  # the redirect on 80 and the site on 443
    for server in servers:
        assert find(server, "limit_conn") == [(["limit_conn", name, str(per_address_default())],
                                               [])]
        assert find(server, "limit_conn_status", "429")
        assert find(server, "access_log", "off")
        # Error lines can name the client: only emergencies are written.
        assert [tokens[-1] for tokens, _ in find(server, "error_log")] == ["emerg"]
    assert "log_format" not in NGINX.read_text(encoding="utf-8")


def test_nginx_proxies_with_host_unchanged_the_client_header_and_metrics_hidden() -> None:
    site = next(children for tokens, children in nginx_blocks(NGINX.read_text(encoding="utf-8"))
                if tokens == ["server"] and find(children, "listen", "443"))
    (root,) = [children for tokens, children in site if tokens == ["location", "/"]]
    assert find(root, "proxy_pass") == [(["proxy_pass", "http://127.0.0.1:8000"], [])]
    headers = {tuple(tokens[1:]) for tokens, _ in find(root, "proxy_set_header")}
    assert headers == {("Host", "$host"), ("X-Real-IP", "$remote_addr")}
    assert environment(service("web"))["HAMBASTEGI_CLIENT_ADDRESS_HEADER"] == "X-Real-IP"
    for path in (["=", "/metrics"], ["/metrics/"]):
        (metrics,) = [children for tokens, children in site if tokens == ["location", *path]]
        assert find(metrics, "return", "404")
    # At least as strict towards the internet as the node itself.
    assert find(site, "client_header_timeout", "10s") and find(site, "client_body_timeout", "30s")


def test_nftables_resets_connections_past_the_node_default_per_address() -> None:
    text = NFTABLES.read_text(encoding="utf-8")
    rules = [line.strip() for line in text.splitlines() if "ct count" in line]
    limit = per_address_default()
    for hook in ("input", "forward"):
        chain = text.split(f"chain {hook} {{", 1)[1].split("\n\t}", 1)[0]
        assert f"type filter hook {hook} priority filter; policy accept;" in chain
        for family, field in (("v4", "ip saddr"), ("v6", "ip6 saddr")):
            assert (f"tcp dport {{ 80, 443 }} ct state new add @clients_{family} "
                    f"{{ {field} ct count over {limit} }} reject with tcp reset") in chain
            assert (f"udp dport 443 ct state new add @clients_{family} "
                    f"{{ {field} ct count over {limit} }} drop") in chain
    assert len(rules) == 8
    # Nothing written anywhere, and sets without timeouts (the kernel forgets an address
    # once its count is zero; connlimit sets refuse timeouts).
    body = "\n".join(line.split("#", 1)[0]
                     for line in text.split("table inet hambastegi_per_address {", 1)[1]
                     .splitlines())
    for word in (" log", "timeout", "counter"):
        assert word not in body, word
    # Reloading replaces its own table only.
    assert "delete table inet hambastegi_per_address" in text
    assert "flush ruleset" not in text
