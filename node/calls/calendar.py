"""iCalendar (RFC 5545) for events: one file per event, one feed per group.

Built with the ``icalendar`` library (a maintained RFC 5545 implementation)
rather than by hand: folding, escaping and VTIMEZONE generation are easy to
get subtly wrong.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    import icalendar
from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import Response

from node.calls import operations as calls
from node.calls.events import public_online_url
from node.core.text import html_to_plain
from node.federation import local_actors as groups
from node.federation import publishing
from node.federation.runtime import Node
from node.storage.models import Event, LocalActor, LocalObject

STATUS = {"scheduled": "CONFIRMED", "postponed": "CONFIRMED", "cancelled": "CANCELLED"}
PRODID = "-//Hambastegi//Hambastegi node//EN"


def _title(obj: LocalObject) -> str:
    return obj.names.get(obj.language) or next(iter(obj.names.values()), "")


def vevent(node: Node, obj: LocalObject, event: Event, actor: LocalActor,
           organizers: list[tuple[str, str]]) -> icalendar.Event:
    import icalendar  # only when a calendar is asked for: keeps idle memory low

    tz = ZoneInfo(event.timezone)
    item = icalendar.Event()
    item.add("uid", node.urls.object(obj.uuid))
    # Without METHOD, DTSTAMP is when the information last changed in the store
    # (RFC 5545 §3.8.7.2), not the time of the request: the same calendar is the same
    # bytes, so a mirror's re-export does not rewrite it (issue 28).
    item.add("dtstamp", obj.updated or obj.published)
    item.add("dtstart", event.start_time.astimezone(tz))
    if event.end_time is not None:
        item.add("dtend", event.end_time.astimezone(tz))
    title = _title(obj)
    if event.status == "postponed":
        title = f"[postponed] {title}"
    item.add("summary", title)
    text = obj.contents.get(obj.language) or next(iter(obj.contents.values()), "")
    description = html_to_plain(text)
    names = ", ".join(name for _, name in organizers)
    item.add("description", f"{description}\n\n{names}".strip())
    item.add("status", STATUS[event.status])
    item.add("sequence", event.sequence)
    item.add("url", node.urls.object(obj.uuid))
    item.add("created", obj.published)
    item.add("last-modified", obj.updated or obj.published)
    if event.place:
        parts = [event.place.get(k) for k in ("name", "street", "postcode", "city", "country")]
        item.add("location", ", ".join(p for p in parts if p))
        if "latitude" in event.place:
            item.add("geo", (event.place["latitude"], event.place["longitude"]))
    elif public_online_url(event):
        item.add("location", event.online_url)
    elif event.online_url:
        item.add("location", "online")  # a closed meeting: participants get the link
    if event.hashtags:
        item.add("categories", event.hashtags)
    return item


def calendar(name: str, events: list[icalendar.Event]) -> bytes:
    import icalendar

    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", name)
    for item in events:
        cal.add_component(item)
    # VTIMEZONE for every TZID used, from the zoneinfo database.
    cal.add_missing_timezones()
    return bytes(cal.to_ical())


def ics_response(body: bytes, filename: str) -> Response:
    return Response(body, media_type="text/calendar; charset=utf-8",
                    headers={"Content-Disposition": f'inline; filename="{filename}"',
                             "Cache-Control": "public, max-age=300"})


async def event_ics(request: Request) -> Response:
    node: Node = request.app.state.node
    async with node.db.read() as session:
        obj = await publishing.get_object(session, request.path_params["uuid"])
        if obj is None or obj.object_type != "Event":
            return Response("no such event", status_code=404)
        if obj.deleted_at is not None:
            return Response("this event was deleted", status_code=410)
        actor = await session.get(LocalActor, obj.local_actor_id)
        event = await calls.event_for(session, obj)
        assert actor is not None
        organizers = await calls.organizers_of(session, node.urls, actor, event)
    body = calendar(_title(obj), [vevent(node, obj, event, actor, organizers)])
    return ics_response(body, f"{obj.uuid}.ics")


async def group_ics(request: Request) -> Response:
    node: Node = request.app.state.node
    async with node.db.read() as session:
        actor = await groups.get_group(session, request.path_params["username"])
        if actor is None:
            return Response("no such group", status_code=404)
        rows = (await session.exec(
            select(LocalObject, Event).join(Event, Event.object_id == LocalObject.id)  # type: ignore[arg-type]
            .where(LocalObject.local_actor_id == actor.id,
                   col(LocalObject.deleted_at).is_(None))
            .order_by(col(Event.start_time).desc()).limit(500))).all()
        items = []
        for obj, event in rows:
            organizers = await calls.organizers_of(session, node.urls, actor, event)
            items.append(vevent(node, obj, event, actor, organizers))
    return ics_response(calendar(actor.display_name, items), f"{actor.username}.ics")
