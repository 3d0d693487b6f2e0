"""Mailing lists under bad input: malformed, internationalised, oversized and
injected addresses, forged and replayed tokens, rate limits, a server that is
down or refuses, bounces that are not bounces, imports (issue 26, "Bad input")."""

from __future__ import annotations

import os
import stat
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, update
from sqlmodel import select

from node.groups import operations
from node.mail import addresses, bounces, policy, subscriptions
from node.mail.addresses import AddressError
from node.news import bulletin, channels
from node.news import operations as news
from node.storage.db import utcnow
from node.storage.models import (
    LocalActor,
    MailQueueItem,
    MailSubscriber,
    MailSuppression,
)
from node.storage.states import MailState
from tests.conftest import LiveNode, free_port, start_live_node, stop_live_node, wait_for
from tests.mail_helpers import DOMAIN, FORM, SmtpServer, cli_env, dsn, run

BAD_ADDRESSES = [
    "ä@example.org",  # internationalised
    "a@b",  # no dot in the domain
    "x" * 290 + "@example.org",  # 300 characters
    "a@example.org\r\nBcc: victim@example.net",  # header injection
    "a\n@example.org",
    "a@example.org\x00",
    "",
    "a@@example.org",
    "a b@example.org",
    ".a@example.org",
    "a..b@example.org",
    "a@-example.org",
    "a@example.123",
    '"quoted"@example.org',
    "a@[127.0.0.1]",
    "a" * 65 + "@example.org",
]


@pytest.mark.parametrize("raw", BAD_ADDRESSES)
def test_malformed_addresses_are_refused_with_a_message(raw: str) -> None:
    with pytest.raises(AddressError) as caught:
        addresses.normalise(raw)
    assert str(caught.value)
    assert raw.strip() == "" or raw not in str(caught.value)


def test_a_plain_address_is_kept_lower_cased() -> None:
    assert addresses.normalise(" Name.Tag+x@Example.ORG ") == "name.tag+x@example.org"


async def _count(live: LiveNode, model: type) -> int:
    async with live.node.db.read() as session:
        return int((await session.exec(select(func.count()).select_from(model))).one())


async def test_the_form_refuses_bad_input_and_stores_nothing(mail_node: LiveNode) -> None:
    await operations.create_group(mail_node.node, "koeln", display_name="Köln", language="de")
    url = mail_node.url("/groups/koeln/subscribe")
    from urllib.parse import quote

    bodies = [f"address={quote(raw)}&lang=de&kind=bulletins" for raw in BAD_ADDRESSES]
    bodies += [
        "address=ok%40example.org&lang=de%0d%0aBcc%3a+x%40y.org&kind=bulletins",  # CR/LF
        "address=ok%40example.org&lang=xx&kind=bulletins",  # not one of the lists
        "address=ok%40example.org&kind=bulletins",  # no language
        "address=ok%40example.org&lang=de",  # no kind
        "address=ok%40example.org&lang=de&kind=everything",
        "address=ok%40example.org&address=two%40example.org&lang=de&kind=bulletins",
        "lang=de&kind=bulletins",  # no address at all
        "address=%ff%fe&lang=de&kind=bulletins",  # not UTF-8
    ]
    async with httpx.AsyncClient() as client:
        for body in bodies:
            answer = await client.post(url, headers=FORM, content=body)
            assert answer.status_code == 400, body
            assert 'role="alert"' in answer.text
            assert "Bcc" not in answer.text and "victim" not in answer.text
        huge = await client.post(url, headers=FORM, content="address=" + "a" * 5000)
        assert huge.status_code == 413
        nogroup = await client.post(mail_node.url("/groups/nobody/subscribe"), headers=FORM,
                                    content="address=ok%40example.org&lang=de&kind=bulletins")
        assert nogroup.status_code == 404
    assert await _count(mail_node, MailSubscriber) == 0
    assert await _count(mail_node, MailQueueItem) == 0


async def test_forged_and_replayed_tokens_are_404_and_change_nothing(
        mail_node: LiveNode, smtp: SmtpServer) -> None:
    await operations.create_group(mail_node.node, "koeln", display_name="Köln", language="de")
    async with httpx.AsyncClient() as client:
        await client.post(mail_node.url("/groups/koeln/subscribe"), headers=FORM,
                          content="address=eva%40example.net&lang=de&kind=bulletins")
        await wait_for(lambda: _received(smtp, 1), what="the confirmation")
        real = smtp.sink.to("eva@example.net")[0].link("confirm")
        sid = real.rsplit("/", 1)[1].split("-")[0]
        forged = [f"{sid}-{'0' * 32}", f"{int(sid) + 1}-{real[-32:]}", "abc", "1-" + "a" * 300,
                  f"{sid}-{real[-32:].upper()}", "0-" + real[-32:]]
        for kind in ("confirm", "unsubscribe"):
            for token in forged:
                for method in ("GET", "POST"):
                    answer = await client.request(method, mail_node.url(f"/mail/{kind}/{token}"))
                    assert answer.status_code == 404, (kind, token, method)
        # The confirmation token does not unsubscribe, nor the other way round.
        wrong = mail_node.url("/mail/unsubscribe/" + real.rsplit("/", 1)[1])
        assert (await client.post(wrong)).status_code == 404
        assert (await client.post(real)).status_code == 200
        assert (await client.post(real)).status_code == 404  # replayed
        assert (await client.get(real)).status_code == 404
    async with mail_node.node.db.read() as session:
        row = (await session.exec(select(MailSubscriber))).one()
    assert row.state == "confirmed"


async def _received(smtp: SmtpServer, n: int) -> bool:
    return smtp.sink.count() >= n


async def test_the_form_is_rate_limited_per_target_and_per_client(
        mail_node: LiveNode, smtp: SmtpServer) -> None:
    await operations.create_group(mail_node.node, "koeln", display_name="Köln", language="de")
    url = mail_node.url("/groups/koeln/subscribe")

    async def ask(address: str) -> int:
        async with httpx.AsyncClient() as client:
            return (await client.post(url, headers=FORM, content=(
                f"address={address}&lang=de&kind=bulletins"))).status_code

    assert [await ask("same%40example.net") for _ in range(4)] == [200, 200, 200, 429]
    assert [await ask(f"n{i}%40example.net") for i in range(7)] == [200] * 7
    assert await ask("another%40example.net") == 429  # the client's 11th attempt
    # Each accepted attempt voided the earlier links (a mail composed after the next
    # attempt carries the newer link): only the newest link opens the page.
    await wait_for(lambda: _received(smtp, 10), what="ten confirmation mails")
    links = [m.link("confirm") for m in smtp.sink.to("same@example.net")]
    assert len(links) == 3
    async with httpx.AsyncClient() as client:
        assert [(await client.get(link)).status_code for link in links] \
            == [200 if link == links[-1] else 404 for link in links]


async def test_unconfirmed_addresses_are_forgotten_after_seven_days(
        mail_node: LiveNode) -> None:
    node = mail_node.node
    group = await operations.create_group(node, "koeln", display_name="Köln", language="de")
    request = subscriptions.check_request("old@example.net", ["de"], ["bulletins"], ["de"])
    await subscriptions.subscribe(node, group, request, "client-a")
    async with node.db.write() as session:
        assert await subscriptions.forget_unconfirmed(session, utcnow() + timedelta(days=6)) == 0
        assert await subscriptions.forget_unconfirmed(session, utcnow() + timedelta(days=8)) == 1
    assert await _count(mail_node, MailSubscriber) == 0


async def _bulletin(live: LiveNode) -> None:
    await news.create_item(live.node, "koeln", {"language": "de", "versions": {
        "de": {"title": "Streik", "text": "Text"}}})
    from node.mail.queue import bulletin_hook

    await bulletin.publish(live.node, "koeln", on_published=bulletin_hook(live.node.settings))


async def _import(live: LiveNode, *lines: str, consent: str = "paper list, 2025") -> Any:
    async with live.node.db.read() as session:
        group = (await session.exec(select(LocalActor).where(
            LocalActor.username == "koeln"))).one()
    return await subscriptions.import_addresses(live.node, group, "de", list(lines), consent)


async def test_a_server_that_is_down_defers_mail_and_the_node_keeps_serving(
        tmp_path: Path, database_url: str) -> None:
    port = free_port()
    live = await start_live_node(tmp_path, database_url, {
        "HAMBASTEGI_SMTP_URL": f"smtp://127.0.0.1:{port}",
        "HAMBASTEGI_MAIL_FROM": f"bulletin@{DOMAIN}", "HAMBASTEGI_MAIL_RATE": "0"})
    try:
        await operations.create_group(live.node, "koeln", display_name="Köln", language="de")
        await _import(live, "fern@example.net")
        await _bulletin(live)

        async def deferred() -> bool:
            async with live.node.db.read() as session:
                row = (await session.exec(select(MailQueueItem))).one()
            return row.state == MailState.PENDING and row.attempts >= 1
        await wait_for(deferred, what="the mail deferred")
        async with httpx.AsyncClient() as client:
            assert (await client.get(live.url("/groups/koeln"))).status_code == 200
        server = SmtpServer(port)
        server.start()
        try:
            async with live.node.db.write() as session:  # the backoff has passed
                await session.exec(update(MailQueueItem).values(next_attempt_at=utcnow()))
            live.node.changed()
            await wait_for(lambda: _received(server, 1), what="the mail sent after all")
            assert server.sink.received[0].rcpt_to == "fern@example.net"
        finally:
            server.stop()
    finally:
        await stop_live_node(live)


async def test_a_5xx_answer_is_a_hard_bounce_that_suppresses_the_address(
        mail_node: LiveNode, smtp: SmtpServer) -> None:
    await operations.create_group(mail_node.node, "koeln", display_name="Köln", language="de")
    smtp.sink.refuse["gone@example.net"] = "550 5.1.1 no such user"
    await _import(mail_node, "gone@example.net", "here@example.net")
    await _bulletin(mail_node)
    await wait_for(lambda: _received(smtp, 1), what="the one mail accepted")

    await wait_for(lambda: _state_is(mail_node, ["bounced", "sent"]), what="the bounce")
    async with mail_node.node.db.read() as session:
        left = [r.address for r in (await session.exec(select(MailSubscriber))).all()]
        reasons = (await session.exec(select(MailSuppression.reason))).all()
    assert left == ["here@example.net"] and reasons == ["bounced"]
    # The suppressed address cannot be imported back; the consent text is kept.
    result = await _import(mail_node, "gone@example.net", "new@example.net")
    assert (result.added, result.skipped_suppressed) == (1, 1)
    async with mail_node.node.db.read() as session:
        consent = (await session.exec(select(MailSubscriber.consent).where(
            MailSubscriber.address == "new@example.net"))).one()
    assert consent == "paper list, 2025"


async def _state_is(live: LiveNode, states: list[str]) -> bool:
    async with live.node.db.read() as session:
        return sorted(r.state for r in (await session.exec(select(MailQueueItem))).all()) \
            == states


async def test_an_import_with_one_bad_line_imports_nothing(mail_node: LiveNode) -> None:
    await operations.create_group(mail_node.node, "koeln", display_name="Köln", language="de")
    result = await _import(mail_node, "email", "ok@example.net", "ä@example.org",
                           "also@example.net,Also")
    assert [line for line, _ in result.refused] == [3]
    assert result.added == 0 and await _count(mail_node, MailSubscriber) == 0
    for consent in ("", "x" * 501, "line\nbreak"):
        with pytest.raises(operations.OperationError):
            await _import(mail_node, "ok@example.net", consent=consent)


async def test_bounces_that_are_not_hard_change_nothing_or_count_once_a_day(
        mail_node: LiveNode, smtp: SmtpServer) -> None:
    node = mail_node.node
    await operations.create_group(node, "koeln", display_name="Köln", language="de")
    await _import(mail_node, "soft@example.net", "arf@example.net")
    async with node.db.read() as session:
        rows = {r.address: r for r in (await session.exec(select(MailSubscriber))).all()}
    key = await subscriptions.mail_key(node)
    soft = rows["soft@example.net"]
    verp = addresses.verp_address(key, soft.id or 0, soft.nonce, DOMAIN)

    vacation = (f"To: {verp}\r\nSubject: Auto: I am away\r\nAuto-Submitted: auto-replied\r\n"
                "\r\nBack on Monday.\r\n").encode()
    assert (await bounces.handle(node, vacation)).action == "nothing"
    forged = verp.replace(verp.split("-")[1][:20], "0" * 20)
    assert (await bounces.handle(node, dsn(forged))).action == "unknown-recipient"
    day = date(2026, 12, 1)
    steps = [(await bounces.handle(node, dsn(verp, "4.2.2"), today=d)).action
             for d in (day, day, day + timedelta(days=1), day + timedelta(days=5))]
    assert steps == ["counted", "counted", "counted", "suppressed"]
    delayed = await bounces.handle(node, dsn(verp, "4.4.1", action="delayed"))
    assert delayed.action == "unknown-recipient"  # already gone

    arf_row = rows["arf@example.net"]
    arf_verp = addresses.verp_address(key, arf_row.id or 0, arf_row.nonce, DOMAIN)
    complaint = (
        "From: fbl@isp.example\r\nTo: abuse@news.example.org\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="f"\r\n\r\n'
        "--f\r\nContent-Type: text/plain\r\n\r\nA complaint.\r\n"
        "--f\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\n"
        "Version: 1\r\n\r\n--f\r\nContent-Type: message/rfc822\r\n\r\n"
        f"Return-Path: <{arf_verp}>\r\nSubject: Bulletin\r\n\r\nbody\r\n--f--\r\n").encode()
    assert (await bounces.handle(node, complaint)).action == "suppressed"
    assert await _count(mail_node, MailSubscriber) == 0
    for raw in (b"", b"   \r\n", b"x" * (bounces.MAX_MESSAGE + 1)):
        with pytest.raises(bounces.BounceError):
            await bounces.handle(node, raw)


def test_smtp_replies_and_soft_bounces_by_the_pure_rules() -> None:
    assert [policy.classify_reply(c) for c in (250, 251, 421, 450, 452, 550, 554, None, 0)] \
        == ["sent", "sent", "retry", "retry", "retry", "bounce", "bounce", "retry", "retry"]
    today = date(2026, 12, 7)
    assert policy.soft_bounce(0, None, today) == policy.SoftBounce(1, today, False)
    assert policy.soft_bounce(1, today, today) == policy.SoftBounce(1, today, False)
    assert policy.soft_bounce(2, today - timedelta(days=1), today).suppress


async def test_subscribers_cli_exports_privately_deletes_and_imports(
        mail_node: LiveNode, tmp_path: Path) -> None:
    await operations.create_group(mail_node.node, "koeln", display_name="Köln", language="de")
    await channels.enable(mail_node.node, "koeln", ["fa"])
    env = cli_env(mail_node)
    listing = tmp_path / "list.csv"
    listing.write_text("email\nOne@Example.net\ntwo@example.net\n", encoding="utf-8")
    code, out, err = await run(env, "subscribers", "import", "koeln", "--lang", "fa",
                               str(listing), "--consent", "signed at the 2025 assembly")
    assert code == 0, err
    assert "added 2" in out
    export = tmp_path / "out.csv"
    code, out, err = await run(env, "subscribers", "koeln", "--export", str(export))
    assert code == 0, err
    assert "fa\tbulletins\t2" in out and "@" not in out
    assert stat.S_IMODE(os.stat(export).st_mode) == 0o600
    text = export.read_text(encoding="utf-8")
    assert "one@example.net" in text and "signed at the 2025 assembly" in text
    code, out, err = await run(env, "subscribers", "delete", "koeln", "one@example.net")
    assert code == 0 and out.startswith("deleted"), err
    code, out, err = await run(env, "subscribers", "import", "koeln", "--lang", "fa",
                               str(listing), "--consent", "again")
    assert "added 0" in out and "left before (not added) 1" in out
    bad = tmp_path / "bad.csv"
    bad.write_text("ok@example.net\na@b\n", encoding="utf-8")
    code, out, err = await run(env, "subscribers", "import", "koeln", "--lang", "fa", str(bad),
                               "--consent", "x")
    assert code == 1 and "bad.csv:2:" in err and "a@b" not in err
    code, _, err = await run(env, "subscribers", "delete", "koeln", "a@example.org\r\nX: y")
    assert code == 1 and "control characters" in err


@pytest.mark.parametrize(("name", "value"), [
    ("HAMBASTEGI_SMTP_URL", "http://mail.example"),
    ("HAMBASTEGI_SMTP_URL", "smtp://"),
    ("HAMBASTEGI_SMTP_URL", "smtp://mail.example:99999999"),
    ("HAMBASTEGI_SMTP_URL", "smtp://mail.example:abc"),
    ("HAMBASTEGI_MAIL_FROM", "bulletin@node.example\r\nBcc: x@y.org"),
    ("HAMBASTEGI_MAIL_FROM", "no-at-sign"),
    ("HAMBASTEGI_MAIL_RATE", "-1"),
    ("HAMBASTEGI_MAIL_RATE", "fast"),
    ("HAMBASTEGI_MAIL_LEASE_SECONDS", "0"),
])
def test_malformed_mail_settings_are_refused_by_name(name: str, value: str) -> None:
    from node.core.settings import Settings, SettingsError

    with pytest.raises(SettingsError):
        Settings.load(environ={"HAMBASTEGI_BASE_URL": "https://node.example", name: value})


def test_smtp_urls_choose_starttls_with_a_password_tls_for_smtps_plain_for_a_relay() -> None:
    from node.mail.smtp import SmtpTarget

    login = SmtpTarget.parse("smtp://user:p%40ss@mail.example:587")
    assert (login.start_tls, login.use_tls, login.password, login.port) == (True, False,
                                                                          "p@ss", 587)
    tls = SmtpTarget.parse("smtps://user:pw@mail.example")
    assert (tls.use_tls, tls.start_tls, tls.port) == (True, False, 465)
    relay = SmtpTarget.parse("smtp://localhost")
    assert (relay.use_tls, relay.start_tls, relay.port) == (False, False, 25)
    assert "pw" not in tls.describe() and "user" not in tls.describe()


def test_the_fast_rsa_step_gives_dkimpys_own_bytes_and_verifies() -> None:
    import hashlib

    from node.mail import dkim as mail_dkim

    key = mail_dkim.DkimKey("s1", "example.org", mail_dkim.new_pem())
    signer = mail_dkim.Signer(key)
    parsed = mail_dkim._parsed_key(key.pem)
    digest = hashlib.sha256(b"canonical headers")
    assert mail_dkim._fast_rsa_sign(digest.copy(), parsed) \
        == mail_dkim._original(digest.copy(), parsed)
    message = (b"From: a@example.org\r\nTo: b@example.net\r\nSubject: s\r\n"
               b"Date: Mon, 07 Dec 2026 10:00:00 +0000\r\nMessage-ID: <1@example.org>\r\n"
               b"\r\nbody\r\n")
    signed = signer.sign(message) + message
    assert mail_dkim.verify(signed, mail_dkim.dns_value(key.pem))
    assert not mail_dkim.verify(signed.replace(b"body", b"bodY"), mail_dkim.dns_value(key.pem))
    other = mail_dkim.dns_value(mail_dkim.new_pem())
    assert not mail_dkim.verify(signed, other)


async def test_the_worker_forgets_unconfirmed_addresses_without_any_new_subscription(
        mail_node: LiveNode) -> None:
    import asyncio

    from node.mail.worker import MailWorker

    node = mail_node.node
    group = await operations.create_group(node, "koeln", display_name="Köln", language="de")
    async with node.db.write() as session:
        session.add(MailSubscriber(group_id=group.id or 0, address="late@example.net",
                                   language="de", nonce="0" * 32,
                                   created_at=utcnow() - timedelta(days=8)))
    stop = asyncio.Event()
    worker = MailWorker(node)
    task = asyncio.create_task(worker.run(stop))
    try:
        await wait_for(lambda: _gone(mail_node), what="the stale address forgotten")
    finally:
        stop.set()
        await task


async def _gone(live: LiveNode) -> bool:
    return await _count(live, MailSubscriber) == 0


async def test_a_new_dkim_key_signs_the_next_mails_without_a_restart(
        mail_node: LiveNode, smtp: SmtpServer) -> None:
    import dkim as dkimpy

    from node.mail import dkim as mail_dkim

    node = mail_node.node
    await operations.create_group(node, "koeln", display_name="Köln", language="de")
    await _import(mail_node, "reader@example.net")
    records = []
    for number, selector in ((1, "first"), (2, "second")):
        key = await mail_dkim.make_key(node.db, selector, DOMAIN)
        records.append(mail_dkim.dns_value(key.pem))
        await _bulletin(mail_node)
        await wait_for(lambda n=number: _received(smtp, n), what=f"bulletin {number}")
    first, second = (m.raw for m in smtp.sink.to("reader@example.net"))
    assert b"s=first;" in first and b"s=second;" in second
    assert dkimpy.verify(first, dnsfunc=lambda name, timeout=5: records[0])
    assert dkimpy.verify(second, dnsfunc=lambda name, timeout=5: records[1])
