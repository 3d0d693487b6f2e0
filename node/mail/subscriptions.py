"""A group's mailing lists: subscribe (double opt-in), confirm, unsubscribe, suppress.

- A group has a list per language it publishes in (its own language, its
  language channels', its bulletins'): ``languages_of``.
- ``subscribe`` answers the same whatever the address's state (new, pending,
  confirmed, suppressed): the form never tells whether an address is on a list
  (no enumeration). It is throttled per client address and per target address,
  both only as keyed hashes (``mail_throttle``), and queues one confirmation mail.
- Only ``confirm`` (a POST; the GET page shows a button: mail scanners follow
  links) makes a subscriber mailable. Pending ones are forgotten after 7 days.
- ``unsubscribe``, a hard bounce and a complaint delete the address and keep a
  keyed hash of it (``mail_suppression``), so an import cannot add it back;
  only the address's owner can, through the form and a new confirmation.

Addresses are never logged: log lines carry the group and the subscriber id.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from node.accounts.keys import keyed_hash, node_key
from node.federation.runtime import Node
from node.groups.operations import OperationError
from node.mail import addresses
from node.mail.addresses import AddressError, TokenRef
from node.storage.db import utcnow
from node.storage.models import (
    LocalActor,
    MailMessage,
    MailQueueItem,
    MailSubscriber,
    MailSubscription,
    MailSuppression,
    MailThrottle,
    NewsBulletin,
    NewsChannel,
    NewsItem,
)
from node.storage.states import SubscriberState

log = logging.getLogger("hambastegi.mail")

PENDING_DAYS = 7
CLIENT_WINDOW = timedelta(hours=1)
CLIENT_LIMIT = 10  # subscription attempts per client address and hour
TARGET_WINDOW = timedelta(days=1)
TARGET_LIMIT = 3  # confirmation mails per target address and day
MAX_LANGUAGES = 20
MAX_CONSENT = 500
KINDS = ("bulletins", "calls")


class Throttled(OperationError):
    """Too many attempts from this client or for this address (429)."""


class NotFound(OperationError):
    """A token that names nothing (forged, replayed, voided): 404."""


@dataclass(frozen=True, slots=True)
class Request:
    """What the form (or the CLI) asks for, checked."""

    address: str
    languages: tuple[str, ...]
    bulletins: bool
    calls: bool


async def mail_key(node: Node) -> bytes:
    return await node_key(node.db, "mail")


def address_hash(key: bytes, group_id: int, address: str) -> str:
    return keyed_hash(key, "mail-address", str(group_id), address)


async def languages_of(session: AsyncSession, group: LocalActor) -> list[str]:
    """The group's lists: its language, its channels', its bulletins' (in that order)."""
    found = [group.language]
    channels = (await session.exec(select(NewsChannel.language)
                                   .where(NewsChannel.group_id == group.id))).all()
    found.extend(channels)
    versions = (await session.exec(
        select(NewsItem.versions).join(NewsBulletin, col(NewsBulletin.object_id)
                                       == col(NewsItem.object_id))
        .where(NewsBulletin.group_id == group.id)
        .order_by(col(NewsBulletin.number).desc()).limit(50))).all()
    for mapping in versions:
        found.extend(mapping)
    unique: list[str] = []
    for lang in found:
        if lang not in unique:
            unique.append(lang)
    return unique


def check_request(raw_address: str, languages: Sequence[str], kinds: Sequence[str],
                  offered: Sequence[str]) -> Request:
    """The form's fields, checked: ``AddressError`` or ``OperationError`` with a message."""
    address = addresses.normalise(raw_address)
    if not languages:
        raise OperationError("Choose at least one language.")
    if len(languages) > MAX_LANGUAGES:
        raise OperationError("Too many languages.")
    chosen: list[str] = []
    for raw in languages:
        lang = raw.strip()
        if lang not in offered:
            raise OperationError("That language is not one of this group's lists.")
        if lang not in chosen:
            chosen.append(lang)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise OperationError("Choose bulletins, action calls or both.")
    return Request(address, tuple(chosen), "bulletins" in kinds, "calls" in kinds)


async def _throttled(session: AsyncSession, keys: Sequence[tuple[str, timedelta, int]],
                     now: datetime) -> bool:
    for key, window, limit in keys:
        count = (await session.exec(select(func.count()).select_from(MailThrottle).where(
            MailThrottle.key == key, MailThrottle.at > now - window))).one()
        if count >= limit:
            return True
    return False


async def subscribe(node: Node, group: LocalActor, request: Request, client: str,
                    consent: str = "form", now: datetime | None = None) -> None:
    """Queue a confirmation mail (or nothing, for an address already confirmed).
    The caller answers the same in every case; ``Throttled`` when over a limit."""
    now = now or utcnow()
    key = await mail_key(node)
    group_id = group.id or 0
    client_key = keyed_hash(key, "mail-client", client)
    target_key = keyed_hash(key, "mail-target", request.address)
    async with node.db.write() as session:
        await session.exec(delete(MailThrottle).where(
            col(MailThrottle.at) <= now - max(CLIENT_WINDOW, TARGET_WINDOW)))
        await forget_unconfirmed(session, now)
        if await _throttled(session, [(client_key, CLIENT_WINDOW, CLIENT_LIMIT),
                                      (target_key, TARGET_WINDOW, TARGET_LIMIT)], now):
            raise Throttled("Too many requests; please try again later.")
        session.add_all([MailThrottle(key=client_key, at=now),
                         MailThrottle(key=target_key, at=now)])
        row = (await session.exec(select(MailSubscriber).where(
            MailSubscriber.group_id == group_id,
            MailSubscriber.address == request.address))).first()
        if row is not None and row.state == SubscriberState.CONFIRMED:
            log.info("subscription asked for a confirmed subscriber: nothing sent",
                     extra={"group": group.username, "subscriber_id": row.id})
            return
        if row is None:
            row = MailSubscriber(group_id=group_id, address=request.address,
                                 language=request.languages[0], nonce="", consent=consent,
                                 created_at=now)
            session.add(row)
        row.language = request.languages[0]
        row.bulletins, row.calls = request.bulletins, request.calls
        row.nonce = secrets.token_hex(16)  # voids links of earlier confirmation mails
        await session.flush()
        await _set_languages(session, row.id or 0, request.languages)
        message = MailMessage(group_id=group_id, kind="confirm",
                              ref=f"{row.id}:{row.nonce}", versions={})
        session.add(message)
        await session.flush()
        session.add(MailQueueItem(message_id=message.id or 0, subscriber_id=row.id or 0,
                                  language=row.language, next_attempt_at=now))
    log.info("confirmation mail queued", extra={"group": group.username,
                                                "subscriber_id": row.id})
    node.changed()


async def _set_languages(session: AsyncSession, subscriber_id: int,
                         languages: Sequence[str]) -> None:
    await session.exec(delete(MailSubscription).where(
        col(MailSubscription.subscriber_id) == subscriber_id))
    session.add_all([MailSubscription(subscriber_id=subscriber_id, language=lang)
                     for lang in languages])


async def forget_unconfirmed(session: AsyncSession, now: datetime) -> int:
    """Delete subscribers left unconfirmed for ``PENDING_DAYS``."""
    stale = list((await session.exec(select(MailSubscriber.id).where(
        MailSubscriber.state == SubscriberState.PENDING,
        col(MailSubscriber.created_at) < now - timedelta(days=PENDING_DAYS)))).all())
    if stale:
        await _delete_rows(session, [i for i in stale if i is not None])
    return len(stale)


async def _delete_rows(session: AsyncSession, ids: Sequence[int]) -> None:
    await session.exec(delete(MailSubscription).where(
        col(MailSubscription.subscriber_id).in_(ids)))
    await session.exec(delete(MailSubscriber).where(col(MailSubscriber.id).in_(ids)))


async def _by_token(session: AsyncSession, key: bytes, purpose: str,
                    token: str) -> MailSubscriber | None:
    ref = addresses.parse_token(token)
    if ref is None:
        return None
    row = await session.get(MailSubscriber, ref.subscriber_id)
    if row is None or not addresses.token_matches(key, purpose, ref, row.nonce):
        return None
    return row


async def look(node: Node, purpose: str, token: str) -> tuple[MailSubscriber, LocalActor] | None:
    """What a GET of a confirm or unsubscribe link shows (nothing changes); None: 404.
    A confirm link of an already confirmed subscriber is spent: None."""
    key = await mail_key(node)
    async with node.db.read() as session:
        row = await _by_token(session, key, purpose, token)
        if row is None or (purpose == "confirm" and row.state != SubscriberState.PENDING):
            return None
        group = await session.get(LocalActor, row.group_id)
        return (row, group) if group is not None else None


async def confirm(node: Node, token: str, now: datetime | None = None) -> LocalActor:
    """The POST of a confirmation page: the subscriber is mailed from now on.
    ``NotFound`` for a forged, voided or spent (replayed) token."""
    key = await mail_key(node)
    async with node.db.write() as session:
        row = await _by_token(session, key, "confirm", token)
        if row is None or row.state != SubscriberState.PENDING:
            raise NotFound("no such confirmation")
        group = await session.get(LocalActor, row.group_id)
        if group is None:
            raise NotFound("no such confirmation")
        row.state = SubscriberState.CONFIRMED
        row.confirmed_at = now or utcnow()
        # The owner asked again: an earlier unsubscribe no longer holds.
        await session.exec(delete(MailSuppression).where(
            col(MailSuppression.group_id) == row.group_id,
            col(MailSuppression.address_hash) == address_hash(key, row.group_id, row.address)))
    log.info("subscription confirmed", extra={"group": group.username, "subscriber_id": row.id})
    return group


async def unsubscribe(node: Node, token: str) -> LocalActor:
    """The POST of an unsubscribe page or a one-click POST (RFC 8058): the address
    is deleted at once, a keyed hash of it kept. ``NotFound`` for a bad token."""
    key = await mail_key(node)
    async with node.db.write() as session:
        row = await _by_token(session, key, "unsubscribe", token)
        if row is None:
            raise NotFound("no such subscription")
        group = await session.get(LocalActor, row.group_id)
        if group is None:
            raise NotFound("no such subscription")
        await suppress(session, key, row, "unsubscribed")
    log.info("unsubscribed", extra={"group": group.username, "subscriber_id": row.id})
    return group


async def suppress(session: AsyncSession, key: bytes, row: MailSubscriber, reason: str) -> None:
    """Delete the subscriber, keep its address's keyed hash (once per group)."""
    digest = address_hash(key, row.group_id, row.address)
    known = (await session.exec(select(MailSuppression).where(
        MailSuppression.group_id == row.group_id,
        MailSuppression.address_hash == digest))).first()
    if known is None:
        session.add(MailSuppression(group_id=row.group_id, address_hash=digest, reason=reason))
    else:
        known.reason = reason
    await _delete_rows(session, [row.id or 0])


async def by_verp(session: AsyncSession, key: bytes, ref: TokenRef) -> MailSubscriber | None:
    """The subscriber a VERP address names, if its MAC is right."""
    row = await session.get(MailSubscriber, ref.subscriber_id)
    return row if row is not None and addresses.verp_matches(key, ref, row.nonce) else None


# --- admin: counts, export, delete, import ----------------------------------------------------


async def counts(node: Node, group: LocalActor) -> list[tuple[str, str, int]]:
    """(language, kind, confirmed subscribers), and the pending total as ("*", "pending")."""
    out: list[tuple[str, str, int]] = []
    async with node.db.read() as session:
        for kind, column in (("bulletins", MailSubscriber.bulletins),
                             ("calls", MailSubscriber.calls)):
            rows = (await session.exec(
                select(MailSubscription.language, func.count())
                .join(MailSubscriber, col(MailSubscriber.id) == col(MailSubscription.subscriber_id))
                .where(MailSubscriber.group_id == group.id,
                       MailSubscriber.state == SubscriberState.CONFIRMED, col(column))
                .group_by(col(MailSubscription.language))
                .order_by(col(MailSubscription.language)))).all()
            out.extend((lang, kind, n) for lang, n in rows)
        pending = (await session.exec(select(func.count()).select_from(MailSubscriber).where(
            MailSubscriber.group_id == group.id,
            MailSubscriber.state == SubscriberState.PENDING))).one()
    out.append(("*", "pending", pending))
    return out


async def export(node: Node, group: LocalActor) -> list[dict[str, str]]:
    async with node.db.read() as session:
        rows = (await session.exec(select(MailSubscriber).where(
            MailSubscriber.group_id == group.id,
            MailSubscriber.state == SubscriberState.CONFIRMED)
            .order_by(col(MailSubscriber.id)))).all()
        langs: dict[int, list[str]] = {}
        for sid, lang in (await session.exec(
                select(MailSubscription.subscriber_id, MailSubscription.language)
                .order_by(col(MailSubscription.language)))).all():
            langs.setdefault(sid, []).append(lang)
    return [{"address": r.address, "languages": " ".join(langs.get(r.id or 0, [])),
             "kinds": " ".join(k for k, on in (("bulletins", r.bulletins), ("calls", r.calls))
                               if on),
             "consent": r.consent,
             "confirmed_at": r.confirmed_at.isoformat() if r.confirmed_at else ""}
            for r in rows]


async def delete_address(node: Node, group: LocalActor, raw: str) -> bool:
    """An admin deletes an address (its hash is kept like an unsubscribe's)."""
    address = addresses.normalise(raw)
    key = await mail_key(node)
    async with node.db.write() as session:
        row = (await session.exec(select(MailSubscriber).where(
            MailSubscriber.group_id == group.id, MailSubscriber.address == address))).first()
        if row is None:
            return False
        await suppress(session, key, row, "deleted")
    return True


@dataclass(frozen=True, slots=True)
class ImportResult:
    added: int
    skipped_suppressed: int
    skipped_present: int
    refused: list[tuple[int, str]]  # (line, why): never the address itself


async def import_addresses(node: Node, group: LocalActor, language: str,
                           lines: Sequence[str], consent: str) -> ImportResult:
    """Bring an existing list: each address confirmed with ``consent`` stored on it,
    except suppressed ones (they left) and those present. Bad lines are reported
    by number and reason, and nothing of the file is stored when any is refused."""
    consent = consent.strip()
    if not consent or len(consent) > MAX_CONSENT or not consent.isprintable():
        raise OperationError(f"--consent must say how consent was given "
                             f"(printable, at most {MAX_CONSENT} characters)")
    key = await mail_key(node)
    wanted: list[str] = []
    refused: list[tuple[int, str]] = []
    for number, line in enumerate(lines, start=1):
        raw = line.rstrip("\r\n").split(",")[0].strip().strip('"')
        if not raw or raw.lower() in ("email", "address", "e-mail"):
            continue
        try:
            address = addresses.normalise(raw)
        except AddressError as exc:
            refused.append((number, str(exc)))
            continue
        if address not in wanted:
            wanted.append(address)
    if refused:
        return ImportResult(0, 0, 0, refused)
    added = suppressed = present = 0
    now = utcnow()
    async with node.db.write() as session:
        offered = await languages_of(session, group)
        if language not in offered:
            raise OperationError(f"{language} is not one of the group's lists "
                                 f"({', '.join(offered)})")
        gone = set((await session.exec(select(MailSuppression.address_hash).where(
            MailSuppression.group_id == group.id))).all())
        have = set((await session.exec(select(MailSubscriber.address).where(
            MailSubscriber.group_id == group.id))).all())
        for address in wanted:
            if address_hash(key, group.id or 0, address) in gone:
                suppressed += 1
                continue
            if address in have:
                present += 1
                continue
            row = MailSubscriber(group_id=group.id or 0, address=address, language=language,
                                 state=SubscriberState.CONFIRMED, nonce=secrets.token_hex(16),
                                 consent=consent, created_at=now, confirmed_at=now)
            session.add(row)
            await session.flush()
            session.add(MailSubscription(subscriber_id=row.id or 0, language=language))
            added += 1
    return ImportResult(added, suppressed, present, [])
