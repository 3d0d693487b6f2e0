"""The onion service (issue 28): Tor's own hostname file, Onion-Location on clearnet
HTTPS pages only, pages served on the onion with their links on the onion, and the
workspace's login there with cookies that are not Secure."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from node.core import links
from node.core.middleware import client_address
from node.core.onion import OnionSite
from node.core.settings import Settings, SettingsError, valid_onion
from tests.conftest import NodeFactory, free_port, wait_for

CLEAR = "https://news.example"
LINK_ATTR = re.compile(r'\s(?:href|src|action|content)="([^"]*)"')


def onion_for(key: bytes) -> str:
    """A v3 onion address as rend-spec-v3 §6 builds it (to test the checksum)."""
    version = b"\x03"
    checksum = hashlib.sha3_256(b".onion checksum" + key + version).digest()[:2]
    return base64.b32encode(key + checksum + version).decode().lower() + ".onion"


@pytest.fixture
def tor_hostname(tmp_path: Path) -> Iterator[Path]:
    """Debian's tor, offline (DisableNetwork 1), writing a real hidden-service directory."""
    service = tmp_path / "hidden"
    service.mkdir(mode=0o700)
    torrc = tmp_path / "torrc"
    torrc.write_text(f"DisableNetwork 1\nSocksPort 0\nDataDirectory {tmp_path / 'tor-data'}\n"
                     f"HiddenServiceDir {service}\n"
                     f"HiddenServicePort 80 127.0.0.1:{free_port()}\n")
    proc = subprocess.Popen(["/usr/sbin/tor", "-f", str(torrc)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield service / "hostname"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_a_real_onion_address_is_valid_and_a_typo_is_not() -> None:
    name = onion_for(bytes(range(32)))
    assert valid_onion(name)
    typo = name[:10] + ("a" if name[10] != "a" else "b") + name[11:]
    assert not valid_onion(typo)  # the checksum catches one changed character
    assert not valid_onion("expyuzz4wqqyqhjn.onion")  # v2: 16 characters
    assert not valid_onion(name.replace(".onion", ".onion.example"))


@pytest.mark.parametrize("value", ["example.onion", "expyuzz4wqqyqhjn.onion",
                                   "x" * 56 + ".onion", "news.example",
                                   "http://" + onion_for(bytes(32))])
def test_a_hostname_that_is_not_a_v3_onion_address_is_refused(value: str) -> None:
    with pytest.raises(SettingsError, match="v3 onion address"):
        Settings.load({"HAMBASTEGI_ONION_HOSTNAME": value})


def test_an_unreadable_hostname_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="HAMBASTEGI_ONION_HOSTNAME_FILE"):
        Settings.load({"HAMBASTEGI_ONION_HOSTNAME_FILE": str(tmp_path / "missing")})
    hostile = tmp_path / "hostname"
    hostile.write_bytes(b"\xff\x00<script>" * 40)
    with pytest.raises(SettingsError, match="v3 onion address"):
        Settings.load({"HAMBASTEGI_ONION_HOSTNAME_FILE": str(hostile)})


def test_the_node_refuses_to_start_with_a_bad_onion_hostname(tmp_path: Path) -> None:
    env = {"HAMBASTEGI_DATA_DIR": str(tmp_path), "HAMBASTEGI_ONION_HOSTNAME": "example.onion",
           "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-m", "node.cli.main", "serve", "--port",
                             str(free_port())], env=env, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode != 0
    assert "v3 onion address" in result.stderr


def test_links_move_to_the_onion_but_ids_and_canonical_stay() -> None:
    onion = "http://" + onion_for(bytes(32))
    page = (f'<head><link rel="canonical" href="{CLEAR}/groups/a">'
            f'<link rel="alternate" type="application/activity+json" href="{CLEAR}/groups/a">'
            f'<meta property="og:url" content="{CLEAR}/groups/a">'
            f'<meta property="og:image" content="{CLEAR}/media/x.png"></head>'
            f'<a title="a>b" href="{CLEAR}/tags/x?lang=fa&amp;page=2">t</a>'
            f'<img src="{CLEAR}/media/uploads/p.webp" srcset="{CLEAR}/m/1.webp 1x, /m/2.webp 2x">'
            f'<form action="{CLEAR}/login"></form><a href="https://news.example.org/x">o</a>'
            f'<a href="{CLEAR}/" data-original>original</a>')
    out = links.rewrite(page, links.onto_origin(CLEAR, onion))
    assert f'<link rel="canonical" href="{CLEAR}/groups/a">' in out
    assert f'type="application/activity+json" href="{CLEAR}/groups/a">' in out
    assert f'<meta property="og:url" content="{CLEAR}/groups/a">' in out
    assert f'content="{onion}/media/x.png"' in out
    assert f'href="{onion}/tags/x?lang=fa&amp;page=2"' in out
    assert f'srcset="{onion}/m/1.webp 1x, /m/2.webp 2x"' in out
    assert f'action="{onion}/login"' in out
    assert 'href="https://news.example.org/x"' in out  # another site that shares a prefix
    assert f'<a href="{CLEAR}/" data-original>' in out


def test_a_foreign_host_gets_no_onion_treatment() -> None:
    site = OnionSite(CLEAR, "news.example", onion_for(bytes(32)))
    assert site.mode(b"evil.example", b"https", "http") is None
    assert site.mode(b"news.example", None, "http") is None  # plain HTTP
    assert site.mode(None, b"https", "http") is None
    assert site.mode(b"News.Example", b"https", "http") == "advertise"
    assert site.mode(site.onion_host.encode() + b":80", None, "http") == "onion"


def test_onion_readers_are_one_client_whatever_address_header_they_send() -> None:
    # Tor may forward straight to the node, past the proxy that sets X-Real-IP:
    # a reader's own header must not buy it a fresh throttle and cap key per request.
    onion = onion_for(bytes(32))
    keys = {client_address(forged, "127.0.0.1", host=host, onion_host=onion)
            for forged in ("203.0.113.1", "203.0.113.2", None)
            for host in (onion, onion.upper() + ":80")}
    assert keys == {"onion"}
    # The clearnet keeps the proxy's header, and a node without an onion ignores Host.
    assert client_address("203.0.113.1", "127.0.0.1", host="news.example",
                          onion_host=onion) == "203.0.113.1"
    assert client_address("203.0.113.1", "127.0.0.1", host=onion) == "203.0.113.1"


def clearnet_links(page: str, clear: str) -> list[str]:
    """Links to the clearnet origin other than canonical, AP ids and og:url."""
    found = []
    for tag in links.TAG.finditer(page):
        attributes = tag.group(2)
        if links.names_an_id(tag.group(1), attributes) or 'property="og:url"' in attributes:
            continue
        found.extend(url for url in LINK_ATTR.findall(tag.group(0)) if url.startswith(clear))
    return found


async def test_a_node_with_tors_hostname_file_names_and_serves_its_onion(
        nodes: NodeFactory, tor_hostname: Path) -> None:
    await wait_for(lambda: asyncio.to_thread(tor_hostname.exists), timeout=60,
                   what="tor's hostname file")
    onion = (await asyncio.to_thread(tor_hostname.read_text)).strip()
    assert valid_onion(onion)
    node = await nodes.create("onion", start=False, extra_env={
        "HAMBASTEGI_BASE_URL": CLEAR, "HAMBASTEGI_ONION_HOSTNAME_FILE": str(tor_hostname)})
    node.cli("init")
    node.cli("group", "create", "workers", "--display-name", "Workers")
    node.cli("publish", "note", "workers", "--text", "Strike on Monday #strike")
    node.cli("user", "create", "sara", "--admin", "--password-stdin",
             input_text="a long enough passphrase here\n")
    await asyncio.to_thread(node.start)
    local = f"http://127.0.0.1:{node.port}"
    async with httpx.AsyncClient(base_url=local) as client:
        forwarded = await client.get("/groups/workers?page=1",
                                     headers={"Host": "news.example",
                                              "X-Forwarded-Proto": "https"})
        assert forwarded.status_code == 200
        expected = f"http://{onion}/groups/workers?page=1"
        assert forwarded.headers["onion-location"] == expected
        assert f'<meta http-equiv="onion-location" content="{expected}">' in forwarded.text
        assert onion in forwarded.text  # the footer names it

        foreign = await client.get("/groups/workers", headers={
            "Host": "evil.example", "X-Forwarded-Proto": "https"})
        assert "onion-location" not in foreign.headers
        assert f'href="{CLEAR}/groups/workers/feed.atom"' in foreign.text  # not moved
        plain = await client.get("/groups/workers", headers={"Host": "news.example"})
        assert plain.status_code == 200 and "onion-location" not in plain.headers
        assert 'http-equiv="onion-location"' not in plain.text
        json_doc = await client.get("/groups/workers", headers={
            "Host": "news.example", "X-Forwarded-Proto": "https",
            "Accept": "application/activity+json"})
        assert "onion-location" not in json_doc.headers  # HTML pages only
        assert json_doc.json()["id"] == f"{CLEAR}/groups/workers"

        on_onion = await client.get("/groups/workers", headers={"Host": onion})
        assert on_onion.status_code == 200 and "onion-location" not in on_onion.headers
        page = on_onion.text
        assert f'<link rel="canonical" href="{CLEAR}/groups/workers">' in page
        assert f'href="{CLEAR}/groups/workers"' in page  # the AP id of the group
        assert clearnet_links(page, CLEAR) == []
        assert f'href="http://{onion}/groups/workers/feed.atom"' in page
        assert f'href="http://{onion}/groups/workers/calendar.ics"' in page
        assert f'action="http://{onion}/groups/workers/remote-follow"' in page
        post = re.search(rf'href="http://{re.escape(onion)}/objects/([0-9a-f-]+)"', page)
        assert post is not None
        post_page = await client.get(f"/objects/{post.group(1)}", headers={"Host": onion})
        assert clearnet_links(post_page.text, CLEAR) == []
        assert f'href="http://{onion}/tags/strike"' in post_page.text
        feed = await client.get("/groups/workers/feed.atom", headers={"Host": onion})
        assert f'href="http://{onion}/objects/{post.group(1)}"' in feed.text
        assert f"<id>{CLEAR}/objects/{post.group(1)}</id>" in feed.text  # ids stay

        # The workspace: login over the onion; its cookies come back without Secure.
        clear_form = await client.get("/login", headers={"Host": "news.example",
                                                         "X-Forwarded-Proto": "https"})
        assert "secure" in clear_form.headers["set-cookie"].lower()
        client.cookies.clear()
        form = await client.get("/login", headers={"Host": onion})
        assert "secure" not in form.headers["set-cookie"].lower()
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf is not None
        logged_in = await client.post(
            "/login", headers={"Host": onion, "Origin": f"http://{onion}"},
            data={"csrf": csrf.group(1), "username": "sara",
                  "password": "a long enough passphrase here"})
        assert logged_in.status_code == 303, logged_in.text
        assert logged_in.headers["location"].startswith((f"http://{onion}/", "/"))
        assert "hb_session" in logged_in.headers["set-cookie"]
        assert "secure" not in logged_in.headers["set-cookie"].lower()
        workspace = await client.get("/admin", headers={"Host": onion})
        assert workspace.status_code == 200 and "sara" in workspace.text
        assert clearnet_links(workspace.text, CLEAR) == []
