"""Connecting a Telegram channel: the token must name a bot (getMe), the channel must
exist (getChat), and the bot must be one of its admins allowed to post
(getChatMember: ``administrator`` with ``can_post_messages``), else nothing is stored
and the editor reads Telegram's reason (core.telegram.org/bots/api#getchatmember)."""

from __future__ import annotations

import re

from node.crosspost import connections
from node.crosspost.telegram.api import BotApi, TelegramError
from node.crosspost.worker import service_client
from node.federation.runtime import Node
from node.groups.errors import OperationError
from node.storage.models import CrosspostAccount

# A bot token: the bot's id, a colon, its secret (35 characters today; we take 30-100).
TOKEN = re.compile(r"[0-9]{1,20}:[A-Za-z0-9_-]{30,100}")
# A public channel's @username (5-32 characters) or a private one's numeric id.
CHANNEL = re.compile(r"@[A-Za-z][A-Za-z0-9_]{3,31}|-100[0-9]{5,20}")


async def connect(node: Node, actor_name: str, channel: str, token: str) -> CrosspostAccount:
    channel = channel.strip()
    token = token.strip()
    if not CHANNEL.fullmatch(channel):
        raise OperationError("the channel must be its @username (or a -100… chat id)")
    if not TOKEN.fullmatch(token):
        raise OperationError("that does not look like a bot token (123456:ABC…, from "
                             "@BotFather)")
    actor = await connections.local_actor(node, actor_name)
    client = service_client(node)
    api = BotApi(client, node.settings.telegram_api, token)
    try:
        try:
            me = await api.call("getMe", {})
        except TelegramError as exc:
            raise OperationError(f"Telegram refused the token: {exc.description}") from None
        bot_id = me.get("id") if isinstance(me, dict) else None
        if not isinstance(bot_id, int):
            raise OperationError("Telegram's getMe answered without the bot's id")
        try:
            chat = await api.call("getChat", {"chat_id": channel})
            member = await api.call("getChatMember", {"chat_id": channel, "user_id": bot_id})
        except TelegramError as exc:
            raise OperationError(f"Telegram refused: {exc.description}") from None
    finally:
        await client.close()
    if not isinstance(chat, dict) or chat.get("type") not in ("channel", "supergroup"):
        raise OperationError(f"{channel} is not a channel")
    may_post = (isinstance(member, dict) and member.get("status") in ("administrator",
                                                                      "creator")
                and (chat.get("type") != "channel" or member.get("status") == "creator"
                     or member.get("can_post_messages") is True))
    if not may_post:
        raise OperationError(f"the bot is not an admin of {channel} allowed to post "
                             "messages: add it as an administrator with 'Post messages'")
    chat_id = chat.get("id")
    return await connections.store(node, actor, "telegram", channel, token,
                                   remote_id=str(chat_id) if isinstance(chat_id, int) else None)
