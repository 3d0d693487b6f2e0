"""Static mirrors (issue 28): an export of a node with a call, a Persian and German news
item with a photo, a bulletin, a public and a name_withheld campaign — signed so that
Debian's minisign verifies it, every internal link inside the copy, feeds and calendars
that parse, no byte of what is not public; re-exports, verify, and hostile input."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import feedparser
import icalendar
import jsonschema
import pytest

from node.campaigns import operations as campaigns
from node.core import minisign
from node.core.settings import Settings
from node.federation.runtime import Node
from node.groups import operations
from node.inbound import INBOUND
from node.mirror import manifest
from node.mirror.export import MirrorError, Options, export
from node.news import operations as news
from tests import public_site
from tests.test_campaigns import dossier
from tests.test_onion import onion_for
from tests.test_photos import photo

ORIGIN = "https://hambastegi.example"
WITHHELD = {"fa": "کاوه مرادی‌نژاد", "en": "Kaveh Moradinejad", "de": "Kawe Moradinedschad"}
PUBLIC_NAME = "Jafar Azimzadeh"
DRAFT_TEXT = "draft-only-text-never-published"


@dataclass
class Seeded:
    settings: Settings
    site: public_site.Site
    photo_news: str
    photo_name: str
    public_campaign: str
    withheld_campaign: str


def settings_for(tmp_path: Path, database_url: str) -> Settings:
    return Settings.load(environ={
        "HAMBASTEGI_BASE_URL": ORIGIN, "HAMBASTEGI_DATA_DIR": str(tmp_path / "data"),
        "HAMBASTEGI_DATABASE_URL": database_url,
        "HAMBASTEGI_ONION_HOSTNAME": onion_for(bytes(range(32)))})


@pytest.fixture
async def seeded(tmp_path: Path, database_url: str) -> AsyncIterator[Seeded]:
    settings = settings_for(tmp_path, database_url)
    node = Node(settings, inbound=INBOUND)
    await node.start()
    try:
        site = await public_site.seed(node)
        uploaded = await operations.upload_media(node, photo(), group="tehran")
        photo_news = await news.create_item(node, "tehran", {
            "language": "fa", "photos": [{"media": uploaded, "alt": {"fa": "کارگران",
                                                                      "de": "Arbeiter"}}],
            "versions": {
                "fa": {"title": "اعتصاب کارگران هفت تپه", "text": "کارگران اعتصاب کردند."},
                "de": {"title": "Streik in Haft Tappeh", "text": "Die Arbeiter streiken."}}})
        public_campaign = await campaigns.create_campaign(node, "tehran", dossier(
            name={"en": PUBLIC_NAME, "fa": "جعفر عظیمی"},
            versions={"fa": {"story": "یک کارگر."}, "en": {"story": "A worker."}}))
        withheld_campaign = await campaigns.create_campaign(node, "tehran", dossier(
            name=dict(WITHHELD), visibility="name_withheld",
            versions={"fa": {"story": "یک راننده اتوبوس."},
                      "en": {"story": "A bus driver, arrested at home."}}))
        yield Seeded(settings, site, photo_news, uploaded, public_campaign, withheld_campaign)
    finally:
        await node.close()


def minisign_check(file: Path, key: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["/usr/bin/minisign", "-Vm", str(file), "-P", key],
                          capture_output=True, text=True, check=False)


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None], str]] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script":
            self.scripts += 1
        for name in ("href", "src", "action"):
            value = values.get(name)
            if value:
                self.found.append((tag, values, value))


def allowed_absolute(tag: str, attrs: dict[str, str | None]) -> bool:
    """What may point at the original: ids (canonical, the ActivityPub document), the
    footer's "original" link, and forms (a static copy cannot take a post)."""
    rel = (attrs.get("rel") or "").split()
    return (tag == "link" and ("canonical" in rel
                               or attrs.get("type") == "application/activity+json")) \
        or "data-original" in attrs or tag == "form"


def check_links(root: Path) -> tuple[int, list[str]]:
    """Every relative link of every page resolves to a file inside the copy (through
    ``file://``, as a reader opening the copy from a disk would follow it)."""
    broken = []
    checked = 0
    for page in root.rglob("*.html"):
        parser = Links()
        parser.feed(page.read_text(encoding="utf-8"))
        assert parser.scripts == 0, page
        for tag, attrs, value in parser.found:
            resolved = urljoin(page.as_uri(), value)
            parts = urlsplit(resolved)
            if parts.scheme == "file":
                checked += 1
                target = Path(unquote(parts.path))
                if not target.is_file() or not target.resolve().is_relative_to(root.resolve()):
                    broken.append(f"{page.relative_to(root)} → {value}")
            elif resolved.startswith(ORIGIN) and not allowed_absolute(tag, attrs):
                broken.append(f"{page.relative_to(root)} links the original: {value}")
    return checked, broken


async def test_an_export_is_signed_complete_relative_and_holds_nothing_that_is_not_public(
        seeded: Seeded, tmp_path: Path) -> None:
    out = tmp_path / "mirror"
    result = await export(seeded.settings, Options(out))
    assert result.files > 30
    public = minisign.read_public(seeded.settings.data_dir)
    assert public is not None

    # Debian's minisign verifies the manifest; one changed byte and it does not.
    ok = await asyncio.to_thread(minisign_check, out / "manifest.json", public.encoded())
    assert ok.returncode == 0, ok.stderr
    assert f"node:{ORIGIN}" in ok.stdout and "exported:" in ok.stdout
    document = json.loads((out / "manifest.json").read_bytes())
    assert document["node"] == ORIGIN and document["onion"] == seeded.settings.onion_origin
    assert datetime.fromisoformat(document["expires"]) > datetime.now(UTC) + timedelta(days=29)
    listed = {f["path"] for f in document["files"]}
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert on_disk - listed == set(manifest.RESERVED)
    copy = tmp_path / "altered"
    shutil.copytree(out, copy)
    altered = copy / "manifest.json"
    altered.write_bytes(altered.read_bytes().replace(b'"size": ', b'"size":  ', 1))
    bad = await asyncio.to_thread(minisign_check, altered, public.encoded())
    assert bad.returncode != 0

    # Every page in every language; every internal link resolves inside the copy.
    uuid = {name: url.rsplit("/", 1)[1] for name, url in (
        ("call", seeded.site.call_id), ("news", seeded.photo_news),
        ("bulletin", seeded.site.bulletin_id), ("public", seeded.public_campaign),
        ("withheld", seeded.withheld_campaign))}
    for lang in ("en", "fa", "de"):
        assert (out / lang / "index.html").is_file()
        for key in ("call", "news", "bulletin", "public", "withheld"):
            assert (out / lang / "objects" / uuid[key] / "index.html").is_file(), (lang, key)
        assert (out / lang / "groups" / "tehran" / "index.html").is_file()
        assert (out / lang / "campaigns" / "index.html").is_file()
    checked, broken = check_links(out)
    assert broken == [], broken
    assert checked > 500
    fa_call = (out / "fa" / "objects" / uuid["call"] / "index.html").read_text()
    assert '<html lang="fa" dir="rtl">' in fa_call
    assert f'href="../../../de/objects/{uuid["call"]}/index.html"' in fa_call
    assert f'<link rel="canonical" href="{seeded.site.call_id}">' in fa_call
    # Pages name the original and the onion address, and the key.
    assert f'href="{ORIGIN}/"' in fa_call and seeded.settings.onion_origin in fa_call
    assert public.encoded() in fa_call

    # The photo in all its variants, each post's ActivityPub JSON with its ids.
    media = {p.name for p in (out / "media" / "uploads").iterdir()}
    assert seeded.photo_name in media and len(media) >= 3
    for key in ("call", "news", "bulletin", "public", "withheld"):
        doc = json.loads((out / "objects" / f"{uuid[key]}.json").read_bytes())
        assert doc["id"].startswith(ORIGIN)

    # Feeds parse; calendars parse.
    atoms = list(out.rglob("*.atom"))
    assert len(atoms) >= 4
    for feed in atoms:
        parsed = feedparser.parse(feed.read_bytes())
        assert not parsed.bozo, (feed, parsed.get("bozo_exception"))
    schema = json.loads((Path(__file__).parent / "jsonfeed-1.1.schema.json").read_text())
    json_feeds = list((out / "groups").rglob("feed.json"))
    assert len(json_feeds) >= 2
    for feed in json_feeds:  # (feedparser 6.0 reads no JSON Feed)
        jsonschema.validate(json.loads(feed.read_bytes()), schema)
    atom = feedparser.parse((out / "groups" / "tehran" / "feed.atom").read_bytes())
    assert any(link.href == f"../../en/objects/{uuid['news']}/index.html"
               for entry in atom.entries for link in entry.links)
    calendars = list(out.rglob("*.ics"))
    assert any(uuid["call"] in c.as_posix() for c in calendars)
    for calendar in calendars:
        icalendar.Calendar.from_ical(calendar.read_bytes())

    # What is not public is in no byte of the copy: the withheld name, in every script.
    everything = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    for name in WITHHELD.values():
        for word in name.split():
            assert word.encode() not in everything, word
    assert PUBLIC_NAME.encode() in everything  # (the same check finds a public name)

    # mirror verify agrees, and names a changed, an added and a removed file.
    assert manifest.verify(out, public, datetime.now(UTC)) == []
    news_page = copy / "de" / "objects" / uuid["news"] / "index.html"
    body = bytearray(news_page.read_bytes())
    body[200] ^= 1
    news_page.write_bytes(bytes(body))
    (copy / "manifest.json").write_bytes((out / "manifest.json").read_bytes())  # as signed
    (copy / "extra.html").write_text("<p>added</p>")
    (copy / "fa" / "index.html").unlink()
    problems = manifest.verify(copy, public, datetime.now(UTC))
    assert f"de/objects/{uuid['news']}/index.html: differs from the signed manifest" in problems
    assert "extra.html: not in the signed manifest" in problems
    assert "fa/index.html: missing" in problems
    assert len(problems) == 3
    expired = manifest.verify(out, public, datetime.now(UTC) + timedelta(days=31))
    assert expired and "expired" in expired[0]


async def test_a_draft_stays_out_of_the_copy(seeded: Seeded, tmp_path: Path) -> None:
    from node.accounts import drafts
    from node.federation import local_actors

    node = Node(seeded.settings, inbound=INBOUND)
    await node.start()
    try:
        async with node.db.read() as session:
            group = await local_actors.get_actor(session, "tehran")
        assert group is not None
        await drafts.save(node, group, "news", {"language": "fa", "versions": {
            "fa": {"title": DRAFT_TEXT, "text": DRAFT_TEXT}}})
    finally:
        await node.close()
    out = tmp_path / "mirror"
    await export(seeded.settings, Options(out))
    everything = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    assert DRAFT_TEXT.encode() not in everything
    assert "اعتصاب کارگران هفت تپه".encode() in everything  # published news is there


async def test_a_re_export_rewrites_only_what_changed_and_removes_what_was_deleted(
        seeded: Seeded, tmp_path: Path) -> None:
    out = tmp_path / "mirror"
    first = await export(seeded.settings, Options(out))
    again = await export(seeded.settings, Options(out))
    assert again.changed == [] and again.removed == 0 and again.reused > 0
    assert again.pages < first.pages
    node = Node(seeded.settings, inbound=INBOUND)
    await node.start()
    try:
        await news.delete_item(node, seeded.site.news_id)
        edited = await news.create_item(node, "koeln", {
            "language": "de", "versions": {"de": {"title": "Neu", "text": "Neuer Text."}}})
    finally:
        await node.close()
    gone = seeded.site.news_id.rsplit("/", 1)[1]
    third = await export(seeded.settings, Options(out))
    assert third.removed >= 4  # three pages and the JSON of the deleted item
    assert not any(gone in p.as_posix() for p in out.rglob("*"))
    assert (out / "de" / "objects" / edited.rsplit("/", 1)[1] / "index.html").is_file()
    public = minisign.read_public(seeded.settings.data_dir)
    assert public is not None and manifest.verify(out, public, datetime.now(UTC)) == []


async def test_a_lowered_consent_and_an_edit_on_an_older_page_reach_the_re_export(
        seeded: Seeded, tmp_path: Path) -> None:
    """What a re-export keeps without rendering must never outlive a change: a campaign
    lowered to name_withheld loses the name everywhere, and a post edited on a group's
    second page changes that page (its hash is its posts')."""
    node = Node(seeded.settings, inbound=INBOUND)
    await node.start()
    try:
        oldest = await operations.publish_note(node, "koeln", text="The oldest note")
        for i in range(public_site_page_size() + 2):
            await operations.publish_note(node, "koeln", text=f"Note {i}")
    finally:
        await node.close()
    out = tmp_path / "mirror"
    await export(seeded.settings, Options(out))
    page_two = out / "de" / "groups" / "koeln" / "page-2.html"
    assert "The oldest note" in page_two.read_text()
    assert PUBLIC_NAME.encode() in b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    node = Node(seeded.settings, inbound=INBOUND)
    await node.start()
    try:
        await campaigns.set_visibility(node, seeded.public_campaign, "name_withheld")
        await operations.edit_note(node, oldest, text="The oldest note, corrected")
    finally:
        await node.close()
    again = await export(seeded.settings, Options(out))
    assert "de/groups/koeln/page-2.html" in again.changed
    assert "The oldest note, corrected" in page_two.read_text()
    everything = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    assert b"Azimzadeh" not in everything and "عظیمی".encode() not in everything


def public_site_page_size() -> int:
    from node.web.listings import PAGE_SIZE

    return PAGE_SIZE


async def test_a_non_empty_directory_that_is_not_an_export_is_refused_untouched(
        seeded: Seeded, tmp_path: Path) -> None:
    out = tmp_path / "photos"
    out.mkdir()
    (out / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(MirrorError, match="not an earlier export"):
        await export(seeded.settings, Options(out))
    assert [p.name for p in out.iterdir()] == ["holiday.jpg"]
    # A manifest someone else wrote, naming the photo (which a re-export would delete as
    # no longer exported), is refused: it lacks this node's signature.
    forged = json.dumps({
        "format": manifest.FORMAT, "node": ORIGIN, "exported": "2026-01-01T00:00:00+00:00",
        "expires": "2027-01-01T00:00:00+00:00",
        "files": [{"path": "holiday.jpg", "size": 8, "sha256": "0" * 64}]}).encode()
    (out / "manifest.json").write_bytes(forged)
    with pytest.raises(MirrorError, match=r"manifest\.json\.minisig"):
        await export(seeded.settings, Options(out))
    other = minisign.SecretKey.generate()
    (out / "manifest.json.minisig").write_text(other.sign(forged, f"node:{ORIGIN}"))
    with pytest.raises(MirrorError, match="signed with key"):
        await export(seeded.settings, Options(out))
    assert (out / "holiday.jpg").read_bytes() == b"precious"
    # A manifest signed by us but naming a path outside the copy is refused too.
    key = minisign.load_or_create(seeded.settings.data_dir)
    outside = forged.replace(b"holiday.jpg", b"../outside")
    (out / "manifest.json").write_bytes(outside)
    (out / "manifest.json.minisig").write_text(key.sign(outside, f"node:{ORIGIN}"))
    with pytest.raises(MirrorError, match="bad path"):
        await export(seeded.settings, Options(out))
    assert (out / "holiday.jpg").read_bytes() == b"precious"


@pytest.mark.parametrize("text, message", [
    ("not json", "not JSON"), ("[]", "not a hambastegi"),
    ('{"format": "hambastegi-mirror/1"}', "lacks"),
    ('{"format": "hambastegi-mirror/1", "node": "x", "exported": "soon", "expires": "x",'
     ' "files": []}', "malformed time"),
])
def test_a_malformed_manifest_is_named(text: str, message: str) -> None:
    with pytest.raises(manifest.ManifestError, match=message):
        manifest.Manifest.parse(text.encode())


def test_a_signature_by_another_key_or_a_forged_comment_is_refused() -> None:
    key, other = minisign.SecretKey.generate(), minisign.SecretKey.generate()
    signed = key.sign(b"data", "timestamp:1 node:https://a.example")
    assert minisign.verify(key.public(), b"data", signed) == "timestamp:1 node:https://a.example"
    with pytest.raises(minisign.MinisignError, match="signed with key"):
        minisign.verify(other.public(), b"data", signed)
    forged = signed.replace("node:https://a.example", "node:https://b.example")
    with pytest.raises(minisign.MinisignError, match="trusted comment"):
        minisign.verify(key.public(), b"data", forged)
    with pytest.raises(minisign.MinisignError):
        minisign.verify(key.public(), b"data", "garbage\n" * 3)
    with pytest.raises(minisign.MinisignError, match="base64"):
        minisign.PublicKey.parse("RW!!notbase64")


def test_minisign_verifies_our_signature_and_we_verify_minisigns(tmp_path: Path) -> None:
    """Both directions against Debian's minisign: its key and signature, our check."""
    data = tmp_path / "file.txt"
    data.write_bytes("همبستگی\n".encode())
    key = minisign.SecretKey.generate()
    (tmp_path / "file.txt.minisig").write_text(key.sign(data.read_bytes(), "node:x"))
    assert subprocess.run(["/usr/bin/minisign", "-Vm", str(data), "-P",
                           key.public().encoded()], capture_output=True,
                          check=False).returncode == 0
    subprocess.run(["/usr/bin/minisign", "-GW", "-p", str(tmp_path / "k.pub"), "-s",
                    str(tmp_path / "k.key")], capture_output=True, check=True)
    subprocess.run(["/usr/bin/minisign", "-S", "-s", str(tmp_path / "k.key"), "-m", str(data),
                    "-t", "their comment"], capture_output=True, check=True)
    theirs = minisign.PublicKey.parse((tmp_path / "k.pub").read_text())
    assert minisign.verify(theirs, data.read_bytes(),
                           (tmp_path / "file.txt.minisig").read_text()) == "their comment"


async def test_the_cli_exports_verifies_and_names_a_changed_file(
        seeded: Seeded, tmp_path: Path) -> None:
    env = {"HAMBASTEGI_BASE_URL": ORIGIN, "HAMBASTEGI_DATA_DIR": str(seeded.settings.data_dir),
           "HAMBASTEGI_DATABASE_URL": seeded.settings.database_url, "PATH": "/usr/bin:/bin"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "node.cli.main", *args], env=env,
                              capture_output=True, text=True, timeout=120, check=False)

    key = await asyncio.to_thread(cli, "mirror", "key")
    assert key.returncode == 0 and key.stdout.startswith("RW")
    out = tmp_path / "cli-mirror"
    done = await asyncio.to_thread(cli, "mirror", "export", str(out), "--group", "koeln",
                                   "--lang", "de", "--base-path", "https://bucket.example/hb")
    assert done.returncode == 0, done.stderr
    feed = (out / "groups" / "koeln" / "feed.atom").read_text()
    assert 'href="https://bucket.example/hb/de/groups/koeln/index.html"' in feed
    assert 'href="../../../groups/koeln/feed.atom"' in (
        out / "de" / "groups" / "koeln" / "index.html").read_text()  # pages stay relative
    assert not (out / "fa").exists() and not (out / "groups" / "tehran").exists()
    assert (out / "de" / "groups" / "koeln" / "index.html").is_file()
    verified = await asyncio.to_thread(cli, "mirror", "verify", str(out), "--key",
                                       key.stdout.strip())
    assert verified.returncode == 0, verified.stderr
    page = out / "de" / "groups" / "koeln" / "index.html"
    page.write_bytes(page.read_bytes() + b" ")
    failed = await asyncio.to_thread(cli, "mirror", "verify", str(out), "--key",
                                     key.stdout.strip())
    assert failed.returncode == 1
    assert "de/groups/koeln/index.html: differs" in failed.stderr
    unknown = await asyncio.to_thread(cli, "mirror", "export", str(out), "--lang", "xx")
    assert unknown.returncode == 1 and "no interface language xx" in unknown.stderr


async def test_the_node_publishes_its_mirror_key(seeded: Seeded) -> None:
    import httpx

    from node.app import create_app

    app = create_app(seeded.settings, run_worker=False, run_processor=False)
    await app.state.node.start()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as client:
        missing = await client.get("/.well-known/hambastegi-mirror.pub")
        assert missing.status_code == 404
        key = minisign.load_or_create(seeded.settings.data_dir)
        found = await client.get("/.well-known/hambastegi-mirror.pub")
        assert found.status_code == 200
        assert minisign.PublicKey.parse(found.text) == key.public()
    await app.state.node.close()
