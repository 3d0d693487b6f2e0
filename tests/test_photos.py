"""Photos: smaller variants, what Mastodon reads in an attachment, served safely, refusals."""

from __future__ import annotations

import io
import os
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import blurhash  # type: ignore[import-untyped]
import httpx
import pytest
from PIL import Image, ImageCms
from PIL.TiffImagePlugin import IFDRational

from node.calls import operations as calls
from node.groups import operations
from node.media import uploads
from tests.conftest import LiveNode

AS = {"Accept": "application/activity+json"}

# --- the proof image: a real JPEG as a phone writes it -----------------------------------

SERIAL = b"CAMSERIAL-8841207"
# 35 deg 41' 22.3457" N, 51 deg 23' 18.789" E as EXIF rationals (big-endian, as
# Pillow writes EXIF): the coordinates themselves, not only their labels.
LATITUDE = struct.pack(">6I", 35, 1, 41, 1, 223457, 10000)
LONGITUDE = struct.pack(">6I", 51, 1, 23, 1, 18789, 1000)
XMP = (b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>'
       b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
       b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
       b'xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/" '
       b'photoshop:City="XMP-SECRET-CITY"/></rdf:RDF></x:xmpmeta>'
       b'<?xpacket end="w"?>')
# The ICC description is stored as UTF-16 (an mluc tag); 13 characters, as
# long as the "sRGB built-in" it replaces.
ICC_DESCRIPTION = "ICCSECRETDESC"


def icc_profile_with_description() -> bytes:
    profile = bytes(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    old = "sRGB built-in".encode("utf-16-be")
    assert old in profile
    patched = profile.replace(old, ICC_DESCRIPTION.encode("utf-16-be"))
    # Still a profile the decoder reads (the node applies it to the pixels).
    assert ImageCms.getProfileDescription(
        ImageCms.ImageCmsProfile(io.BytesIO(patched))).strip() == ICC_DESCRIPTION
    return patched


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def photo(width: int = 1600, height: int = 1200, fmt: str = "JPEG", **save: Any) -> bytes:
    """A photo-like gradient (compresses like a photo, not like a flat colour)."""
    gradient = Image.linear_gradient("L").resize((width, height))
    image = Image.merge("RGB", (gradient, gradient.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
                                Image.new("L", (width, height), 90)))
    out = io.BytesIO()
    image.save(out, format=fmt, **save)
    return out.getvalue()


def camera_jpeg() -> bytes:
    """GPS coordinates, a camera serial number, an XMP packet, an ICC profile."""
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x8769] = {0xA431: SERIAL.decode()}  # BodySerialNumber, in the Exif IFD
    exif[0x8825] = {1: "N", 2: (IFDRational(35, 1), IFDRational(41, 1),
                                IFDRational(223457, 10000)),
                    3: "E", 4: (IFDRational(51, 1), IFDRational(23, 1),
                                IFDRational(18789, 1000))}
    data = photo(exif=exif.tobytes(), icc_profile=icc_profile_with_description(), quality=92)
    xmp = _segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + XMP)
    return data[:2] + xmp + data[2:]


def secrets_in(data: bytes) -> list[str]:
    found = []
    for label, needle in (
            ("serial", SERIAL), ("latitude", LATITUDE), ("longitude", LONGITUDE),
            ("xmp city", b"XMP-SECRET-CITY"), ("xmp packet", b"xmpmeta"),
            ("xmp namespace", b"ns.adobe.com"), ("exif", b"Exif\x00\x00"),
            ("icc description", ICC_DESCRIPTION.encode("utf-16-be")),
            ("icc description ascii", ICC_DESCRIPTION.encode()),
            ("icc marker", b"ICC_PROFILE"), ("maker", b"PhoneMaker")):
        if needle in data:
            found.append(label)
    return found


async def _upload(live: LiveNode, data: bytes, *, token: str, content_type: str = "image/jpeg",
                  query: str = "") -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(live.url("/api/v1/media" + query), content=data,
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": content_type})


async def _group_token(live: LiveNode, name: str = "koeln") -> str:
    await operations.create_group(live.node, name, display_name=name, language="de")
    return await operations.create_token(live.node, name, name)


async def test_no_byte_of_gps_serial_xmp_or_icc_survives_in_any_stored_or_served_file(
        live_node: LiveNode) -> None:
    original = camera_jpeg()
    # The image really carries all of them, as a reader of EXIF finds them.
    assert secrets_in(original) == ["serial", "latitude", "longitude", "xmp city",
                                    "xmp packet", "xmp namespace", "exif",
                                    "icc description", "icc marker", "maker"]
    with Image.open(io.BytesIO(original)) as check:
        assert check.getexif().get_ifd(0x8825)[2][2] == pytest.approx(22.3457)
        assert check.getexif().get_ifd(0x8769)[0xA431] == SERIAL.decode()
    token = await _group_token(live_node)
    response = await _upload(live_node, original, token=token)
    assert response.status_code == 201, response.text
    body = response.json()
    urls = [body["url"]] + [v["url"] for v in body["variants"]]
    assert [(v["width"], v["height"]) for v in body["variants"]] == [(400, 300), (1280, 960)]
    async with httpx.AsyncClient() as client:
        served = [(await client.get(url)).content for url in urls]
    assert [len(s) > 1000 for s in served] == [True, True, True]
    assert {url: secrets_in(data) for url, data in zip(urls, served, strict=True)} == {
        url: [] for url in urls}
    stored = list((live_node.node.settings.media_dir / "uploads").iterdir())
    assert len(stored) == 3
    assert {p.name: secrets_in(p.read_bytes()) for p in stored} == {p.name: [] for p in stored}
    for data in served:
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "JPEG" and not image.info.get("icc_profile")
            assert not image.getexif()


def test_variants_are_smaller_copies_and_never_upscaled(tmp_path: Path) -> None:
    big = uploads.store(photo(3000, 2000), tmp_path)
    assert (big.width, big.height) == (2560, 1707)
    assert [(v.width, v.height) for v in big.variants] == [(400, 267), (1280, 854)]
    middle = uploads.store(photo(700, 900), tmp_path)
    assert [(v.width, v.height) for v in middle.variants] == [(311, 400)]
    small = uploads.store(photo(400, 300), tmp_path)
    assert small.variants == ()
    names = [big.name, middle.name, small.name] + [
        v.name for s in (big, middle) for v in s.variants]
    assert len(set(names)) == len(names) and all(uploads.valid_name(n) for n in names)
    for variant in big.variants:
        with Image.open(tmp_path / "uploads" / variant.name) as image:
            assert image.size == (variant.width, variant.height)
            assert image.format == "JPEG"


def test_transparent_images_keep_png_variants(tmp_path: Path) -> None:
    out = io.BytesIO()
    Image.new("RGBA", (900, 600), (10, 200, 30, 100)).save(out, format="PNG")
    stored = uploads.store(out.getvalue(), tmp_path)
    assert stored.media_type == "image/png"
    assert [(v.media_type, v.width) for v in stored.variants] == [("image/png", 400)]
    with Image.open(tmp_path / "uploads" / stored.variants[0].name) as image:
        assert image.mode == "RGBA"
        assert image.getpixel((5, 5)) == pytest.approx((10, 200, 30, 100), abs=3)


def test_blurhash_is_the_published_algorithm_and_resembles_the_image() -> None:
    red = Image.new("RGB", (64, 48), (220, 20, 20))
    code = uploads.blurhash_of(red)
    assert re.fullmatch(r"[0-9A-Za-z#$%*+,\-.:;=?@\[\]^_{|}~]+", code)
    # Mastodon drops a hash with more than 5 components either way.
    assert blurhash.components(code) == (4, 3)
    assert blurhash.components(uploads.blurhash_of(Image.new("RGB", (30, 60)))) == (3, 4)
    pixels = blurhash.decode(code, 4, 4)
    r, g, b = pixels[2][2]
    assert r > 180 and g < 60 and b < 60


@pytest.mark.parametrize("text", ["2,0", "0,-1.5", "a,b", "0.5", "0.1,0.2,0.3", "nan,0", ""])
def test_focus_must_be_two_numbers_between_minus_one_and_one(text: str) -> None:
    with pytest.raises(uploads.UploadError, match="between -1 and 1"):
        uploads.parse_focus(text)


def test_focus_is_read_as_x_then_y() -> None:
    assert uploads.parse_focus("-0.5,1") == (-0.5, 1.0)


async def test_flyer_attachment_carries_what_mastodon_reads(live_node: LiveNode) -> None:
    token = await _group_token(live_node)
    uploaded = await _upload(live_node, photo(1600, 1200), token=token,
                             query="?focus=0.25,-0.5")
    assert uploaded.status_code == 201, uploaded.text
    body = uploaded.json()
    event_id = await calls.create_call(live_node.node, "koeln", {
        "language": "de", "title": {"de": "Demo"}, "text": {"de": "Kommt."},
        "start": "2027-06-08T12:00", "timezone": "Europe/Berlin",
        "online_url": "https://stream.example/live",
        "flyer": {"media": body["name"], "alt": "Plakat: Demo am Bahnhof"}})
    async with httpx.AsyncClient() as client:
        doc = (await client.get(event_id, headers=AS)).json()
    flyer, *rest = doc["attachment"]
    assert flyer == {"type": "Document", "mediaType": "image/jpeg", "url": body["url"],
                     "name": "Plakat: Demo am Bahnhof", "blurhash": body["blurhash"],
                     "width": 1600, "height": 1200, "focalPoint": [0.25, -0.5]}
    assert blurhash.components(flyer["blurhash"]) == (4, 3)
    # Gancio: every attachment has a mediaType.
    assert rest and all("mediaType" in a for a in rest if a["type"] != "PropertyValue")


async def test_bad_focus_is_a_clear_400(live_node: LiveNode) -> None:
    token = await _group_token(live_node)
    response = await _upload(live_node, photo(100, 100), token=token, query="?focus=3,0")
    assert response.status_code == 400
    assert "between -1 and 1" in response.json()["error"]


async def test_group_icon_is_the_small_variant_with_its_real_media_type(
        live_node: LiveNode) -> None:
    token = await _group_token(live_node)
    avatar = (await _upload(live_node, photo(1000, 1000), token=token)).json()
    header = (await _upload(live_node, photo(1800, 600), token=token)).json()
    await operations.edit_group(live_node.node, "koeln",
                                {"avatar": avatar["name"], "header": header["name"]})
    async with httpx.AsyncClient() as client:
        doc = (await client.get(live_node.node.urls.actor("koeln"), headers=AS)).json()
        icon = await client.get(doc["icon"]["url"])
    small = next(v for v in avatar["variants"] if v["width"] == 400)
    assert doc["icon"] == {"type": "Image", "mediaType": "image/jpeg", "url": small["url"]}
    assert doc["image"] == {"type": "Image", "mediaType": "image/jpeg", "url": header["url"]}
    assert icon.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(icon.content)) as image:
        assert image.size == (400, 400)


async def test_a_variant_is_not_an_upload_of_its_own(live_node: LiveNode) -> None:
    token = await _group_token(live_node)
    body = (await _upload(live_node, photo(1600, 1200), token=token)).json()
    variant_name = body["variants"][0]["url"].rsplit("/", 1)[1]
    with pytest.raises(operations.OperationError, match="no uploaded image"):
        await operations.edit_group(live_node.node, "koeln", {"avatar": variant_name})


# --- served safely -----------------------------------------------------------------------


async def test_uploads_are_served_with_our_type_nosniff_and_immutable(
        live_node: LiveNode) -> None:
    token = await _group_token(live_node)
    body = (await _upload(live_node, photo(1600, 1200), token=token)).json()
    async with httpx.AsyncClient() as client:
        for url in [body["url"]] + [v["url"] for v in body["variants"]]:
            response = await client.get(url)
            assert response.status_code == 200
            assert response.headers["content-type"] == "image/jpeg"
            assert response.headers["x-content-type-options"] == "nosniff"
            assert "immutable" in response.headers["cache-control"]
        drawn = await client.get(live_node.url("/media/avatars/koeln.png"))
        assert drawn.headers["x-content-type-options"] == "nosniff"


async def test_the_served_type_comes_from_our_records_not_the_file(
        live_node: LiveNode) -> None:
    token = await _group_token(live_node)
    body = (await _upload(live_node, photo(300, 200), token=token)).json()
    uploads_dir = live_node.node.settings.media_dir / "uploads"
    # Whatever ends up in the file, the answer's type is the recorded one.
    (uploads_dir / body["name"]).write_bytes(b"<html><script>alert(1)</script></html>")
    # A file we never recorded (a copy dropped beside the uploads) is not served.
    stray = uploads.mint_name("png")
    (uploads_dir / stray).write_bytes(photo(10, 10, fmt="PNG"))
    async with httpx.AsyncClient() as client:
        forged = await client.get(body["url"])
        unrecorded = await client.get(live_node.url(f"/media/uploads/{stray}"))
    assert forged.headers["content-type"] == "image/jpeg"
    assert forged.headers["x-content-type-options"] == "nosniff"
    assert unrecorded.status_code == 404


# --- refused -----------------------------------------------------------------------------


def _mp4() -> bytes:
    return struct.pack(">I", 24) + b"ftypisom" + b"\x00\x00\x02\x00isomiso2" + b"\x00" * 64


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def png_bomb(width: int, height: int) -> bytes:
    """A real bomb: every row present, all zeros, so it compresses ~1000:1."""
    raw = (b"\x00" + b"\x00" * width) * height
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", zlib.compress(raw, 9)) + _png_chunk(b"IEND", b""))


def animated(fmt: str, frames: int = 3) -> bytes:
    images = [Image.new("RGB", (64, 64), (i * 80, 0, 0)) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, format=fmt, save_all=True, append_images=images[1:], duration=100,
                   loop=0)
    return out.getvalue()


@pytest.mark.parametrize(("data", "content_type", "status", "message"), [
    (_mp4(), "video/mp4", 415, "video and audio are not accepted"),
    (b"ID3\x04\x00" + b"\x00" * 200, "audio/mpeg", 415, "video and audio are not accepted"),
    (_mp4(), "image/jpeg", 415, "this is a video (MP4/QuickTime)"),
    (b"\x1aE\xdf\xa3" + b"\x00" * 100, "image/webp", 415, "this is a video (WebM/Matroska)"),
    (b"%PDF-1.7\n" + b"x" * 100, "image/png", 415, "this is a PDF document"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml", 415,
     "only still JPEG, PNG, WebP and GIF"),
    (photo(300, 200)[:-600], "image/jpeg", 400, "truncated or damaged"),
    (photo(300, 200, fmt="PNG")[:-200], "image/png", 400, "truncated or damaged"),
    (animated("GIF"), "image/gif", 400, "animated images are not accepted"),
    (animated("PNG"), "image/png", 400, "animated images are not accepted"),
    (animated("WEBP"), "image/webp", 400, "animated images are not accepted"),
    (png_bomb(5000, 5000), "image/png", 400, "20 megapixels"),
    (png_bomb(10000, 10000), "image/png", 400, "20 megapixels"),
    (b"\xff" * (uploads.MAX_UPLOAD + 1), "image/jpeg", 413, "image over"),
], ids=["video-type", "audio-type", "mp4-as-jpeg", "webm", "pdf", "svg", "truncated-jpeg",
        "truncated-png", "animated-gif", "animated-png", "animated-webp", "bomb-25mp",
        "bomb-100mp", "too-large"])
async def test_what_is_not_a_still_image_within_limits_is_refused(
        live_node: LiveNode, data: bytes, content_type: str, status: int,
        message: str) -> None:
    token = await _group_token(live_node)
    response = await _upload(live_node, data, token=token, content_type=content_type)
    assert (response.status_code, message in response.json()["error"]) == (status, True), \
        response.text
    assert not (live_node.node.settings.media_dir / "uploads").exists() or not any(
        (live_node.node.settings.media_dir / "uploads").iterdir())


def test_bombs_are_refused_before_their_pixels_are_decoded() -> None:
    bomb = png_bomb(5000, 5000)
    assert len(bomb) < 100_000  # 25 MB of pixels in under 100 kB
    with pytest.raises(uploads.UploadError, match="5000x5000"):
        uploads.reencode(bomb)


def test_a_still_gif_and_a_single_frame_webp_are_accepted() -> None:
    for fmt in ("GIF", "WEBP"):
        _, media_type, _, width, _ = uploads.reencode(photo(120, 80, fmt=fmt))
        assert (media_type, width) == ("image/jpeg", 120)


def test_cli_upload_takes_a_focus_and_refuses_a_bad_one(tmp_path: Path) -> None:
    env = {**os.environ, "HAMBASTEGI_DATA_DIR": str(tmp_path / "data"),
           "HAMBASTEGI_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}",
           "HAMBASTEGI_BASE_URL": "https://node.example"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "node.cli.main", *args], env=env,
                              capture_output=True, text=True, timeout=60, check=False)

    image = tmp_path / "flyer.jpg"
    image.write_bytes(photo(500, 400))
    assert run("group", "create", "koeln", "--language", "de").returncode == 0
    bad = run("media", "upload", str(image), "--group", "koeln", "--focus", "5,5")
    assert bad.returncode == 1 and "between -1 and 1" in bad.stderr
    assert "Traceback" not in bad.stderr
    good = run("media", "upload", str(image), "--group", "koeln", "--focus=-0.5,0.25")
    assert good.returncode == 0, good.stderr
    assert uploads.valid_name(good.stdout.strip())
    video = tmp_path / "clip.mp4"
    video.write_bytes(_mp4())
    refused = run("media", "upload", str(video), "--group", "koeln")
    assert refused.returncode == 1 and "video" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_a_phone_jpeg_with_a_second_picture_keeps_the_first() -> None:
    # MPO: a JPEG followed by further pictures (a depth map, a preview).
    first = Image.new("RGB", (200, 100), (250, 250, 250))
    out = io.BytesIO()
    first.save(out, format="MPO", save_all=True, append_images=[Image.new("RGB", (200, 100))])
    with Image.open(io.BytesIO(out.getvalue())) as check:
        assert check.format == "MPO" and check.n_frames == 2
    clean, media_type, _, width, height = uploads.reencode(out.getvalue())
    assert (media_type, width, height) == ("image/jpeg", 200, 100)
    with Image.open(io.BytesIO(clean)) as image:
        assert image.format == "JPEG" and image.getpixel((10, 10))[0] > 240


@pytest.mark.parametrize("fmt", ["TIFF", "BMP", "ICO"])
def test_formats_we_do_not_open_are_refused_unread(fmt: str) -> None:
    with pytest.raises(uploads.UnsupportedMedia, match="only still JPEG, PNG, WebP and GIF"):
        uploads.reencode(photo(64, 64, fmt=fmt))
