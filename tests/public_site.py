"""A node with what the public pages show: a Persian and a German group, a call in
both languages (place, target, flyer), a news item, a bulletin and a hostile title;
and (``photo_site``) a Persian news item with two photos and a call with a full-size
flyer, as a phone shows them."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from node.calls import operations as calls
from node.groups import operations
from node.news import bulletin
from node.news import operations as news

LONG_WORD = "همبستگی" * 40 + "Solidaritätskundgebung" * 10
HOSTILE_TITLE = '<script>alert("t")</script><img src=x onerror=alert(1)>'


@dataclass
class Site:
    call_id: str
    news_id: str
    bulletin_id: str
    past_call_id: str
    hostile_id: str


def flyer_png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (120, 160), (180, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def call_body(start: datetime, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "language": "fa",
        "title": {"fa": "تجمع اعتراضی در برابر سازمان جهانی کار",
                  "de": "Protestkundgebung vor der ILO"},
        "text": {"fa": f"از همه حامیان آزادی کارگران دعوت می‌کنیم. {LONG_WORD}",
                 "de": "Wir rufen alle auf, die sich für die Freiheit der Arbeiter einsetzen."},
        "start": start.strftime("%Y-%m-%dT%H:%M"), "timezone": "Europe/Zurich",
        "place": {"name": "Place des Nations", "city": "Genève", "country": "CH",
                  "latitude": 46.2225, "longitude": 6.1403},
        "target": "International Labour Organization (ILO)",
    }
    body.update(overrides)
    return body


async def seed(node: Any) -> Site:
    await operations.create_group(node, "tehran", display_name="کمیته همبستگی تهران",
                                  language="fa", summary="<p>کمیته‌ای برای آزادی کارگران</p>")
    await operations.create_group(node, "koeln", display_name="Solidarität Köln",
                                  language="de", summary="<p>Solidarität mit den Arbeitern</p>")
    flyer = await operations.upload_media(node, flyer_png(), group="tehran")
    start = datetime.now(UTC) + timedelta(days=30)
    call_id = await calls.create_call(node, "tehran", call_body(
        start, flyer={"media": flyer, "alt": "فراخوان تجمع در ژنو"}))
    past_call_id = await calls.create_call(node, "tehran", call_body(
        datetime.now(UTC) - timedelta(days=30),
        title={"fa": "تجمع گذشته", "de": "Frühere Kundgebung"}))
    news_id = await news.create_item(node, "tehran", {
        "language": "fa",
        "versions": {"fa": {"title": "اعتصاب در ماهشهر", "text": "کارگران در اعتصاب هستند."},
                     "de": {"title": "Streik in Mahshahr", "text": "Die Arbeiter streiken."}}})
    _, bulletin_id = await bulletin.publish(node, "tehran")
    await operations.publish_note(node, "koeln", text="Solidarität! <script>alert(1)</script>")
    hostile_id = await news.create_item(node, "koeln", {
        "language": "de", "versions": {"de": {
            "title": HOSTILE_TITLE,
            "text": 'Text <script>alert(2)</script><a href="javascript:alert(3)">x</a>'}}})
    return Site(call_id=call_id, news_id=news_id, bulletin_id=bulletin_id,
                past_call_id=past_call_id, hostile_id=hostile_id)


# --- photos as a phone shows them (issue 25, defect 2) ------------------------------------


@dataclass
class PhotoSite:
    news_id: str
    call_id: str
    photos: list[str]  # the uploads' names, in the item's order
    flyer: str


def scene(width: int, height: int, sky: tuple[int, int, int], ground: tuple[int, int, int],
          banner: tuple[int, int, int]) -> bytes:
    """A photo-like JPEG: a sky gradient, the ground, a banner held up by a crowd."""
    from PIL import Image, ImageDraw

    image = Image.linear_gradient("L").resize((width, height))
    image = Image.merge("RGB", [image.point(lambda v, c=c: c * (255 - v // 3) // 255)
                                for c in sky])
    draw = ImageDraw.Draw(image)
    horizon = height * 3 // 5
    draw.rectangle((0, horizon, width, height), fill=ground)
    for n in range(14):
        x = width * n // 14 + width // 40
        draw.ellipse((x, horizon - height // 9, x + width // 22, horizon - height // 20),
                     fill=(60 + n * 7, 45, 40))
        draw.rectangle((x - width // 200, horizon - height // 20, x + width // 18,
                        horizon + height // 7), fill=(40, 40 + n * 5, 70))
    draw.rectangle((width // 6, horizon - height // 4, width * 5 // 6,
                    horizon - height // 7), fill=banner)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=88)
    return buffer.getvalue()


def flyer_jpeg(width: int = 1240, height: int = 1754) -> bytes:
    """An A-size poster: a red field, a white headline block, the date band."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), (178, 24, 30))
    draw = ImageDraw.Draw(image)
    draw.rectangle((width // 12, height // 10, width * 11 // 12, height * 3 // 10),
                   fill=(250, 245, 235))
    draw.ellipse((width // 4, height * 7 // 20, width * 3 // 4, height * 13 // 20),
                 fill=(250, 200, 40))
    draw.rectangle((0, height * 3 // 4, width, height * 17 // 20), fill=(20, 20, 20))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=88)
    return buffer.getvalue()


PHOTO_ALTS = ["کارگران پتروشیمی با پلاکارد در برابر در ورودی کارخانه ایستاده‌اند",
              "صف کارگران در محوطه کارخانه هنگام اعتصاب"]
FLYER_ALT = "پوستر فراخوان: تجمع در برابر سازمان جهانی کار در ژنو، ساعت ۱۲"


async def photo_site(node: Any) -> PhotoSite:
    await operations.create_group(node, "mahshahr", display_name="کمیته همبستگی ماهشهر",
                                  language="fa")
    photos = [await operations.upload_media(node, data, group="mahshahr") for data in (
        scene(1600, 1200, (110, 160, 215), (120, 110, 95), (200, 30, 40)),
        scene(1080, 1440, (235, 170, 110), (90, 90, 85), (245, 245, 240)))]
    flyer = await operations.upload_media(node, flyer_jpeg(), group="mahshahr")
    news_id = await news.create_item(node, "mahshahr", {
        "language": "fa",
        "versions": {"fa": {
            "title": "اعتصاب کارگران پتروشیمی بندر امام",
            "text": ("کارگران پیمانی پتروشیمی بندر امام از صبح امروز در اعتراض به "
                     "دستمزدهای معوقه دست از کار کشیدند. به گفته نمایندگان کارگران، "
                     "حقوق سه ماه گذشته هنوز پرداخت نشده است و کارفرما به خواسته‌های "
                     "آنان پاسخی نداده است.\n\n"
                     "کمیته همبستگی از همه تشکل‌های کارگری می‌خواهد صدای آنان باشند."),
            "alt": PHOTO_ALTS},
            "de": {"title": "Streik in der Petrochemie Bandar Imam",
                   "text": "Die Leiharbeiter streiken wegen ausstehender Löhne.",
                   "alt": ["Arbeiter mit Transparent vor dem Werkstor",
                           "Reihe streikender Arbeiter auf dem Werksgelände"]}},
        "photos": photos, "hashtags": ["اعتصاب", "پتروشیمی"],
        # A long link: it must wrap, not widen the phone's page.
        "sources": ["https://www.ilna.ir/fa/tiny/news-1459871/%D8%A7%D8%B9%D8%AA%D8%B5%D8%A7"
                    "%D8%A8-%DA%A9%D8%A7%D8%B1%DA%AF%D8%B1%D8%A7%D9%86-%D9%BE%D8%AA%D8%B1%D9"]})
    call_id = await calls.create_call(node, "mahshahr", call_body(
        datetime.now(UTC) + timedelta(days=20), flyer={"media": flyer, "alt": FLYER_ALT}))
    return PhotoSite(news_id=news_id, call_id=call_id, photos=photos, flyer=flyer)
