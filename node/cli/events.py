"""`hambastegi` subcommands for action calls, co-signing, participation and media: their
parsers. The handlers are in node/cli/event_commands.py, imported when one runs, so
registering these costs argparse only (node/cli/main.py)."""

from __future__ import annotations

import argparse
from typing import Any

RUN = "node.cli.event_commands:"


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


def register(sub: Any, publish: Any, edit: Any) -> None:
    call = publish.add_parser("call", help="an action call, meeting or conference (Event)")
    call.add_argument("group")
    add_event_flags(call)
    call.set_defaults(func=RUN + "cmd_publish_call")
    edit_call = edit.add_parser("call", help="replace an event's details (Update)")
    edit_call.add_argument("id")
    add_event_flags(edit_call)
    edit_call.set_defaults(func=RUN + "cmd_edit_call")

    postpone = sub.add_parser("postpone", help="postpone an event (Update + a public Note)")
    postpone.add_argument("id")
    postpone.add_argument("--start", help="the new start (ISO 8601, local time)")
    postpone.add_argument("--end")
    postpone.set_defaults(func=RUN + "cmd_postpone")
    cancel = sub.add_parser("cancel", help="cancel an event (Update + a public Note)")
    cancel.add_argument("id")
    cancel.set_defaults(func=RUN + "cmd_cancel")

    invite = sub.add_parser("invite", help="invite a group on another node to co-sign")
    invite.add_argument("id", help="the event's id")
    invite.add_argument("target", help="@group@host or an actor URL")
    invite.set_defaults(func=RUN + "cmd_invite")
    cosigners = sub.add_parser("cosigners", help="invited groups and their answers")
    cosigners.add_argument("id")
    cosigners.set_defaults(func=RUN + "cmd_cosigners")
    invitations = sub.add_parser("invitations", help="invitations a group received")
    invitations.add_argument("group")
    invitations.set_defaults(func=RUN + "cmd_invitations")
    invitation = sub.add_parser("invitation", help="accept, decline or withdraw")
    invitation.add_argument("action", choices=["accept", "decline", "withdraw"])
    invitation.add_argument("group")
    invitation.add_argument("invitation_id", type=int)
    invitation.set_defaults(func=RUN + "cmd_invitation")

    joins = sub.add_parser("join-requests", help="pending participation requests")
    joins.add_argument("group")
    joins.set_defaults(func=RUN + "cmd_join_requests")
    join = sub.add_parser("join-request", help="accept or reject a participation request")
    join.add_argument("action", choices=["accept", "reject"])
    join.add_argument("group")
    join.add_argument("request_id", type=int)
    join.set_defaults(func=RUN + "cmd_join_request")

    media = sub.add_parser("media", help="uploads").add_subparsers(dest="media_cmd",
                                                                   required=True)
    upload = media.add_parser("upload", help="store an image without its metadata")
    upload.add_argument("file")
    upload.add_argument("--group", help="the group it belongs to (no other group may use it)")
    upload.add_argument("--focus", metavar="X,Y",
                        help="focal point kept when readers crop it, each -1..1 (0,0 the "
                             "centre, -1,1 the top left); write --focus=-0.5,0.3 for negatives")
    upload.set_defaults(func=RUN + "cmd_media_upload")
