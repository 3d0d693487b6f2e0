"""Documents cached by a web process follow changes made by other processes (the CLI,
other web processes) at once: the next request after the change sees it."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
from sqlmodel import col, delete, select

from node.core.cache import BatchedReads, GroupLookups, SingleFlight
from node.storage.models import InboxItem, LocalActor
from node.storage.wakeup import WalIndex
from tests.conftest import NodeFactory, wait_for
from tests.fediverse import FakeRemote, signed_post

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


# The DMS byte of the -shm file: every SQLite connection of a process holds a
# read lock on it; a process finding no such lock takes itself for the first and
# resets the wal-index under the others (https://sqlite.org/walformat.html).
SHM_DMS = 128
LOCK_QUERY = """
import fcntl, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDWR)
probe = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, int(sys.argv[2]), 1, 0)
print(struct.unpack("hhqqi4x", fcntl.fcntl(fd, fcntl.F_GETLK, probe))[0] != fcntl.F_UNLCK)
"""


def shm_locked_by_another_process(shm: Path) -> bool:
    result = subprocess.run([sys.executable, "-c", LOCK_QUERY, str(shm), str(SHM_DMS)],
                            capture_output=True, text=True, check=True)
    return result.stdout.strip() == "True"


def test_reading_the_wal_index_keeps_this_processes_sqlite_locks(tmp_path: Path) -> None:
    """Closing any descriptor of a file drops the process's POSIX locks on it:
    a probe that opened and closed the -shm let the next process (the CLI)
    reset the wal-index under the server, which died of SIGBUS."""
    database = tmp_path / "db.sqlite3"
    conn = sqlite3.connect(database)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.commit()
    shm = Path(f"{database}-shm")
    assert shm_locked_by_another_process(shm)
    probe = WalIndex(shm)
    first = probe.header()
    assert first is not None and len(first) == 48
    assert probe.header() == first  # nothing committed in between
    assert shm_locked_by_another_process(shm)
    conn.execute("INSERT INTO t VALUES (2)")
    conn.commit()
    assert probe.header() != first
    assert shm_locked_by_another_process(shm)
    conn.close()
    probe.close()


# --- the group inbox's cached lookup follows groups made and removed elsewhere ------------


async def test_group_inbox_lookup_follows_groups_created_and_deleted_by_other_processes(
        nodes: NodeFactory, remote: FakeRemote) -> None:
    node = await nodes.create("inboxes")
    alice = remote.add_actor("alice")
    inbox = f"{node.actor_url('bonn')}/inbox"

    async def post() -> int:
        listen = remote.activity(alice, "Listen", node.actor_url("bonn"))
        return (await signed_post(inbox, listen, alice)).status_code

    assert await post() == 404
    assert await post() == 404  # now from the cache
    await asyncio.to_thread(node.cli, "group", "create", "bonn", "--language", "de")
    assert await post() == 202  # the CLI's commit moved the change counter
    assert await post() == 202
    # Removed by another process (no command does it; a database tool could).
    async with node.db().write() as session:
        group = (await session.exec(select(LocalActor).where(
            col(LocalActor.username) == "bonn"))).one()
        await session.exec(delete(InboxItem).where(col(InboxItem.recipient_id) == group.id))
        await session.exec(delete(LocalActor).where(col(LocalActor.id) == group.id))
    assert await post() == 404


# --- the inbox's shared reads and fetches -----------------------------------------------------


async def test_concurrent_reads_share_one_query_and_errors_reach_every_caller() -> None:
    calls: list[list[str]] = []
    failing = False

    async def read_many(keys: list[str]) -> dict[str, int]:
        calls.append(keys)
        if failing:
            raise OSError("database gone")
        return {key: len(key) for key in keys if key != "missing"}

    reads: BatchedReads[str, int] = BatchedReads(read_many)
    found = await asyncio.gather(*(reads.get(k) for k in ["a", "bb", "a", "missing"]))
    assert found == [1, 2, 1, None]
    assert calls == [["a", "bb", "missing"]]
    failing = True
    results = await asyncio.gather(reads.get("c"), reads.get("dd"), return_exceptions=True)
    assert all(isinstance(r, OSError) for r in results), results
    assert len(calls) == 2


async def test_a_caller_that_goes_away_does_not_cancel_the_shared_fetch() -> None:
    started = 0
    release = asyncio.Event()

    async def fetch() -> str:
        nonlocal started
        started += 1
        await release.wait()
        return "key"

    flights: SingleFlight[str] = SingleFlight()
    first = asyncio.ensure_future(flights.run("k", fetch))
    second = asyncio.ensure_future(flights.run("k", fetch))
    await wait_for(lambda: _is(flights.waiting("k") == 2), what="both waiting")
    first.cancel()  # its client hung up
    release.set()
    assert await second == "key"
    assert started == 1
    assert len(flights) == 0 and flights.waiting("k") == 0


async def _is(value: bool) -> bool:
    return value


async def test_group_lookups_share_a_read_and_keep_none_begun_before_a_change() -> None:
    lookups = GroupLookups()
    reads = 0
    gate = asyncio.Event()

    async def read() -> int | None:
        nonlocal reads
        reads += 1
        await gate.wait()
        return 7

    pending = [asyncio.ensure_future(lookups.lookup("koeln", read)) for _ in range(5)]
    await wait_for(lambda: _is(reads == 1), what="the one read")
    lookups.clear()  # a change was seen while the read ran
    gate.set()
    assert await asyncio.gather(*pending) == [7] * 5
    assert reads == 1
    assert await lookups.lookup("koeln", read) == 7
    assert reads == 2  # the earlier answer was not kept
    assert await lookups.lookup("koeln", read) == 7
    assert reads == 2  # this one was
