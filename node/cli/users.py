"""The handlers of `hambastegi user …`: workspace accounts (issue 14). Imported only
when such a command runs (node/cli/main.py)."""

from __future__ import annotations

import argparse
import sys

from node.accounts import users
from node.cli.common import CliError, with_node
from node.core.settings import Settings
from node.federation.runtime import Node


def _stdin_password() -> str:
    # One line, as `printf '%s\n' "$PW" | hambastegi … --password-stdin` gives it.
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise CliError("no password on standard input")
    return password


def cmd_user_create(args: argparse.Namespace, settings: Settings) -> None:
    password = _stdin_password() if args.password_stdin else None

    async def work(node: Node) -> str:
        user = await users.create_user(node, args.name, admin=args.admin,
                                       groups=tuple(args.group or ()))
        if password is not None:
            await users.set_password(node, user.username, password)
            return f"created {user.role} {user.username}; the password is set"
        token = await users.create_link(node, user.username)
        return (f"created {user.role} {user.username}. Send this one-time link (valid 48 "
                f"hours) to set the password:\n{users.link_url(node, token)}")

    print(with_node(settings, work))


def cmd_user_link(args: argparse.Namespace, settings: Settings) -> None:
    async def work(node: Node) -> str:
        return users.link_url(node, await users.create_link(node, args.name))

    print(with_node(settings, work))


def cmd_user_list(args: argparse.Namespace, settings: Settings) -> None:
    print("user\trole\tgroups\tpassword")
    for user in with_node(settings, users.list_users):
        print(f"{user.username}\t{user.role}\t{','.join(user.groups) or '*'}"
              f"\t{'set' if user.has_password else 'not set'}")


def cmd_user_passwd(args: argparse.Namespace, settings: Settings) -> None:
    password = _stdin_password()
    with_node(settings, lambda node: users.set_password(node, args.name, password))
    print(f"password of {args.name} changed; its sessions are logged out")


def cmd_user_delete(args: argparse.Namespace, settings: Settings) -> None:
    with_node(settings, lambda node: users.delete_user(node, args.name))
    print(f"deleted {args.name}")


def cmd_user_apps(args: argparse.Namespace, settings: Settings) -> None:
    from node.clientapi import apps

    print("id\tapp\tgroup\tscopes\tsince")
    for row in with_node(settings, lambda node: apps.authorised_apps(node, args.name)):
        print(f"{row.id}\t{row.app}\t{row.group}\t{row.scopes}\t"
              f"{row.created_at:%Y-%m-%d %H:%M}")


def cmd_user_revoke_app(args: argparse.Namespace, settings: Settings) -> None:
    from node.clientapi import apps

    if not with_node(settings, lambda node: apps.revoke_for_user(node, args.name, args.id)):
        raise CliError(f"{args.name} has no authorised app with id {args.id}")
    print(f"revoked app authorisation {args.id} of {args.name}")
