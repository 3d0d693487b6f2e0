"""Bulletins: numbered digests of a group's news items, one version per language."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select

from node.groups import operations
from node.news import bulletin, channels
from node.news import operations as news
from node.storage.models import LocalActor, LocalObject
from tests.conftest import DatabaseFactory, LiveNode, cli_environment, run_cli

AS = {"Accept": "application/activity+json"}


async def _doc(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        doc: dict[str, Any] = (await client.get(url, headers=AS)).json()
    return doc


async def _item(live: LiveNode, versions: dict[str, dict[str, str]], language: str) -> str:
    return await news.create_item(live.node, "koeln",
                                  {"language": language, "versions": versions})


async def test_two_bulletins_in_a_row_are_n_and_n_plus_1_with_exactly_their_items(
        live_node: LiveNode) -> None:
    node = live_node.node
    await operations.create_group(node, "koeln", display_name="Köln", language="de")
    await channels.enable(node, "koeln", ["fa"])
    with pytest.raises(operations.OperationError, match="no news items"):
        await bulletin.publish(node, "koeln")
    first = await _item(live_node, {"fa": {"title": "اعتصاب [ماهشهر]", "text": "متن"},
                                    "de": {"title": "Streik *Mahshahr*", "text": "Text"}}, "fa")
    second = await _item(live_node, {"de": {"text": "Kurze Meldung ohne Titel."}}, "de")

    number, one = await bulletin.publish(node, "koeln")
    assert number == 1
    doc = await _doc(one)
    assert doc["type"] == "Article"  # a bulletin is an Article even when short
    assert list(doc["nameMap"]) == ["de", "fa"]  # the group's language first
    assert doc["name"].startswith("Bulletin Nr. 1 — ")
    assert doc["nameMap"]["fa"].startswith("خبرنامهٔ شمارهٔ ")
    german = doc["contentMap"]["de"]
    # Titles are shown as typed (Markdown characters in them are text, not markup).
    assert f'<a href="{first}#v-de"' in german and "Streik *Mahshahr*" in german
    assert f'<a href="{second}"' in german and "Kurze Meldung ohne Titel." in german
    persian = doc["contentMap"]["fa"]
    assert f'<a href="{first}"' in persian and "اعتصاب [ماهشهر]" in persian
    assert second not in persian  # it has no Persian version

    third = await _item(live_node, {"de": {"title": "Danach", "text": "Neu."}}, "de")
    number, two = await bulletin.publish(node, "koeln")
    assert number == 2
    doc = await _doc(two)
    assert list(doc["contentMap"]) == ["de"]
    assert third in doc["content"] and first not in doc["content"]
    assert second not in doc["content"]

    # The Persian channel posted bulletin 1 (it has Persian) as its own Article, not 2.
    async with node.db.read() as session:
        copies = (await session.exec(select(LocalObject).join(
            LocalActor, LocalActor.id == LocalObject.local_actor_id)  # type: ignore[arg-type]
            .where(LocalActor.username == "koeln_fa"))).all()
    assert len(copies) == 2  # the first item and bulletin 1
    assert {c.object_type for c in copies} == {"Article", "Note"}

    # A deleted bulletin's number is not given again.
    await news.delete_item(node, two)
    await _item(live_node, {"de": {"text": "Noch eine Meldung."}}, "de")
    number, _ = await bulletin.publish(node, "koeln")
    assert number == 3


async def test_cli_bulletin_takes_since_and_refuses_a_bad_date_in_one_line(
        tmp_path: Path, databases: DatabaseFactory) -> None:
    env = await cli_environment(tmp_path, databases)
    run_cli(env, "group", "create", "koeln", "--language", "de")
    item = run_cli(env, "publish", "news", "koeln", "--lang", "de", "--text", "Meldung")
    assert item.returncode == 0, item.stderr
    bad = run_cli(env, "bulletin", "publish", "koeln", "--since", "last week")
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "--since" in bad.stderr
    done = run_cli(env, "bulletin", "publish", "koeln", "--since", "2020-01-01")
    assert done.returncode == 0, done.stderr
    number, object_id = done.stdout.split()
    assert number == "1" and object_id.startswith("https://node.example/objects/")
    empty = run_cli(env, "bulletin", "publish", "koeln")
    assert empty.returncode == 1 and "nothing to publish" in empty.stderr
