"""Bridgy Fed, for groups that prefer it to an account of their own on Bluesky
(issue 27, point 3; FEDERATION.md "Bridgy Fed").

Bridgy Fed bridges a fediverse account that opts in by following its bot
(``@bsky.brid.gy@bsky.brid.gy``); the bot follows back. It bridges only accounts that
look like people's public accounts: a profile picture and a name, discoverable, and no
``#nobridge`` (or ``#nobot``) in the profile (fed.brid.gy/docs, read 2026-12; not checked
against the live service). ``requirements`` says what of that our group lacks;
``bridge`` follows the bot and accepts its follow back when the group approves followers
by hand.
"""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import select

from node.crosspost import connections
from node.crosspost.content import read_post
from node.federation.runtime import Node
from node.federation.vocabulary import PUBLIC, actor_document
from node.groups import operations
from node.groups.errors import OperationError
from node.storage.models import Following

BRIDGE = "@bsky.brid.gy@bsky.brid.gy"
OPT_OUT = re.compile(r"#no(bridge|bot)\b", re.IGNORECASE)


def requirements(doc: dict[str, Any]) -> list[str]:
    """What keeps Bridgy Fed from bridging this actor document (pure; empty: nothing)."""
    problems = []
    icon = doc.get("icon")
    if not (isinstance(icon, dict) and isinstance(icon.get("url"), str)):
        problems.append("no profile picture (icon)")
    if not str(doc.get("name") or "").strip():
        problems.append("no display name")
    if doc.get("discoverable") is False:
        problems.append("not discoverable (hambastegi group edit G --discoverable)")
    texts = [str(doc.get("summary") or ""), str(doc.get("name") or "")]
    if any(OPT_OUT.search(text) for text in texts):
        problems.append("#nobridge or #nobot in the profile opts out of bridging")
    return problems


async def bridge(node: Node, group: str, bot: str = BRIDGE) -> list[str]:
    """Follow the bridge's bot, accept its follow back; returns what was done."""
    actor = await operations.require_group(node, group)
    problems = requirements(actor_document(actor, node.urls))
    if problems:
        raise OperationError("Bridgy Fed would not bridge this group: " + "; ".join(problems))
    done: list[str] = []
    async with node.db.read() as session:
        following = {f.target_uri: f.state for f in (await session.exec(select(Following).where(
            Following.local_actor_id == actor.id))).all()}
    bot_host = bot.rsplit("@", 1)[-1].lower()
    ours = [uri for uri in following if urlsplit(uri).netloc.lower() == bot_host]
    if ours:
        done.append(f"following {ours[0]}: {following[ours[0]]}")
    else:
        done.append(f"followed {bot}: {await operations.follow(node, group, bot)}")
    async with node.db.read() as session:
        bots = [f.target_uri for f in (await session.exec(select(Following).where(
            Following.local_actor_id == actor.id))).all()
            if urlsplit(f.target_uri).netloc.lower() == bot_host]
    if bots:
        # Calls' companion Notes go to this bot's inbox (crosspost worker, send_companion).
        await connections.store(node, actor, "bridgy", bots[0], "")
    for request in await operations.follow_requests(node, group):
        if urlsplit(request.actor_uri).netloc.lower() == bot_host:
            await operations.decide_follow_request(node, group, request.id or 0, accept=True)
            done.append(f"accepted the follow of {request.actor_uri}")
    return done


def companion_note(event: dict[str, Any], note_id: str, actor_uri: str) -> dict[str, Any]:
    """The public Note that stands for a call where ``Create{Event}`` is dropped (Bridgy
    Fed bridges Notes and Articles only): title, when, where, target, text, and the link
    to the Event (FEDERATION.md "Bridgy Fed")."""
    post = read_post(event)
    parts = []
    if post.title:
        parts.append(f"<p><strong>{html.escape(post.title)}</strong></p>")
    if post.facts:
        parts.append("<p>" + "<br>".join(html.escape(f) for f in post.facts) + "</p>")
    parts += [f"<p>{p}</p>" for p in post.body]
    link = html.escape(post.link, quote=True)
    parts.append(f'<p><a href="{link}">{link}</a></p>')
    content = "".join(parts)
    note: dict[str, Any] = {"id": note_id, "type": "Note", "attributedTo": actor_uri,
                            "to": [PUBLIC], "cc": [], "content": content, "url": post.link}
    if post.language:
        note["contentMap"] = {post.language: content}
    for key in ("published", "updated"):
        if isinstance(event.get(key), str):
            note[key] = event[key]
    return note


def companion_id(event_uri: str) -> str:
    """Embedded in its activities only; not served (the Event is the document)."""
    return f"{event_uri}/bridge-note"
