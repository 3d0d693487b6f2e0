"""Documents cached by a web process follow changes made by other processes (the CLI,
other web processes) at once: the next request after the change sees it."""

from __future__ import annotations

import asyncio

import httpx

from tests.conftest import NodeFactory, wait_for

AS = {"Accept": "application/activity+json"}


async def test_cli_delete_is_410_on_the_next_get_of_a_running_node(nodes: NodeFactory) -> None:
    node = await nodes.create("cache")
    await asyncio.to_thread(node.cli, "group", "create", "koeln", "--language", "de")
    ids = [(await asyncio.to_thread(node.cli, "publish", "note", "koeln", "--text",
                                    f"Nachricht {i}")).stdout.strip() for i in range(3)]
    async with httpx.AsyncClient() as client:
        for note_id in ids:
            for _ in range(2):  # the second answer comes from the cache
                assert (await client.get(note_id, headers=AS)).status_code == 200
            html = await client.get(note_id, headers={"Accept": "text/html"})
            assert html.status_code == 200
            await asyncio.to_thread(node.cli, "delete", note_id)
            assert (await client.get(note_id, headers=AS)).status_code == 410
            assert (await client.get(note_id, headers={"Accept": "text/html"})
                    ).status_code == 410


async def test_cli_edit_and_new_group_are_seen_on_the_next_get(nodes: NodeFactory) -> None:
    node = await nodes.create("cache")
    await asyncio.to_thread(node.cli, "group", "create", "koeln", "--language", "de")
    note_id = (await asyncio.to_thread(node.cli, "publish", "note", "koeln", "--text",
                                       "vorher")).stdout.strip()
    nodeinfo = f"{node.base_url}/nodeinfo/2.1"
    async with httpx.AsyncClient() as client:
        assert "vorher" in (await client.get(note_id, headers=AS)).text
        before = (await client.get(nodeinfo)).json()["usage"]["users"]["total"]
        await asyncio.to_thread(node.cli, "edit", "note", note_id, "--text", "nachher")
        assert "nachher" in (await client.get(note_id, headers=AS)).text
        await asyncio.to_thread(node.cli, "group", "create", "bonn", "--language", "de")
        after = (await client.get(nodeinfo)).json()["usage"]["users"]["total"]
    assert after == before + 1


async def test_the_cached_html_group_page_shows_a_post_published_by_the_cli_next(
        nodes: NodeFactory) -> None:
    node = await nodes.create("cache")
    await asyncio.to_thread(node.cli, "group", "create", "koeln", "--language", "de")
    await asyncio.to_thread(node.cli, "publish", "note", "koeln", "--text", "erste")
    page = f"{node.base_url}/groups/koeln"
    html = {"Accept": "text/html"}
    async with httpx.AsyncClient() as client:
        for _ in range(2):  # the second answer comes from the cache
            first = await client.get(page, headers=html)
            assert first.status_code == 200
            assert "erste" in first.text and "zweite" not in first.text
        await asyncio.to_thread(node.cli, "publish", "note", "koeln", "--text", "zweite")
        assert "zweite" in (await client.get(page, headers=html)).text
        # The JSON actor at the same URL is a different cached document.
        assert (await client.get(page, headers=AS)).json()["type"] == "Group"


class Counter:
    """A change counter whose reads the test can hold open."""

    def __init__(self) -> None:
        self.value = 0
        self.reads = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.cleared = 0

    async def read(self) -> int:
        self.reads += 1
        seen = self.value  # the value at the moment the query runs
        await self.gate.wait()
        return seen

    def clear(self) -> None:
        self.cleared += 1


async def test_concurrent_requests_share_counter_reads() -> None:
    from node.core.cache import ChangeWatcher

    counter = Counter()
    watcher = ChangeWatcher(counter.read, counter.clear)
    counter.gate.clear()
    waiting = [asyncio.create_task(watcher.sync()) for _ in range(100)]
    await wait_for(lambda: _true(counter.reads == 1), what="first read")
    counter.gate.set()
    await asyncio.gather(*waiting)
    assert counter.reads == 1 and counter.cleared == 0


async def test_a_sync_after_a_change_waits_for_a_read_that_sees_it() -> None:
    from node.core.cache import ChangeWatcher

    counter = Counter()
    watcher = ChangeWatcher(counter.read, counter.clear)
    await watcher.sync()
    counter.gate.clear()
    early = asyncio.create_task(watcher.sync())  # its read began before the change
    await wait_for(lambda: _true(counter.reads == 2), what="second read")
    counter.value = 1  # another process commits
    late = asyncio.create_task(watcher.sync())
    counter.gate.set()
    await asyncio.gather(early, late)
    # The late caller did not settle for the read already running (which missed it).
    assert counter.reads == 3 and counter.cleared == 1


async def _true(value: bool) -> bool:
    return value
