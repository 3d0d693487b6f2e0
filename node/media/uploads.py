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

Beside the original, smaller variants (VARIANT_SIDES on the long side, never
upscaled) are made from the clean original's pixels, each under its own
random name, with a blurhash (the blurred placeholder Mastodon shows while an
image loads). Animated images are refused, not flattened: the first frame of
an animation is often a blank or partial frame, and a still that the uploader
never saw must not be published in their name (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import asyncio
import io
import secrets
import string
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

MAX_UPLOAD = 10 * 1024 * 1024
# 20 megapixels covers phone photos (12 MP, 4032x3024), 16 MP cameras and an
# A3 flyer scanned at 300 dpi (3508x4961 = 17.4 MP). Decoding that as RGBA
# costs ~80 MB; 40 MP cost 560 MB peak for one PNG (a 165 KiB 6,300² file).
MAX_PIXELS = 20_000_000
MAX_SIDE = 2560
# The only decoders Pillow may run on an upload (``Image.open(formats=...)``):
# its other parsers (TIFF, PSD, ICO …) never see untrusted bytes. A JPEG that
# carries further pictures (MPO: a phone's depth map or preview) opens as
# "MPO"; its first frame is the photo itself.
OPEN_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
ALLOWED_FORMATS = {"JPEG", "MPO", "PNG", "WEBP", "GIF"}
# Frames kept: one. An image with more is refused (see the module docstring).
MAX_FRAMES = 1
# Long sides of the smaller copies: 400 is Mastodon's avatar size and a
# thumbnail, 1280 a full-width image on a phone or laptop.
VARIANT_SIDES = (400, 1280)
# Blurhash components (x, y) for a landscape image; Mastodon drops a hash with
# more than 5 in either direction (media_attachment_parser.rb).
BLURHASH_COMPONENTS = (4, 3)
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


class UnsupportedMedia(UploadError):
    """Not a kind of file we accept at all (answered 415)."""


class Variant(NamedTuple):
    name: str
    media_type: str
    width: int
    height: int
    size: int


class Stored(NamedTuple):
    """What ``store`` wrote: the clean original and its smaller variants."""

    name: str
    media_type: str
    width: int
    height: int
    size: int
    blurhash: str
    variants: tuple[Variant, ...]


MEDIA_TYPES = {"jpg": "image/jpeg", "png": "image/png"}


def media_type_for(path: str) -> str:
    """The media type of a file this node wrote (named by ``mint_name`` or drawn)."""
    return MEDIA_TYPES.get(path.rpartition(".")[2], "image/png")


def parse_focus(text: str) -> tuple[float, float]:
    """``"X,Y"`` → the focal point Mastodon crops around (-1..1; y = 1 is the top)."""
    parts = text.split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        x, y = (float(part) for part in parts)
    except ValueError:
        raise UploadError("focus must be two numbers X,Y between -1 and 1 "
                          "(0,0 is the centre, -1,1 the top left corner)") from None
    if not (-1.0 <= x <= 1.0 and -1.0 <= y <= 1.0):  # also refuses NaN
        raise UploadError("focus must be two numbers X,Y between -1 and 1 "
                          "(0,0 is the centre, -1,1 the top left corner)")
    return x, y


# Leading bytes of what people send by mistake, only to say so in the error;
# the answer never depends on them otherwise (Pillow decides what is an image).
_NOT_IMAGES = (
    (0, b"\x1aE\xdf\xa3", "a video (WebM/Matroska)"),
    (0, b"OggS", "audio or video (Ogg)"),
    (0, b"ID3", "audio (MP3)"),
    (0, b"fLaC", "audio (FLAC)"),
    (8, b"WAVE", "audio (WAV)"),
    (8, b"AVI ", "a video (AVI)"),
    (0, b"%PDF", "a PDF document"),
)


def _describe(data: bytes) -> str:
    """A short name for a file Pillow could not open, for the error message."""
    if data[4:8] == b"ftyp":  # ISO media: MP4, MOV, 3GP, but also HEIC and AVIF photos
        brand = data[8:12]
        if brand in (b"heic", b"heix", b"mif1", b"msf1", b"avif", b"avis"):
            return "a HEIC/AVIF photo (export it as JPEG first)"
        return "a video (MP4/QuickTime)"
    for offset, magic, kind in _NOT_IMAGES:
        if data[offset:offset + len(magic)] == magic:
            return kind
    return "not an image we can read"


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
            probe = Image.open(io.BytesIO(data), formats=OPEN_FORMATS)
    except UnidentifiedImageError as exc:
        raise UnsupportedMedia(f"only still JPEG, PNG, WebP and GIF images are accepted; "
                               f"this is {_describe(data)}") from exc
    except Image.DecompressionBombError as exc:
        raise UploadError(f"image has too many pixels; at most {MAX_PIXELS // 1_000_000} "
                          "megapixels are accepted (scale it down first)") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise UploadError("image is truncated or damaged") from exc
    try:
        with probe:
            if probe.format not in ALLOWED_FORMATS:
                raise UnsupportedMedia("only still JPEG, PNG, WebP and GIF images are accepted")
            # The header's size, before any pixel is decoded.
            if probe.width * probe.height > MAX_PIXELS:
                raise UploadError(
                    f"image is {probe.width}x{probe.height} pixels; at most "
                    f"{MAX_PIXELS // 1_000_000} megapixels are accepted (scale it down first)")
            # ``is_animated`` reads frame headers only (a GIF's second frame
            # is found, not decoded). MPO's further frames are not animation.
            if probe.format != "MPO" and getattr(probe, "is_animated", False):
                raise UploadError(f"animated images are not accepted (at most {MAX_FRAMES} "
                                  "frame); upload a still image")
            if probe.format in ("JPEG", "MPO"):
                # Let the JPEG decoder scale down by up to 8x while decoding.
                probe.draft("RGB", (MAX_SIDE, MAX_SIDE))
            probe.load()
            image = ImageOps.exif_transpose(probe)  # keep orientation, lose EXIF
            image = _to_srgb(image)
    except Image.DecompressionBombError as exc:
        raise UploadError(f"image has too many pixels; at most {MAX_PIXELS // 1_000_000} "
                          "megapixels are accepted (scale it down first)") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        if isinstance(exc, UploadError):
            raise
        # Pillow refuses to finish a short file (LOAD_TRUNCATED_IMAGES stays off).
        raise UploadError("image is truncated or damaged") from exc
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    clean, media_type, ext = _encode(image, has_alpha)
    width, height = image.size
    return clean, media_type, ext, width, height


def _encode(image: Any, has_alpha: bool) -> tuple[bytes, str, str]:
    """Encode a new image built from ``image``'s pixels alone."""
    from PIL import Image

    mode = "RGBA" if has_alpha else "RGB"
    pixels = image.convert(mode)
    # A new image from the pixel data alone: its ``info`` is empty, so no
    # comment, profile, EXIF or text chunk can be written by save().
    clean = Image.frombytes(mode, pixels.size, pixels.tobytes())
    out = io.BytesIO()
    if has_alpha:
        clean.save(out, format="PNG", optimize=True)
        return out.getvalue(), "image/png", "png"
    clean.save(out, format="JPEG", quality=85, optimize=True)
    return out.getvalue(), "image/jpeg", "jpg"


def derive(clean: bytes) -> tuple[str, list[tuple[bytes, str, str, int, int]]]:
    """The blurhash and the smaller variants of a clean original (as ``reencode`` made it).

    The variants are decoded from the clean original, never from the upload:
    whatever the upload carried beside its pixels is already gone."""
    from PIL import Image

    with Image.open(io.BytesIO(clean), formats=("JPEG", "PNG")) as original:
        has_alpha = original.mode == "RGBA"
        long_side = max(original.size)
        if original.format == "JPEG":
            # Decode at 1/2, 1/4 … scale when that still covers the largest variant.
            wanted = max((side for side in VARIANT_SIDES if side < long_side), default=64)
            scale = wanted / long_side
            original.draft("RGB", (max(1, round(original.width * scale)),
                                   max(1, round(original.height * scale))))
        original.load()
        pixels = original.copy()
    variants = []
    for side in VARIANT_SIDES:
        if long_side <= side:
            continue  # never upscaled
        small = pixels.copy()
        small.thumbnail((side, side), Image.Resampling.LANCZOS)
        data, media_type, ext = _encode(small, has_alpha)
        variants.append((data, media_type, ext, small.width, small.height))
    return blurhash_of(pixels), variants


def blurhash_of(image: Any) -> str:
    """The blurhash (https://blurha.sh) of an image, from a 32-pixel thumbnail of it."""
    import blurhash  # type: ignore[import-untyped]  # pure Python, no native code

    thumb = image.convert("RGB")
    thumb.thumbnail((32, 32))
    width, height = thumb.size
    data = thumb.tobytes()
    rows = [[list(data[(y * width + x) * 3:(y * width + x) * 3 + 3]) for x in range(width)]
            for y in range(height)]
    x_comp, y_comp = BLURHASH_COMPONENTS
    if height > width:
        x_comp, y_comp = y_comp, x_comp
    return str(blurhash.encode(rows, x_comp, y_comp))


def store(data: bytes, media_dir: Path) -> Stored:
    """Write a clean copy and its smaller variants, each under a new random name."""
    clean, media_type, ext, width, height = reencode(data)
    hash_, derived = derive(clean)
    uploads = media_dir / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    name = mint_name(ext)
    (uploads / name).write_bytes(clean)
    variants = []
    for v_data, v_type, v_ext, v_width, v_height in derived:
        v_name = mint_name(v_ext)
        (uploads / v_name).write_bytes(v_data)
        variants.append(Variant(v_name, v_type, v_width, v_height, len(v_data)))
    return Stored(name, media_type, width, height, len(clean), hash_, tuple(variants))


async def store_bounded(data: bytes, media_dir: Path) -> Stored:
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
