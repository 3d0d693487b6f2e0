"""`hambastegi` subcommands for action calls, co-signing, participation and media."""

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


def add_event_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", help="the event as JSON (a file, or - for stdin)")
    parser.add_argument("--lang", help="the event's language (default: the group's)")
    parser.add_argument("--title", help="title in --lang")
    parser.add_argument("--title-in", action="append", metavar="LANG=TEXT")
    parser.add_argument("--text", help="text in --lang")
    parser.add_argument("--text-in", action="append", metavar="LANG=TEXT")
    parser.add_argument("--start", help="ISO 8601; without offset = local time in --timezone")
    parser.add_argument("--end")
    parser.add_argument("--timezone", help="IANA name, e.g. Europe/Zurich")
    parser.add_argument("--kind", choices=["action", "meeting", "conference"])
    parser.add_argument("--place-name")
    parser.add_argument("--street")
    parser.add_argument("--postcode")
    parser.add_argument("--city")
    parser.add_argument("--country")
    parser.add_argument("--lat", type=float)
    parser.add_argument("--lon", type=float)
    parser.add_argument("--online-url")
    parser.add_argument("--target", help="the institution addressed, e.g. the ILO")
    parser.add_argument("--hashtag", action="append")
    parser.add_argument("--flyer", help="name of an uploaded image (hambastegi media upload)")
    parser.add_argument("--flyer-alt")
    parser.add_argument("--join-mode", choices=["free", "restricted", "invite", "external"])
    parser.add_argument("--category")


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


def register(sub: Any, publish: Any, edit: Any) -> None:
    call = publish.add_parser("call", help="an action call, meeting or conference (Event)")
    call.add_argument("group")
    add_event_flags(call)
    call.set_defaults(func=cmd_publish_call)
    edit_call = edit.add_parser("call", help="replace an event's details (Update)")
    edit_call.add_argument("id")
    add_event_flags(edit_call)
    edit_call.set_defaults(func=cmd_edit_call)

    postpone = sub.add_parser("postpone", help="postpone an event (Update + a public Note)")
    postpone.add_argument("id")
    postpone.add_argument("--start", help="the new start (ISO 8601, local time)")
    postpone.add_argument("--end")
    postpone.set_defaults(func=cmd_postpone)
    cancel = sub.add_parser("cancel", help="cancel an event (Update + a public Note)")
    cancel.add_argument("id")
    cancel.set_defaults(func=cmd_cancel)

    invite = sub.add_parser("invite", help="invite a group on another node to co-sign")
    invite.add_argument("id", help="the event's id")
    invite.add_argument("target", help="@group@host or an actor URL")
    invite.set_defaults(func=cmd_invite)
    cosigners = sub.add_parser("cosigners", help="invited groups and their answers")
    cosigners.add_argument("id")
    cosigners.set_defaults(func=cmd_cosigners)
    invitations = sub.add_parser("invitations", help="invitations a group received")
    invitations.add_argument("group")
    invitations.set_defaults(func=cmd_invitations)
    invitation = sub.add_parser("invitation", help="accept, decline or withdraw")
    invitation.add_argument("action", choices=["accept", "decline", "withdraw"])
    invitation.add_argument("group")
    invitation.add_argument("invitation_id", type=int)
    invitation.set_defaults(func=cmd_invitation)

    joins = sub.add_parser("join-requests", help="pending participation requests")
    joins.add_argument("group")
    joins.set_defaults(func=cmd_join_requests)
    join = sub.add_parser("join-request", help="accept or reject a participation request")
    join.add_argument("action", choices=["accept", "reject"])
    join.add_argument("group")
    join.add_argument("request_id", type=int)
    join.set_defaults(func=cmd_join_request)

    media = sub.add_parser("media", help="uploads").add_subparsers(dest="media_cmd",
                                                                   required=True)
    upload = media.add_parser("upload", help="store an image without its metadata")
    upload.add_argument("file")
    upload.add_argument("--group", help="the group it belongs to (no other group may use it)")
    upload.add_argument("--focus", metavar="X,Y",
                        help="focal point kept when readers crop it, each -1..1 (0,0 the "
                             "centre, -1,1 the top left); write --focus=-0.5,0.3 for negatives")
    upload.set_defaults(func=cmd_media_upload)
