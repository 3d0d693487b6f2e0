"""Action calls by e-mail: a short mail to the group's subscribers who asked for
calls, when a call is published, postponed or cancelled (issue 26, point 1).

``calls/operations`` runs ``on_call`` inside the call's own transaction on a node
that sends mail, so the call and its mails commit together. The mail says the
one-line summary (what, when, where, who, in the reader's language and calendar:
calls/events.summary_line) and links to the call's page. One message per
(call, change, sequence): a call changed twice is mailed twice, a change queued
twice once.
"""

from __future__ import annotations

import html

from sqlmodel.ext.asyncio.session import AsyncSession

from node.calls.events import summary_line
from node.core.urls import Urls
from node.mail import queue
from node.storage.models import Event, LocalActor, LocalObject

# The word in front of the title when the call changed (English otherwise).
CHANGED = {
    "postponed": {"en": "Postponed", "de": "Verschoben", "fa": "به تعویق افتاد"},
    "cancelled": {"en": "Cancelled", "de": "Abgesagt", "fa": "لغو شد"},
}


def versions(urls: Urls, obj: LocalObject, event: Event, change: str,
             organizers: list[str]) -> dict[str, dict[str, str]]:
    url = urls.object(obj.uuid)
    out: dict[str, dict[str, str]] = {}
    for lang in [obj.language, *(k for k in obj.names if k != obj.language)]:
        title = obj.names.get(lang) or obj.names.get(obj.language) \
            or next(iter(obj.names.values()), "")
        words = CHANGED.get(change)
        subject = f"{words.get(lang.split('-')[0], words['en'])}: {title}" if words else title
        line = summary_line(event, lang, organizers)
        anchor = url if lang == obj.language else f"{url}#v-{lang}"
        out[lang] = {"subject": subject, "title": subject, "url": anchor,
                     "text": f"{subject}\n\n{line}\n",
                     "html": f"<p>{html.escape(line, quote=False)}</p>"}
    return out


async def on_call(session: AsyncSession, urls: Urls, group: LocalActor, obj: LocalObject,
                  event: Event, change: str, organizers: list[str]) -> int:
    """Queue the call's mail (``change``: published | postponed | cancelled)."""
    return await queue.enqueue(session, group, "call", f"{obj.uuid}:{change}:{event.sequence}",
                               versions(urls, obj, event, change, organizers), flag="calls")
