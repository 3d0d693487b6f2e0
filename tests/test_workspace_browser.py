"""The workspace in a real headless Chromium (Debian's package): an editor logs in,
writes a call in Persian and German with a flyer and publishes it; the public page
reads right-to-left in Persian, left-to-right in German; a second real node that
follows the group receives the call (issue 14, "What it must show")."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Any

from playwright.async_api import async_playwright
from sqlmodel import select

from node.groups import operations
from node.storage.models import Follower, InboxItem
from tests.conftest import LiveNode, NodeFactory, wait_for
from tests.test_browser import CHROMIUM, FLAGS, HAVE_CHROMIUM
from tests.workspace_helpers import PASSWORD, make_user, png

PHONE = {"width": 412, "height": 915}
DESKTOP = {"width": 1280, "height": 900}


def keep(path: Path) -> None:
    """Screenshots stay in the test's tmp dir and go to $HAMBASTEGI_ARTEFACTS too."""
    target = os.environ.get("HAMBASTEGI_ARTEFACTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)


async def shoot(page: Any, tmp_path: Path, name: str) -> None:
    for label, size in (("412", PHONE), ("desktop", DESKTOP)):
        await page.set_viewport_size(size)
        path = tmp_path / f"{name}-{label}.png"
        await page.screenshot(path=str(path), full_page=True)
        keep(path)
    await page.set_viewport_size(PHONE)


async def serious_violations(page: Any) -> list[str]:
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(page)
    return [f"{v['id']}: {v['help']}" for v in results.response["violations"]
            if v.get("impact") in ("serious", "critical")]


async def test_an_editor_publishes_a_persian_and_german_call_that_federates(
        live_node: LiveNode, nodes: NodeFactory, tmp_path: Path) -> None:
    assert HAVE_CHROMIUM, "Debian chromium is needed (scripts/test installs it)"
    node = live_node.node
    await operations.create_group(node, "koeln", display_name="Solidarität Köln",
                                  language="de")
    await make_user(live_node, "maryam", groups=("koeln",))
    # A second real node whose group follows ours.
    other = await nodes.create("other")
    # In a thread: the CLI fetches our node, which runs in this test's event loop.
    await asyncio.to_thread(other.cli, "group", "create", "watchers", "--display-name",
                            "Watchers")
    await asyncio.to_thread(other.cli, "follow", "watchers", live_node.url("/groups/koeln"))

    async def followed() -> bool:
        async with node.db.read() as session:
            return (await session.exec(select(Follower).where(
                Follower.state == "accepted"))).first() is not None

    await wait_for(followed, what="the other node's follow")

    flyer = tmp_path / "flyer.png"
    flyer.write_bytes(png(400))
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = await browser.new_page(viewport=PHONE)
        dialogs: list[str] = []
        page.on("dialog", lambda d: dialogs.append(d.message))

        await page.goto(live_node.url("/login"))
        await page.fill("#username", "maryam")
        await page.fill("#password", PASSWORD)
        async with page.expect_navigation():
            await page.click("form[action='/login'] button[type=submit]")
        assert page.url == live_node.url("/admin"), await page.text_content("main")
        await page.click("a[href='/admin/groups/koeln']")
        await page.click("a[href='/admin/groups/koeln/call/new']")
        # One field set per language: ask for Persian and German.
        await page.fill("#languages", "fa de")
        await page.click("button[value=languages]")
        await page.wait_for_selector("#title_fa")
        assert await page.get_attribute("#title_fa", "dir") == "rtl"
        assert await page.get_attribute("#text_fa", "dir") == "rtl"
        assert await page.get_attribute("#title_de", "dir") == "auto"
        await page.select_option("#language", "fa")
        await page.fill("#title_fa", "تجمع در حمایت از کارگران زندانی")
        await page.fill("#text_fa", "همه دعوت هستند. <script>alert(1)</script>")
        await page.fill("#title_de", "Kundgebung für inhaftierte Arbeiter")
        await page.fill("#text_de", "Alle sind eingeladen.")
        await page.fill("#start", "2031-05-01T17:00")
        await page.fill("#timezone", "Europe/Berlin")
        await page.fill("#place_name", "Rathausplatz")
        await page.fill("#place_city", "Köln")
        await page.set_input_files("#flyer", str(flyer))
        await page.fill("#flyer_alt", "Ein rotes Plakat")
        assert await serious_violations(page) == []
        await shoot(page, tmp_path, "workspace-call-form")
        await page.click("button[value=publish]")
        await page.wait_for_url("**/admin/groups/koeln/posts/**")
        assert "Published" in (await page.text_content("main") or "")
        await shoot(page, tmp_path, "workspace-delivery")
        public_url = await page.get_attribute("main a[href*='/objects/']", "href")
        assert public_url is not None

        await page.goto(public_url)
        # One panel per language version (the public page since issue 14 point 1),
        # each with its own lang and dir; the main language's title is the h1.
        fa = page.locator("section.version-panel[lang=fa]")
        de = page.locator("section.version-panel[lang=de]")
        assert await fa.get_attribute("dir") == "rtl"
        assert await de.get_attribute("dir") == "ltr"
        assert "تجمع در حمایت از کارگران زندانی" in (
            await fa.locator("h1").text_content() or "")
        assert "تجمع در حمایت از کارگران زندانی" in (await fa.text_content() or "")
        assert "Kundgebung für inhaftierte Arbeiter" in (await de.text_content() or "")
        assert await page.locator("[lang=fa][dir=rtl]", has_text="همه دعوت هستند").count()
        await shoot(page, tmp_path, "public-call")
        await browser.close()
    assert dialogs == []  # the script in the text stayed text

    # The call the browser published reached the other node, like one from the CLI.
    async def received() -> bool:
        async with other.db().read() as session:
            items = (await session.exec(select(InboxItem).where(
                InboxItem.activity_type == "Create"))).all()
        return any(i.body.get("object", {}).get("id") == public_url
                   and i.body["object"].get("nameMap", {}).get("fa")
                   == "تجمع در حمایت از کارگران زندانی" for i in items)

    await wait_for(received, timeout=30, what="the call at the other node")
    for name in ("workspace-call-form", "workspace-delivery", "public-call"):
        assert (tmp_path / f"{name}-412.png").stat().st_size > 0
