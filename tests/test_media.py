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
    assert "6300×6300" in response.json()["error"]
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
