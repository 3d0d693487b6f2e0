"""A Telegram that accepts connections and never answers must not hold fediverse delivery
(issue 27, "a service that is down or slow never delays fediverse delivery or the
inbox"): two nodes as admins run them, the Bot API a fake on loopback."""

from __future__ import annotations

import asyncio

from sqlmodel import select

from node.storage.models import CrosspostItem
from tests.conftest import NodeFactory, wait_for
from tests.crosspost_fakes import TOKEN, Clock, FakeBotApi
from tests.test_federation import follow_and_wait, received


async def test_a_hanging_telegram_does_not_delay_fediverse_delivery(
        nodes: NodeFactory) -> None:
    bot = FakeBotApi(Clock())
    bot.channels = {"@koeln_de": (-1001002, "administrator", True),
                    "@koeln_news": (-1001003, "administrator", True)}
    await bot.start()
    try:
        a = await nodes.create("a", extra_env={"HAMBASTEGI_TELEGRAM_API": bot.url})
        b = await nodes.create("b")
        a.cli("group", "create", "koeln", "--display-name", "Köln", "--language", "de")
        b.cli("group", "create", "hamburg", "--display-name", "Hamburg", "--language", "de")
        connected = await asyncio.to_thread(
            a.cli, "telegram", "connect", "koeln", "@koeln_de", "--token-stdin",
            input_text=TOKEN + "\n")
        assert "connected" in connected.stdout and TOKEN not in connected.stdout
        await asyncio.to_thread(a.cli, "telegram", "connect", "koeln", "@koeln_news",
                                "--token-stdin", input_text=TOKEN + "\n")
        await follow_and_wait(b, "hamburg", a, "koeln")
        bot.hang = {"@koeln_de"}
        for n in range(3):
            note_id = (await asyncio.to_thread(
                a.cli, "publish", "note", "koeln", "--text", f"Streik {n}")).stdout.strip()
            await wait_for(lambda: received(b, "Create", note_id),  # noqa: B023
                           what=f"Create {n} on B", timeout=15)

        # The other channel gets all three meanwhile: the hanging one holds only itself.
        async def news_channel_has_three() -> bool:
            return len(bot.sent_to("@koeln_news")) == 3

        await wait_for(news_channel_has_three, what="three posts on @koeln_news", timeout=15)
        async with a.db().read() as session:
            states = [i.state for i in (await session.exec(select(CrosspostItem).order_by(
                CrosspostItem.id))).all()]
        # Telegram still holds @koeln_de's first; the fediverse got all three meanwhile.
        assert states.count("sending") == 1 and states.count("sent") == 3
        assert len(bot.sent_to("@koeln_de")) == 1
        listed = await asyncio.to_thread(a.cli, "telegram", "list")
        assert "@koeln_news\tactive\tsent=3" in listed.stdout
        assert "@koeln_de\tactive\tpending=2, sending=1" in listed.stdout
        assert TOKEN not in listed.stdout
    finally:
        await bot.stop()
