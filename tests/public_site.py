"""A node with what the public pages show: a Persian and a German group, a call in
both languages (place, target, flyer), a news item, a bulletin and a hostile title."""

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
