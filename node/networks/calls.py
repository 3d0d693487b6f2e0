"""Members' upcoming calls, for a network's combined feed and calendar.

Built from what this node has stored (issue 15, point 4): ``remote_object``
rows (posts of followed actors; replies have ``in_reply_to`` set and are left
out) whose author is a current member, and, for members on this node, their
own events. Filterable by country (the call's place, else the member's
directory entry) and language (the call's languages, else the member's).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import col, select

from node.core.jsonsafe import as_id
from node.core.text import html_to_plain
from node.federation.runtime import Node
from node.storage.db import utcnow
from node.storage.models import (
    Event,
    LocalActor,
    LocalObject,
    NetworkMembership,
    RemoteObject,
)
from node.storage.states import MembershipState

MAX_CALLS = 500


@dataclass(frozen=True)
class Call:
    uri: str
    member_uri: str
    member_name: str
    title: str
    start: datetime
    end: datetime | None
    country: str | None
    languages: list[str] = field(default_factory=list)
    place: str | None = None
    text: str = ""
    url: str | None = None
    cancelled: bool = False


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _first_text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if isinstance(value, str):
        return value
    mapping = data.get(key + "Map")
    if isinstance(mapping, dict):
        return next((v for v in mapping.values() if isinstance(v, str)), "")
    return ""


def from_remote(data: dict[str, Any], member: NetworkMembership) -> Call | None:
    """A call from a stored remote Event, or None if it is unusable or not the member's."""
    uri = as_id(data)
    start = _when(data.get("startTime"))
    if uri is None or start is None or data.get("type") != "Event":
        return None
    location = data.get("location")
    address = location.get("address") if isinstance(location, dict) else None
    country = address.get("addressCountry") if isinstance(address, dict) else None
    langs = [k for key in ("nameMap", "contentMap") if isinstance(data.get(key), dict)
             for k in data[key] if isinstance(k, str)]
    if isinstance(data.get("inLanguage"), str):
        langs.append(data["inLanguage"])
    place = location.get("name") if isinstance(location, dict) else None
    status = str(data.get("status") or data.get("ical:status") or "").upper()
    return Call(uri=uri, member_uri=member.member_uri, member_name=member.name,
                title=html_to_plain(_first_text(data, "name"))[:300] or uri,
                start=start, end=_when(data.get("endTime")),
                country=(country.upper() if isinstance(country, str) and len(country) == 2
                         else member.country),
                languages=list(dict.fromkeys(langs)) or member.languages,
                place=place[:300] if isinstance(place, str) else None,
                text=html_to_plain(_first_text(data, "content"))[:5000],
                url=as_id(data.get("url")) or uri, cancelled=status == "CANCELLED")


def from_local(node: Node, obj: LocalObject, event: Event,
               member: NetworkMembership) -> Call:
    place = event.place or {}
    country = place.get("country")
    return Call(uri=node.urls.object(obj.uuid), member_uri=member.member_uri,
                member_name=member.name,
                title=obj.names.get(obj.language) or next(iter(obj.names.values()), ""),
                start=event.start_time, end=event.end_time,
                country=(country.upper() if isinstance(country, str) and len(country) == 2
                         else member.country),
                languages=list(dict.fromkeys([obj.language, *obj.names])) or member.languages,
                place=place.get("name") or place.get("city"),
                text=html_to_plain(obj.contents.get(obj.language, "")),
                url=node.urls.object(obj.uuid), cancelled=event.status == "cancelled")


def matches(call: Call, country: str | None, language: str | None) -> bool:
    if country is not None and call.country != country:
        return False
    if language is None:
        return True
    wanted = language.lower()
    return any(tag.lower() == wanted or tag.lower().startswith(wanted + "-")
               for tag in call.languages)


async def upcoming(node: Node, network_id: int, *, country: str | None = None,
                   language: str | None = None) -> list[Call]:
    """Members' calls that have not ended, soonest first."""
    now = utcnow()
    found: list[Call] = []
    async with node.db.read() as session:
        roster = list((await session.exec(select(NetworkMembership).where(
            NetworkMembership.network_id == network_id,
            NetworkMembership.state == MembershipState.ACCEPTED))).all())
        remote = {m.member_uri: m for m in roster if not node.urls.is_local(m.member_uri)}
        if remote:
            rows = await session.exec(select(RemoteObject).where(
                col(RemoteObject.actor_uri).in_(list(remote)),
                RemoteObject.object_type == "Event", col(RemoteObject.in_reply_to).is_(None),
                col(RemoteObject.deleted).is_(False)).order_by(
                col(RemoteObject.id).desc()).limit(MAX_CALLS * 4))
            for row in rows.all():
                call = from_remote(row.data, remote[row.actor_uri])
                if call is not None:
                    found.append(call)
        local = {username: m for m in roster
                 if (username := node.urls.local_username(m.member_uri)) is not None}
        if local:
            rows_local = await session.exec(
                select(LocalObject, Event, LocalActor)
                .join(Event, col(Event.object_id) == col(LocalObject.id))
                .join(LocalActor, col(LocalActor.id) == col(LocalObject.local_actor_id))
                .where(col(LocalActor.username).in_(list(local)),
                       col(LocalObject.deleted_at).is_(None),
                       col(Event.start_time) >= now - timedelta(days=366))
                .limit(MAX_CALLS))
            for obj, event, actor in rows_local.all():
                found.append(from_local(node, obj, event, local[actor.username]))
    calls = [c for c in found if (c.end or c.start) >= now and matches(c, country, language)]
    calls.sort(key=lambda c: c.start)
    return calls[:MAX_CALLS]
