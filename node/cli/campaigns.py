"""`hambastegi` subcommands for campaigns (issue 16); README, "Campaigns".

``register`` only defines arguments; each handler imports the campaign code when
it runs (tests/test_cli_startup.py).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from node.core.settings import Settings



def _json(path: str) -> dict[str, Any]:
    from node.cli.event_commands import _read_json

    return _read_json(path)


def cmd_publish(args: argparse.Namespace, settings: Settings) -> None:
    from node.campaigns import operations
    from node.cli.common import with_node

    body = _json(args.json)
    print(with_node(settings, lambda node: operations.create_campaign(node, args.group, body)))


def cmd_update(args: argparse.Namespace, settings: Settings) -> None:
    from node.campaigns import coowners
    from node.cli.common import with_node

    body = _json(args.json)
    print(with_node(settings, lambda node: coowners.update_any(node, args.id, body)))


def cmd_edit(args: argparse.Namespace, settings: Settings) -> None:
    from node.campaigns import operations
    from node.cli.common import with_node

    body = _json(args.json)
    print(with_node(settings, lambda node: operations.edit_campaign(node, args.id, body)))


def cmd_status(args: argparse.Namespace, settings: Settings) -> None:
    from node.campaigns import operations
    from node.cli.common import with_node

    print(with_node(settings, lambda node: operations.set_status(
        node, args.id, args.status, when=args.date, note=args.note)))


def cmd_visibility(args: argparse.Namespace, settings: Settings) -> None:
    from node.campaigns import operations
    from node.cli.common import with_node

    print(with_node(settings, lambda node: operations.set_visibility(
        node, args.id, args.level, network=args.network)))


def cmd_withdraw(args: argparse.Namespace, settings: Settings) -> None:
    from node.campaigns import operations
    from node.cli.common import with_node

    print(with_node(settings, lambda node: operations.withdraw(node, args.id)))


def cmd_invite(args: argparse.Namespace, settings: Settings) -> None:
    from node.campaigns import coowners
    from node.cli.common import with_node

    print(with_node(settings, lambda node: coowners.invite(node, args.id, args.target)))


def cmd_leave(args: argparse.Namespace, settings: Settings) -> None:
    from node.campaigns import coowners
    from node.cli.common import with_node

    print(with_node(settings, lambda node: coowners.leave(node, args.id, args.group)))


def cmd_remove_owner(args: argparse.Namespace, settings: Settings) -> None:
    from node.campaigns import coowners
    from node.cli.common import with_node

    print(with_node(settings, lambda node: coowners.remove_owner(node, args.id, args.target)))


def cmd_list(args: argparse.Namespace, settings: Settings) -> None:
    import json

    from node.campaigns import listing
    from node.cli.common import with_node

    rows = with_node(settings, lambda node: listing.listing(
        node, country=args.country, sort=args.sort, group=args.group))
    for row in rows:
        print(json.dumps(row, ensure_ascii=False))


def register(sub: Any, publish: Any) -> None:
    publish_campaign = publish.add_parser(
        "campaign", help="a campaign (dossier) for an imprisoned worker; prints its id")
    publish_campaign.add_argument("group")
    publish_campaign.add_argument("--json", required=True,
                                  help="the dossier as JSON (README, Campaigns), - for stdin")
    publish_campaign.set_defaults(func="node.cli.campaigns:cmd_publish")
    campaign = sub.add_parser("campaign", help="change a campaign").add_subparsers(
        dest="campaign_cmd", required=True)
    update = campaign.add_parser("update", help="add a dated timeline entry (a Note)")
    update.add_argument("id")
    update.add_argument("--json", required=True,
                        help='{"date", "text" or "versions": {lang: text}, "sources"}')
    update.set_defaults(func="node.cli.campaigns:cmd_update")
    edit = campaign.add_parser("edit", help="correct the dossier (status and consent stay)")
    edit.add_argument("id")
    edit.add_argument("--json", required=True, help="the dossier as JSON, - for stdin")
    edit.set_defaults(func="node.cli.campaigns:cmd_edit")
    status = campaign.add_parser("status", help="change the status (Update plus a Note)")
    status.add_argument("id")
    status.add_argument("--status", required=True,
                        choices=["detained", "on_trial", "sentenced", "on_bail", "released",
                                 "died_in_custody"])
    status.add_argument("--date", help="YYYY-MM-DD (default: today)")
    status.add_argument("--note", help="a line for the timeline, in the campaign's language")
    status.set_defaults(func="node.cli.campaigns:cmd_status")
    visibility = campaign.add_parser("visibility", help="the consent level")
    visibility.add_argument("id")
    visibility.add_argument("level", choices=["public", "name_withheld", "network_only"])
    visibility.add_argument("--network", help="the network's actor URL (network_only)")
    visibility.set_defaults(func="node.cli.campaigns:cmd_visibility")
    withdraw = campaign.add_parser("withdraw", help="consent withdrawn: Delete everywhere")
    withdraw.add_argument("id")
    withdraw.set_defaults(func="node.cli.campaigns:cmd_withdraw")
    invite = campaign.add_parser("invite", help="invite a group to co-own the campaign")
    invite.add_argument("id")
    invite.add_argument("target", help="@group@host or the group's URL")
    invite.set_defaults(func="node.cli.campaigns:cmd_invite")
    leave = campaign.add_parser("leave", help="our group stops co-owning another node's "
                                "campaign (Undo of its Accept)")
    leave.add_argument("id", help="the campaign's URL")
    leave.add_argument("--group", required=True, help="the co-owning group")
    leave.set_defaults(func="node.cli.campaigns:cmd_leave")
    remove_owner = campaign.add_parser("remove-owner", help="end a group's co-ownership "
                                       "(or its open invitation)")
    remove_owner.add_argument("id")
    remove_owner.add_argument("target", help="@group@host or the group's URL")
    remove_owner.set_defaults(func="node.cli.campaigns:cmd_remove_owner")
    listing = campaign.add_parser("list", help="the node's public campaigns, one JSON a line")
    listing.add_argument("--country")
    listing.add_argument("--group")
    listing.add_argument("--sort", choices=["status", "days"], default="status")
    listing.set_defaults(func="node.cli.campaigns:cmd_list")
