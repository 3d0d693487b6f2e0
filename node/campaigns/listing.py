"""The node's campaign list (issue 16, point 5): one row per campaign the public may
read, with what a list shows, sortable by status or days in detention and
filterable by country. Pages, feeds, the CLI and the API all read it here."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select

from node.campaigns import consent, detention, render
from node.campaigns.operations import today
from node.federation.runtime import Node
from node.federation.vocabulary import iso
from node.storage.models import Campaign, LocalActor, LocalObject


async def listing(node: Node, *, country: str | None = None, sort: str = "status",
                  group: str | None = None) -> list[dict[str, Any]]:
    """The node's public campaigns: one row per campaign with what a list shows."""
    async with node.db.read() as session:
        query = select(Campaign, LocalObject, LocalActor).join(
            LocalObject, LocalObject.id == Campaign.object_id  # type: ignore[arg-type]
        ).join(LocalActor, LocalActor.id == Campaign.group_id  # type: ignore[arg-type]
               ).where(col(Campaign.withdrawn_at).is_(None),
                       col(LocalObject.deleted_at).is_(None))
        if country:
            query = query.where(Campaign.country == country.upper())
        if group:
            query = query.where(LocalActor.username == group)
        rows = (await session.exec(query)).all()
    now = today()
    out: list[dict[str, Any]] = []
    for campaign, obj, actor in rows:
        if not consent.may_see(campaign, None):
            continue
        days = detention.days_in_detention(campaign.detentions, today=now)
        out.append({
            "id": node.urls.object(obj.uuid), "name": consent.display_name(campaign,
                                                                           campaign.language),
            "language": campaign.language, "status": campaign.status,
            "status_label": render.status_label(campaign.status, campaign.language),
            "country": campaign.country, "group": actor.username,
            "days": days,
            # Counted now: the list is read every day, the stored document is not redone.
            "summary": render.summary_line(campaign, campaign.language, today=now).rsplit(
                " · ", 1)[0] + f" · {days} {render.word('days', campaign.language)}",
            "updated": iso(obj.updated or obj.published),
        })
    order = {s: i for i, s in enumerate(("died_in_custody", "sentenced", "on_trial",
                                         "detained", "on_bail", "released"))}
    if sort == "days":
        out.sort(key=lambda r: -r["days"])
    else:
        out.sort(key=lambda r: (order.get(r["status"], 9), -r["days"]))
    return out
