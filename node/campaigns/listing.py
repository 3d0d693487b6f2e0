"""Campaign lists (issue 16, point 5): one row per campaign the public may read, with
what a list shows, sortable by status or days in detention and filterable by
country. Pages, feeds, the CLI and the API all read them here.

- ``listing``: the node's own campaigns (one group's with ``group``), and with
  ``federated`` those of the actors our groups and networks follow
  (``federated.py``: stored remote campaigns addressed to the public only);
- ``network_listing``: the campaigns of a network's accepted members, local
  groups' own and remote members' stored ones.
Rows of both kinds are mixed by the sort (own first among equals).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from node.campaigns import consent, detention, federated, render
from node.campaigns.operations import today
from node.core import calendars
from node.federation.runtime import Node
from node.federation.vocabulary import iso
from node.storage.models import Campaign, LocalActor, LocalObject, NetworkMembership
from node.storage.states import MembershipState

SORTS = ("status", "days")
# Gravest first: the order campaigners read a list in.
STATUS_ORDER = {s: i for i, s in enumerate(("died_in_custody", "sentenced", "on_trial",
                                            "detained", "on_bail", "released"))}


def own_row(node: Node, campaign: Campaign, obj: LocalObject, actor: LocalActor,
            *, now: date) -> dict[str, Any]:
    days = detention.days_in_detention(campaign.detentions, today=now)
    url = node.urls.object(obj.uuid)
    return {
        "id": url, "url": url,
        "name": consent.display_name(campaign, campaign.language),
        "language": campaign.language, "status": campaign.status,
        "status_label": render.status_label(campaign.status, campaign.language),
        "country": campaign.country, "group": actor.username,
        "group_name": actor.display_name, "group_url": node.urls.actor(actor.username),
        "host": node.settings.host, "remote": False,
        "days": days,
        # Counted now: the list is read every day, the stored document is not redone.
        "summary": render.summary_line(campaign, campaign.language, today=now).rsplit(
            " · ", 1)[0] + f" · {calendars.digits(str(days), campaign.language)} "
                           f"{render.word('days', campaign.language)}",
        "updated": iso(obj.updated or obj.published),
    }


async def _own(session: AsyncSession, node: Node, usernames: Collection[str] | None,
               *, now: date) -> list[dict[str, Any]]:
    query = select(Campaign, LocalObject, LocalActor).join(
        LocalObject, LocalObject.id == Campaign.object_id  # type: ignore[arg-type]
    ).join(LocalActor, LocalActor.id == Campaign.group_id  # type: ignore[arg-type]
           ).where(col(Campaign.withdrawn_at).is_(None),
                   col(LocalObject.deleted_at).is_(None))
    if usernames is not None:
        query = query.where(col(LocalActor.username).in_(list(usernames)))
    return [own_row(node, campaign, obj, actor, now=now)
            for campaign, obj, actor in (await session.exec(query)).all()
            if consent.may_see(campaign, None)]


def arrange(rows: list[dict[str, Any]], *, country: str | None,
            sort: str) -> list[dict[str, Any]]:
    """Filter by country (ISO code, any case) and sort; the sort is stable, so own
    rows (listed first) stay first among equals."""
    if country:
        rows = [r for r in rows if r["country"] == country.upper()]
    if sort == "days":
        return sorted(rows, key=lambda r: -r["days"])
    return sorted(rows, key=lambda r: (STATUS_ORDER.get(r["status"], 9), -r["days"]))


async def listing(node: Node, *, country: str | None = None, sort: str = "status",
                  group: str | None = None, federated_rows: bool = False
                  ) -> list[dict[str, Any]]:
    """The node's public campaigns (one group's with ``group``); with
    ``federated_rows`` also the public ones of the actors we follow."""
    now = today()
    async with node.db.read() as session:
        rows = await _own(session, node, [group] if group else None, now=now)
        if federated_rows and group is None:
            rows += await federated.rows(session, await federated.followed(session),
                                         today=now)
    return arrange(rows, country=country, sort=sort)


async def network_listing(node: Node, network_id: int, *, country: str | None = None,
                          sort: str = "status") -> list[dict[str, Any]]:
    """The public campaigns of a network's accepted members, wherever they live."""
    now = today()
    async with node.db.read() as session:
        members = (await session.exec(select(NetworkMembership.member_uri).where(
            NetworkMembership.network_id == network_id,
            NetworkMembership.state == MembershipState.ACCEPTED))).all()
        local = [u for m in members if (u := node.urls.local_username(m)) is not None]
        remote = [m for m in members if not node.urls.is_local(m)]
        rows = await _own(session, node, local, now=now) if local else []
        rows += await federated.rows(session, remote, today=now)
    return arrange(rows, country=country, sort=sort)
