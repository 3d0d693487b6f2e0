"""Handlers of the peer-policy commands (parsers: node/cli/policy.py)."""

from __future__ import annotations

import argparse
import json
from datetime import datetime

from node.cli.common import CliError, with_node
from node.core.settings import Settings
from node.federation import peers, policy
from node.federation.runtime import Node


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "-"


def cmd_peers(args: argparse.Namespace, settings: Settings) -> None:
    async def run(node: Node) -> None:
        found = await peers.list_peers(node, refresh=args.refresh)
        if args.json:
            print(json.dumps({"peers": [p.as_json() for p in found]}, indent=1))
            return
        if not found:
            print("no known peers")
            return
        print("host\tsoftware\tlast success\tfailing since\tfailures\tpolicy")
        for p in found:
            software = f"{p.software or '?'} {p.version or ''}".strip()
            if p.nodeinfo_error and not p.software:
                software = f"? ({p.nodeinfo_error})"
            print(f"{p.host}\t{software}\t{_when(p.last_success_at)}\t"
                  f"{_when(p.failing_since)}\t{p.consecutive_failures}\t{p.refused or 'ok'}")

    with_node(settings, run)


def cmd_rule_add(args: argparse.Namespace, settings: Settings) -> None:
    async def run(node: Node) -> policy.RuleChange:
        if args.kind == "block":
            return await policy.block_domain(node, args.domain, args.note)
        return await policy.allow_domain(node, args.domain, args.note)

    try:
        change = with_node(settings, run)
    except policy.PolicyError as exc:
        raise CliError(f"{args.domain!r}: {exc}") from exc
    verb = "blocked" if args.kind == "block" else "allowed"
    print(f"{verb} {change.domain}" + ("" if change.changed else " (already)"))
    if args.kind == "block":
        print(f"followers removed: {change.followers_removed}; "
              f"follows cancelled: {change.follows_cancelled}")
    elif settings.federation_mode != "allowlist":
        print("note: HAMBASTEGI_FEDERATION is not 'allowlist'; the rule applies once it is")


def cmd_rule_remove(args: argparse.Namespace, settings: Settings) -> None:
    async def run(node: Node) -> policy.RuleChange:
        if args.kind == "block":
            return await policy.unblock_domain(node, args.domain)
        return await policy.disallow_domain(node, args.domain)

    try:
        change = with_node(settings, run)
    except policy.PolicyError as exc:
        raise CliError(f"{args.domain!r}: {exc}") from exc
    if not change.changed:
        raise CliError(f"{change.domain} was not {args.kind}ed")
    print(f"un{args.kind}ed {change.domain}" if args.kind == "block"
          else f"disallowed {change.domain}")


def cmd_rules(args: argparse.Namespace, settings: Settings) -> None:
    async def run(node: Node) -> list[policy.Rule]:
        return await policy.list_rules(node)

    rules = with_node(settings, run)
    print(f"federation: {settings.federation_mode}; authorized fetch: "
          f"{'on' if settings.authorized_fetch else 'off'}")
    for rule in rules:
        print(f"{rule.kind}\t{rule.domain}\t{_when(rule.created_at)}\t{rule.note or ''}")
