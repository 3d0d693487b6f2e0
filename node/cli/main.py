"""The ``hambastegi`` command. Scripts rely on these names: keep them stable.

Errors print one line to stderr and exit 1 (2 for usage errors, argparse's).

Starting fast: this module and the registration functions of the subcommand modules
(``register(subparsers)`` in node/cli/events.py; node/cli/news.py the same way) import
only argparse. A parser's ``func`` names its handler as ``"module:function"``; the module
is imported when that command runs, so ``--help``, a usage error or one command loads
only what it uses (tests/test_cli_startup.py).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

from node.cli import campaigns as cli_campaigns
from node.cli import crosspost as cli_crosspost
from node.cli import events as cli_events
from node.cli import mail as cli_mail
from node.cli import mirror as cli_mirror
from node.cli import networks as cli_networks
from node.cli import news as cli_news
from node.cli import policy as cli_policy

COMMANDS = "node.cli.commands:"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hambastegi", description=__doc__)
    parser.add_argument("--config", help="KEY=VALUE settings file (env vars win)")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("init", help="create the data dir and database, run migrations"
                   ).set_defaults(func=COMMANDS + "cmd_init")
    serve = sub.add_parser("serve", help="web server with in-process delivery worker")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--demo", action="store_true", help="create a demo group if missing")
    serve.add_argument("--no-worker", action="store_true",
                       help="web only; run `hambastegi worker` processes for delivery")
    serve.set_defaults(func=COMMANDS + "cmd_serve")
    sub.add_parser("worker", help="delivery worker only").set_defaults(
        func=COMMANDS + "cmd_worker")
    status = sub.add_parser("status", help="queue depth and failing hosts")
    status.add_argument("--post", help="one post (id or uuid): each destination's state")
    status.set_defaults(func=COMMANDS + "cmd_status")
    database = sub.add_parser("db", help="database tools").add_subparsers(dest="db_cmd",
                                                                          required=True)
    copy = database.add_parser("copy", help="copy all data into another (empty) database")
    copy.add_argument("--to", required=True, help="e.g. postgresql://user@host/db")
    copy.set_defaults(func=COMMANDS + "cmd_db_copy")

    group = sub.add_parser("group", help="manage groups").add_subparsers(dest="group_cmd",
                                                                          required=True)
    create = group.add_parser("create", help="create a group")
    create.add_argument("name")
    create.add_argument("--display-name")
    create.add_argument("--language", default="en")
    create.add_argument("--summary")
    create.add_argument("--manual", action="store_true", help="approve followers by hand")
    create.set_defaults(func=COMMANDS + "cmd_group_create")
    group.add_parser("list", help="list groups").set_defaults(func=COMMANDS + "cmd_group_list")
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
    group_edit.set_defaults(func=COMMANDS + "cmd_group_edit")

    publish = sub.add_parser("publish", help="publish a post").add_subparsers(
        dest="publish_cmd", required=True)
    note = publish.add_parser("note", help="a public Note from a group")
    note.add_argument("group")
    note.add_argument("--text", required=True, help="the text, or - to read stdin")
    note.add_argument("--lang")
    note.set_defaults(func=COMMANDS + "cmd_publish_note")

    edit = sub.add_parser("edit", help="edit a post").add_subparsers(dest="edit_cmd",
                                                                     required=True)
    cli_events.register(sub, publish, edit)
    cli_news.register(sub, publish, edit)
    cli_networks.register(sub)
    cli_mirror.register(sub)
    cli_campaigns.register(sub, publish)
    cli_mail.register(sub)
    edit_note = edit.add_parser("note")
    edit_note.add_argument("id", help="the object's id (URL) or uuid")
    edit_note.add_argument("--text", required=True)
    edit_note.set_defaults(func=COMMANDS + "cmd_edit_note")
    delete = sub.add_parser("delete", help="delete a post (Delete + Tombstone)")
    delete.add_argument("id")
    delete.set_defaults(func=COMMANDS + "cmd_delete")

    for name, pinned in (("pin", True), ("unpin", False)):
        pin = sub.add_parser(name, help=f"{name} a post (the group's featured posts)")
        pin.add_argument("id")
        pin.set_defaults(func=COMMANDS + "cmd_pin", pinned=pinned)
    replies = sub.add_parser("replies", help="replies received to a group's posts")
    replies.add_argument("group")
    replies.set_defaults(func=COMMANDS + "cmd_replies")
    for name, hidden in (("hide", True), ("unhide", False)):
        hide = sub.add_parser(name, help=f"{name} a received reply (id from `replies`)")
        hide.add_argument("reply_id", type=int)
        hide.set_defaults(func=COMMANDS + "cmd_hide", hidden=hidden)

    follow = sub.add_parser("follow", help="a local group follows a remote actor")
    follow.add_argument("group")
    follow.add_argument("target", help="@user@host or an actor URL")
    follow.set_defaults(func=COMMANDS + "cmd_follow")
    unfollow = sub.add_parser("unfollow", help="undo a follow")
    unfollow.add_argument("group")
    unfollow.add_argument("target", help="the actor URL")
    unfollow.set_defaults(func=COMMANDS + "cmd_unfollow")

    requests = sub.add_parser("follow-requests", help="pending follow requests")
    requests.add_argument("group")
    requests.set_defaults(func=COMMANDS + "cmd_requests")
    for decision in ("accept", "reject"):
        p = sub.add_parser(decision, help=f"{decision} a follow request")
        p.add_argument("group")
        p.add_argument("request_id", type=int)
        p.set_defaults(func=COMMANDS + "cmd_decide", decision=decision)

    cli_policy.register(sub)
    cli_crosspost.register(sub)

    token = sub.add_parser("token", help="API tokens").add_subparsers(dest="token_cmd",
                                                                      required=True)
    token_create = token.add_parser("create", help="print a new bearer token (shown once)")
    token_create.add_argument("--label", default="api")
    token_create.add_argument("--group", help="limit the token to one group")
    token_create.set_defaults(func=COMMANDS + "cmd_token_create")
    token.add_parser("list", help="the tokens (id, label, group or *, created, state)"
                     ).set_defaults(func=COMMANDS + "cmd_token_list")
    token_revoke = token.add_parser("revoke", help="revoke a token: refused at once")
    token_revoke.add_argument("id", type=int, help="the id shown by `token list`")
    token_revoke.set_defaults(func=COMMANDS + "cmd_token_revoke")
    register_users(sub)
    return parser


USERS = "node.cli.users:"


def register_users(sub: Any) -> None:
    """`hambastegi user …`: accounts of the /admin workspace (README, "Create the first
    admin and log in")."""
    user = sub.add_parser("user", help="workspace accounts").add_subparsers(
        dest="user_cmd", required=True)
    create = user.add_parser("create", help="create an account; prints a one-time link "
                             "to set its password (valid 48 hours)")
    create.add_argument("name")
    create.add_argument("--admin", action="store_true", help="node admin: every group")
    create.add_argument("--group", action="append", metavar="G",
                        help="a group the editor may act for (repeat)")
    create.add_argument("--password-stdin", action="store_true",
                        help="read the password from standard input instead of a link")
    create.set_defaults(func=USERS + "cmd_user_create")
    user.add_parser("list", help="the accounts").set_defaults(func=USERS + "cmd_user_list")
    link = user.add_parser("link", help="a new one-time set-password link")
    link.add_argument("name")
    link.set_defaults(func=USERS + "cmd_user_link")
    passwd = user.add_parser("passwd", help="set a password (logs the account out)")
    passwd.add_argument("name")
    passwd.add_argument("--password-stdin", action="store_true", required=True)
    passwd.set_defaults(func=USERS + "cmd_user_passwd")
    delete = user.add_parser("delete", help="delete an account (its drafts stay)")
    delete.add_argument("name")
    delete.set_defaults(func=USERS + "cmd_user_delete")
    apps = user.add_parser("apps", help="the Mastodon apps the user authorised")
    apps.add_argument("name")
    apps.set_defaults(func=USERS + "cmd_user_apps")
    revoke_app = user.add_parser("revoke-app", help="revoke one of the user's app "
                                 "authorisations (refused at the app's next request)")
    revoke_app.add_argument("name")
    revoke_app.add_argument("id", type=int, help="the ID `hambastegi user apps` shows")
    revoke_app.set_defaults(func=USERS + "cmd_user_revoke_app")


def handler(ref: str) -> Callable[[argparse.Namespace, Any], None]:
    """The function a parser's ``func`` names (``"module:function"``), imported now."""
    module, _, name = ref.partition(":")
    found: Callable[[argparse.Namespace, Any], None] = getattr(
        importlib.import_module(module), name)
    return found


LONG_RUNNING = frozenset({COMMANDS + "cmd_serve", COMMANDS + "cmd_worker"})


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Only now, with a command to run (see the module docstring).
    from node.cli.common import CliError, load_settings, prepare
    from node.core import logs
    from node.core.settings import SettingsError
    from node.groups.errors import OperationError

    try:
        settings = load_settings(args)
        logs.configure(settings.log_level)
        long_running = args.func in LONG_RUNNING
        prepare(settings, long_running=long_running)
        if long_running:
            from node.core.metrics import METRICS

            # Every serve and worker process adds its counts to one set (/metrics).
            METRICS.configure_multiprocess(settings.data_dir / "metrics")
        handler(args.func)(args, settings)
    except (SettingsError, OperationError, CliError) as exc:
        print(f"hambastegi: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
