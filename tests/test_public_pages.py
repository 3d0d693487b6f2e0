"""The public pages over real HTTP (issue 14, points 1 and 4): what each page shows,
in which language and calendar, with which headers; hostile titles and texts."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from node.calls import operations as calls
from node.core import calendars
from node.groups import operations
from node.storage.models import Event
from tests.conftest import LiveNode
from tests.public_site import HOSTILE_TITLE, Site, seed

AS = {"Accept": "application/activity+json"}


@pytest.fixture
async def site(live_node: LiveNode) -> Site:
    return await seed(live_node.node)


async def get(url: str, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(url, headers=headers)


def html_attrs(page: str) -> tuple[str, str]:
    match = re.search(r'<html lang="([^"]+)" dir="([^"]+)">', page)
    assert match, page[:200]
    return match.group(1), match.group(2)


def assert_page_hygiene(response: httpx.Response) -> None:
    """Headers and markup every public page must have (issue 14, point 1)."""
    csp = response.headers["content-security-policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "script-src" not in csp and "default-src 'none'" in csp  # no script at all
    assert "style-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"
    page = response.text
    assert "<script" not in page.replace("&lt;script", "")
    assert " style=" not in page and "<style" not in page  # one stylesheet, nothing inline
    for tag in ('<meta property="og:title"', '<meta property="og:url"',
                '<link rel="alternate" type="application/activity+json"'):
        assert tag in page, tag
    # Nothing loaded from elsewhere: every src and stylesheet is this node's.
    base = re.search(r'<meta property="og:url" content="(https?://[^/"]+)', page)
    assert base
    for src in re.findall(r'<(?:img|link rel="stylesheet")[^>]*?(?:src|href)="([^"]+)"', page):
        assert src.startswith(("/", base.group(1))), src


async def test_front_page_lists_groups_upcoming_calls_and_news(live_node: LiveNode,
                                                               site: Site) -> None:
    response = await get(live_node.url("/"), **{"Accept-Language": "fa-IR,fa;q=0.9"})
    assert response.status_code == 200
    assert_page_hygiene(response)
    page = response.text
    assert html_attrs(page) == ("fa", "rtl")
    assert "کمیته همبستگی تهران" in page and "Solidarität Köln" in page
    assert "فراخوان‌های پیش رو" in page and "تازه‌ترین خبرها" in page
    assert "تجمع اعتراضی در برابر سازمان جهانی کار" in page  # the upcoming call
    assert "تجمع گذشته" not in page  # a past call is not upcoming
    assert "اعتصاب در ماهشهر" in page
    assert "Upcoming calls" not in page
    assert f'type="application/activity+json" href="{live_node.url("/actor")}"' in page
    assert f'type="application/atom+xml" href="{live_node.url("/groups/tehran")}/feed.atom"' in page


async def test_group_page_shows_profile_follow_calls_news_in_the_groups_language(
        live_node: LiveNode, site: Site) -> None:
    response = await get(live_node.url("/groups/tehran"))
    assert response.status_code == 200
    assert_page_hygiene(response)
    page = response.text
    assert html_attrs(page) == ("fa", "rtl")  # no choice, no Accept-Language: the group's
    assert 'class="avatar avatar-large" src="' in page
    assert "@tehran@127.0.0.1" in page
    assert f'action="{live_node.node.urls.actor("tehran")}/remote-follow"' in page
    assert 'name="handle"' in page and '<label for="your-handle">' in page
    upcoming, past = page.split('id="upcoming-h"')[1].split('id="past-h"')
    assert "تجمع اعتراضی" in upcoming and "تجمع گذشته" in past
    assert "Place des Nations" in upcoming
    assert "اعتصاب در ماهشهر" in page and "خبرنامه" in page  # news and the bulletin
    assert 'type="application/atom+xml"' in page and 'type="text/calendar"' in page
    assert '<meta property="og:type" content="profile">' in page


async def test_empty_group_says_so_in_persian_without_a_stray_full_stop(
        live_node: LiveNode) -> None:
    await operations.create_group(live_node.node, "empty", display_name="گروه خالی",
                                  language="fa")
    page = (await get(live_node.url("/groups/empty"))).text
    assert "هنوز نوشته‌ای نیست." in page and "No posts yet" not in page
    assert html_attrs(page) == ("fa", "rtl")


async def test_language_choice_param_beats_cookie_beats_accept_language_beats_group(
        live_node: LiveNode, site: Site) -> None:
    url = live_node.url("/groups/tehran")
    async with httpx.AsyncClient() as client:
        # The group's default with nothing else to go on (an unsupported Accept-Language).
        page = (await client.get(url, headers={"Accept-Language": "ja"})).text
        assert html_attrs(page)[0] == "fa"
        page = (await client.get(url, headers={"Accept-Language": "de-CH, en;q=0.5"})).text
        assert html_attrs(page) == ("de", "ltr") and "Bevorstehende Aufrufe" in page
        page = (await client.get(url, headers={"Accept-Language": "fa;q=0.2, en;q=0.9"})).text
        assert html_attrs(page) == ("en", "ltr") and "Upcoming calls" in page
        chosen = await client.get(url + "?lang=de", headers={"Accept-Language": "fa"})
        assert html_attrs(chosen.text)[0] == "de"
        assert "lang=de" in chosen.headers["set-cookie"]
        assert "httponly" in chosen.headers["set-cookie"].lower()
        # The cookie now beats Accept-Language, on every page.
        page = (await client.get(url, headers={"Accept-Language": "fa"})).text
        assert html_attrs(page)[0] == "de"
        page = (await client.get(live_node.url("/"), headers={"Accept-Language": "fa"})).text
        assert html_attrs(page)[0] == "de"
        # A language without a catalogue is not a choice.
        page = (await client.get(url + "?lang=xx-evil", headers={"Accept-Language": "fa"})).text
        assert html_attrs(page)[0] == "de"


async def test_group_page_pages_beyond_the_latest_twenty(live_node: LiveNode) -> None:
    await operations.create_group(live_node.node, "busy", display_name="Busy", language="en")
    for n in range(45):
        await operations.publish_note(live_node.node, "busy", text=f"post number {n:02d}")
    first = (await get(live_node.url("/groups/busy"))).text
    assert first.count('class="post-card"') == 20 and "post number 44" in first
    assert f'href="{live_node.url("/groups/busy")}?page=2" rel="next"' in first
    third = (await get(live_node.url("/groups/busy?page=3"))).text
    assert third.count('class="post-card"') == 5 and "post number 00" in third
    assert 'rel="next"' not in third and "?page=2" in third
    for bad in ("4", "0", "-1", "abc", "1e3", "99999", "２"):
        assert (await get(live_node.url(f"/groups/busy?page={bad}"))).status_code == 404, bad


async def test_call_page_in_persian_shows_solar_hijri_place_target_flyer_and_tabs(
        live_node: LiveNode, site: Site) -> None:
    response = await get(site.call_id)
    assert response.status_code == 200
    assert_page_hygiene(response)
    page = response.text
    assert html_attrs(page) == ("fa", "rtl")
    async with live_node.node.db.read() as session:
        from sqlmodel import select

        event = (await session.exec(select(Event).order_by(Event.id))).first()  # type: ignore[arg-type]
    assert event is not None
    local = event.start_time.astimezone(ZoneInfo("Europe/Zurich"))
    # The time in the call's own zone, Persian digits; the Solar Hijri day, Gregorian beside.
    assert calendars.digits(local.strftime("%H:%M"), "fa") in page
    assert calendars.format_date(local, "fa") in page
    assert re.search("[\u06f0-\u06f9]{4} \\(", page)
    assert "openstreetmap.org/?mlat=46.2225&amp;mlon=6.1403" in page
    assert "International Labour Organization (ILO)" in page
    assert f'href="{site.call_id}/calendar.ics"' in page
    assert 'alt="فراخوان تجمع در ژنو"' in page and "/media/uploads/" in page
    assert '<a href="#v-fa" lang="fa" hreflang="fa">فارسی</a>' in page
    assert '<a href="#v-de" lang="de" hreflang="de">Deutsch</a>' in page
    assert 'class="version-panel first" id="v-fa" lang="fa" dir="rtl"' in page
    assert 'class="version-panel" id="v-de" lang="de" dir="ltr"' in page
    assert '<meta property="og:image" content="' in page and "og:description" in page


async def test_call_page_in_german_shows_the_german_version_first_and_gregorian_dates(
        live_node: LiveNode, site: Site) -> None:
    page = (await get(site.call_id, **{"Accept-Language": "de"})).text
    assert html_attrs(page) == ("de", "ltr")
    assert 'class="version-panel first" id="v-de"' in page
    assert "<h1 class=\"title\">Protestkundgebung vor der ILO</h1>" in page
    months = ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August",
              "September", "Oktober", "November", "Dezember")
    assert any(m in page for m in months)
    assert not re.search("[\u06f0-\u06f9]", page.split("<main")[1].split('id="v-fa"')[0])
    assert "Gerichtet an" in page and "Zum Kalender hinzufügen" in page


async def test_postponed_and_cancelled_calls_say_so_prominently(live_node: LiveNode,
                                                                site: Site) -> None:
    later = (datetime.now(UTC) + timedelta(days=60)).strftime("%Y-%m-%dT%H:%M")
    await calls.change_status(live_node.node, site.call_id, "postponed", start=later)
    page = (await get(site.call_id, **{"Accept-Language": "de"})).text
    assert 'class="status-banner status-postponed" role="status"' in page and "Verschoben" in page
    await calls.change_status(live_node.node, site.call_id, "cancelled")
    page = (await get(site.call_id, **{"Accept-Language": "fa"})).text
    assert 'class="status-banner status-cancelled"' in page and "لغو شد" in page
    group = (await get(live_node.url("/groups/tehran"), **{"Accept-Language": "fa"})).text
    assert 'class="status status-cancelled"' in group  # the list says it too


async def test_news_item_and_bulletin_pages_have_language_tabs_and_reader_dates(
        live_node: LiveNode, site: Site) -> None:
    response = await get(site.news_id)
    assert_page_hygiene(response)
    page = response.text
    assert '<a href="#v-de"' in page and 'id="v-de" lang="de" dir="ltr"' in page
    assert "اعتصاب در ماهشهر" in page and "Streik in Mahshahr" in page
    bulletin = (await get(site.bulletin_id)).text
    assert_page_hygiene(await get(site.bulletin_id))
    # The bulletin's Persian title: number and Solar Hijri span in Persian digits.
    assert re.search("خبرنامهٔ شمارهٔ ۱ — [^<]*[\u06f0-\u06f9]{4}[^<]*\\(", bulletin), bulletin
    assert f'href="{site.news_id}"' in bulletin


async def test_a_short_titled_news_item_shows_its_title_once_per_version(
        live_node: LiveNode, site: Site) -> None:
    # A Note: its ActivityPub content leads with the title in bold (Mastodon shows no
    # name for a Note); the page has the title as its heading, so not once more.
    doc = (await get(site.news_id, **AS)).json()
    assert doc["type"] == "Note"
    assert doc["content"].startswith("<p><strong>اعتصاب در ماهشهر</strong></p>")
    main = (await get(site.news_id)).text.split("<main")[1].split("</main>")[0]
    assert main.count("اعتصاب در ماهشهر") == 1 and main.count("Streik in Mahshahr") == 1
    assert '<h1 class="title">اعتصاب در ماهشهر</h1>' in main
    assert '<h2 class="title">Streik in Mahshahr</h2>' in main
    assert "<strong>" not in main and "کارگران در اعتصاب هستند." in main


async def test_hostile_titles_are_shown_as_text_and_texts_are_sanitised(
        live_node: LiveNode, site: Site) -> None:
    for url in (site.hostile_id, live_node.url("/groups/koeln"), live_node.url("/")):
        page = (await get(url, **{"Accept-Language": "de"})).text
        assert HOSTILE_TITLE not in page and "<script>alert" not in page
        assert "onerror=alert(1)>" not in page and "javascript:" not in page
        assert "&lt;script&gt;alert(" in page, url  # the title, shown as typed
    page = (await get(site.hostile_id)).text
    assert "<title>&lt;script&gt;" in page and 'content="&lt;script&gt;' in page


async def test_group_page_cache_is_per_language_and_sees_new_posts(live_node: LiveNode,
                                                                   site: Site) -> None:
    url = live_node.url("/groups/koeln")
    german = (await get(url)).text
    persian = (await get(url, **{"Accept-Language": "fa"})).text
    assert html_attrs(german)[0] == "de" and html_attrs(persian)[0] == "fa"
    await operations.publish_note(live_node.node, "koeln", text="Neuer Beitrag heute")
    assert "Neuer Beitrag heute" in (await get(url)).text
    assert "Neuer Beitrag heute" in (await get(url, **{"Accept-Language": "fa"})).text


async def test_stylesheet_is_served_as_css_and_cached_by_its_hash(live_node: LiveNode) -> None:
    page = (await get(live_node.url("/"))).text
    href = re.search(r'<link rel="stylesheet" href="([^"]+)">', page)
    assert href and href.group(1).startswith("/static/site.css?v=")
    css = await get(live_node.url(href.group(1)))
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "immutable" in css.headers["cache-control"]
    assert "overflow-wrap: anywhere" in css.text and "margin-left" not in css.text


async def test_json_documents_are_unchanged_by_the_pages(live_node: LiveNode,
                                                         site: Site) -> None:
    doc = (await get(site.call_id, **AS)).json()
    assert doc["type"] == "Event" and doc["id"] == site.call_id
    actor = (await get(live_node.url("/groups/tehran"), **AS)).json()
    assert actor["type"] == "Group"


def test_render_for_picks_the_readers_language_and_remembers_a_choice() -> None:
    from starlette.requests import Request

    from node.web import pages

    def request(query: str, headers: list[tuple[bytes, bytes]]) -> Request:
        return Request({"type": "http", "method": "GET", "path": "/admin", "headers": headers,
                        "query_string": query.encode()})

    chosen = pages.render_for(request("lang=fa", []), "error.html", 404,
                              message="not found", host="h")
    assert 'lang="fa" dir="rtl"' in chosen.body.decode() and "پیدا نشد" in chosen.body.decode()
    assert "lang=fa" in chosen.headers["set-cookie"]
    german = pages.render_for(request("", [(b"accept-language", b"de")]), "error.html",
                              message="not found", host="h", default_language="fa")
    assert "Nicht gefunden" in german.body.decode() and "set-cookie" not in german.headers


async def test_call_page_links_co_signers_to_their_nodes(live_node: LiveNode,
                                                         site: Site) -> None:
    from sqlmodel import select

    from node.storage.models import Cosigner, LocalObject

    async with live_node.node.db.write() as session:
        obj = (await session.exec(select(LocalObject).where(
            LocalObject.uuid == site.call_id.rsplit("/", 1)[1]))).one()
        event = (await session.exec(select(Event).where(Event.object_id == obj.id))).one()
        session.add(Cosigner(event_id=event.id or 0, actor_uri="https://paris.example/groups/cgt",
                             inbox="https://paris.example/inbox", display_name="<b>CGT Paris</b>",
                             state="accepted", invite_activity_id="https://x.example/invite/1"))
        session.add(Cosigner(event_id=event.id or 0, actor_uri="https://no.example/groups/n",
                             inbox="https://no.example/inbox", display_name="Not yet",
                             state="invited", invite_activity_id="https://x.example/invite/2"))
    live_node.node.changed()
    page = (await get(site.call_id, **{"Accept-Language": "de"})).text
    assert "Mitunterzeichnet von" in page
    assert '<a href="https://paris.example/groups/cgt" rel="noreferrer noopener">' \
           '<bdi>&lt;b&gt;CGT Paris&lt;/b&gt;</bdi></a>' in page
    assert "Not yet" not in page  # only groups that accepted co-sign


async def test_excerpts_keep_words_apart_and_do_not_repeat_the_title(live_node: LiveNode,
                                                                     site: Site) -> None:
    page = (await get(live_node.url("/groups/tehran"))).text
    assert "اعتصاب در ماهشهرکارگران" not in page
    assert '<p class="excerpt" lang="fa" dir="rtl">کارگران در اعتصاب هستند.</p>' in page


async def test_the_instance_actor_page_has_no_follow_form(live_node: LiveNode) -> None:
    response = await get(live_node.url("/actor"))
    assert response.status_code == 200 and "remote-follow" not in response.text
