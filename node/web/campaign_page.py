"""A campaign's own page (issue 16, point 5): what journalists, unions and
human-rights organisations link to, at the campaign's id ``/objects/<uuid>``.

Built from the ``campaign`` row, not from the stored Article, so the days in
detention are counted on the day the page is read. Every name and text passes
``consent`` here as in campaigns/render.py: the person is named by
``consent.display_name`` (initials under ``name_withheld``, in the title, the
og: tags and alt texts too), every typed text through ``consent.redact``, and
the consent-bound fields (photo, workplace, city, place of arrest, prison) only
through ``render.fields`` / ``consent.shown``. The story's languages are tabs
that work without script, like a news item's (post.html, site.css).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from markupsafe import Markup
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.responses import Response

from node.campaigns import consent, detention, render
from node.campaigns.operations import today
from node.core import calendars
from node.core.languages import autonym
from node.federation.runtime import Node
from node.federation.vocabulary import tag_url
from node.news.items import render_markdown
from node.storage.models import (
    Campaign,
    CampaignOwner,
    LocalActor,
    LocalObject,
    MediaFile,
    RemoteActor,
)
from node.web import pages, pictures
from node.web.i18n import N_, direction

OG_DESCRIPTION = 200


def _day(value: str, language: str) -> str:
    return calendars.format_date(date.fromisoformat(value), language)


def _pick(texts: dict[str, str], language: str, primary: str) -> tuple[str, str] | None:
    for lang in (language, primary):
        if texts.get(lang):
            return lang, texts[lang]
    return next(iter(texts.items()), None)


def tabs(campaign: Campaign, language: str) -> list[dict[str, Any]]:
    """One tab per language of the dossier, the reader's first when there is one:
    the facts in that language (the campaign's own where a field lacks one) and
    the story."""
    langs = render.languages_of(campaign)
    langs = sorted(langs, key=lambda lang: lang != language)
    versions: dict[str, dict[str, str]] = campaign.data.get("versions", {})
    out = []
    for lang in langs:
        story = versions.get(lang, {}).get("story")
        out.append({
            "lang": lang, "dir": direction(lang), "name": autonym(lang),
            "facts": render.fields(campaign, lang),
            "story": Markup(render_markdown(consent.redact(campaign, story)))  # noqa: S704 - sanitised by render_markdown
            if story else None,
        })
    return out


def timeline(campaign: Campaign, language: str) -> list[dict[str, Any]]:
    entries = []
    for entry in sorted(campaign.timeline, key=lambda e: e["date"], reverse=True):
        found = _pick(entry.get("versions", {}), language, campaign.language)
        entries.append({
            "date_iso": entry["date"], "date": _day(entry["date"], language),
            "lang": found[0] if found else campaign.language,
            "dir": direction(found[0] if found else campaign.language),
            "text": consent.redact(campaign, found[1]) if found else "",
            "sources": [u for u in entry.get("sources", []) if isinstance(u, str)],
        })
    return entries


def public_photo(campaign: Campaign) -> dict[str, Any] | None:
    """The stored photo if consent lets it be shown (fail closed: consent.shown)."""
    found = campaign.data.get("photo")
    if not found or "path" not in found or not consent.shown(campaign, "photo"):
        return None
    return dict(found)


def photo(node: Node, campaign: Campaign, language: str,
          copies: dict[str, list[MediaFile]]) -> pictures.Picture | None:
    found = public_photo(campaign)
    if found is None:
        return None
    alt = _pick(found.get("alt", {}), language, campaign.language)
    return pictures.picture(node.urls, found, copies,
                            consent.redact(campaign, alt[1]) if alt else "",
                            alt[0] if alt else campaign.language)


def act(node: Node, campaign: Campaign) -> dict[str, Any]:
    what = consent.act(campaign)
    tag = what.get("hashtag")
    return {
        "petition": what.get("petition"),
        "addresses": [a.splitlines() for a in what.get("addresses", [])],
        "hashtag": tag, "hashtag_url": tag_url(node.urls, tag) if tag else None,
    }


async def co_owners(session: AsyncSession, campaign: Campaign) -> list[dict[str, str]]:
    uris = list((await session.exec(select(CampaignOwner.actor_uri).where(
        CampaignOwner.campaign_id == campaign.id,
        CampaignOwner.state == "accepted"))).all())
    if not uris:
        return []
    names = {a.uri: a.display_name or a.username or a.uri for a in (await session.exec(
        select(RemoteActor).where(col(RemoteActor.uri).in_(uris)))).all()}
    return [{"url": uri, "name": names.get(uri, uri)} for uri in uris]


def context(node: Node, campaign: Campaign, obj: LocalObject, actor: LocalActor,
            language: str, owners: list[dict[str, str]],
            copies: dict[str, list[MediaFile]]) -> dict[str, Any]:
    now = today()
    name = consent.display_name(campaign, language)
    record = campaign.detentions
    shown_photo = photo(node, campaign, language, copies)
    actor_url = node.urls.actor(actor.username)
    description = render.summary_line(campaign, language, today=now)
    return {
        "campaign": campaign, "actor": actor, "actor_url": actor_url,
        "object_url": node.urls.object(obj.uuid),
        "name": name, "name_lang": language if language in campaign.data.get("names", {})
        else campaign.language,
        "other_names": [{"lang": tag, "dir": direction(tag), "name": text}
                        for tag, text in consent.display_names(campaign).items()
                        if text != name],
        "status": campaign.status, "days": detention.days_in_detention(record, today=now),
        "held": detention.held(record),
        "periods": [{"arrested": _day(p["arrested"], language), "arrested_iso": p["arrested"],
                     "released": _day(p["released"], language) if p.get("released") else None,
                     "released_iso": p.get("released")} for p in record],
        "country": campaign.country,
        "photo": shown_photo, "versions": tabs(campaign, language),
        "timeline": timeline(campaign, language), "act": act(node, campaign),
        "sources": list(campaign.data.get("sources", [])), "co_owners": owners,
        "list_url": node.urls.base + "/campaigns", "group_list_url": actor_url + "/campaigns",
        "title": f"{name} — {render.status_label(campaign.status, language)}",
        "og_description": description[:OG_DESCRIPTION],
        **(shown_photo.og() if shown_photo else
           {"og_image": pages.group_entry(node, actor)["avatar"]}),
        "page_url": node.urls.object(obj.uuid),
    }


async def respond(node: Node, obj: LocalObject, actor: LocalActor,
                  language: str) -> Response | None:
    """The campaign page when ``obj`` is a campaign's public object, else None
    (the object is another kind of post: post_page renders it)."""
    if obj.object_type != "Article":
        return None
    async with node.db.read() as session:
        campaign = (await session.exec(select(Campaign).where(
            Campaign.object_id == obj.id))).first()
        owners = await co_owners(session, campaign) if campaign is not None else []
        shown = public_photo(campaign) if campaign is not None else None
        # The copies are looked up only for a photo consent lets be shown.
        copies = await pictures.copies_of(session, [shown["path"]]) if shown else {}
    if campaign is None:
        return None
    if not consent.may_see(campaign, None):  # fail closed (consent.py)
        return pages.render("error.html", 404, language=language, message=N_("not found"),
                            host=node.settings.host)
    return pages.render("campaign.html", language=language, host=node.settings.host,
                        **context(node, campaign, obj, actor, language, owners, copies))
