"""Helpers shared by the CLI modules: settings, schema preparation, running a node."""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from node.core.settings import Settings, local_base_url
from node.storage import migrate

if TYPE_CHECKING:
    from node.federation.runtime import Node

T = TypeVar("T")


class CliError(Exception):
    pass


def load_settings(args: argparse.Namespace) -> Settings:
    config = Path(args.config) if args.config else None
    if getattr(args, "command", None) == "serve":
        # Without HAMBASTEGI_BASE_URL, ids name the address served, not :8000.
        return Settings.load(config_file=config,
                             default_base_url=local_base_url(args.host, args.port))
    return Settings.load(config_file=config)


def prepare(settings: Settings, *, long_running: bool = False) -> None:
    """Data dir and schema: every command may be the first one run."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.media_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.data_dir, 0o700)  # keys and database live here
    if long_running:
        try:
            migrate.upgrade_in_child(settings.database_url)
        except RuntimeError as exc:
            raise CliError(str(exc)) from exc
    else:
        # Alembic only when the schema is behind: loading it to find nothing to do
        # cost a short command a fifth of its time.
        migrate.upgrade_if_behind(settings.database_url)


def with_node(settings: Settings, work: Callable[[Node], Awaitable[T]], *,
              fast_loop: bool = False) -> T:
    """Run ``work`` on a started node. ``fast_loop``: on uvloop when installed, as
    ``serve`` runs — for the long-running ``worker`` (its per-delivery loop cost is
    a quarter of a delivery's CPU, bench/profiles/README.md); short commands keep
    asyncio's loop and skip the import."""
    from node.federation.runtime import Node
    from node.inbound import INBOUND

    async def run() -> T:
        node = Node(settings, inbound=INBOUND)
        await node.start()
        try:
            return await work(node)
        finally:
            await node.close()

    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if fast_loop:
        from node.core.server import event_loop

        if event_loop() == "uvloop":
            import uvloop

            factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(run())


