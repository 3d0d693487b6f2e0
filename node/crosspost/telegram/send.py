"""What one queue row does on Telegram: send a post's messages, edit them, delete them.

``remote`` (kept on the row) records each part sent: ``{"parts": [{"kind", "ids"}]}``,
so a retry after a failure in the middle goes on from the part that failed, an edit
edits the messages of each part (editMessageText, editMessageCaption) and a delete
deletes every message (deleteMessage). Telegram lets bots delete channel posts for
48 hours only (api#deletemessage): its refusal is kept as the row's reason.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from node.crosspost.content import Image, Post
from node.crosspost.pacing import Outcome, telegram_outcome
from node.crosspost.telegram.api import BotApi, TelegramError, Upload
from node.crosspost.telegram.format import Part, plan

ImageLoader = Callable[[Image], Awaitable[tuple[bytes, str] | None]]
NOT_MODIFIED = "message is not modified"


@dataclass
class Result:
    outcome: Outcome
    remote: dict[str, Any]
    calls: int = 0  # messages sent, edited or deleted (for pacing)
    methods: list[str] = field(default_factory=list)


def count_messages(action: str, post: Post | None, remote: dict[str, Any]) -> int:
    """How many messages the action will send (the pacing's reservation)."""
    done = remote.get("parts") or []
    if action == "delete" or post is None:
        return max(sum(len(p.get("ids") or []) for p in done), 1)
    parts = plan(post)
    if action == "create":
        return max(sum(p.messages for p in parts[len(done):]), 1)
    return max(len(parts), 1)


class _Sender:
    def __init__(self, api: BotApi, chat: str, load: ImageLoader) -> None:
        self.api, self.chat, self.load = api, chat, load
        self.calls = 0
        self.methods: list[str] = []

    async def _call(self, method: str, fields: dict[str, Any],
                    uploads: list[Upload] | None = None) -> Any:
        self.calls += 1
        self.methods.append(method)
        return await self.api.call(method, {"chat_id": self.chat, **fields}, uploads)

    async def send(self, part: Part) -> dict[str, Any]:
        uploads: list[Upload] = []
        for n, image in enumerate(part.images):
            loaded = await self.load(image)
            if loaded is not None:
                uploads.append(Upload(f"photo{n}", loaded[0], loaded[1]))
        html = {"parse_mode": "HTML"}
        if part.kind == "text" or not uploads:
            result = await self._call("sendMessage", {"text": part.text, **html})
            return {"kind": "text", "ids": [_message_id(result)]}
        if len(uploads) == 1:
            result = await self._call("sendPhoto", {"photo": f"attach://{uploads[0].name}",
                                                    "caption": part.text, **html}, uploads)
            return {"kind": "photo", "ids": [_message_id(result)]}
        media = [{"type": "photo", "media": f"attach://{u.name}"} for u in uploads]
        media[0].update({"caption": part.text, **html})
        result = await self._call("sendMediaGroup", {"media": media}, uploads)
        if not isinstance(result, list):
            raise TelegramError(502, "sendMediaGroup answered no list")
        return {"kind": "album", "ids": [_message_id(m) for m in result]}

    async def edit(self, old: dict[str, Any], part: Part) -> dict[str, Any]:
        ids = old.get("ids") or []
        same_kind = (old.get("kind") == "text") == (part.kind == "text")
        if not ids or not same_kind:
            await self.delete(old)
            return await self.send(part)
        method, key = (("editMessageText", "text") if part.kind == "text"
                       else ("editMessageCaption", "caption"))
        try:
            await self._call(method, {"message_id": ids[0], key: part.text,
                                      "parse_mode": "HTML"})
        except TelegramError as exc:
            if not (exc.status == 400 and NOT_MODIFIED in exc.description):
                raise
        return old

    async def delete(self, old: dict[str, Any]) -> None:
        ids = list(old.get("ids") or [])
        while ids:
            await self._call("deleteMessage", {"message_id": ids[0]})
            ids.pop(0)
            old["ids"] = list(ids)


def _message_id(result: Any) -> int:
    if isinstance(result, dict) and isinstance(result.get("message_id"), int):
        return int(result["message_id"])
    raise TelegramError(502, "the answer has no message_id")


async def perform(api: BotApi, chat: str, action: str, post: Post | None,
                  remote: dict[str, Any], load: ImageLoader) -> Result:
    """Do ``action`` for one post on one channel. Never raises for the service's
    answers: the outcome says what they mean (pacing.telegram_outcome)."""
    sender = _Sender(api, chat, load)
    parts_done: list[dict[str, Any]] = [dict(p) for p in remote.get("parts") or []]
    try:
        if action == "delete" or post is None:
            while parts_done:
                await sender.delete(parts_done[0])
                parts_done.pop(0)
        else:
            wanted = plan(post)
            if action == "create":
                for part in wanted[len(parts_done):]:
                    parts_done.append(await sender.send(part))
            else:
                for n, part in enumerate(wanted):
                    if n < len(parts_done):
                        parts_done[n] = await sender.edit(parts_done[n], part)
                    else:
                        parts_done.append(await sender.send(part))
                while len(parts_done) > len(wanted):
                    await sender.delete(parts_done[-1])
                    parts_done.pop()
    except TelegramError as exc:
        outcome = telegram_outcome(exc.status, exc.description, exc.retry_after)
        return Result(outcome, {"parts": parts_done}, sender.calls, sender.methods)
    return Result(Outcome("done"), {"parts": parts_done}, sender.calls, sender.methods)
