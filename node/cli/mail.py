"""`hambastegi mail …` and `hambastegi subscribers …` (node/mail/; README "Bulletins by
e-mail"). Registration imports only argparse; handlers are named "module:function".

Addresses are printed only by `subscribers GROUP --export` (to the file named) and
never by any other command: counts, subscriber ids and reasons instead.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import sys
from pathlib import Path
from typing import Any

from node.core.settings import Settings

HERE = "node.cli.mail:"


def register(sub: Any) -> None:
    mail = sub.add_parser("mail", help="the bulletin by e-mail").add_subparsers(
        dest="mail_cmd", required=True)
    key = mail.add_parser("dkim-key", help="make the DKIM key; prints the DNS TXT record")
    key.add_argument("--selector", default="hambastegi")
    key.set_defaults(func=HERE + "cmd_dkim_key")
    status = mail.add_parser("status", help="per mail: queued, sent, deferred, bounced")
    status.add_argument("group", nargs="?")
    status.set_defaults(func=HERE + "cmd_status")
    bounce = mail.add_parser("bounce", help="read one bounce (DSN) or complaint (ARF) "
                             "on standard input (a Postfix pipe transport)")
    bounce.add_argument("--recipient", help="the address it was sent to (Postfix: "
                        "${original_recipient})")
    bounce.set_defaults(func=HERE + "cmd_bounce")
    subs = sub.add_parser(
        "subscribers", help="GROUP [--export FILE] | delete GROUP ADDRESS | "
        "import GROUP --lang L FILE.csv --consent TEXT", add_help=False)
    # Options may come between the words (`import GROUP --lang fa FILE`): the words
    # are parsed by subscribers_parser with parse_intermixed_args.
    subs.add_argument("words", nargs=argparse.REMAINDER)
    subs.set_defaults(func=HERE + "cmd_subscribers")


def subscribers_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hambastegi subscribers",
        usage="%(prog)s GROUP [--export FILE] | delete GROUP ADDRESS | "
              "import GROUP --lang L FILE.csv --consent TEXT")
    parser.add_argument("words", nargs="+", metavar="WORD")
    parser.add_argument("--export", metavar="FILE", help="write the confirmed addresses (CSV)")
    parser.add_argument("--lang", help="import: the list's language")
    parser.add_argument("--consent", help="import: how consent was given (stored per address)")
    return parser


def cmd_dkim_key(args: argparse.Namespace, settings: Settings) -> None:
    from node.cli.common import CliError, with_node
    from node.mail import dkim
    from node.mail.addresses import domain_of

    if not settings.mail_from:
        raise CliError("set HAMBASTEGI_MAIL_FROM first: its domain signs the mail")
    try:
        selector = dkim.check_selector(args.selector)
    except dkim.DkimError as exc:
        raise CliError(str(exc)) from exc
    key = with_node(settings, lambda node: dkim.make_key(node.db, selector,
                                                         domain_of(settings.mail_from)))
    print("Publish this DNS record, then mail is signed with the new key:")
    print(key.txt_record())


def _bar(done: int, total: int, width: int = 30) -> str:
    filled = width if total == 0 else width * done // total
    return "[" + "#" * filled + "." * (width - filled) + "]"


def _line(p: Any) -> str:
    return (f"{p.group}\t{p.kind} {p.ref}\t{_bar(p.sent + p.bounced + p.failed, p.total)} "
            f"queued {p.queued}  sent {p.sent}  deferred {p.deferred}  "
            f"bounced {p.bounced}  failed {p.failed}")


def cmd_status(args: argparse.Namespace, settings: Settings) -> None:
    from node.cli.common import CliError, with_node
    from node.federation import local_actors
    from node.mail import queue

    async def run(node: Any) -> list[Any]:
        group_id = None
        if args.group:
            async with node.db.read() as session:
                group = await local_actors.get_group(session, args.group)
            if group is None:
                raise CliError(f"no group {args.group}")
            group_id = group.id
        return await queue.progress(node.db, group_id=group_id)

    if not settings.mail_enabled:
        print("mail is off: set HAMBASTEGI_SMTP_URL and HAMBASTEGI_MAIL_FROM", file=sys.stderr)
    for p in with_node(settings, run):
        print(_line(p))


def wait_for_bulletin(settings: Settings, group: str, number: int) -> None:
    """`bulletin publish --wait`: a progress line on stderr until every mail of
    bulletin ``number`` is sent, bounced or failed."""
    from node.cli.common import with_node
    from node.federation import local_actors
    from node.mail import queue

    async def run(node: Any) -> None:
        async with node.db.read() as session:
            actor = await local_actors.get_group(session, group)
        if actor is None or actor.id is None:
            return
        message_id = await queue.message_id_of(node.db, actor.id, "bulletin", str(number))
        if message_id is None:
            print("no subscriber reads this bulletin's languages", file=sys.stderr)
            return
        while True:
            found = await queue.progress(node.db, message_ids=[message_id])
            if not found:
                return
            p = found[0]
            print("\r" + _line(p), end="", file=sys.stderr, flush=True)
            if p.done:
                print(file=sys.stderr)
                return
            await asyncio.sleep(0.5)  # the progress display's refresh period

    with_node(settings, run)


def cmd_bounce(args: argparse.Namespace, settings: Settings) -> None:
    from node.cli.common import CliError, with_node
    from node.mail import bounces

    raw = sys.stdin.buffer.read(bounces.MAX_MESSAGE + 1)
    try:
        result = with_node(settings, lambda node: bounces.handle(node, raw, args.recipient))
    except bounces.BounceError as exc:
        raise CliError(str(exc)) from exc
    print(result.line())


def cmd_subscribers(args: argparse.Namespace, settings: Settings) -> None:
    from node.cli.common import CliError, with_node
    from node.federation import local_actors
    from node.mail import subscriptions
    from node.mail.addresses import AddressError

    args = subscribers_parser().parse_intermixed_args(args.words)
    words = list(args.words)
    verb = words[0] if words[0] in ("delete", "import") and len(words) > 1 else "list"
    if verb != "list":
        words = words[1:]
    expected = {"list": 1, "delete": 2, "import": 2}[verb]
    if len(words) != expected:
        raise CliError("usage: subscribers GROUP [--export FILE] | subscribers delete GROUP "
                       "ADDRESS | subscribers import GROUP --lang L FILE.csv --consent TEXT")

    async def group_of(node: Any) -> Any:
        async with node.db.read() as session:
            group = await local_actors.get_group(session, words[0])
        if group is None:
            raise CliError(f"no group {words[0]}")
        return group

    if verb == "delete":
        async def delete(node: Any) -> bool:
            return await subscriptions.delete_address(node, await group_of(node), words[1])
        try:
            gone = with_node(settings, delete)
        except AddressError as exc:
            raise CliError(str(exc)) from exc
        print("deleted (a keyed hash is kept so that an import cannot add it back)"
              if gone else "no such subscriber")
        return
    if verb == "import":
        if not args.lang or not args.consent:
            raise CliError("import needs --lang and --consent")
        try:
            text = Path(words[1]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"cannot read {words[1]}: {exc}") from exc

        async def bring(node: Any) -> Any:
            return await subscriptions.import_addresses(node, await group_of(node), args.lang,
                                                        text.splitlines(), args.consent)
        result = with_node(settings, bring)
        if result.refused:
            for line, why in result.refused[:20]:
                print(f"{words[1]}:{line}: {why}", file=sys.stderr)
            raise CliError(f"{len(result.refused)} lines refused; nothing imported")
        print(f"added {result.added}, already there {result.skipped_present}, "
              f"left before (not added) {result.skipped_suppressed}")
        return

    async def listing(node: Any) -> tuple[list[Any], list[dict[str, str]] | None]:
        group = await group_of(node)
        rows = await subscriptions.export(node, group) if args.export else None
        return await subscriptions.counts(node, group), rows

    counts, rows = with_node(settings, listing)
    for lang, kind, n in counts:
        print(f"{lang}\t{kind}\t{n}")
    if rows is not None:
        fd = os.open(args.export, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["address", "languages", "kinds",
                                                        "consent", "confirmed_at"])
            writer.writeheader()
            writer.writerows(rows)
        print(f"exported {len(rows)} addresses to {args.export}", file=sys.stderr)
