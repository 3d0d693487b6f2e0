"""`hambastegi telegram …`, `hambastegi bluesky …`, `hambastegi bridge bluesky …`:
a group's posts on its Telegram channels and Bluesky account (issue 27; README,
"Telegram and Bluesky"). Registration imports argparse only (cli/main.py)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from node.core.settings import Settings

HERE = "node.cli.crosspost:"


def register(sub: Any) -> None:
    telegram = sub.add_parser("telegram", help="a group's Telegram channels").add_subparsers(
        dest="telegram_cmd", required=True)
    connect = telegram.add_parser("connect", help="post a group's or language channel's "
                                  "posts to a Telegram channel (a bot that is its admin)")
    connect.add_argument("actor", help="the group or language channel (koeln, koeln_fa)")
    connect.add_argument("channel", help="the Telegram channel: @name")
    connect.add_argument("--token-stdin", action="store_true", required=True,
                         help="read the bot's token from standard input")
    connect.set_defaults(func=HERE + "cmd_telegram_connect")
    listing = telegram.add_parser("list", help="the connected channels and their queues")
    listing.set_defaults(func=HERE + "cmd_list", service="telegram")
    disconnect = telegram.add_parser("disconnect", help="stop posting to a channel")
    disconnect.add_argument("actor")
    disconnect.add_argument("channel")
    disconnect.set_defaults(func=HERE + "cmd_disconnect", service="telegram")

    bluesky = sub.add_parser("bluesky", help="a group's Bluesky account").add_subparsers(
        dest="bluesky_cmd", required=True)
    b_connect = bluesky.add_parser("connect", help="post a group's posts to its Bluesky "
                                   "account (an app password)")
    b_connect.add_argument("actor", help="the group or language channel")
    b_connect.add_argument("handle", help="the account's handle (name.bsky.social)")
    b_connect.add_argument("--app-password-stdin", action="store_true", required=True,
                           help="read an app password (Settings → App passwords) from "
                           "standard input")
    b_connect.add_argument("--pds", default="https://bsky.social",
                           help="the account's PDS (default https://bsky.social)")
    b_connect.set_defaults(func=HERE + "cmd_bluesky_connect")
    b_list = bluesky.add_parser("list", help="the connected accounts and their queues")
    b_list.set_defaults(func=HERE + "cmd_list", service="bluesky")
    b_disconnect = bluesky.add_parser("disconnect", help="stop posting to an account")
    b_disconnect.add_argument("actor")
    b_disconnect.add_argument("channel", metavar="handle")
    b_disconnect.set_defaults(func=HERE + "cmd_disconnect", service="bluesky")

    bridge = sub.add_parser("bridge", help="Bridgy Fed").add_subparsers(
        dest="bridge_cmd", required=True)
    b_bridge = bridge.add_parser("bluesky", help="bridge a group to Bluesky through Bridgy "
                                 "Fed: follow its bot, accept its follow back (run again "
                                 "to accept it when the group approves followers by hand)")
    b_bridge.add_argument("group")
    b_bridge.add_argument("--bot", default="@bsky.brid.gy@bsky.brid.gy",
                          help="the bridge's bot account")
    b_bridge.set_defaults(func=HERE + "cmd_bridge")


def _secret_from_stdin() -> str:
    secret = sys.stdin.readline().strip()
    if not secret:
        from node.cli.common import CliError

        raise CliError("nothing on standard input")
    return secret


def cmd_telegram_connect(args: argparse.Namespace, settings: Settings) -> None:
    from node.cli.common import with_node
    from node.crosspost.telegram.connect import connect

    token = _secret_from_stdin()
    account = with_node(settings, lambda node: connect(node, args.actor, args.channel, token))
    print(f"{args.actor} → Telegram {account.target}: connected")


def cmd_bluesky_connect(args: argparse.Namespace, settings: Settings) -> None:
    from node.cli.common import with_node
    from node.crosspost.bluesky.connect import connect

    password = _secret_from_stdin()
    account = with_node(settings, lambda node: connect(node, args.actor, args.handle,
                                                       password, pds=args.pds))
    print(f"{args.actor} → Bluesky {account.target} ({account.remote_id}): connected")


def cmd_list(args: argparse.Namespace, settings: Settings) -> None:
    from node.cli.common import with_node
    from node.crosspost.connections import list_connections

    rows = with_node(settings, lambda node: list_connections(node, args.service))
    if not rows:
        print("none")
    for row in rows:
        state = row.state + (f" ({row.paused_reason})" if row.paused_reason else "")
        items = ", ".join(f"{k}={v}" for k, v in sorted(row.items.items())) or "no posts"
        print(f"{row.actor}\t{row.target}\t{state}\t{items}")


def cmd_disconnect(args: argparse.Namespace, settings: Settings) -> None:
    from node.cli.common import with_node
    from node.crosspost.connections import disconnect

    with_node(settings, lambda node: disconnect(node, args.actor, args.service,
                                                args.channel))
    print(f"{args.actor} → {args.service} {args.channel}: disconnected")


def cmd_bridge(args: argparse.Namespace, settings: Settings) -> None:
    from node.cli.common import with_node
    from node.crosspost.bridgy import bridge

    for line in with_node(settings, lambda node: bridge(node, args.group, args.bot)):
        print(line)
