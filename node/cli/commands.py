"""The handlers of the core `hambastegi` subcommands (the parser is node/cli/main.py).

Imported only once a command is parsed and about to run, so that ``--help`` and usage
errors load no database, crypto or web code (node/cli/main.py).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from node.cli.common import CliError, with_node
from node.core.settings import Settings
from node.core.urls import Urls
from node.federation.runtime import Node
from node.groups import operations

DEMO_GROUP = "demo"


async def ensure_demo(node: Node) -> None:
    async with node.db.read() as session:
        from node.federation.local_actors import get_group

        exists = await get_group(session, DEMO_GROUP) is not None
    if not exists:
        await operations.create_group(
            node, DEMO_GROUP, display_name="گروه نمونه — Demo solidarity group",
            language="fa", summary="<p>یک گروه نمونه در یک گره همبستگی.</p>",
        )
        await operations.publish_note(
            node, DEMO_GROUP, text="همبستگی کارگری — workers' solidarity across borders.",
            language="fa",
        )


def cmd_init(args: argparse.Namespace, settings: Settings) -> None:
    with_node(settings, lambda node: asyncio.sleep(0))
    print(f"initialised {settings.data_dir} ({settings.database_url.split('://')[0]})")


def cmd_serve(args: argparse.Namespace, settings: Settings) -> None:
    import uvicorn

    from node.app import create_app

    if args.demo:
        with_node(settings, ensure_demo)
    from node.core.server import (
        connection_cap,
        event_loop,
        guarded_protocol,
        raise_open_files_limit,
    )

    app = create_app(settings, run_worker=not args.no_worker)
    cap = connection_cap(settings.max_connections, raise_open_files_limit())
    print(f"serving {settings.base_url} on {args.host}:{args.port}", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_config=None,
                proxy_headers=False, server_header=False, timeout_graceful_shutdown=10,
                # Behind a proxy every connection is the proxy's: the per-address cap
                # then counts requests in flight by the proxy's header (middleware.py).
                http=guarded_protocol(
                    settings.header_timeout, cap,
                    max_per_address=None if settings.client_address_header
                    else settings.max_connections_per_address),
                timeout_keep_alive=int(max(1, settings.keepalive_timeout)),
                limit_concurrency=cap, loop=event_loop())


def cmd_worker(args: argparse.Namespace, settings: Settings) -> None:
    from node.federation.outbox_sync import SyncWorker

    async def run(node: Node) -> None:
        worker = node.delivery_worker()
        # Catch-up of followed outboxes runs where deliveries run (leased per actor).
        syncer = SyncWorker(node, period=settings.sync_seconds,
                            poll=settings.worker_poll_seconds)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        from node.crosspost.worker import CrosspostWorker

        # Telegram / Bluesky copies beside deliveries, not in their slots.
        runs = [worker.run(stop), syncer.run(stop), CrosspostWorker(node).run(stop)]
        if settings.mail_enabled:
            from node.mail.worker import MailWorker

            runs.append(MailWorker(node, idle_wait=node.wakeup.waiter().wait).run(stop))
        await asyncio.gather(*runs)

    with_node(settings, run, fast_loop=True)


def cmd_group_create(args: argparse.Namespace, settings: Settings) -> None:
    actor = with_node(settings, lambda node: operations.create_group(
        node, args.name, display_name=args.display_name or args.name, language=args.language,
        summary=args.summary, manually_approves=args.manual))
    print(Urls(settings.base_url).actor(actor.username))


def cmd_group_list(args: argparse.Namespace, settings: Settings) -> None:
    from node.federation.local_actors import list_groups

    async def run(node: Node) -> None:
        async with node.db.read() as session:
            for group in await list_groups(session):
                print(f"{group.username}\t{node.urls.actor(group.username)}\t{group.display_name}")

    with_node(settings, run)


def cmd_group_edit(args: argparse.Namespace, settings: Settings) -> None:
    changes: dict[str, object] = {}
    for flag in ("display_name", "summary", "language", "avatar", "header", "discoverable",
                 "indexable"):
        if getattr(args, flag) is not None:
            changes[flag] = getattr(args, flag)
    if args.manual is not None:
        changes["manually_approves_followers"] = args.manual
    if args.no_links:
        changes["links"] = []
    elif args.link:
        links = []
        for value in args.link:
            name, sep, url = value.partition("=")
            if not sep:
                raise CliError(f"--link takes NAME=URL, got {value!r}")
            links.append({"name": name, "url": url})
        changes["links"] = links
    if not changes:
        raise CliError("nothing to change (see hambastegi group edit --help)")
    actor = with_node(settings, lambda node: operations.edit_group(node, args.name, changes))
    print(Urls(settings.base_url).actor(actor.username))


def cmd_pin(args: argparse.Namespace, settings: Settings) -> None:
    print(with_node(settings, lambda node: operations.pin(node, args.id,
                                                         pinned=args.pinned)))


def cmd_replies(args: argparse.Namespace, settings: Settings) -> None:
    for reply in with_node(settings, lambda node: operations.replies(node, args.group)):
        print(f"{reply.id}\t{reply.moderation_state}\t{reply.actor_uri}\t{reply.uri}")


def cmd_hide(args: argparse.Namespace, settings: Settings) -> None:
    with_node(settings, lambda node: operations.hide_reply(node, args.reply_id,
                                                          hidden=args.hidden))


def cmd_publish_note(args: argparse.Namespace, settings: Settings) -> None:
    text = sys.stdin.read() if args.text == "-" else args.text
    print(with_node(settings, lambda node: operations.publish_note(
        node, args.group, text=text, language=args.lang)))


def cmd_edit_note(args: argparse.Namespace, settings: Settings) -> None:
    from node.cli import news as cli_news

    print(with_node(settings, lambda node: cli_news.edit_note(node, args.id, args.text)))


def cmd_delete(args: argparse.Namespace, settings: Settings) -> None:
    from node.cli import news as cli_news

    print(with_node(settings, lambda node: cli_news.delete_any(node, args.id)))


def cmd_follow(args: argparse.Namespace, settings: Settings) -> None:
    print(with_node(settings, lambda node: operations.follow(node, args.group, args.target)))


def cmd_unfollow(args: argparse.Namespace, settings: Settings) -> None:
    with_node(settings, lambda node: operations.unfollow(node, args.group, args.target))


def cmd_requests(args: argparse.Namespace, settings: Settings) -> None:
    for request in with_node(settings, lambda node: operations.follow_requests(node, args.group)):
        print(f"{request.id}\t{request.actor_uri}")


def cmd_decide(args: argparse.Namespace, settings: Settings) -> None:
    with_node(settings, lambda node: operations.decide_follow_request(
        node, args.group, args.request_id, accept=args.decision == "accept"))


def cmd_token_create(args: argparse.Namespace, settings: Settings) -> None:
    print(with_node(settings, lambda node: operations.create_token(
        node, args.label, args.group)))


def cmd_token_list(args: argparse.Namespace, settings: Settings) -> None:
    from node.groups.tokens import list_tokens

    print("id\tlabel\tgroup\tcreated\tstate")
    for info in with_node(settings, list_tokens):
        state = f"revoked {info.revoked_at:%Y-%m-%d %H:%M}" if info.revoked_at else "active"
        print(f"{info.id}\t{info.label}\t{info.group or '*'}"
              f"\t{info.created_at:%Y-%m-%d %H:%M}\t{state}")


def cmd_token_revoke(args: argparse.Namespace, settings: Settings) -> None:
    from node.groups.tokens import revoke_token

    with_node(settings, lambda node: revoke_token(node, args.id))


def cmd_status(args: argparse.Namespace, settings: Settings) -> None:
    from node.cli.status import print_post, print_status

    if getattr(args, "post", None):
        with_node(settings, lambda node: print_post(node, args.post))
        return
    with_node(settings, print_status)


def cmd_db_copy(args: argparse.Namespace, settings: Settings) -> None:
    from node.core.settings import normalise_database_url
    from node.storage.dbcopy import CopyError, copy_database

    try:
        copied = asyncio.run(copy_database(settings.database_url,
                                           normalise_database_url(args.to)))
    except CopyError as exc:
        raise CliError(str(exc)) from exc
    for table, count in copied.items():
        print(f"{table}\t{count}")
