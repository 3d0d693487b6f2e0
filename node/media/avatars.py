"""Images the node draws itself: default avatars and headers.

Mastodon only keeps an avatar that is an embedded Image with a raster
mediaType (INTEROP.md), so groups without an upload get a generated PNG.
Uploaded images (re-encoded, EXIF/GPS stripped) come with the web editor.
"""

from __future__ import annotations

import hashlib
import struct
import zlib


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def _colour(seed: str) -> tuple[int, int, int]:
    digest = hashlib.sha256(seed.encode()).digest()
    # Keep it dark enough for white text over it on the HTML page.
    return digest[0] % 160, digest[1] % 160, digest[2] % 160


def solid_png(seed: str, width: int, height: int) -> bytes:
    """A one-colour RGB PNG (the colour derived from ``seed``)."""
    r, g, b = _colour(seed)
    row = b"\x00" + bytes((r, g, b)) * width
    raw = row * height
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(raw, 9))
        + _png_chunk(b"IEND", b"")
    )


def default_avatar(username: str) -> bytes:
    return solid_png(username, 400, 400)


def default_header(username: str) -> bytes:
    return solid_png(username + "#header", 1500, 500)


DRAWERS = {"avatars": default_avatar, "headers": default_header}
# Drawing costs ~10 ms of CPU (the 1500x500 header): each image is drawn once
# per process and kept; only names of existing groups get here (documents.py),
# so the cache cannot be flooded with made-up names.
MAX_CACHED = 2048
_drawn: dict[tuple[str, str], bytes] = {}


def cached(kind: str, username: str) -> bytes | None:
    return _drawn.get((kind, username))


def draw(kind: str, username: str) -> bytes:
    """Draw (in a worker thread: see documents.media) and keep the image."""
    data = DRAWERS[kind](username)
    if len(_drawn) >= MAX_CACHED:
        _drawn.clear()
    _drawn[(kind, username)] = data
    return data
