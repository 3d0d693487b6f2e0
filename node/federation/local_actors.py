"""Local actors: groups and the instance Application actor (FEP-2677)."""

from __future__ import annotations

import re

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from node.core import characters, languages
from node.core.text import plain_name, user_html
from node.core.urls import INSTANCE_USERNAME, RESERVED_USERNAMES
from node.federation import keys
from node.storage.models import LocalActor

# Mastodon's preferredUsername rule (INTEROP.md): language channels therefore
# get names like ``koeln_fa``.
USERNAME_RE = re.compile(r"^[a-z0-9_]+([.-]+[a-z0-9_]+)*$")
MAX_SUMMARY = 5000


class GroupError(ValueError):
    """Invalid group data; the message is meant for the person typing it."""


def validate_username(username: str) -> str:
    if not 1 <= len(username) <= 64 or not USERNAME_RE.fullmatch(username):
        raise GroupError(
            f"invalid group name {username!r}: use lower-case letters, digits and _ "
            "(dots or dashes only between them), at most 64 characters"
        )
    if username in RESERVED_USERNAMES:
        raise GroupError(f"the name {username!r} is reserved")
    return username


def validate_language(language: str) -> str:
    try:
        return languages.validate(language)
    except languages.LanguageError as exc:
        raise GroupError(str(exc)) from exc


def checked(value: str, where: str, *, multiline: bool) -> str:
    """The one character rule of every text (node/core/characters.py) as a GroupError."""
    try:
        return characters.check(value, where, multiline=multiline)
    except characters.CharacterError as exc:
        raise GroupError(str(exc)) from exc


def validate_display_name(display_name: str) -> str:
    name = plain_name(checked(display_name, "display name", multiline=False))
    if not name or len(name) > 200:
        raise GroupError("display name must be 1 to 200 characters")
    return name


def validate_summary(summary: str) -> str:
    """Sanitised on the way in: the stored HTML is served as is (actor, page)."""
    if len(summary) > MAX_SUMMARY:
        raise GroupError(f"summary is at most {MAX_SUMMARY} characters")
    return user_html(checked(summary, "summary", multiline=True))


def _new_actor(username: str, actor_type: str, display_name: str, language: str) -> LocalActor:
    rsa = keys.generate_rsa()
    ed = keys.generate_ed25519()
    return LocalActor(
        username=username,
        actor_type=actor_type,
        display_name=display_name,
        names={language: display_name},
        summaries={},
        language=language,
        rsa_private_pem=keys.private_to_pem(rsa),
        rsa_public_pem=keys.public_to_pem(rsa.public_key()),
        ed25519_private_pem=keys.private_to_pem(ed),
        ed25519_public_multibase=keys.ed25519_to_multibase(ed.public_key()),
    )


async def get_actor(session: AsyncSession, username: str) -> LocalActor | None:
    result = await session.exec(select(LocalActor).where(LocalActor.username == username))
    return result.first()


async def get_group(session: AsyncSession, username: str) -> LocalActor | None:
    actor = await get_actor(session, username)
    if actor is None or actor.actor_type == "Application":
        return None
    return actor


async def create_group(
    session: AsyncSession,
    username: str,
    *,
    display_name: str,
    language: str,
    summary: str | None = None,
    manually_approves_followers: bool = False,
    links: list[dict[str, str]] | None = None,
) -> LocalActor:
    validate_username(username)
    validate_language(language)
    display_name = validate_display_name(display_name)
    if await get_actor(session, username) is not None:
        raise GroupError(f"a group named {username!r} already exists")
    actor = _new_actor(username, "Group", display_name, language)
    if summary:
        actor.summaries = {language: validate_summary(summary)}
    actor.manually_approves_followers = manually_approves_followers
    actor.links = list(links or [])
    session.add(actor)
    await session.flush()
    return actor


async def ensure_instance_actor(session: AsyncSession) -> LocalActor:
    """The Application actor that signs the node's fetches (FEP-2677)."""
    actor = await get_actor(session, INSTANCE_USERNAME)
    if actor is None:
        actor = _new_actor(INSTANCE_USERNAME, "Application", "Hambastegi node", "en")
        actor.discoverable = False
        actor.indexable = False
        actor.manually_approves_followers = True
        session.add(actor)
        await session.flush()
    return actor


async def list_groups(session: AsyncSession) -> list[LocalActor]:
    result = await session.exec(
        select(LocalActor)
        .where(LocalActor.actor_type != "Application")
        .order_by(LocalActor.username)
    )
    return list(result.all())
