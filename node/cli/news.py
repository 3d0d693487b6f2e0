"""`hambastegi` subcommands for news items and language channels (issue 13).

``register`` only defines arguments; each handler imports what it needs when
it runs, so `hambastegi --help` and unrelated commands do not load the news code.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from node.core.settings import Settings


def _pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    from node.cli.common import CliError

    out: dict[str, str] = {}
    for value in values or []:
        lang, sep, text = value.partition("=")
        if not sep:
            raise CliError(f"{flag} takes LANG=TEXT, got {value!r}")
        out[lang.strip()] = text
    return out


def _read_text(value: str | None) -> str | None:
    import sys

    return sys.stdin.read() if value == "-" else value


def item_body(args: argparse.Namespace, default_language: str | None) -> dict[str, Any]:
    """The API's JSON, from --json and/or flags (flags win)."""
    from node.cli.common import CliError
    from node.cli.event_commands import _read_json

    body: dict[str, Any] = _read_json(args.json) if args.json else {}
    lang = args.lang or body.get("language") or default_language
    if lang is not None:
        body["language"] = lang
    raw_versions = body.get("versions", {})
    if not isinstance(raw_versions, dict):
        raise CliError("--json: versions must be an object of language → version")
    versions: dict[str, Any] = {k: dict(v) if isinstance(v, dict) else v
                                for k, v in raw_versions.items()}
    text = _read_text(args.text)
    for tag, field, value in ([(lang, "title", args.title), (lang, "text", text),
                               (lang, "summary", args.summary)]
                              + [(k, "title", v) for k, v in
                                 _pairs(args.title_in, "--title-in").items()]
                              + [(k, "text", v) for k, v in
                                 _pairs(args.text_in, "--text-in").items()]
                              + [(k, "summary", v) for k, v in
                                 _pairs(args.summary_in, "--summary-in").items()]):
        if value is None:
            continue
        if tag is None:
            raise CliError("--lang is needed with --title/--text/--summary")
        version = versions.setdefault(tag, {})
        if not isinstance(version, dict):
            raise CliError(f"--json: versions[{tag}] must be an object")
        version[field] = value
    if versions:
        body["versions"] = versions
    if args.photo:
        alts = args.alt or []
        if len(alts) > len(args.photo):
            raise CliError("more --alt than --photo (one --alt per photo, in order)")
        body["photos"] = [{"media": name, "alt": {lang: alts[i]} if i < len(alts) and lang
                           else {}} for i, name in enumerate(args.photo)]
    for flag, key in (("hashtag", "hashtags"), ("sector", "sectors"), ("source", "sources")):
        if getattr(args, flag):
            body[key] = getattr(args, flag)
    if args.country is not None:
        body["country"] = args.country
    return body


def _version_body(args: argparse.Namespace) -> dict[str, Any]:
    from node.cli.event_commands import _read_json

    body: dict[str, Any] = _read_json(args.json) if args.json else {}
    for field, value in (("title", args.title), ("text", _read_text(args.text)),
                         ("summary", args.summary)):
        if value is not None:
            body[field] = value
    if args.alt:
        body["alt"] = args.alt
    return body


def cmd_publish(args: argparse.Namespace, settings: Settings) -> None:
    from node.cli.common import with_node
    from node.federation.runtime import Node
    from node.groups.operations import require_group
    from node.news import operations as news

    async def run(node: Node) -> str:
        # Texts given without --lang are in the group's language.
        actor = await require_group(node, args.group)
        return await news.create_item(node, args.group, item_body(args, actor.language))

    print(with_node(settings, run))


def cmd_edit(args: argparse.Namespace, settings: Settings) -> None:
    from node.cli.common import with_node
    from node.federation.runtime import Node
    from node.news import operations as news

    async def run(node: Node) -> str:
        # Texts given without --lang are in the item's primary language.
        language = await news.item_language(node, args.id)
        return await news.replace_item(node, args.id, item_body(args, language))

    print(with_node(settings, run))


def cmd_add_version(args: argparse.Namespace, settings: Settings) -> None:
    from node.cli.common import with_node
    from node.news import operations as news

    body = _version_body(args)
    print(with_node(settings, lambda node: news.add_version(node, args.id, args.lang, body)))


def cmd_edit_version(args: argparse.Namespace, settings: Settings) -> None:
    from node.cli.common import with_node
    from node.news import operations as news

    body = _version_body(args)
    print(with_node(settings, lambda node: news.edit_version(node, args.id, args.lang, body)))


def cmd_channel_enable(args: argparse.Namespace, settings: Settings) -> None:
    from node.cli.common import with_node
    from node.news import channels

    for actor_id in with_node(settings, lambda node: channels.enable(node, args.group,
                                                                     args.languages)):
        print(actor_id)


def cmd_channel_list(args: argparse.Namespace, settings: Settings) -> None:
    from node.cli.common import with_node
    from node.news import channels

    for lang, actor_id in with_node(settings, lambda node: channels.list_channels(
            node, args.group)):
        print(f"{lang}\t{actor_id}")


def cmd_bulletin_publish(args: argparse.Namespace, settings: Settings) -> None:
    from node.cli.common import with_node
    from node.mail.queue import bulletin_hook
    from node.news import bulletin

    number, object_id = with_node(settings, lambda node: bulletin.publish(
        node, args.group, since=args.since, on_published=bulletin_hook(settings)))
    print(f"{number}\t{object_id}", flush=True)
    if getattr(args, "wait", False) and settings.mail_enabled:
        from node.cli.mail import wait_for_bulletin

        wait_for_bulletin(settings, args.group, number)


def edit_note(node: Any, object_id: str, text: str) -> Any:
    """`hambastegi edit note`, refused for news items and channel copies."""
    from node.groups import operations
    from node.news import operations as news

    async def run() -> str:
        await news.refuse_note_edit(node, object_id)
        return await operations.edit_note(node, object_id, text=text)

    return run()


def delete_any(node: Any, object_id: str) -> Any:
    """`hambastegi delete ID`: a news item goes with its channels' copies."""
    from node.groups import operations
    from node.news import operations as news

    async def run() -> str:
        if await news.is_item(node, object_id):
            return await news.delete_item(node, object_id)
        deleted = await operations.delete_post(node, object_id)
        await news.delete_copies(node, object_id)  # a call's channel copies go with it
        return deleted

    return run()


def _item_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", help="the item as JSON (a file, or - for stdin)")
    parser.add_argument("--lang", help="the item's primary language (default: the group's)")
    parser.add_argument("--title", help="title in --lang")
    parser.add_argument("--text", help="Markdown text in --lang (- reads stdin)")
    parser.add_argument("--summary", help="summary / content warning in --lang")
    parser.add_argument("--title-in", action="append", metavar="LANG=TEXT")
    parser.add_argument("--text-in", action="append", metavar="LANG=TEXT")
    parser.add_argument("--summary-in", action="append", metavar="LANG=TEXT")
    parser.add_argument("--photo", action="append", metavar="NAME",
                        help="an uploaded image (hambastegi media upload); up to 4")
    parser.add_argument("--alt", action="append", help="alt text in --lang, one per --photo")
    parser.add_argument("--hashtag", action="append")
    parser.add_argument("--country", help="ISO 3166-1 alpha-2, e.g. IR")
    parser.add_argument("--sector", action="append", help="e.g. oil, transport, teachers")
    parser.add_argument("--source", action="append", metavar="URL")


def _version_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id", help="the item's id (URL) or uuid")
    parser.add_argument("--lang", required=True)
    parser.add_argument("--json", help="the version as JSON {title, text, summary, alt}")
    parser.add_argument("--title")
    parser.add_argument("--text", help="Markdown (- reads stdin)")
    parser.add_argument("--summary")
    parser.add_argument("--alt", action="append", help="alt text, one per photo, in order")


def register(sub: Any, publish: Any, edit: Any) -> None:
    """Add `publish news`, `edit news`, `news add-version|edit-version`, `channel …`,
    `bulletin publish`."""
    publish_news = publish.add_parser("news", help="a news item with versions per language")
    publish_news.add_argument("group")
    _item_flags(publish_news)
    publish_news.set_defaults(func="node.cli.news:cmd_publish")
    edit_news = edit.add_parser("news", help="replace a news item (versions left out go)")
    edit_news.add_argument("id", help="the item's id (URL) or uuid")
    _item_flags(edit_news)
    edit_news.set_defaults(func="node.cli.news:cmd_edit")

    news = sub.add_parser("news", help="versions of news items").add_subparsers(
        dest="news_cmd", required=True)
    add = news.add_parser("add-version", help="add a language (federates as Update)")
    _version_flags(add)
    add.set_defaults(func="node.cli.news:cmd_add_version")
    correct = news.add_parser("edit-version", help="correct a language's version")
    _version_flags(correct)
    correct.set_defaults(func="node.cli.news:cmd_edit_version")

    channel = sub.add_parser("channel", help="language channels GROUP_LANG").add_subparsers(
        dest="channel_cmd", required=True)
    enable = channel.add_parser("enable", help="one followable actor per language")
    enable.add_argument("group")
    enable.add_argument("languages", nargs="+", metavar="LANG")
    enable.set_defaults(func="node.cli.news:cmd_channel_enable")
    listing = channel.add_parser("list", help="a group's channels")
    listing.add_argument("group")
    listing.set_defaults(func="node.cli.news:cmd_channel_list")

    bulletins = sub.add_parser("bulletin", help="numbered bulletins of news items")
    bulletin_cmds = bulletins.add_subparsers(dest="bulletin_cmd", required=True)
    publish_bulletin = bulletin_cmds.add_parser(
        "publish", help="bulletin N+1 of the items since the last one; prints N and its id")
    publish_bulletin.add_argument("group")
    publish_bulletin.add_argument("--since", help="ISO 8601 date (default: the last bulletin)")
    publish_bulletin.add_argument("--wait", action="store_true",
                                  help="show the mails' progress until all are sent or bounced "
                                       "(a `serve` or `worker` sends them)")
    publish_bulletin.set_defaults(func="node.cli.news:cmd_bulletin_publish")
