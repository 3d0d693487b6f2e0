"""The Bot API client (core.telegram.org/bots/api#making-requests).

Every method is a POST to ``<base>/bot<token>/<method>``; the answer is JSON
``{"ok": true, "result": …}`` or ``{"ok": false, "error_code", "description",
"parameters": {"retry_after"}}``. The base URL is HAMBASTEGI_TELEGRAM_API (a local Bot
API server, a proxy where Telegram is blocked, or the tests' fake).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from node.crosspost.http import ServiceClient, ServiceUnreachable

DEFAULT_API = "https://api.telegram.org"


@dataclass(frozen=True)
class Upload:
    """A file sent with the request (multipart/form-data), named in the fields as
    ``attach://<name>``."""

    name: str
    data: bytes
    media_type: str


class TelegramError(Exception):
    """The API's refusal (``status`` 0: no answer). The message never holds the token."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(f"{status}: {description}")
        self.status = status
        self.description = description[:300]
        self.retry_after = retry_after


class BotApi:
    def __init__(self, client: ServiceClient, base_url: str, token: str) -> None:
        self._client = client
        self._base = base_url.rstrip("/")
        self._token = token

    def __repr__(self) -> str:  # never the token
        return f"BotApi({self._base})"

    async def call(self, method: str, fields: dict[str, Any],
                   uploads: list[Upload] | None = None) -> Any:
        url = f"{self._base}/bot{self._token}/{method}"
        try:
            if uploads:
                import aiohttp

                form = aiohttp.FormData()
                for key, value in fields.items():
                    form.add_field(key, value if isinstance(value, str) else json.dumps(value))
                for upload in uploads:
                    form.add_field(upload.name, upload.data, content_type=upload.media_type,
                                   filename=upload.name)
                answer = await self._client.request("POST", url, data=form)
            else:
                answer = await self._client.request("POST", url, json=fields)
        except ServiceUnreachable as exc:
            raise TelegramError(0, str(exc)) from None
        try:
            doc = json.loads(answer.body)
        except ValueError:
            raise TelegramError(answer.status if answer.status >= 400 else 502,
                                "the answer is not JSON") from None
        if not isinstance(doc, dict):
            raise TelegramError(502, "the answer is not a JSON object")
        if doc.get("ok") is True and answer.status < 300:
            return doc.get("result")
        params = doc.get("parameters")
        retry_after = params.get("retry_after") if isinstance(params, dict) else None
        code = doc.get("error_code")
        description = doc.get("description")
        raise TelegramError(code if isinstance(code, int) else answer.status,
                            description if isinstance(description, str) else "refused",
                            retry_after if isinstance(retry_after, int) else None)
