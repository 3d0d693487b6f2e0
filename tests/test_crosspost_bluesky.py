"""A group's posts on its Bluesky account (issue 27), against a fake PDS on loopback
that records every XRPC call: records valid for the ``atproto`` SDK's models, facets
with byte offsets, images with alt, edits (re-post only when the text changed),
deletes, session refresh, rate limits and a refused login."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from atproto import models
from atproto_client.models.utils import get_or_create
from sqlmodel import select

from node.core.settings import Settings
from node.crosspost import connections
from node.crosspost.bluesky import connect as bluesky
from node.crosspost.bluesky.format import cut, facets
from node.crosspost.worker import CrosspostWorker
from node.federation import publishing
from node.federation.runtime import Node
from node.groups import operations
from node.groups.errors import OperationError
from node.inbound import INBOUND
from node.news import operations as news
from node.storage.models import CrosspostAccount, CrosspostItem, LocalActor
from tests.crosspost_fakes import APP_PASSWORD, DID, HANDLE, Clock, FakePds
from tests.test_crosspost_telegram import drain
from tests.test_photos import photo


@pytest.fixture
async def pds() -> AsyncIterator[FakePds]:
    fake = FakePds(Clock())
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def node(tmp_path: Path, database_url: str) -> AsyncIterator[Node]:
    settings = Settings.load(environ={
        "HAMBASTEGI_BASE_URL": "https://node.example",
        "HAMBASTEGI_DATA_DIR": str(tmp_path / "data"),
        "HAMBASTEGI_DATABASE_URL": database_url,
        "HAMBASTEGI_ALLOW_PRIVATE_NETWORKS": "1",
    })
    settings.media_dir.mkdir(parents=True, exist_ok=True)
    running = Node(settings, inbound=INBOUND)
    await running.start()
    await operations.create_group(running, "tehran", display_name="کمیته همبستگی تهران",
                                  language="fa")
    yield running
    await running.close()


def valid_post(record: dict[str, Any]) -> models.AppBskyFeedPost.Record:
    parsed = get_or_create(record, models.AppBskyFeedPost.Record, strict=True)
    assert isinstance(parsed, models.AppBskyFeedPost.Record)
    return parsed


def created(pds: FakePds) -> list[dict[str, Any]]:
    return [c.body["record"] for c in pds.calls if c.nsid == "com.atproto.repo.createRecord"]


def nsids(pds: FakePds) -> list[str]:
    return [c.nsid.rsplit(".", 1)[-1] for c in pds.calls]


async def test_news_with_photos_is_a_valid_post_with_byte_offset_facets_and_alt_texts(
        node: Node, pds: FakePds) -> None:
    await bluesky.connect(node, "tehran", HANDLE, APP_PASSWORD, pds=pds.url)
    first = await operations.upload_media(node, photo(1600, 1200), group="tehran")
    item_id = await news.create_item(node, "tehran", {
        "language": "fa",
        "versions": {"fa": {"title": "اعتصاب در ماهشهر",
                            "text": "کارگران پتروشیمی در اعتصاب هستند. #همبستگی"}},
        "hashtags": ["اعتصاب"],
        "photos": [{"media": first, "alt": {"fa": "کارگران در برابر کارخانه"}}],
    })
    worker = CrosspostWorker(node, clock=pds.clock)
    await drain(node, worker, pds.clock)
    assert nsids(pds) == ["createSession", "uploadBlob", "createRecord"]
    [rec] = created(pds)
    post = valid_post(rec)
    assert post.langs == ["fa"]
    assert post.embed is not None and post.embed.py_type == "app.bsky.embed.images"
    assert post.embed.images[0].alt == "کارگران در برابر کارخانه"  # type: ignore[union-attr]
    upload = next(c for c in pds.calls if c.nsid.endswith("uploadBlob"))
    assert upload.content_type == "image/jpeg" and len(upload.body) < 1_000_000
    text_bytes = post.text.encode()
    features = {}
    for facet in post.facets or []:
        covered = text_bytes[facet.index.byte_start:facet.index.byte_end].decode()
        feature = facet.features[0]
        features[covered] = feature
    assert features["#همبستگی"].tag == "همبستگی"  # type: ignore[union-attr]
    link = item_id if item_id.startswith("https://") else ""
    assert any(k.startswith("https://node.example/") for k in features), features
    assert link == "" or any(link.rsplit("/", 1)[-1] in k for k in features)

    # An edit that changes the text: delete and post again; one that does not: nothing.
    await news.edit_version(node, item_id, "fa", {"title": "اعتصاب در ماهشهر ادامه دارد",
                                                  "text": "روز دهم اعتصاب."})
    await drain(node, worker, pds.clock)
    assert nsids(pds)[3:] == ["deleteRecord", "uploadBlob", "createRecord"]
    assert "روز دهم اعتصاب" in valid_post(created(pds)[-1]).text
    before = len(pds.calls)
    await news.edit_version(node, item_id, "fa", {"title": "اعتصاب در ماهشهر ادامه دارد",
                                                  "text": "روز دهم اعتصاب.",
                                                  "summary": "خلاصه"})
    await drain(node, worker, pds.clock)
    assert len(pds.calls) == before  # the post's text did not change: no call

    await news.delete_item(node, item_id)
    await drain(node, worker, pds.clock)
    assert nsids(pds)[-1] == "deleteRecord"
    assert pds.records == {}
    await worker.close()


async def test_a_long_call_is_cut_at_a_word_with_its_link_and_a_card(
        node: Node, pds: FakePds) -> None:
    from node.calls import operations as calls

    await bluesky.connect(node, "tehran", HANDLE, APP_PASSWORD, pds=pds.url)
    call_id = await calls.create_call(node, "tehran", {
        "language": "fa", "title": {"fa": "تجمع در برابر وزارت کار"},
        "text": {"fa": "از همه کارگران دعوت می‌کنیم که در این تجمع شرکت کنند. " * 12},
        "start": "2031-03-01T10:00", "timezone": "Asia/Tehran",
        "place": {"name": "میدان آزادی", "city": "تهران", "country": "IR"},
        "target": "وزارت کار"})
    worker = CrosspostWorker(node, clock=pds.clock)
    await drain(node, worker, pds.clock)
    [rec] = created(pds)
    post = valid_post(rec)
    assert len(post.text) <= 300
    assert "2031-03-01 10:00 (UTC+03:30)" in post.text and "میدان آزادی" in post.text
    assert post.text.endswith(call_id) and "…" in post.text
    before_link = post.text.split("…")[0]
    assert before_link.endswith(("کنیم", "که", "در", "این", "تجمع", "شرکت", "کنند.", "از",
                                 "همه", "کارگران", "دعوت", "می‌کنیم"))  # a whole word
    assert post.embed is not None and post.embed.py_type == "app.bsky.embed.external"
    assert post.embed.external.uri == call_id  # type: ignore[union-attr]
    await worker.close()


async def test_an_expired_session_is_refreshed_and_a_429_waits_for_its_reset(
        node: Node, pds: FakePds) -> None:
    await bluesky.connect(node, "tehran", HANDLE, APP_PASSWORD, pds=pds.url)
    async with node.db.write() as session:
        group = (await session.exec(select(LocalActor).where(
            LocalActor.username == "tehran"))).one()
        await publishing.publish_note(session, group, node.urls, text="یک", language="fa")
        await publishing.publish_note(session, group, node.urls, text="دو", language="fa")
    pds.expire_after = 0
    pds.rate_limited = 0
    worker = CrosspostWorker(node, clock=pds.clock)
    assert await worker.run_once() == 1
    assert nsids(pds)[1:] == ["createRecord", "refreshSession", "createRecord"]
    pds.rate_limited = 1
    refused_at = pds.clock()
    await drain(node, worker, pds.clock)
    retried = [c for c in pds.calls if c.nsid.endswith("createRecord")]
    reset = int(refused_at.timestamp()) + 30  # what the fake put in RateLimit-Reset
    assert retried[-1].at.timestamp() >= reset
    assert retried[-1].at - refused_at < timedelta(seconds=31)
    # Posted once each, in order (the refused calls created nothing).
    assert [valid_post(r).text.split("\n")[0] for r in pds.records.values()] == ["یک", "دو"]
    async with node.db.read() as session:
        states = {i.state for i in (await session.exec(select(CrosspostItem))).all()}
        account = (await session.exec(select(CrosspostAccount))).one()
    assert states == {"sent"} and APP_PASSWORD.encode() not in account.secret
    assert account.session is not None and b"refresh-" not in account.session
    await worker.close()


async def test_a_refused_app_password_stores_nothing(node: Node, pds: FakePds) -> None:
    with pytest.raises(OperationError, match="Invalid identifier or password"):
        await bluesky.connect(node, "tehran", HANDLE, "wrong-pass-word-xxxx", pds=pds.url)
    with pytest.raises(OperationError, match="handle"):
        await bluesky.connect(node, "tehran", "not a handle", APP_PASSWORD, pds=pds.url)
    with pytest.raises(OperationError, match="--pds"):
        await bluesky.connect(node, "tehran", HANDLE, APP_PASSWORD, pds="ftp://x/y")
    assert await connections.list_connections(node) == []
    assert DID not in repr(await connections.list_connections(node))


def test_facets_count_utf8_bytes_of_persian_text() -> None:
    text = "همبستگی #کارگران https://node.example/x"
    [tag, link] = facets(text)
    data = text.encode()
    assert data[tag["index"]["byteStart"]:tag["index"]["byteEnd"]].decode() == "#کارگران"
    assert data[link["index"]["byteStart"]:link["index"]["byteEnd"]].decode() == \
        "https://node.example/x"
    assert tag["index"]["byteStart"] == len("همبستگی ".encode()) != len("همبستگی ")


def test_cut_keeps_whole_words_and_the_link() -> None:
    out = cut("کلمه " * 100, "https://node.example/objects/1")
    assert len(out) <= 300 and out.endswith("https://node.example/objects/1")
    assert out.split("…")[0].endswith("کلمه")
