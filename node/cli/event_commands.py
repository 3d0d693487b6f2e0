"""The handlers of the `hambastegi` subcommands for action calls, co-signing,
participation and media; their parsers are node/cli/events.py. Imported only when
one of them runs (node/cli/main.py)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from node.calls import cosign, participation
from node.calls import operations as calls
from node.cli.common import CliError, with_node
from node.core.settings import Settings
from node.federation.runtime import Node
from node.groups import operations
from node.media.uploads import UploadError, parse_focus


def _pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values or []:
        lang, sep, text = value.partition("=")
        if not sep:
            raise CliError(f"{flag} takes LANG=TEXT, got {value!r}")
        out[lang.strip()] = text
    return out


def _read_json(source: str) -> dict[str, Any]:
    try:
        raw = sys.stdin.read() if source == "-" else Path(source).read_text("utf-8")
    except OSError as exc:
        raise CliError(f"--json: cannot read {source}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise CliError(f"--json: {source} is not UTF-8 text") from exc
    try:
        loaded = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CliError(f"--json: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    except RecursionError as exc:
        raise CliError("--json: nested too deeply") from exc
    if not isinstance(loaded, dict):
        raise CliError("--json: expected a JSON object")
    return loaded


def _map(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key, {})
    if not isinstance(value, dict):
        raise CliError(f"--json: {key} must be an object of language → text")
    return value


def event_body(args: argparse.Namespace, default_language: str) -> dict[str, Any]:
    """The same JSON the API takes, from a file or from flags (flags win).

    ``default_language`` is the group's (a new call) or the call's (an edit):
    ``--title``/``--text`` without ``--lang`` are in that language."""
    body: dict[str, Any] = _read_json(args.json) if args.json else {}
    lang = args.lang or body.get("language") or default_language
    body["language"] = lang
    titles = {**_map(body, "title"), **_pairs(args.title_in, "--title-in")}
    texts = {**_map(body, "text"), **_pairs(args.text_in, "--text-in")}
    if args.title:
        titles[lang] = args.title
    if args.text:
        texts[lang] = args.text
    if titles:
        body["title"] = titles
    if texts:
        body["text"] = texts
    for flag, key in (("start", "start"), ("end", "end"), ("timezone", "timezone"),
                      ("kind", "kind"), ("online_url", "online_url"), ("target", "target"),
                      ("join_mode", "join_mode"), ("category", "category")):
        value = getattr(args, flag)
        if value is not None:
            body[key] = value
    place = dict(body.get("place") or {})
    for flag, key in (("place_name", "name"), ("street", "street"), ("postcode", "postcode"),
                      ("city", "city"), ("country", "country"), ("lat", "latitude"),
                      ("lon", "longitude")):
        value = getattr(args, flag)
        if value is not None:
            place[key] = value
    if place:
        body["place"] = place
    if args.hashtag:
        body["hashtags"] = args.hashtag
    if args.flyer:
        body["flyer"] = {"media": args.flyer, "alt": args.flyer_alt or ""}
    return body


def cmd_publish_call(args: argparse.Namespace, settings: Settings) -> None:
    async def work(node: Node) -> str:
        group = await operations.require_group(node, args.group)
        return await calls.create_call(node, args.group, event_body(args, group.language))

    print(with_node(settings, work))


def cmd_edit_call(args: argparse.Namespace, settings: Settings) -> None:
    async def work(node: Node) -> str:
        language = await calls.call_language(node, args.id)
        return await calls.update_call(node, args.id, event_body(args, language))

    print(with_node(settings, work))


def cmd_postpone(args: argparse.Namespace, settings: Settings) -> None:
    print(with_node(settings, lambda node: calls.change_status(
        node, args.id, "postponed", start=args.start, end=args.end)))


def cmd_cancel(args: argparse.Namespace, settings: Settings) -> None:
    print(with_node(settings, lambda node: calls.change_status(node, args.id, "cancelled")))


def cmd_invite(args: argparse.Namespace, settings: Settings) -> None:
    print(with_node(settings, lambda node: cosign.invite(node, args.id, args.target)))


def cmd_cosigners(args: argparse.Namespace, settings: Settings) -> None:
    for row in with_node(settings, lambda node: cosign.cosigners(node, args.id)):
        print(f"{row.actor_uri}\t{row.state}")


def cmd_invitations(args: argparse.Namespace, settings: Settings) -> None:
    for row in with_node(settings, lambda node: cosign.invitations(node, args.group)):
        print(f"{row.id}\t{row.state}\t{row.inviter_uri}\t{row.event_uri}\t"
              f"{row.event.get('name', '')}")


def cmd_invitation(args: argparse.Namespace, settings: Settings) -> None:
    if args.action == "withdraw":
        with_node(settings, lambda node: cosign.withdraw(node, args.group, args.invitation_id))
    else:
        with_node(settings, lambda node: cosign.respond(
            node, args.group, args.invitation_id, accept=args.action == "accept"))


def cmd_join_requests(args: argparse.Namespace, settings: Settings) -> None:
    for row, event in with_node(settings, lambda node: participation.pending(node, args.group)):
        print(f"{row.id}\t{row.actor_uri}\t{event}")


def cmd_join_request(args: argparse.Namespace, settings: Settings) -> None:
    with_node(settings, lambda node: participation.decide(
        node, args.group, args.request_id, accept=args.action == "accept"))


def cmd_media_upload(args: argparse.Namespace, settings: Settings) -> None:
    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror}") from exc
    focus = None
    if args.focus is not None:
        try:
            focus = parse_focus(args.focus)
        except UploadError as exc:
            raise CliError(str(exc)) from exc
    print(with_node(settings, lambda node: operations.upload_media(
        node, data, group=args.group, focus=focus)))
