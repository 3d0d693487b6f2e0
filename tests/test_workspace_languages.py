"""The workspace speaks the reader's language: the choice (?lang=, then the cookie),
then Accept-Language; right-to-left for Persian (issue 14, point 4). And the
catalogues cover every string the templates and the code mark for translation."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from node.groups import operations
from node.web import i18n
from tests.conftest import LiveNode
from tests.workspace_helpers import PASSWORD, csrf_of, logged_in, make_user

ROOT = Path(__file__).resolve().parent.parent


def _html_tag(text: str) -> str:
    found = re.search(r"<html[^>]*>", text)
    assert found is not None
    return found.group(0)


async def test_the_login_page_follows_accept_language_and_is_rtl_in_persian(
        live_node: LiveNode) -> None:
    async with httpx.AsyncClient(base_url=live_node.base_url) as client:
        fa = await client.get("/login", headers={"Accept-Language": "fa-IR,fa;q=0.9,en;q=0.5"})
        assert 'lang="fa"' in _html_tag(fa.text) and 'dir="rtl"' in _html_tag(fa.text)
        for words in ("ورود", "نام کاربری", "گذرواژه", "میز کار"):
            assert words in fa.text, words
        assert "User name" not in fa.text
        de = await client.get("/login", headers={"Accept-Language": "de-DE,de;q=0.9"})
        assert 'lang="de"' in _html_tag(de.text) and 'dir="ltr"' in _html_tag(de.text)
        for words in ("Anmelden", "Benutzername", "Passwort", "Arbeitsbereich"):
            assert words in de.text, words
        english = await client.get("/login")
        assert 'lang="en"' in _html_tag(english.text) and "User name" in english.text


async def test_a_chosen_language_beats_accept_language_and_is_remembered(
        live_node: LiveNode) -> None:
    async with httpx.AsyncClient(base_url=live_node.base_url) as client:
        chosen = await client.get("/login?lang=fa", headers={"Accept-Language": "de"})
        assert 'dir="rtl"' in _html_tag(chosen.text) and "نام کاربری" in chosen.text
        assert client.cookies.get(i18n.COOKIE) == "fa"
        again = await client.get("/login", headers={"Accept-Language": "de"})
        assert "نام کاربری" in again.text and "Benutzername" not in again.text
        # The login operation's messages too: the same words for any wrong login.
        wrong = await client.post("/login", data={
            "username": "nobody", "password": "x" * 12, "csrf": csrf_of(again.text)})
        assert wrong.status_code == 401
        assert "نام کاربری یا گذرواژه نادرست است" in wrong.text


async def test_the_editor_form_is_persian_and_rtl_or_german_for_the_reader(
        live_node: LiveNode) -> None:
    await operations.create_group(live_node.node, "koeln", display_name="Köln",
                                  language="de")
    await make_user(live_node, "ali", groups=("koeln",))
    assert PASSWORD
    async with logged_in(live_node, "ali") as ali:
        fa = await ali.get("/admin/groups/koeln/call/new?lang=fa")
        assert fa.status_code == 200
        assert 'lang="fa"' in _html_tag(fa.text) and 'dir="rtl"' in _html_tag(fa.text)
        for words in ("فراخوان یا نشست", "عنوان", "متن", "زمان و مکان", "مکان", "شهر",
                      "پوستر", "ذخیرهٔ پیش‌نویس", "انتشار", "خروج", "نشست", "آزاد برای همه"):
            assert words in fa.text, words
        assert "Save draft" not in fa.text and "When and where" not in fa.text
        # The session's pages keep the choice (the cookie), the dashboard too.
        home = await ali.get("/admin")
        assert "گروه‌های شما" in home.text and 'dir="rtl"' in _html_tag(home.text)
        de = await ali.get("/admin/groups/koeln/call/new?lang=de")
        assert 'lang="de"' in _html_tag(de.text) and 'dir="ltr"' in _html_tag(de.text)
        for words in ("Aufruf oder Treffen", "Titel", "Wann und wo", "Stadt",
                      "Entwurf speichern", "Veröffentlichen", "Abmelden"):
            assert words in de.text, words
        # A refusal in the reader's language: another group's page.
        refused = await ali.get("/admin/groups/tehran")
        assert refused.status_code == 403
        assert "Sie arbeiten nicht für diese Gruppe." in refused.text


@pytest.mark.parametrize("language", ["fa", "de"])
def test_every_marked_string_has_a_translation(language: str, tmp_path: Path) -> None:
    """Extraction as pyproject.toml says it; a new string without a translation fails
    here rather than showing English inside a Persian page."""
    from babel.messages.pofile import read_po

    pot = tmp_path / "messages.pot"
    subprocess.run([sys.executable, "-c", "from babel.messages.frontend import main; main()",
                    "-q", "extract", "-F", "pyproject.toml", "-o", str(pot), "node"],
                   cwd=ROOT, check=True, capture_output=True)
    with pot.open("rb") as handle:
        wanted = {m.id for m in read_po(handle) if m.id}
    assert {"Log in", "Save draft", "Block a domain", "scheduled"} <= wanted
    path = ROOT / "node/web/locale" / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    translated = {m.id for m in catalog if m.id and m.string and not m.fuzzy}
    missing = sorted(str(i) for i in wanted - translated)
    assert not missing, missing
