"""The public pages in real headless Chromium (Debian's package): direction, no
horizontal overflow on a 412-px phone, language tabs without script, no inline script
(CSP violations reach the console), and axe-core's checks (issue 14, points 1, 4, 5).

Screenshots go to the test's tmp dir and, when HAMBASTEGI_ARTEFACTS names a
directory, there too.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import async_playwright

from tests.conftest import LiveNode
from tests.public_site import FLYER_ALT, PHOTO_ALTS, Site, photo_site, seed
from tests.test_browser import CHROMIUM, FLAGS, HAVE_CHROMIUM

PHONE = {"width": 412, "height": 915}
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture
async def browser() -> Any:
    assert HAVE_CHROMIUM, "Debian chromium is needed (scripts/test installs it)"
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                            args=FLAGS)
        yield launched
        await launched.close()


def keep(shot: Path) -> None:
    target = os.environ.get("HAMBASTEGI_ARTEFACTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(target) / shot.name)


async def visit(browser: Any, url: str, language: str, viewport: dict[str, int]
                ) -> tuple[Any, Any, list[str]]:
    context = await browser.new_context(viewport=viewport, locale=language,
                                        extra_http_headers={"Accept-Language": language})
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    # Anything fetched from another origin would be a leak of who reads what.
    page.on("request", lambda r: problems.append(f"external request {r.url}")
            if not r.url.startswith(url.split("/groups")[0].split("/objects")[0]) else None)
    response = await page.goto(url)
    assert response is not None and response.status == 200
    return context, page, problems


async def check_page(browser: Any, url: str, language: str, name: str, tmp_path: Path,
                     expected_dir: str) -> None:
    for label, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        context, page, problems = await visit(browser, url, language, viewport)
        assert await page.get_attribute("html", "dir") == expected_dir
        assert await page.get_attribute("html", "lang") == language
        assert await page.evaluate("getComputedStyle(document.body).direction") == expected_dir
        # The stylesheet applied (it is the only styling there is).
        assert await page.evaluate(
            "getComputedStyle(document.body).overflowWrap") == "anywhere"
        width = await page.evaluate("document.scrollingElement.scrollWidth")
        assert width <= viewport["width"], f"{name} {label}: {width}px wide"
        shot = tmp_path / f"{name}-{language}-{label}.png"
        await page.screenshot(path=str(shot), full_page=True)
        keep(shot)
        if label == "phone":
            results = await Axe().run(page)
            bad = [v for v in results.response["violations"]
                   if v.get("impact") in ("serious", "critical")]
            assert bad == [], results.generate_report()
        assert problems == [], problems
        await context.close()


@pytest.mark.parametrize("language, direction", [("fa", "rtl"), ("de", "ltr")])
async def test_front_group_and_call_pages_in_a_phone_browser(
        live_node: LiveNode, browser: Any, tmp_path: Path, language: str,
        direction: str) -> None:
    site: Site = await seed(live_node.node)
    await check_page(browser, live_node.url("/"), language, "front", tmp_path, direction)
    await check_page(browser, live_node.url("/groups/tehran"), language, "group", tmp_path,
                     direction)
    await check_page(browser, site.call_id, language, "call", tmp_path, direction)


async def test_language_tabs_switch_versions_without_script(live_node: LiveNode,
                                                            browser: Any) -> None:
    site = await seed(live_node.node)
    context, page, problems = await visit(browser, site.call_id, "fa", PHONE)
    assert await page.is_visible("#v-fa") and not await page.is_visible("#v-de")
    await page.click('nav.tabs a[href="#v-de"]')
    assert await page.is_visible("#v-de") and not await page.is_visible("#v-fa")
    assert await page.evaluate(
        "getComputedStyle(document.querySelector('#v-de')).direction") == "ltr"
    # The group's handle is Latin text in a right-to-left page: isolated left-to-right.
    await page.goto(live_node.url("/groups/tehran"))
    assert await page.eval_on_selector("#handle", "e => getComputedStyle(e).direction") == "ltr"
    assert problems == []
    await context.close()


async def test_an_inline_script_would_be_refused_by_the_pages_policy(
        live_node: LiveNode, browser: Any) -> None:
    await seed(live_node.node)
    context, page, problems = await visit(browser, live_node.url("/groups/tehran"), "de",
                                          PHONE)
    # Inject what an XSS would: the page's CSP must stop it running, and say so.
    await page.evaluate("""() => { const s = document.createElement('script');
        s.textContent = 'window.__ran = true'; document.body.appendChild(s); }""")
    await page.wait_for_function("() => true")
    assert await page.evaluate("window.__ran === undefined")
    assert any("Content Security Policy" in p for p in problems), problems
    await context.close()


async def photos_loaded(page: Any) -> list[dict[str, Any]]:
    """Every photo of the page once it has loaded (lazy ones scrolled into view)."""
    await page.evaluate("window.scrollTo(0, document.scrollingElement.scrollHeight)")
    # A condition with the page's own deadline (30 s), not a sleep.
    await page.wait_for_function(
        "() => [...document.querySelectorAll('main img')].every(i => i.complete)")
    found: list[dict[str, Any]] = await page.eval_on_selector_all("main img", """imgs =>
        imgs.map(i => { const r = i.getBoundingClientRect();
          return {natural: i.naturalWidth, src: i.currentSrc, alt: i.alt, lang: i.lang,
                  left: r.left, right: r.right, width: r.width, height: r.height}; })""")
    return found


async def test_photos_and_a_flyer_load_on_a_phone_without_widening_the_page(
        live_node: LiveNode, browser: Any, tmp_path: Path) -> None:
    site = await photo_site(live_node.node)
    async with live_node.node.db.read() as session:
        from sqlmodel import col, select

        from node.storage.models import MediaFile

        small = {m.name for m in (await session.exec(select(MediaFile).where(
            MediaFile.width <= 400, MediaFile.height <= 400,
            col(MediaFile.variant_of).is_not(None)))).all()}
    for url, name, alts in ((site.news_id, "news-fa-photos-412", PHOTO_ALTS),
                            (site.call_id, "call-flyer-412", [FLYER_ALT])):
        context, page, problems = await visit(browser, url, "fa", PHONE)
        assert await page.get_attribute("html", "dir") == "rtl"
        shown = await photos_loaded(page)
        assert [(p["alt"], p["lang"]) for p in shown] == [(alt, "fa") for alt in alts]
        for photo in shown:
            assert photo["natural"] > 0, photo  # decoded: not a broken image
            # Inside the screen, as wide as the column allows, its proportions kept.
            assert 0 <= photo["left"] and photo["right"] <= PHONE["width"], photo
            assert photo["width"] >= PHONE["width"] - 40 or photo["natural"] < 380, photo
        width = await page.evaluate("document.scrollingElement.scrollWidth")
        assert width <= PHONE["width"], f"{name}: {width}px wide"
        if name.startswith("news"):
            # A 412-px phone (one device pixel per CSS pixel) takes the 400-px copy of
            # the landscape photo (400 px wide), the 1280 one of the portrait (300 px).
            assert [p["src"].rsplit("/", 1)[1] in small for p in shown] == [True, False]
        await page.evaluate("window.scrollTo(0, 0)")
        shot = tmp_path / f"{name}.png"
        await page.screenshot(path=str(shot), full_page=True)
        keep(shot)
        results = await Axe().run(page)
        bad = [v for v in results.response["violations"]
               if v.get("impact") in ("serious", "critical")]
        assert bad == [], results.generate_report()
        assert problems == [], problems
        await context.close()
