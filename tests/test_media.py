"""Uploads: metadata stripped, names safe on a command line, owners, bounded cost."""

from __future__ import annotations

import io
import struct

import httpx
import pytest

from node.groups import operations
from node.media import uploads
from tests.conftest import LiveNode

SECRETS = (b"SECRET-COMMENT", b"SECRET-XMP", b"SECRET-IPTC", b"SECRET-ARTIST", b"SECRET-ICC")


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def _icc_profile() -> bytes:
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    return bytes(profile.tobytes()) + b"SECRET-ICC"


def jpeg_with_everything() -> bytes:
    """A JPEG carrying EXIF (with GPS), XMP, IPTC, an ICC profile and a comment."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x013B] = "SECRET-ARTIST"
    exif[0x8825] = {1: "N", 2: (46.0, 12.0, 30.0), 3: "E", 4: (6.0, 8.0, 0.0)}
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(
        out, format="JPEG", exif=exif, icc_profile=_icc_profile(), comment=b"SECRET-COMMENT")
    data = out.getvalue()
    xmp = _segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta>SECRET-XMP</x:xmpmeta>")
    iptc = _segment(0xED, b"Photoshop 3.0\x008BIM\x04\x04\x00\x00\x00\x00\x00\x10"
                          b"\x1c\x02\x78\x00\x0bSECRET-IPTC")
    assert data[:2] == b"\xff\xd8"
    return data[:2] + xmp + iptc + data[2:]


def jpeg_markers(data: bytes) -> list[int]:
    """Markers of the segments before the image data."""
    markers, pos = [], 2
    while pos < len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        markers.append(marker)
        if marker == 0xDA:
            break
        pos += 2 + struct.unpack(">H", data[pos + 2:pos + 4])[0]
    return markers


async def test_served_upload_carries_no_metadata_at_all(live_node: LiveNode) -> None:
    original = jpeg_with_everything()
    assert all(secret in original for secret in SECRETS)
    name = await operations.upload_media(live_node.node, original)
    async with httpx.AsyncClient() as client:
        served = (await client.get(live_node.node.urls.media(f"uploads/{name}"))).content
    assert [s for s in SECRETS if s in served] == []
    # Only JFIF, tables, frame and scan: no APPn beyond APP0, no COM.
    assert set(jpeg_markers(served)) <= {0xE0, 0xDB, 0xC4, 0xC0, 0xC2, 0xDD, 0xDA}


def test_png_text_and_profile_chunks_are_dropped() -> None:
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "SECRET-ARTIST")
    info.add_itxt("XML:com.adobe.xmp", "SECRET-XMP")
    out = io.BytesIO()
    Image.new("RGBA", (32, 32), (0, 0, 0, 128)).save(out, format="PNG", pnginfo=info,
                                                    icc_profile=_icc_profile())
    clean, media_type, _, _, _ = uploads.reencode(out.getvalue())
    assert media_type == "image/png"
    assert [s for s in SECRETS if s in clean] == []
    for chunk in (b"tEXt", b"iTXt", b"zTXt", b"iCCP", b"eXIf"):
        assert chunk not in clean


def test_minted_names_never_start_with_a_dash(monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: object) -> None:
    from pathlib import Path

    monkeypatch.setattr(uploads.secrets, "token_urlsafe", lambda n=16: "-" + "a" * 21)
    png = io.BytesIO()
    from PIL import Image

    Image.new("RGB", (8, 8)).save(png, format="PNG")
    name = uploads.store(png.getvalue(), Path(str(tmp_path)))[0]
    assert not name.startswith("-") and uploads.valid_name(name)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims a size; the pixel data is a few bytes of junk."""
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


async def test_too_many_pixels_is_refused_from_the_header(live_node: LiveNode) -> None:
    token = await operations.create_token(live_node.node, "admin")
    async with httpx.AsyncClient() as client:
        response = await client.post(
            live_node.url("/api/v1/media"), content=_png_header_only(6300, 6300),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "image/png"})
    assert response.status_code == 400
    assert "6300x6300" in response.json()["error"]
    assert "megapixels" in response.json()["error"]


async def test_uploads_are_decoded_in_the_bounded_pool(
        live_node: LiveNode, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    seen: list[str] = []
    real = uploads.reencode

    def spy(data: bytes) -> tuple[bytes, str, str, int, int]:
        seen.append(threading.current_thread().name)
        return real(data)

    monkeypatch.setattr(uploads, "reencode", spy)
    await operations.upload_media(live_node.node, jpeg_with_everything())
    assert len(seen) == 1 and seen[0].startswith("upload")


async def test_default_images_only_for_groups_and_drawn_once(
        live_node: LiveNode, monkeypatch: pytest.MonkeyPatch) -> None:
    from node.media import avatars

    await operations.create_group(live_node.node, "koeln", display_name="Köln", language="de")
    monkeypatch.setattr(avatars, "_drawn", {})  # the process-wide cache, fresh for this test
    drawn: list[str] = []
    real = dict(avatars.DRAWERS)
    for kind, func in real.items():
        monkeypatch.setitem(avatars.DRAWERS, kind,
                            lambda name, f=func: drawn.append(name) or f(name))
    async with httpx.AsyncClient(base_url=live_node.base_url) as client:
        for name in ("nobody", "x" * 60, "koeln-not"):
            for kind in ("avatars", "headers"):
                assert (await client.get(f"/media/{kind}/{name}.png")).status_code == 404
        for _ in range(3):
            for kind in ("avatars", "headers"):
                response = await client.get(f"/media/{kind}/koeln.png")
                assert response.status_code == 200
                assert response.content.startswith(b"\x89PNG")
    assert drawn == ["koeln", "koeln"]


def _flyer_call(name: str) -> dict[str, object]:
    return {"language": "de", "title": {"de": "Demo"}, "text": {"de": "Kommt."},
            "start": "2027-06-08T12:00", "timezone": "Europe/Berlin",
            "online_url": "https://stream.example/live", "flyer": {"media": name}}


async def test_a_group_cannot_use_another_groups_upload(live_node: LiveNode) -> None:
    from node.calls import operations as calls

    node = live_node.node
    for name in ("koeln", "paris"):
        await operations.create_group(node, name, display_name=name, language="de")
    koeln_token = await operations.create_token(node, "k", "koeln")
    async with httpx.AsyncClient(base_url=live_node.base_url) as client:
        uploaded = await client.post("/api/v1/media", content=jpeg_with_everything(),
                                     headers={"Authorization": f"Bearer {koeln_token}",
                                              "Content-Type": "image/jpeg"})
        assert uploaded.status_code == 201
        name = uploaded.json()["name"]
        paris_token = await operations.create_token(node, "p", "paris")
        stolen = await client.post("/api/v1/groups/paris/events", json=_flyer_call(name),
                                   headers={"Authorization": f"Bearer {paris_token}"})
        assert stolen.status_code == 400 and name in stolen.json()["error"]
        own = await client.post("/api/v1/groups/koeln/events", json=_flyer_call(name),
                                headers={"Authorization": f"Bearer {koeln_token}"})
        assert own.status_code == 201, own.text
        wrong = await client.post("/api/v1/media?group=paris", content=jpeg_with_everything(),
                                  headers={"Authorization": f"Bearer {koeln_token}",
                                           "Content-Type": "image/jpeg"})
        assert wrong.status_code == 403
    # An upload without an owner goes to the first group that uses it, and only to it.
    loose = await operations.upload_media(node, jpeg_with_everything())
    await calls.create_call(node, "paris", _flyer_call(loose))
    with pytest.raises(operations.OperationError):
        await calls.create_call(node, "koeln", _flyer_call(loose))


def test_cli_upload_for_a_group_and_a_dash_free_name(tmp_path: object) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    base = Path(str(tmp_path))
    env = {**os.environ, "HAMBASTEGI_DATA_DIR": str(base / "data"),
           "HAMBASTEGI_DATABASE_URL": f"sqlite+aiosqlite:///{base / 'db.sqlite3'}",
           "HAMBASTEGI_BASE_URL": "https://node.example"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "node.cli.main", *args], env=env,
                              capture_output=True, text=True, timeout=60, check=False)

    image = base / "flyer.jpg"
    image.write_bytes(jpeg_with_everything())
    assert run("group", "create", "koeln", "--language", "de").returncode == 0
    missing = run("media", "upload", str(image), "--group", "nobody")
    assert missing.returncode == 1 and "nobody" in missing.stderr
    uploaded = run("media", "upload", str(image), "--group", "koeln")
    assert uploaded.returncode == 0, uploaded.stderr
    name = uploaded.stdout.strip()
    published = run("publish", "call", "koeln", "--lang", "de", "--title", "Demo",
                    "--text", "Kommt.",
                    "--start", "2027-06-08T12:00", "--timezone", "Europe/Berlin",
                    "--online-url", "https://stream.example/live", "--flyer", name)
    assert published.returncode == 0, published.stderr


async def test_migration_gives_flyers_their_group_and_cleans_summaries(
        databases: object) -> None:
    import asyncio

    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    from node.storage import migrate
    from tests.conftest import DatabaseFactory

    assert isinstance(databases, DatabaseFactory)
    url = await databases.new()
    await asyncio.to_thread(migrate.downgrade, url, "0002")
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        for actor_id, name in ((1, "koeln"), (2, "paris")):
            await conn.execute(sa.text(
                "INSERT INTO local_actor (id, username, actor_type, display_name, names, "
                "summaries, language, manually_approves_followers, discoverable, indexable, "
                "links, rsa_private_pem, rsa_public_pem, ed25519_private_pem, "
                "ed25519_public_multibase, created_at, updated_at) VALUES (:i, :n, 'Group', "
                ":n, '{}', :s, 'de', false, true, true, '[]', '', '', '', '', "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"),
                {"i": actor_id, "n": name, "s": '{"de": "<p>hi</p><script>x()</script>"}'})
        await conn.execute(sa.text(
            "INSERT INTO local_object (id, uuid, local_actor_id, object_type, language, "
            "names, summaries, contents, extra, published) VALUES (1, 'u1', 2, 'Event', 'de', "
            "'{}', '{}', '{}', '{}', CURRENT_TIMESTAMP)"))
        await conn.execute(sa.text(
            "INSERT INTO event (id, object_id, kind, start_time, timezone, status, hashtags, "
            "flyer, contact_links, join_mode, sequence) VALUES (1, 1, 'action', "
            "CURRENT_TIMESTAMP, 'UTC', 'scheduled', '[]', :f, '[]', 'free', 0)"),
            {"f": '{"path": "uploads/used.jpg", "media_type": "image/jpeg"}'})
        for name in ("used.jpg", "loose.jpg"):
            await conn.execute(sa.text(
                "INSERT INTO media_file (name, media_type, width, height, size, created_at) "
                "VALUES (:n, 'image/jpeg', 1, 1, 1, CURRENT_TIMESTAMP)"), {"n": name})
    await asyncio.to_thread(migrate.upgrade, url)
    async with engine.connect() as conn:
        owners = dict((await conn.execute(sa.text(
            "SELECT name, local_actor_id FROM media_file"))).all())
        summaries = [row[0] for row in (await conn.execute(sa.text(
            "SELECT summaries FROM local_actor"))).all()]
    await engine.dispose()
    assert owners == {"used.jpg": 2, "loose.jpg": None}
    assert all("script" not in str(s) and "hi" in str(s) for s in summaries)
