"""The public pages in a real headless Chromium (Debian's package)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from playwright.async_api import async_playwright

from node.groups import operations
from tests.conftest import LiveNode

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HAVE_CHROMIUM = Path(CHROMIUM).exists()
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
async def browser_page():  # type: ignore[no-untyped-def]
    # A missing browser fails the test: CI must not pass without running it.
    assert HAVE_CHROMIUM, "Debian chromium is needed (scripts/test installs it)"
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        # A Persian reader's browser: the interface follows Accept-Language before the
        # group's own language (docs/ARCHITECTURE.md#8-the-public-site).
        page = await browser.new_page(locale="fa-IR",
                                      extra_http_headers={"Accept-Language": "fa-IR,fa"})
        yield page
        await browser.close()


async def test_group_page_renders_persian_right_to_left(live_node: LiveNode, browser_page,  # type: ignore[no-untyped-def]
                                                       tmp_path: Path) -> None:
    await operations.create_group(live_node.node, "tehran_fa", display_name="کمیته همبستگی",
                                  language="fa")
    await operations.publish_note(live_node.node, "tehran_fa",
                                  text="آزادی برای کارگران زندانی <script>alert(1)</script>")
    page = browser_page
    dialogs: list[str] = []
    page.on("dialog", lambda d: dialogs.append(d.message))
    response = await page.goto(live_node.url("/groups/tehran_fa"))
    assert response is not None and response.status == 200
    assert await page.get_attribute("html", "dir") == "rtl"
    assert await page.get_attribute("html", "lang") == "fa"
    assert (await page.text_content("#group-name") or "").strip() == "کمیته همبستگی"
    post = page.locator(".post-card .excerpt").first
    assert await post.get_attribute("dir") == "rtl"
    assert "آزادی برای کارگران زندانی" in (await post.text_content() or "")
    # The handle is Latin text inside RTL: it must be isolated left-to-right.
    direction = await page.eval_on_selector("#handle", "e => getComputedStyle(e).direction")
    assert direction == "ltr"
    await page.screenshot(path=str(tmp_path / "group.png"))
    assert dialogs == []  # the script in the text was shown as text, never run
    assert "<script>" in (await post.text_content() or "")
