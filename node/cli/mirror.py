"""`hambastegi mirror …`: static copies of the public site that anyone may host, and the
key that signs them (issue 28; README, "Readers behind censorship").

``register`` only defines arguments; each handler imports what it needs when it runs
(node/cli/main.py).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from node.core.settings import Settings

MODULE = "node.cli.mirror:"


def cmd_key(args: argparse.Namespace, settings: Settings) -> None:
    from node.core import minisign

    key = minisign.load_or_create(settings.data_dir)
    print(key.public().encoded())


def cmd_export(args: argparse.Namespace, settings: Settings) -> None:
    import asyncio
    from datetime import timedelta
    from pathlib import Path

    from node.cli.common import CliError
    from node.mirror.export import MirrorError, Options, export

    if args.valid_days < 1:
        raise CliError("--valid-days must be at least 1")
    base_path = args.base_path or ""
    if base_path and not base_path.endswith("/"):
        base_path += "/"
    options = Options(Path(args.directory).expanduser(), frozenset(args.group or ()),
                      tuple(dict.fromkeys(args.lang or ())), base_path,
                      timedelta(days=args.valid_days))
    try:
        result = asyncio.run(export(settings, options))
    except MirrorError as exc:
        raise CliError(str(exc)) from exc
    print(f"exported {result.files} files to {options.directory}: {result.pages} rendered, "
          f"{result.reused} unchanged posts kept, {result.written} written, "
          f"{result.removed} removed, in {result.seconds:.1f} s")


def cmd_verify(args: argparse.Namespace, settings: Settings) -> None:
    from datetime import UTC, datetime
    from pathlib import Path

    from node.cli.common import CliError
    from node.core import minisign
    from node.mirror import manifest

    if args.key:
        text = args.key
        key_file = Path(args.key).expanduser()
        if key_file.is_file():
            text = key_file.read_text(encoding="ascii", errors="replace")[:4096]
        try:
            public = minisign.PublicKey.parse(text)
        except minisign.MinisignError as exc:
            raise CliError(f"--key: {exc}") from exc
    else:
        found = minisign.read_public(settings.data_dir)
        if found is None:
            raise CliError("give --key: the node's key, from its "
                           "/.well-known/hambastegi-mirror.pub or its pages' footer")
        public = found
    problems = manifest.verify(Path(args.directory).expanduser(), public, datetime.now(UTC))
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        raise CliError(f"the copy does not match its signed manifest "
                       f"({len(problems)} problem(s))")
    print("the copy matches its signed manifest")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    mirror = sub.add_parser("mirror", help="signed static copies of the public site"
                            ).add_subparsers(dest="mirror_cmd", required=True)
    mirror.add_parser("key", help="print the mirror signing key (made on first use)"
                      ).set_defaults(func=MODULE + "cmd_key")
    export = mirror.add_parser("export", help="write the public site as files, signed")
    export.add_argument("directory")
    export.add_argument("--group", action="append", metavar="G",
                        help="only this group's pages (repeat for more)")
    export.add_argument("--lang", action="append", metavar="L",
                        help="only this interface language (repeat for more)")
    export.add_argument("--base-path", metavar="URL",
                        help="where the copy is published (e.g. https://bucket.example/x/): "
                             "feeds link there, pages stay relative")
    export.add_argument("--valid-days", type=int, default=30,
                        help="days until the manifest expires (default 30)")
    export.set_defaults(func=MODULE + "cmd_export")
    verify = mirror.add_parser("verify", help="check a copy against its signed manifest")
    verify.add_argument("directory")
    verify.add_argument("--key", help="the node's public key (RW…) or a .pub file; "
                        "default: this node's own")
    verify.set_defaults(func=MODULE + "cmd_verify")
