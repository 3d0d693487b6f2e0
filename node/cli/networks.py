"""`hambastegi network …`: networks of groups (issue 15; README, "Networks").

``register`` only defines arguments; each handler imports what it needs when it
runs (node/cli/main.py), so `--help` loads nothing of the networks code.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from node.core.settings import Settings

MODULE = "node.cli.networks:"


def cmd_create(args: argparse.Namespace, settings: Settings) -> None:
    from node.cli.common import with_node
    from node.networks import members

    print(with_node(settings, lambda node: members.create(
        node, args.name, display_name=args.display_name or args.name,
        language=args.language, summary=args.summary)))


def cmd_join(args: argparse.Namespace, settings: Settings) -> None:
    from node.cli.common import with_node
    from node.groups.errors import OperationError
    from node.networks import directory, members

    entry = None
    if args.city is not None or args.country is not None or args.languages:
        try:
            entry = directory.Entry(city=directory.city(args.city),
                                    country=directory.country(args.country),
                                    languages=directory.language_list(args.languages or []))
        except directory.DirectoryError as exc:
            raise OperationError(str(exc)) from exc
    print(with_node(settings, lambda node: members.join(node, args.group, args.network,
                                                        entry)))


def _rows(memberships: list[Any]) -> None:
    for m in memberships:
        place = ", ".join(p for p in (m.city, m.country) if p)
        print(f"{m.id}\t{m.member_uri}\t{m.name}\t{place}\t{m.node_host}\t"
              f"{' '.join(m.languages)}")


def cmd_applications(args: argparse.Namespace, settings: Settings) -> None:
    from node.cli.common import with_node
    from node.networks import members

    _rows(with_node(settings, lambda node: members.applications(node, args.network)))


def cmd_members(args: argparse.Namespace, settings: Settings) -> None:
    from node.cli.common import with_node
    from node.networks import members

    _rows(with_node(settings, lambda node: members.members(node, args.network)))


def cmd_decide(args: argparse.Namespace, settings: Settings) -> None:
    from node.cli.common import with_node
    from node.networks import members

    membership = with_node(settings, lambda node: members.decide_application(
        node, args.network, args.application_id, accept=args.decision == "accept"))
    print(f"{membership.member_uri}\t{membership.state}")


def cmd_remove(args: argparse.Namespace, settings: Settings) -> None:
    from node.cli.common import with_node
    from node.networks import members

    with_node(settings, lambda node: members.remove(node, args.network, args.actor_url))


def cmd_leave(args: argparse.Namespace, settings: Settings) -> None:
    from node.cli.common import with_node
    from node.networks import members

    with_node(settings, lambda node: members.leave(node, args.group, args.network_url))


def cmd_joined(args: argparse.Namespace, settings: Settings) -> None:
    from node.cli.common import with_node
    from node.networks import members

    for joined in with_node(settings, lambda node: members.joined(node, args.group)):
        print(f"{joined.network_uri}\t{joined.state}")


def register(sub: Any) -> None:
    """Add `network create|join|applications|accept|reject|remove|leave|members|joined`."""
    network = sub.add_parser("network", help="networks of groups").add_subparsers(
        dest="network_cmd", required=True)
    create = network.add_parser("create", help="a network actor that groups join")
    create.add_argument("name")
    create.add_argument("--display-name")
    create.add_argument("--language", default="en")
    create.add_argument("--summary")
    create.set_defaults(func=MODULE + "cmd_create")
    join = network.add_parser("join", help="a local group applies to a network")
    join.add_argument("group")
    join.add_argument("network", help="@network@host or the network's actor URL")
    join.add_argument("--city", help="for the network's public member directory")
    join.add_argument("--country", help="ISO 3166-1 alpha-2, e.g. IR")
    join.add_argument("--language", dest="languages", action="append",
                      help="a language the group works in (repeat)")
    join.set_defaults(func=MODULE + "cmd_join")
    for name, helptext in (("applications", "pending applications (private)"),
                           ("members", "accepted members")):
        listing = network.add_parser(name, help=helptext)
        listing.add_argument("network")
        listing.set_defaults(func=MODULE + f"cmd_{name}")
    for decision in ("accept", "reject"):
        decide = network.add_parser(decision, help=f"{decision} an application")
        decide.add_argument("network")
        decide.add_argument("application_id", type=int, help="the id from `applications`")
        decide.set_defaults(func=MODULE + "cmd_decide", decision=decision)
    remove = network.add_parser("remove", help="remove a member (it is no longer relayed)")
    remove.add_argument("network")
    remove.add_argument("actor_url")
    remove.set_defaults(func=MODULE + "cmd_remove")
    leave = network.add_parser("leave", help="a local group leaves a network")
    leave.add_argument("group")
    leave.add_argument("network_url")
    leave.set_defaults(func=MODULE + "cmd_leave")
    joined = network.add_parser("joined", help="the networks a local group applied to")
    joined.add_argument("group")
    joined.set_defaults(func=MODULE + "cmd_joined")
