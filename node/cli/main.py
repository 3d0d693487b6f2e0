"""The ``hambastegi`` command. Scripts rely on these names: keep them stable.

Errors print one line to stderr and exit 1 (2 for usage errors, argparse's).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

from node.cli import events as cli_events
from node.cli import news as cli_news
from node.cli.common import CliError, load_settings, prepare, with_node
from node.core import logs
from node.core.settings import Settings, SettingsError
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
    from node.core.server import connection_cap, guarded_protocol, raise_open_files_limit

    app = create_app(settings, run_worker=not args.no_worker)
    cap = connection_cap(settings.max_connections, raise_open_files_limit())
    print(f"serving {settings.base_url} on {args.host}:{args.port}", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_config=None,
                proxy_headers=False, server_header=False, timeout_graceful_shutdown=10,
                http=guarded_protocol(settings.header_timeout, cap),
                timeout_keep_alive=int(max(1, settings.keepalive_timeout)),
                limit_concurrency=cap)


def cmd_worker(args: argparse.Namespace, settings: Settings) -> None:
    async def run(node: Node) -> None:
        worker = node.delivery_worker()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await worker.run(stop)

    with_node(settings, run)


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
    print(with_node(settings, lambda node: cli_news.edit_note(node, args.id, args.text)))


def cmd_delete(args: argparse.Namespace, settings: Settings) -> None:
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
    from node.cli.status import print_status

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hambastegi", description=__doc__)
    parser.add_argument("--config", help="KEY=VALUE settings file (env vars win)")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("init", help="create the data dir and database, run migrations"
                   ).set_defaults(func=cmd_init)
    serve = sub.add_parser("serve", help="web server with in-process delivery worker")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--demo", action="store_true", help="create a demo group if missing")
    serve.add_argument("--no-worker", action="store_true",
                       help="web only; run `hambastegi worker` processes for delivery")
    serve.set_defaults(func=cmd_serve)
    sub.add_parser("worker", help="delivery worker only").set_defaults(func=cmd_worker)
    sub.add_parser("status", help="queue depth and failing hosts").set_defaults(func=cmd_status)
    database = sub.add_parser("db", help="database tools").add_subparsers(dest="db_cmd",
                                                                          required=True)
    copy = database.add_parser("copy", help="copy all data into another (empty) database")
    copy.add_argument("--to", required=True, help="e.g. postgresql://user@host/db")
    copy.set_defaults(func=cmd_db_copy)

    group = sub.add_parser("group", help="manage groups").add_subparsers(dest="group_cmd",
                                                                          required=True)
    create = group.add_parser("create", help="create a group")
    create.add_argument("name")
    create.add_argument("--display-name")
    create.add_argument("--language", default="en")
    create.add_argument("--summary")
    create.add_argument("--manual", action="store_true", help="approve followers by hand")
    create.set_defaults(func=cmd_group_create)
    group.add_parser("list", help="list groups").set_defaults(func=cmd_group_list)
    group_edit = group.add_parser("edit", help="change a group's profile (federates an Update)")
    group_edit.add_argument("name")
    group_edit.add_argument("--display-name")
    group_edit.add_argument("--summary", help="plain text or simple HTML ('' removes it)")
    group_edit.add_argument("--language")
    group_edit.add_argument("--avatar", help="name of the group's upload ('' for the default)")
    group_edit.add_argument("--header", help="name of the group's upload ('' for the default)")
    group_edit.add_argument("--link", action="append", metavar="NAME=URL",
                            help="a profile link (repeat; replaces all links)")
    group_edit.add_argument("--no-links", action="store_true", help="remove all links")
    group_edit.add_argument("--manual", action=argparse.BooleanOptionalAction,
                            help="approve followers by hand")
    group_edit.add_argument("--discoverable", action=argparse.BooleanOptionalAction)
    group_edit.add_argument("--indexable", action=argparse.BooleanOptionalAction)
    group_edit.set_defaults(func=cmd_group_edit)

    publish = sub.add_parser("publish", help="publish a post").add_subparsers(
        dest="publish_cmd", required=True)
    note = publish.add_parser("note", help="a public Note from a group")
    note.add_argument("group")
    note.add_argument("--text", required=True, help="the text, or - to read stdin")
    note.add_argument("--lang")
    note.set_defaults(func=cmd_publish_note)

    edit = sub.add_parser("edit", help="edit a post").add_subparsers(dest="edit_cmd",
                                                                     required=True)
    cli_events.register(sub, publish, edit)
    cli_news.register(sub, publish, edit)
    edit_note = edit.add_parser("note")
    edit_note.add_argument("id", help="the object's id (URL) or uuid")
    edit_note.add_argument("--text", required=True)
    edit_note.set_defaults(func=cmd_edit_note)
    delete = sub.add_parser("delete", help="delete a post (Delete + Tombstone)")
    delete.add_argument("id")
    delete.set_defaults(func=cmd_delete)

    for name, pinned in (("pin", True), ("unpin", False)):
        pin = sub.add_parser(name, help=f"{name} a post (the group's featured posts)")
        pin.add_argument("id")
        pin.set_defaults(func=cmd_pin, pinned=pinned)
    replies = sub.add_parser("replies", help="replies received to a group's posts")
    replies.add_argument("group")
    replies.set_defaults(func=cmd_replies)
    for name, hidden in (("hide", True), ("unhide", False)):
        hide = sub.add_parser(name, help=f"{name} a received reply (id from `replies`)")
        hide.add_argument("reply_id", type=int)
        hide.set_defaults(func=cmd_hide, hidden=hidden)

    follow = sub.add_parser("follow", help="a local group follows a remote actor")
    follow.add_argument("group")
    follow.add_argument("target", help="@user@host or an actor URL")
    follow.set_defaults(func=cmd_follow)
    unfollow = sub.add_parser("unfollow", help="undo a follow")
    unfollow.add_argument("group")
    unfollow.add_argument("target", help="the actor URL")
    unfollow.set_defaults(func=cmd_unfollow)

    requests = sub.add_parser("follow-requests", help="pending follow requests")
    requests.add_argument("group")
    requests.set_defaults(func=cmd_requests)
    for decision in ("accept", "reject"):
        p = sub.add_parser(decision, help=f"{decision} a follow request")
        p.add_argument("group")
        p.add_argument("request_id", type=int)
        p.set_defaults(func=cmd_decide, decision=decision)

    token = sub.add_parser("token", help="API tokens").add_subparsers(dest="token_cmd",
                                                                      required=True)
    token_create = token.add_parser("create", help="print a new bearer token (shown once)")
    token_create.add_argument("--label", default="api")
    token_create.add_argument("--group", help="limit the token to one group")
    token_create.set_defaults(func=cmd_token_create)
    token.add_parser("list", help="the tokens (id, label, group or *, created, state)"
                     ).set_defaults(func=cmd_token_list)
    token_revoke = token.add_parser("revoke", help="revoke a token: refused at once")
    token_revoke.add_argument("id", type=int, help="the id shown by `token list`")
    token_revoke.set_defaults(func=cmd_token_revoke)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args)
        logs.configure(settings.log_level)
        long_running = args.func in (cmd_serve, cmd_worker)
        prepare(settings, long_running=long_running)
        if long_running:
            from node.core.metrics import METRICS

            # Every serve and worker process adds its counts to one set (/metrics).
            METRICS.configure_multiprocess(settings.data_dir / "metrics")
        args.func(args, settings)
    except (SettingsError, operations.OperationError, CliError) as exc:
        print(f"hambastegi: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
