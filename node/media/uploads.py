"""Uploaded images (flyers, avatars): decoded, re-encoded, stored under a random name.

Re-encoding with Pillow drops every metadata block — EXIF, GPS, XMP, camera
serials — which can identify or locate the person who took the photo. The
stored file name is random, never the uploader's.
"""

from __future__ import annotations

import io
import secrets
from pathlib import Path

MAX_UPLOAD = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000  # refuse decompression bombs before decoding
MAX_SIDE = 2560
ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP", "GIF"}
NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def valid_name(name: str) -> bool:
    """Only names we minted: 22 URL-safe characters and our extension."""
    stem, _, ext = name.partition(".")
    return len(stem) == 22 and set(stem) <= NAME_CHARS and ext in {"jpg", "png"}


class UploadError(ValueError):
    """The upload is not an acceptable image; the message says why."""


def reencode(data: bytes) -> tuple[bytes, str, str, int, int]:
    """Return (bytes, media type, extension, width, height) of a clean copy."""
    # Pillow is imported on the first upload only (idle memory, bench/readpath.py).
    from PIL import Image, ImageOps, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    if len(data) > MAX_UPLOAD:
        raise UploadError(f"image is larger than {MAX_UPLOAD // (1024 * 1024)} MiB")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            if probe.format not in ALLOWED_FORMATS:
                raise UploadError("only JPEG, PNG, WebP and GIF images are accepted")
            if probe.width * probe.height > MAX_PIXELS:
                raise UploadError("image has too many pixels")
            probe.load()
            image = ImageOps.exif_transpose(probe)  # keep orientation, lose EXIF
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, ValueError) as exc:
        if isinstance(exc, UploadError):
            raise
        raise UploadError("not a readable image") from exc
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    has_alpha = image.mode in ("RGBA", "LA") or "transparency" in image.info
    out = io.BytesIO()
    if has_alpha:
        clean = image.convert("RGBA")
        clean.save(out, format="PNG", optimize=True)
        media_type, ext = "image/png", "png"
    else:
        clean = image.convert("RGB")
        clean.save(out, format="JPEG", quality=85, optimize=True)
        media_type, ext = "image/jpeg", "jpg"
    return out.getvalue(), media_type, ext, clean.width, clean.height


def store(data: bytes, media_dir: Path) -> tuple[str, str, int, int, int]:
    """Write a clean copy; returns (name, media type, width, height, size)."""
    clean, media_type, ext, width, height = reencode(data)
    uploads = media_dir / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    name = f"{secrets.token_urlsafe(16)}.{ext}"
    (uploads / name).write_bytes(clean)
    return name, media_type, width, height, len(clean)
