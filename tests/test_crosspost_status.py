"""One place to see it (issue 27, point 4): `hambastegi status` and the workspace's
post view show, per post and destination, sent / waiting (why) / failed, with the
worker that `serve` runs beside the delivery worker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import select

from node.cli.status import print_post, print_status
from node.crosspost.telegram import connect as telegram
from node.federation import publishing
from node.groups import operations
from node.storage.models import CrosspostItem, LocalActor
from tests.conftest import LiveNode, start_live_node, stop_live_node, wait_for
from tests.crosspost_fakes import TOKEN, Clock, FakeBotApi
from tests.workspace_helpers import logged_in, make_user


@pytest.fixture
async def bot() -> AsyncIterator[FakeBotApi]:
    fake = FakeBotApi(Clock())
    fake.channels = {"@koeln_news": (-1001001, "administrator", True),
                     "@koeln_de": (-1001002, "administrator", True)}
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def live(tmp_path: Path, database_url: str, bot: FakeBotApi) -> AsyncIterator[LiveNode]:
    node = await start_live_node(tmp_path, database_url,
                                 {"HAMBASTEGI_TELEGRAM_API": bot.url})
    yield node
    await stop_live_node(node)


async def test_status_and_the_post_view_show_sent_and_paused_per_destination(
        live: LiveNode, bot: FakeBotApi, capsys: pytest.CaptureFixture[str]) -> None:
    node = live.node
    await operations.create_group(node, "koeln", display_name="Köln", language="de")
    await telegram.connect(node, "koeln", "@koeln_news", TOKEN)
    await telegram.connect(node, "koeln", "@koeln_de", TOKEN)
    bot.channels["@koeln_de"] = (-1001002, "left", False)  # the bot was removed since
    async with node.db.write() as session:
        group = (await session.exec(select(LocalActor).where(
            LocalActor.username == "koeln"))).one()
        note = await publishing.publish_note(session, group, node.urls,
                                             text="Solidarität mit den Streikenden")
    node.changed()

    async def settled() -> bool:
        async with node.db.read() as session:
            rows = (await session.exec(select(CrosspostItem))).all()
        return {r.state for r in rows} == {"sent", "pending"} and any(
            r.last_error for r in rows)

    await wait_for(settled, what="one sent, one paused")  # the app's own worker sent
    await make_user(live, "ali", groups=("koeln",))
    async with logged_in(live, "ali") as ali:
        page = await ali.get(f"/admin/groups/koeln/posts/{note.uuid}")
    assert page.status_code == 200
    section = page.text.split('id="outside"', 1)[1].split("</table>", 1)[0]
    assert "telegram @koeln_news (koeln)</td><td>sent" in section
    assert "telegram @koeln_de (koeln)</td><td>waiting" in section
    assert "paused: Telegram refused (403)" in section and TOKEN not in page.text

    await print_status(node)
    out = capsys.readouterr().out
    assert "telegram @koeln_de ← koeln: paused (Telegram refused (403)" in out
    assert "outside posts waiting or failed: 1" in out and TOKEN not in out
    await print_post(node, note.uuid)
    out = capsys.readouterr().out
    assert "telegram @koeln_news\tsent" in out
    assert "telegram @koeln_de\twaiting" in out and "paused:" in out
