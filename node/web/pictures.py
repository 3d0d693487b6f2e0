"""Photos on the public pages: news photos, a call's flyer, a campaign's photo
(issue 25, defect 2; docs/ARCHITECTURE.md#8-the-public-site).

An ``<img>`` shows the 1280-pixel variant (or the original when it is no larger), with a
``srcset`` of every stored copy up to that size so a phone takes the 400-pixel one; the
original (up to 2560 pixels) is never offered: the readers pay for their data. Width and
height are the shown copy's, so the page keeps the photo's place while it loads, and a
placeholder colour fills that place: the average colour of the photo, read from its
blurhash, as one of a few classes of site.css (the page's CSP allows no inline style,
and the page needs no script). The same picture is the page's ``og:image``.

What is shown is decided before: the caller passes only a photo it may show (a
campaign's only when ``consent.shown``, campaign_page.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from node.core.urls import Urls
from node.storage.models import MediaFile

# The largest copy a page offers: media/uploads.py's largest variant.
LARGEST = 1280
UPLOADS = "uploads/"
# Placeholder colours: each channel of the average colour in one of LEVELS steps, a
# class ``ph-RGB`` (digits 0..LEVELS-1) defined in site.css.
LEVELS = 3
B83 = ("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
       "#$%*+,-.:;=?@[]^_{|}~")


@dataclass(frozen=True)
class Picture:
    src: str
    width: int | None
    height: int | None
    srcset: str | None
    alt: str
    alt_lang: str
    placeholder: str | None

    def og(self) -> dict[str, Any]:
        """The og:image tags of base.html: what Telegram, WhatsApp and Signal show."""
        return {"og_image": self.src, "og_image_width": self.width,
                "og_image_height": self.height, "og_image_alt": self.alt}


def average_colour(blurhash: Any) -> tuple[int, int, int] | None:
    """The DC component of a blurhash (https://github.com/woltapp/blurhash, characters
    3-6 in base 83): the image's average sRGB colour."""
    if not isinstance(blurhash, str) or len(blurhash) < 6:
        return None
    value = 0
    for char in blurhash[2:6]:
        digit = B83.find(char)
        if digit < 0:
            return None
        value = value * 83 + digit
    if value > 0xFFFFFF:
        return None
    return value >> 16, (value >> 8) & 0xFF, value & 0xFF


def placeholder_class(blurhash: Any, media_type: Any) -> str | None:
    # A PNG upload is one with transparency (uploads.py keeps PNG only then): a colour
    # behind it would show through once it has loaded.
    colour = average_colour(blurhash)
    if colour is None or media_type == "image/png":
        return None
    return "ph-" + "".join(str(channel * LEVELS // 256) for channel in colour)


def upload_name(path: Any) -> str | None:
    if isinstance(path, str) and path.startswith(UPLOADS):
        return path[len(UPLOADS):]
    return None


async def copies_of(session: AsyncSession, paths: Iterable[Any]) -> dict[str, list[MediaFile]]:
    """Each upload (by its stored path, ``uploads/<name>``) with its smaller variants."""
    names = [name for path in paths if (name := upload_name(path))]
    if not names:
        return {}
    originals = (await session.exec(select(MediaFile).where(
        col(MediaFile.name).in_(names), col(MediaFile.variant_of).is_(None)))).all()
    by_id = {o.id: o for o in originals}
    variants = (await session.exec(select(MediaFile).where(
        col(MediaFile.variant_of).in_(list(by_id))))).all() if by_id else []
    out = {o.name: [o] for o in originals}
    for variant in variants:
        out[by_id[variant.variant_of].name].append(variant)
    return out


def picture(urls: Urls, stored: Mapping[str, Any], copies: Mapping[str, list[MediaFile]],
            alt: str, alt_lang: str) -> Picture:
    """The picture of a stored photo (a flyer's, a news photo's, a campaign's: ``path``,
    ``width``, ``height``, ``media_type``, ``blurhash``)."""
    name = upload_name(stored.get("path"))
    files: list[tuple[str, int | None, int | None]] = [
        (urls.media(UPLOADS + f.name), f.width, f.height) for f in copies.get(name or "", [])]
    if not files:  # not an upload with recorded copies: the stored file alone
        files = [(urls.media(str(stored["path"])), stored.get("width"), stored.get("height"))]
    fitting = sorted((f for f in files if f[1] and f[2] and max(f[1], f[2]) <= LARGEST),
                     key=lambda f: f[1] or 0)
    src, width, height = fitting[-1] if fitting else min(
        files, key=lambda f: (f[1] or 0) * (f[2] or 0))
    srcset = ", ".join(f"{url} {w}w" for url, w, _ in fitting) if len(fitting) > 1 else None
    return Picture(src=src, width=width, height=height, srcset=srcset, alt=alt,
                   alt_lang=alt_lang,
                   placeholder=placeholder_class(stored.get("blurhash"),
                                                 stored.get("media_type")))


def pick_alt(alts: Mapping[str, str], language: str, primary: str) -> tuple[str, str]:
    """The alt text in the page's language, else the post's, else any; and its language."""
    for lang in (language, primary):
        if alts.get(lang):
            return alts[lang], lang
    return next(((text, lang) for lang, text in alts.items() if text), ("", primary))
