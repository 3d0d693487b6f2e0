"""Language channels: one Group actor per language of a group, named ``GROUP_LANG``.

A Mastodon user who reads only Persian follows ``@koeln_fa@node`` and receives
only the Persian version of each item, as the channel's own Note/Article
(operations.sync_channels). Mastodon refetches an Announced object that is
not attributed to the announcer from its origin (INTEROP.md, "Follows and
boosts"), so an Announce of the item would hand every version to the
channel's followers; a copy of its own keeps the other languages out and
shows whole in the timeline (FEDERATION.md, "Language channels").
"""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from node.core.languages import autonym
from node.federation import local_actors
from node.federation.runtime import Node
from node.groups.operations import OperationError
from node.news import items
from node.news.items import NewsError
from node.storage.models import LocalActor, NewsChannel


async def source_group(session: Any, username: str, refusal: str) -> LocalActor:
    """The group ``username`` names, refused (``refusal``) if it is itself a
    language channel: channels and bulletins start from the group, never from
    one of its channels."""
    group = await local_actors.get_group(session, username)
    if group is None:
        raise OperationError(f"no group named {username!r}", status=404)
    if (await session.exec(select(NewsChannel).where(
            NewsChannel.actor_id == group.id))).first() is not None:
        raise OperationError(refusal)
    return group


def channel_username(group: str, language: str) -> str:
    """``koeln`` + ``fa`` → ``koeln_fa``; ``sr-Latn`` → ``koeln_sr-latn`` (lower case:
    Mastodon's username rule, INTEROP.md "Actors")."""
    return f"{group}_{language.lower()}"




async def enable(node: Node, username: str, langs: list[Any]) -> list[str]:
    """Create the channels that do not exist yet; returns every named channel's id."""
    if not langs:
        raise OperationError("name at least one language, e.g. fa de en")
    try:
        tags = [items.language(lang, "channel language") for lang in langs]
    except NewsError as exc:
        raise OperationError(str(exc)) from exc
    async with node.db.write() as session:
        group = await source_group(session, username,
                                   f"{username} is itself a language channel")
        ids = []
        for tag in dict.fromkeys(tags):
            existing = (await session.exec(select(NewsChannel).where(
                NewsChannel.group_id == group.id, NewsChannel.language == tag))).first()
            name = channel_username(username, tag)
            if existing is None:
                actor = await _create_actor(node, session, group, name, tag)
                session.add(NewsChannel(group_id=group.id or 0, actor_id=actor.id or 0,
                                        language=tag))
            ids.append(node.urls.actor(name))
    node.changed()
    return ids


async def _create_actor(node: Node, session: Any, group: LocalActor, name: str,
                        tag: str) -> LocalActor:
    import html

    shown = autonym(tag)
    group_url = node.urls.actor(group.username)
    handle = f"@{group.username}@{node.settings.host}"
    summary = (f'<p>{html.escape(shown)} — <a href="{html.escape(group_url)}">'
               f"{html.escape(handle)}</a>: only the {html.escape(tag)} versions of "
               f"{html.escape(group.display_name)}'s news.</p>")
    try:
        actor = await local_actors.create_group(
            session, name, display_name=f"{group.display_name} ({shown})"[:200],
            language=tag, summary=summary,
            links=[{"name": group.display_name[:100], "url": group_url}])
    except local_actors.GroupError as exc:
        raise OperationError(f"cannot create the channel {name}: {exc}") from exc
    return actor


async def list_channels(node: Node, username: str) -> list[tuple[str, str]]:
    """(language, channel actor id) of a group's channels."""
    async with node.db.read() as session:
        group = await local_actors.get_group(session, username)
        if group is None:
            raise OperationError(f"no group named {username!r}", status=404)
        rows = await session.exec(select(NewsChannel, LocalActor).join(
            LocalActor, LocalActor.id == NewsChannel.actor_id  # type: ignore[arg-type]
        ).where(NewsChannel.group_id == group.id).order_by(NewsChannel.language))
        return [(c.language, node.urls.actor(a.username)) for c, a in rows.all()]
