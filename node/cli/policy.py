"""Parsers of the peer-policy commands: peers, block, unblock, allow, disallow,
domain-rules. argparse only: handlers live in node/cli/policy_commands.py and
are imported when they run (tests/test_cli_startup.py)."""

from __future__ import annotations

from typing import Any

HANDLERS = "node.cli.policy_commands:"


def register(sub: Any) -> None:
    peers = sub.add_parser("peers", help="known nodes: health and software (NodeInfo)")
    peers.add_argument("--refresh", action="store_true",
                       help="fetch every peer's NodeInfo again now")
    peers.add_argument("--json", action="store_true", help="one JSON document")
    peers.set_defaults(func=HANDLERS + "cmd_peers")
    for name, text in (("block", "refuse everything from and to DOMAIN and its subdomains; "
                                 "removes its followers, cancels follows of its actors"),
                       ("allow", "list DOMAIN (and subdomains) as a peer for "
                                 "HAMBASTEGI_FEDERATION=allowlist")):
        add = sub.add_parser(name, help=text)
        add.add_argument("domain", help="a bare domain (example.com) or IP address")
        add.add_argument("--note", help="why (kept with the rule, shown in domain-rules)")
        add.set_defaults(func=HANDLERS + "cmd_rule_add", kind=name)
    for name, kind in (("unblock", "block"), ("disallow", "allow")):
        remove = sub.add_parser(name, help=f"remove a rule made by `{kind}`")
        remove.add_argument("domain")
        remove.set_defaults(func=HANDLERS + "cmd_rule_remove", kind=kind)
    sub.add_parser("domain-rules", help="blocked and allowed domains, and the mode"
                   ).set_defaults(func=HANDLERS + "cmd_rules")
