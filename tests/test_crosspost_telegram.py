"""A group's posts on its Telegram channels (issue 27), against a fake Bot API on
loopback (HAMBASTEGI_TELEGRAM_API): methods, channels, the HTML subset, limits, edits,
deletes, pacing and the service's refusals. Time is the test's clock, never a sleep."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image
from sqlmodel import col, select

from node.calls import operations as calls
from node.core.settings import Settings
from node.crosspost import connections
from node.crosspost.content import read_post
from node.crosspost.telegram import connect as telegram
from node.crosspost.telegram.format import CAPTION_LIMIT, MESSAGE_LIMIT, plan, subset, units
from node.crosspost.worker import CrosspostWorker
from node.federation import publishing
from node.federation.runtime import Node
from node.groups import operations
from node.groups.errors import OperationError
from node.inbound import INBOUND
from node.news import channels
from node.news import operations as news
from node.storage.models import CrosspostAccount, CrosspostItem, LocalActor
from tests.crosspost_fakes import TOKEN, Call, Clock, FakeBotApi
from tests.test_photos import photo

ALLOWED = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre",
           "blockquote", "tg-spoiler"}


class SubsetCheck(HTMLParser):
    """Telegram's HTML: only its tags, a's only attribute href, every tag closed in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        assert tag in ALLOWED, tag
        assert (tag == "a" and [k for k, _ in attrs] == ["href"]) or not attrs, (tag, attrs)
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack.pop() == tag, tag

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def visible(html: str) -> str:
    """Parse ``html`` as Telegram would (failing on anything outside the subset);
    the text a reader sees."""
    check = SubsetCheck()
    check.feed(html)
    check.close()
    assert check.stack == []
    return "".join(check.text)


@pytest.fixture
async def bot() -> AsyncIterator[FakeBotApi]:
    fake = FakeBotApi(Clock())
    fake.channels = {"@koeln_fa": (-1001001, "administrator", True),
                     "@koeln_de": (-1001002, "administrator", True),
                     "@not_ours": (-1001003, "member", False)}
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def node(tmp_path: Path, database_url: str, bot: FakeBotApi) -> AsyncIterator[Node]:
    settings = Settings.load(environ={
        "HAMBASTEGI_BASE_URL": "https://node.example",
        "HAMBASTEGI_DATA_DIR": str(tmp_path / "data"),
        "HAMBASTEGI_DATABASE_URL": database_url,
        "HAMBASTEGI_ALLOW_PRIVATE_NETWORKS": "1",
        "HAMBASTEGI_TELEGRAM_API": bot.url,
    })
    settings.media_dir.mkdir(parents=True, exist_ok=True)
    running = Node(settings, inbound=INBOUND)
    await running.start()
    await operations.create_group(running, "koeln", display_name="Solidarität Köln",
                                  language="de")
    await channels.enable(running, "koeln", ["fa"])
    yield running
    await running.close()


async def drain(node: Node, worker: CrosspostWorker, clock: Clock, *,
                limit: int = 400) -> None:
    """Run the worker until nothing is pending, moving the clock to the next due time."""
    for _ in range(limit):
        if await worker.run_once():
            continue
        async with node.db.read() as session:
            rows = (await session.exec(
                select(CrosspostItem, CrosspostAccount)
                .join(CrosspostAccount,
                      col(CrosspostAccount.id) == col(CrosspostItem.account_id))
                .where(col(CrosspostItem.state).in_(["pending", "sending"]),
                       CrosspostAccount.state == "active"))).all()
        if not rows:
            return
        due = min(max(item.next_attempt_at, account.next_send_at) for item, account in rows)
        clock.now = max(clock.now, due)
    await worker.close()
    raise AssertionError("the queue did not drain")



def jpeg_width(data: bytes) -> int:
    return Image.open(io.BytesIO(data)).size[0]


async def connect_both(node: Node) -> None:
    await telegram.connect(node, "koeln_fa", "@koeln_fa", TOKEN)
    await telegram.connect(node, "koeln", "@koeln_de", TOKEN)


def of(calls_: list[Call], *methods: str) -> list[Call]:
    return [c for c in calls_ if c.method in methods]


async def test_persian_news_two_photos_german_call_edit_and_delete_reach_the_right_channels(
        node: Node, bot: FakeBotApi) -> None:
    await connect_both(node)
    worker = CrosspostWorker(node, clock=bot.clock)
    first = await operations.upload_media(node, photo(1600, 1200), group="koeln")
    second = await operations.upload_media(node, photo(2000, 1000), group="koeln")
    item_id = await news.create_item(node, "koeln", {
        "language": "fa",
        "versions": {"fa": {"title": "اعتصاب در ماهشهر",
                            "text": "کارگران پتروشیمی <در> اعتصاب & هستند.\n\n**همبستگی**"}},
        "photos": [{"media": first, "alt": {"fa": "کارگران در برابر کارخانه"}},
                   {"media": second, "alt": {"fa": "پلاکارد اعتصاب"}}],
    })
    start = datetime(2031, 5, 1, 12, 0, tzinfo=UTC)
    call_id = await calls.create_call(node, "koeln", {
        "language": "de", "title": {"de": "Kundgebung vor dem Rathaus"},
        "text": {"de": "Wir stehen an der Seite der Streikenden."},
        "start": start.strftime("%Y-%m-%dT%H:%M"), "timezone": "Europe/Berlin",
        "place": {"name": "Rathausplatz", "city": "Köln", "country": "DE"},
        "target": "Stadtrat Köln"})
    await drain(node, worker, bot.clock)

    fa = bot.sent_to("@koeln_fa")
    assert [c.method for c in fa] == ["sendMediaGroup"]  # the channel's copy, once
    album = fa[0]
    assert len(album.fields["media"]) == 2 and len(album.files) == 2
    assert sorted(jpeg_width(data) for data in album.files.values()) == [1280, 1280]
    caption = album.fields["media"][0]["caption"]
    assert album.fields["media"][0]["parse_mode"] == "HTML"
    assert units(caption) <= CAPTION_LIMIT
    seen = visible(caption)
    assert "اعتصاب در ماهشهر" in seen and "کارگران در برابر کارخانه" in seen
    assert "پلاکارد اعتصاب" in seen
    assert "<در>" in seen and "&" in seen  # the writer's brackets, escaped, not markup
    assert "<b>همبستگی</b>" in caption or "<strong>" not in caption

    de = bot.sent_to("@koeln_de")
    # The group publishes the item (all its languages) and its call: both go there.
    assert [c.method for c in de] == ["sendMediaGroup", "sendMessage"]
    call_text = visible(de[1].fields["text"])
    assert "Kundgebung vor dem Rathaus" in call_text
    assert "2031-05-01 12:00 (UTC+02:00)" in call_text  # in the event's own zone
    assert "Rathausplatz" in call_text and "Stadtrat Köln" in call_text
    assert call_id.rsplit("/", 1)[-1] in call_text

    # An edit on the node edits the caption of the album's first message.
    await news.edit_version(node, item_id, "fa", {"title": "اعتصاب در ماهشهر ادامه دارد",
                                                  "text": "روز دهم اعتصاب."})
    await drain(node, worker, bot.clock)
    edits = of(bot.sent_to("@koeln_fa"), "editMessageCaption")
    assert len(edits) == 1
    first_of_album = bot.message_ids[-1001001][0]
    assert edits[0].fields["message_id"] == first_of_album
    assert "روز دهم اعتصاب" in visible(edits[0].fields["caption"])

    # A delete deletes both messages of the album, in both channels.
    await news.delete_item(node, item_id)
    await drain(node, worker, bot.clock)
    assert len(of(bot.sent_to("@koeln_fa"), "deleteMessage")) == 2
    assert len(of(bot.sent_to("@koeln_de"), "deleteMessage")) == 2
    async with node.db.read() as session:
        states = {i.object_uri.rsplit("/", 1)[-1]: (i.state, i.action) for i in
                  (await session.exec(select(CrosspostItem))).all()}
    assert states[item_id.rsplit("/", 1)[-1]] == ("sent", "delete")


async def test_a_5000_character_item_is_split_in_two_at_a_paragraph(
        node: Node, bot: FakeBotApi) -> None:
    await connect_both(node)
    paragraphs = [f"بند {n}: " + "کارگران برای دستمزد عادلانه اعتصاب کرده‌اند. " * 11
                  for n in range(10)]
    text = "\n\n".join(paragraphs)
    assert 4096 < len(text) <= 5200
    await news.create_item(node, "koeln", {
        "language": "fa", "versions": {"fa": {"title": "گزارش بلند", "text": text}}})
    await drain(node, CrosspostWorker(node, clock=bot.clock), bot.clock)
    sent = bot.sent_to("@koeln_fa")
    assert [c.method for c in sent] == ["sendMessage", "sendMessage"]
    texts = [visible(c.fields["text"]) for c in sent]
    assert all(units(c.fields["text"]) <= MESSAGE_LIMIT for c in sent)
    for para in paragraphs:  # every paragraph whole in exactly one message
        assert sum(para.strip() in t for t in texts) == 1
    assert "https://node.example/" in texts[-1]  # the link to the whole post, at the end


async def test_a_burst_of_50_posts_is_paced_at_20_a_minute_and_a_429_is_honoured(
        node: Node, bot: FakeBotApi) -> None:
    await telegram.connect(node, "koeln_fa", "@koeln_fa", TOKEN)
    async with node.db.write() as session:
        channel = (await session.exec(select(LocalActor).where(
            LocalActor.username == "koeln_fa"))).one()
        for n in range(50):
            await publishing.publish_note(session, channel, node.urls, text=f"خبر شماره {n}",
                                          language="fa")
    worker = CrosspostWorker(node, clock=bot.clock)
    bot.too_many_at = ("sendMessage", 7)  # the 7th is refused: 429, retry_after 10
    await drain(node, worker, bot.clock)
    sent = of(bot.sent_to("@koeln_fa"), "sendMessage")
    assert len(sent) == 51  # 50 posts and the one refused
    texts = [visible(c.fields["text"]) for c in sent]
    refused = 6
    assert texts[refused] == texts[refused + 1]  # the refused one again, nothing before it
    assert sent[refused + 1].at - sent[refused].at >= timedelta(seconds=10)
    order = [int(t.split("شماره ")[1].split()[0]) for t in texts]
    assert [n for i, n in enumerate(order) if i != refused] == list(range(50))
    delivered = [c.at for i, c in enumerate(sent) if i != refused]
    for start in delivered:
        assert sum(start <= t < start + timedelta(minutes=1) for t in delivered) <= 20
    # and it really is paced, not spread over hours: 50 messages in under 3 minutes
    assert delivered[-1] - delivered[0] < timedelta(minutes=3)


async def test_connect_refuses_a_bad_token_or_a_bot_that_is_not_admin_and_stores_nothing(
        node: Node, bot: FakeBotApi) -> None:
    with pytest.raises(OperationError, match="Telegram refused the token: Unauthorized"):
        await telegram.connect(node, "koeln", "@koeln_de", "123456789:AAE" + "y" * 32)
    with pytest.raises(OperationError, match="not an admin of @not_ours"):
        await telegram.connect(node, "koeln", "@not_ours", TOKEN)
    with pytest.raises(OperationError, match="chat not found"):
        await telegram.connect(node, "koeln", "@nobody_here", TOKEN)
    with pytest.raises(OperationError, match="bot token"):
        await telegram.connect(node, "koeln", "@koeln_de", "not a token")
    with pytest.raises(OperationError, match="@username"):
        await telegram.connect(node, "koeln", "koeln_de; DROP", TOKEN)
    with pytest.raises(OperationError, match="no group or channel"):
        await telegram.connect(node, "nobody", "@koeln_de", TOKEN)
    assert await connections.list_connections(node) == []


async def test_the_token_is_stored_sealed_and_never_listed(node: Node, bot: FakeBotApi) -> None:
    await telegram.connect(node, "koeln", "@koeln_de", TOKEN)
    async with node.db.read() as session:
        row = (await session.exec(select(CrosspostAccount))).one()
    assert TOKEN.encode() not in row.secret and TOKEN.split(":")[1].encode() not in row.secret
    listed = await connections.list_connections(node)
    assert TOKEN not in repr(listed)
    assert [(r.actor, r.target, r.state) for r in listed] == [("koeln", "@koeln_de", "active")]


async def test_a_removed_bot_pauses_the_connection_and_a_refused_delete_is_not_retried(
        node: Node, bot: FakeBotApi) -> None:
    await connect_both(node)
    worker = CrosspostWorker(node, clock=bot.clock)
    async with node.db.write() as session:
        channel = (await session.exec(select(LocalActor).where(
            LocalActor.username == "koeln_fa"))).one()
        note = await publishing.publish_note(session, channel, node.urls, text="یک",
                                             language="fa")
    await drain(node, worker, bot.clock)
    bot.refuse_delete = True
    async with node.db.write() as session:
        channel = (await session.exec(select(LocalActor).where(
            LocalActor.username == "koeln_fa"))).one()
        await publishing.delete_object(session, channel, note, node.urls)
    await drain(node, worker, bot.clock)
    async with node.db.read() as session:
        item = (await session.exec(select(CrosspostItem))).one()
    assert item.state == "failed" and "can't be deleted" in (item.last_error or "")
    assert len(of(bot.sent_to("@koeln_fa"), "deleteMessage")) == 1  # once, not for ever

    bot.channels["@koeln_fa"] = (-1001001, "left", False)  # the bot was removed
    async with node.db.write() as session:
        channel = (await session.exec(select(LocalActor).where(
            LocalActor.username == "koeln_fa"))).one()
        await publishing.publish_note(session, channel, node.urls, text="دو", language="fa")
    await drain(node, worker, bot.clock)
    listed = {r.target: r for r in await connections.list_connections(node)}
    assert listed["@koeln_fa"].state == "paused"
    assert "bot is not a member" in (listed["@koeln_fa"].paused_reason or "")
    assert listed["@koeln_fa"].items.get("pending") == 1  # waits, is not lost

    # Made admin again and connected again: the waiting post goes.
    bot.channels["@koeln_fa"] = (-1001001, "administrator", True)
    await telegram.connect(node, "koeln_fa", "@koeln_fa", TOKEN)
    await drain(node, worker, bot.clock)
    assert visible(of(bot.sent_to("@koeln_fa"), "sendMessage")[-1].fields["text"]) \
        .startswith("دو")
    listed = {r.target: r for r in await connections.list_connections(node)}
    assert listed["@koeln_fa"].state == "active" and listed["@koeln_fa"].items.get("sent")

    await connections.disconnect(node, "koeln_fa", "telegram", "@koeln_fa")
    assert [r.target for r in await connections.list_connections(node)] == ["@koeln_de"]
    with pytest.raises(OperationError, match="not connected"):
        await connections.disconnect(node, "koeln_fa", "telegram", "@koeln_fa")


def test_markup_telegram_does_not_allow_is_escaped_never_sent_raw() -> None:
    hostile = ('<p><script>alert(1)</script><img src=x onerror=alert(1)>'
               '<a href="javascript:alert(1)">x</a><b>bold<i>both</b></i>'
               '<a href="https://ok.example/?a=1&b=&quot;">ok</a> 1 < 2 & 3 > 2</p>')
    out = subset(hostile)
    visible(out)
    assert "<script" not in out and "<img" not in out and "javascript:" not in out
    assert "1 &lt; 2 &amp; 3 &gt; 2" in out
    post = read_post({"type": "Note", "contentMap": {"fa": "<p>&lt;b&gt;not bold&lt;/b&gt;</p>"},
                      "id": "https://node.example/objects/1"})
    [part] = plan(post)
    assert "&lt;b&gt;not bold" in part.text and "<b>not" not in part.text


async def test_name_withheld_campaigns_and_their_updates_never_leave_public_ones_do(
        node: Node, bot: FakeBotApi) -> None:
    from node.campaigns import operations as campaigns
    from tests.test_campaigns import dossier

    await connect_both(node)
    withheld = await campaigns.create_campaign(node, "koeln", dossier(
        visibility="name_withheld"))
    await campaigns.add_update(node, withheld, {"text": "دادگاه تجدید نظر برگزار شد."})
    public = await campaigns.create_campaign(node, "koeln", dossier(visibility="public"))
    await campaigns.add_update(node, public, {"text": "ملاقات با خانواده ممنوع شد."})
    await drain(node, CrosspostWorker(node, clock=bot.clock), bot.clock)
    async with node.db.read() as session:
        queued = [i.object_uri for i in (await session.exec(select(CrosspostItem))).all()]
    texts = " ".join(str(c.fields) for c in bot.calls)
    assert withheld not in queued and "دادگاه تجدید نظر" not in texts
    assert public in queued and "ملاقات با خانواده" in texts
    assert len(queued) == 2  # the public campaign and its update, nothing of the other
