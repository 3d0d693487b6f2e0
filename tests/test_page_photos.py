"""Photos on the public pages (issue 25, defect 2): a news item's photos, a call's flyer
and a campaign's photo (only with consent) as the 1280-px copy with the 400-px one in
srcset, width and height, alt text in the page's language, a placeholder colour, and as
the page's og:image with its alt text and size."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx
import pytest
from PIL import Image

from node.calls import operations as calls
from node.core.urls import Urls
from node.groups import operations
from node.media import uploads
from node.news import channels
from node.news import operations as news
from node.web import pictures
from tests.conftest import LiveNode
from tests.test_campaigns import _create, _token
from tests.test_photos import _upload, photo

ALT_FA = ["کارگران پتروشیمی در برابر درِ کارخانه", "پلاکارد «نان، کار، آزادی»"]
ALT_DE = ["Arbeiter der Petrochemie vor dem Werkstor", "Transparent „Brot, Arbeit, Freiheit“"]


async def get(url: str, **params: str) -> str:
    async with httpx.AsyncClient() as client:
        response = await client.get(url, params=params)
    assert response.status_code == 200, (url, response.status_code)
    return response.text


def imgs(page: str) -> list[dict[str, str]]:
    """Every <img> of the page's main part, its attributes unescaped."""
    main = page.split('<main id="main">')[1].split("</main>")[0]
    return [{k: html.unescape(v) for k, v in re.findall(r'([\w-]+)="([^"]*)"', tag)}
            for tag in re.findall(r"<img [^>]*>", main)]


def og(page: str) -> dict[str, str]:
    return {k: html.unescape(v) for k, v in re.findall(
        r'<meta property="(og:image[:\w]*)" content="([^"]*)">', page)}


async def two_photos(live: LiveNode, token: str) -> list[dict[str, Any]]:
    uploaded = [await _upload(live, data, token=token)
                for data in (photo(1600, 1200), photo(900, 1350))]
    assert [u.status_code for u in uploaded] == [201, 201]
    return [u.json() for u in uploaded]


def sized(body: dict[str, Any], width: int) -> str:
    url: str = next(v["url"] for v in body["variants"] if max(v["width"], v["height"]) == width)
    return url


async def test_a_news_items_page_shows_its_photos_and_the_first_is_its_og_image(
        live_node: LiveNode) -> None:
    await operations.create_group(live_node.node, "mahshahr", display_name="کمیته ماهشهر",
                                  language="fa")
    token = await operations.create_token(live_node.node, "mahshahr", "mahshahr")
    bodies = await two_photos(live_node, token)
    item = await news.create_item(live_node.node, "mahshahr", {
        "language": "fa",
        "versions": {"fa": {"title": "اعتصاب در پتروشیمی", "text": "کارگران دست از کار کشیدند.",
                            "alt": ALT_FA},
                     "de": {"title": "Streik in der Petrochemie",
                            "text": "Die Arbeiter legten die Arbeit nieder.", "alt": ALT_DE}},
        "photos": [b["name"] for b in bodies]})
    page = await get(item)
    shown = imgs(page)
    assert [i["src"] for i in shown] == [sized(bodies[0], 1280), sized(bodies[1], 1280)]
    first, second = shown
    assert first["srcset"] == f"{sized(bodies[0], 400)} 400w, {sized(bodies[0], 1280)} 1280w"
    assert (first["width"], first["height"]) == ("1280", "960")
    assert (second["width"], second["height"]) == ("853", "1280")
    assert [i["alt"] for i in shown] == ALT_FA and {i["lang"] for i in shown} == {"fa"}
    assert "loading" not in first and second["loading"] == "lazy"
    assert "sizes" in first
    # The placeholder: the photo's average colour, from its blurhash.
    assert first["class"] == "photo " + pictures.placeholder_class(bodies[0]["blurhash"],
                                                                   "image/jpeg")
    # The originals (1600 and 1350 px on their long side) are never offered.
    assert bodies[0]["url"] not in page and bodies[1]["url"] not in page
    assert og(page) == {"og:image": sized(bodies[0], 1280), "og:image:width": "1280",
                        "og:image:height": "960", "og:image:alt": ALT_FA[0]}
    # A German reader: the same photos, the German alt texts.
    german = await get(item, lang="de")
    assert [i["alt"] for i in imgs(german)] == ALT_DE
    assert {i["lang"] for i in imgs(german)} == {"de"}
    assert og(german)["og:image:alt"] == ALT_DE[0]
    async with httpx.AsyncClient() as client:
        for url in (sized(bodies[0], 400), sized(bodies[0], 1280), sized(bodies[1], 1280)):
            served = await client.get(url)
            assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"


async def test_an_alt_text_missing_in_the_readers_language_falls_back_to_the_items(
        live_node: LiveNode) -> None:
    await operations.create_group(live_node.node, "koeln", display_name="Köln", language="de")
    token = await operations.create_token(live_node.node, "koeln", "koeln")
    body = (await _upload(live_node, photo(500, 400), token=token)).json()
    item = await news.create_item(live_node.node, "koeln", {
        "language": "de", "versions": {"de": {"text": "Heute Kundgebung."}},
        "photos": [{"media": body["name"], "alt": {"de": "Menschen auf dem Platz"}}]})
    shown = imgs(await get(item, lang="fa"))
    assert [(i["alt"], i["lang"]) for i in shown] == [("Menschen auf dem Platz", "de")]
    # 500 px: the original is no larger than 1280, so it is shown, the 400 beside it.
    assert shown[0]["src"] == body["url"]
    assert shown[0]["srcset"] == f"{sized(body, 400)} 400w, {body['url']} 500w"


async def test_a_language_channels_copy_shows_the_photos_with_its_languages_alt(
        live_node: LiveNode) -> None:
    await operations.create_group(live_node.node, "tehran", display_name="تهران",
                                  language="fa")
    await channels.enable(live_node.node, "tehran", ["de"])
    token = await operations.create_token(live_node.node, "tehran", "tehran")
    bodies = await two_photos(live_node, token)
    await news.create_item(live_node.node, "tehran", {
        "language": "fa",
        "versions": {"fa": {"text": "متن.", "alt": ALT_FA},
                     "de": {"text": "Text.", "alt": ALT_DE}},
        "photos": [b["name"] for b in bodies]})
    async with httpx.AsyncClient() as client:
        outbox = (await client.get(live_node.url("/groups/tehran_de"))).text
    copy = re.search(r'href="([^"]+/objects/[0-9a-f]+)"', outbox)
    assert copy
    page = await get(copy.group(1))
    assert [i["alt"] for i in imgs(page)] == ALT_DE
    assert og(page)["og:image"] == sized(bodies[0], 1280)


async def test_a_calls_flyer_is_shown_as_a_picture_and_is_its_og_image(
        live_node: LiveNode) -> None:
    await operations.create_group(live_node.node, "koeln", display_name="Köln", language="de")
    token = await operations.create_token(live_node.node, "koeln", "koeln")
    body = (await _upload(live_node, photo(1240, 1754), token=token)).json()
    call = await calls.create_call(live_node.node, "koeln", {
        "language": "de", "title": {"de": "Demo"}, "text": {"de": "Kommt."},
        "start": "2031-06-08T12:00", "timezone": "Europe/Berlin", "online_url":
        "https://stream.example/live",
        "flyer": {"media": body["name"], "alt": "Plakat: Demo am Bahnhof, 12 Uhr"}})
    page = await get(call, lang="fa")
    (flyer,) = imgs(page)
    assert flyer["src"] == sized(body, 1280)
    assert flyer["srcset"] == f"{sized(body, 400)} 283w, {sized(body, 1280)} 905w"
    assert (flyer["width"], flyer["height"]) == ("905", "1280")
    # The flyer's one alt text is in the call's language, whatever the page's.
    assert (flyer["alt"], flyer["lang"]) == ("Plakat: Demo am Bahnhof, 12 Uhr", "de")
    assert og(page) == {"og:image": sized(body, 1280), "og:image:width": "905",
                        "og:image:height": "1280",
                        "og:image:alt": "Plakat: Demo am Bahnhof, 12 Uhr"}


@pytest.mark.parametrize("public", [True, False])
async def test_a_campaign_photo_is_shown_and_shared_only_with_consent(
        live_node: LiveNode, public: bool) -> None:
    token = await _token(live_node)
    body = (await _upload(live_node, photo(1600, 1200), token=token)).json()
    campaign = await _create(live_node, token, photo={
        "media": body["name"], "alt": {"en": "At work", "fa": "سر کار"}},
        public_fields=["photo"] if public else [])
    page = await get(campaign, lang="en")
    names = [body["url"].rsplit("/", 1)[1]] + [v["url"].rsplit("/", 1)[1]
                                               for v in body["variants"]]
    if not public:
        # Neither the photo nor any copy of it, anywhere: the group's avatar is shared.
        assert [n for n in names if n in page] == []
        assert og(page) == {"og:image": live_node.url("/media/avatars/vahed.png")}
        return
    (shown,) = imgs(page)
    assert shown["class"].startswith("campaign-photo ph-")
    assert shown["src"] == sized(body, 1280) and shown["sizes"] == "8rem"
    assert shown["srcset"] == f"{sized(body, 400)} 400w, {sized(body, 1280)} 1280w"
    assert (shown["alt"], shown["lang"], shown["width"]) == ("At work", "en", "1280")
    assert og(page) == {"og:image": sized(body, 1280), "og:image:width": "1280",
                        "og:image:height": "960", "og:image:alt": "At work"}
    assert (imgs(await get(campaign, lang="fa"))[0]["alt"]) == "سر کار"


def test_the_placeholder_is_the_average_colour_in_three_steps() -> None:
    red = uploads.blurhash_of(Image.new("RGB", (64, 48), (220, 20, 20)))
    colour = pictures.average_colour(red)
    assert colour is not None and all(abs(a - b) <= 3 for a, b in zip(
        colour, (220, 20, 20), strict=True))
    assert pictures.placeholder_class(red, "image/jpeg") == "ph-200"
    grey = uploads.blurhash_of(Image.new("RGB", (30, 60), (128, 128, 128)))
    assert pictures.placeholder_class(grey, "image/jpeg") == "ph-111"
    # A PNG keeps its transparency: no colour behind it.
    assert pictures.placeholder_class(red, "image/png") is None


@pytest.mark.parametrize("value", [None, "", "L", "LEHV6", 'LEHV"nWB2yk8pyo0adR*.7kCMdnj',
                                   "LE\u0661\u0662\u0663\u0664", 12345, ["LEHV6nWB"],
                                   "L~~~~~"])
def test_a_malformed_blurhash_gives_no_placeholder(value: Any) -> None:
    # "L~~~~~": four digits of 82 overflow 24 bits of colour.
    assert pictures.placeholder_class(value, "image/jpeg") is None


def test_a_photo_without_recorded_copies_is_shown_alone() -> None:
    urls = Urls("https://node.example")
    stored = {"path": "uploads/abc.jpg", "width": 2000, "height": 1000,
              "media_type": "image/jpeg"}
    shown = pictures.picture(urls, stored, {}, "Alt", "de")
    assert (shown.src, shown.srcset, shown.width, shown.height) == (
        "https://node.example/media/uploads/abc.jpg", None, 2000, 1000)
    assert shown.placeholder is None
    drawn = pictures.picture(urls, {"path": "avatars/x.png"}, {}, "", "fa")
    assert (drawn.src, drawn.width, drawn.srcset) == (
        "https://node.example/media/avatars/x.png", None, None)
