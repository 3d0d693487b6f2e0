"""Uploaded images (flyers, avatars): decoded, re-encoded, stored under a random name.

Only the pixels survive: the clean copy is a new image built from the decoded
pixel data, so no metadata block — EXIF, GPS, XMP, IPTC, ICC profiles, JPEG
comments, PNG text chunks — can ride along (Pillow copies ``info`` such as
``comment`` and ``icc_profile`` into a save of the same image object). Any of
them can identify or locate the person who took the photo. The stored file
name is random, never the uploader's.

Decoding is the expensive part: it runs in a small dedicated thread pool, off
the event loop, and an image is refused from its header (before any pixel is
decoded) when it has more pixels than a flyer or phone photo needs.
"""

from __future__ import annotations

import asyncio
import io
import secrets
import string
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

MAX_UPLOAD = 10 * 1024 * 1024
# 20 megapixels covers phone photos (12 MP, 4032x3024), 16 MP cameras and an
# A3 flyer scanned at 300 dpi (3508x4961 = 17.4 MP). Decoding that as RGBA
# costs ~80 MB; 40 MP cost 560 MB peak for one PNG (a 165 KiB 6,300² file).
MAX_PIXELS = 20_000_000
MAX_SIDE = 2560
ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP", "GIF"}
NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
# Names start with a letter or digit: one in 64 random names started with "-",
# which a command line then reads as an option (`--flyer -x…`).
FIRST_CHARS = string.ascii_letters + string.digits
# At most this many images are decoded at once, and at most QUEUE_LIMIT wait.
WORKERS = 2
QUEUE_LIMIT = 8

_executor: ThreadPoolExecutor | None = None
_in_flight = 0


def valid_name(name: str) -> bool:
    """Only names we minted: 22 URL-safe characters and our extension.

    Names minted before the first-character rule may start with ``-``; they
    stay valid so existing flyers keep working."""
    stem, _, ext = name.partition(".")
    return len(stem) == 22 and set(stem) <= NAME_CHARS and ext in {"jpg", "png"}


def mint_name(ext: str) -> str:
    """22 characters (~131 bits), the first never ``-`` or ``_``."""
    return secrets.choice(FIRST_CHARS) + secrets.token_urlsafe(16)[:21] + "." + ext


class UploadError(ValueError):
    """The upload is not an acceptable image; the message says why."""


class UploadBusy(UploadError):
    """Too many uploads are being processed; try again shortly."""


def _to_srgb(image: Any) -> Any:
    """Apply an embedded ICC profile to the pixels, so dropping it keeps the colours."""
    from PIL import ImageCms

    icc = image.info.get("icc_profile")
    if not icc or image.mode not in ("RGB", "RGBA"):
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        target = ImageCms.createProfile("sRGB")
        converted = ImageCms.profileToProfile(image, source, target, outputMode=image.mode)
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image  # a broken profile: keep the pixels as they are
    return converted if converted is not None else image


def reencode(data: bytes) -> tuple[bytes, str, str, int, int]:
    """Return (bytes, media type, extension, width, height) of a clean copy."""
    # Pillow is imported on the first upload only (idle memory, bench/readpath.py).
    from PIL import Image, ImageOps, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    if len(data) > MAX_UPLOAD:
        raise UploadError(f"image is larger than {MAX_UPLOAD // (1024 * 1024)} MiB")
    try:
        with warnings.catch_warnings():
            # Pillow warns from the header's size; the check below refuses it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(data))
        with probe:
            if probe.format not in ALLOWED_FORMATS:
                raise UploadError("only JPEG, PNG, WebP and GIF images are accepted")
            # The header's size, before any pixel is decoded.
            if probe.width * probe.height > MAX_PIXELS:
                raise UploadError(
                    f"image is {probe.width}x{probe.height} pixels; at most "
                    f"{MAX_PIXELS // 1_000_000} megapixels are accepted (scale it down first)")
            if probe.format == "JPEG":
                # Let the JPEG decoder scale down by up to 8x while decoding.
                probe.draft("RGB", (MAX_SIDE, MAX_SIDE))
            probe.load()
            image = ImageOps.exif_transpose(probe)  # keep orientation, lose EXIF
            image = _to_srgb(image)
    except Image.DecompressionBombError as exc:
        raise UploadError(f"image has too many pixels; at most {MAX_PIXELS // 1_000_000} "
                          "megapixels are accepted (scale it down first)") from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        if isinstance(exc, UploadError):
            raise
        raise UploadError("not a readable image") from exc
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    mode = "RGBA" if has_alpha else "RGB"
    pixels = image.convert(mode)
    # A new image from the pixel data alone: its ``info`` is empty, so no
    # comment, profile, EXIF or text chunk can be written by save().
    clean = Image.frombytes(mode, pixels.size, pixels.tobytes())
    out = io.BytesIO()
    if has_alpha:
        clean.save(out, format="PNG", optimize=True)
        media_type, ext = "image/png", "png"
    else:
        clean.save(out, format="JPEG", quality=85, optimize=True)
        media_type, ext = "image/jpeg", "jpg"
    return out.getvalue(), media_type, ext, clean.width, clean.height


def store(data: bytes, media_dir: Path) -> tuple[str, str, int, int, int]:
    """Write a clean copy; returns (name, media type, width, height, size)."""
    clean, media_type, ext, width, height = reencode(data)
    uploads = media_dir / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    name = mint_name(ext)
    (uploads / name).write_bytes(clean)
    return name, media_type, width, height, len(clean)


async def store_bounded(data: bytes, media_dir: Path) -> tuple[str, str, int, int, int]:
    """``store`` in the upload pool: at most WORKERS decode at once, off the event loop.

    More than QUEUE_LIMIT waiting uploads are refused at once (UploadBusy)
    rather than holding their bodies in memory behind a long queue."""
    global _executor, _in_flight
    if _executor is None:
        # The pool's WORKERS threads are the bound; the rest wait in its queue.
        _executor = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="upload")
    if _in_flight >= WORKERS + QUEUE_LIMIT:
        raise UploadBusy("the node is busy processing other uploads; try again in a minute")
    _in_flight += 1
    try:
        return await asyncio.get_running_loop().run_in_executor(
            _executor, store, data, media_dir)
    finally:
        _in_flight -= 1
