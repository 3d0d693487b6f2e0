"""The bulletin by e-mail, end to end, with a real SMTP server (aiosmtpd) and real
commands: subscribe through the form, confirm through the page's POST, publish a
bulletin in fa and de, DKIM checked by dkimpy against the printed TXT record,
one-click unsubscribe, a DSN through `mail bounce` (issue 26, "What it must show")."""

from __future__ import annotations

import re
from pathlib import Path

import dkim
import httpx
from sqlalchemy import func
from sqlmodel import select

from node.federation.local_actors import get_group
from node.groups import operations
from node.mail import queue, subscriptions
from node.news import channels
from node.news import operations as news
from node.storage.models import (
    MailQueueItem,
    MailSubscriber,
    MailSuppression,
    NewsBulletin,
    NewsItem,
)
from tests.conftest import (
    LiveNode,
    wait_for,
)
from tests.mail_helpers import (
    DOMAIN,
    FORM,
    SmtpServer,
    cli_env,
    dsn,
    record_value,
    run,
)


async def subscribers(live: LiveNode) -> dict[str, str]:
    async with live.node.db.read() as session:
        rows = (await session.exec(select(MailSubscriber))).all()
    return {r.address: r.state for r in rows}


async def test_subscribe_confirm_publish_unsubscribe_and_bounce_end_to_end(
        mail_node: LiveNode, smtp: SmtpServer, tmp_path: Path) -> None:
    live, node = mail_node, mail_node.node
    env = cli_env(live)
    code, out, err = await run(env, "mail", "dkim-key", "--selector", "test2026")
    assert code == 0, err
    assert f"test2026._domainkey.{DOMAIN}. IN TXT" in out
    record = record_value(out)
    assert record.startswith(b"v=DKIM1; k=rsa; p=")

    await operations.create_group(node, "koeln", display_name="Köln", language="de")
    await channels.enable(node, "koeln", ["fa"])
    group_url = live.url("/groups/koeln")
    async with httpx.AsyncClient(headers={"Accept-Language": "en"}) as client:
        page = await client.get(group_url)
        assert 'action="' + live.node.urls.actor("koeln") + '/subscribe"' in page.text
        people = {"ali@example.net": ["fa"], "berta@example.net": ["de"],
                  "cyrus@example.net": ["fa", "de"]}
        for address, langs in people.items():
            answer = await client.post(group_url + "/subscribe", headers=FORM, content=(
                f"address={address}&" + "&".join(f"lang={lang}" for lang in langs)
                + "&kind=bulletins"))
            assert answer.status_code == 200, answer.text
            assert "confirmation mail is on its way" in answer.text
        await wait_for(lambda: _n(smtp, 3), what="three confirmation mails")
        assert await subscribers(live) == dict.fromkeys(people, "pending")
        for address, langs in people.items():
            [mail] = smtp.sink.to(address)
            assert mail.message["Content-Language"] == langs[0]
            link = mail.link("confirm")
            shown = await client.get(link)  # a mail scanner following the link
            assert shown.status_code == 200 and "<form method=\"post\"" in shown.text
            assert (await subscribers(live))[address] == "pending"
            assert (await client.post(link)).status_code == 200
            assert (await subscribers(live))[address] == "confirmed"
            assert (await client.post(link)).status_code == 404  # replayed

        await news.create_item(node, "koeln", {"language": "fa", "versions": {
            "fa": {"title": "اعتصاب در ماهشهر", "text": "متن"},
            "de": {"title": "Streik in Mahshahr", "text": "Text"}}})
        code, out, err = await run(env, "bulletin", "publish", "koeln", "--wait")
        assert code == 0, err
        assert out.startswith("1\t")
        assert "sent 3" in err  # the progress line's last state
        bulletin_page = await client.get(out.split("\t")[1].strip(),
                                         headers={"Accept": "text/html"})
        assert "/groups/koeln/subscribe" in bulletin_page.text  # the form, on its page too
        await wait_for(lambda: _n(smtp, 6), what="three bulletin mails")

        # Published twice by mistake (the hook run again): nobody is queued twice.
        async with node.db.write() as session:
            row = (await session.exec(select(NewsBulletin))).one()
            item = (await session.exec(select(NewsItem).where(
                NewsItem.object_id == row.object_id))).one()
            group = await get_group(session, "koeln")
            assert group is not None
            await queue.on_bulletin(session, group, 1, item.versions, "https://x.example/o/1")
        async with node.db.read() as session:
            queued = (await session.exec(select(func.count()).select_from(MailQueueItem))).one()
        assert queued == 6  # three confirmations, three bulletins

        bulletins = {a: [m for m in smtp.sink.to(a) if "List-Id" in m.message]
                     for a in people}
        assert {a: len(ms) for a, ms in bulletins.items()} == dict.fromkeys(people, 1)
        ali, berta, cyrus = (bulletins[a][0] for a in people)
        assert ali.message["Content-Language"] == "fa"
        assert 'dir="rtl"' in ali.part("html") and "اعتصاب در ماهشهر" in ali.part("plain")
        assert berta.message["Content-Language"] == "de"
        assert 'dir="ltr"' in berta.part("html") and "Streik in Mahshahr" in berta.part("plain")
        assert cyrus.message["Content-Language"] == "fa"  # his first language
        for mail in (ali, berta, cyrus):
            msg = mail.message
            assert msg.get_content_type() == "multipart/alternative"
            assert "<img" not in mail.part("html")
            assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            unsubscribe_url = f"<{node.settings.base_url}/mail/unsubscribe/"
            assert msg["List-Unsubscribe"].strip().startswith(unsubscribe_url)
            assert msg["Message-ID"] and msg["Date"] and "<koeln." in msg["List-Id"]
            assert re.fullmatch(rf"bounces\+[0-9]+-[0-9a-f]{{20}}@{DOMAIN}", mail.mail_from)
            assert dkim.verify(mail.raw, dnsfunc=lambda name, timeout=5: record)
            signature = msg["DKIM-Signature"].replace("\r\n", "").replace(" ", "")
            h = re.search(r"h=([^;]+)", signature)
            assert h is not None
            assert h.group(1).split(":") == ["from", "to", "subject", "date", "message-id",
                                             "list-id", "list-unsubscribe",
                                             "list-unsubscribe-post"]
        tampered = ali.raw.replace(b"/objects/", b"/objectz/", 1)
        assert tampered != ali.raw
        assert not dkim.verify(tampered, dnsfunc=lambda name, timeout=5: record)

        unsubscribe = berta.message["List-Unsubscribe"].strip().strip("<>")
        shown = await client.get(unsubscribe)
        assert shown.status_code == 200
        assert (await subscribers(live))["berta@example.net"] == "confirmed"
        one_click = await client.post(unsubscribe, headers=FORM,
                                      content="List-Unsubscribe=One-Click")
        assert one_click.status_code == 200
        assert "berta@example.net" not in await subscribers(live)
        assert (await client.post(unsubscribe, headers=FORM,
                                  content="List-Unsubscribe=One-Click")).status_code == 404

    code, out, err = await run(env, "mail", "bounce", stdin=dsn(ali.mail_from))
    assert code == 0, err
    assert out.startswith("hard: suppressed")
    assert "ali@example.net" not in out + err
    assert set(await subscribers(live)) == {"cyrus@example.net"}
    async with node.db.read() as session:
        reasons = sorted((await session.exec(select(MailSuppression.reason))).all())
    assert reasons == ["bounced", "unsubscribed"]

    code, out, err = await run(env, "mail", "status", "koeln")
    assert code == 0, err
    assert "bulletin 1" in out and "sent 3" in out
    code, out, _ = await run(env, "subscribers", "koeln")
    assert "fa\tbulletins\t1" in out and "@" not in out


async def _n(smtp: SmtpServer, count: int) -> bool:
    return smtp.sink.count() >= count


async def test_a_confirmed_address_gets_the_same_answer_and_no_mail(
        mail_node: LiveNode, smtp: SmtpServer) -> None:
    node = mail_node.node
    await operations.create_group(node, "koeln", display_name="Köln", language="de")
    url = mail_node.url("/groups/koeln/subscribe")
    async with httpx.AsyncClient() as client:
        first = await client.post(url, headers=FORM,
                                  content="address=dora@example.net&lang=de&kind=bulletins")
        await wait_for(lambda: _n(smtp, 1), what="the confirmation")
        await client.post(smtp.sink.to("dora@example.net")[0].link("confirm"))
        again = await client.post(url, headers=FORM,
                                  content="address=dora@example.net&lang=de&kind=bulletins")
        fresh = await client.post(url, headers=FORM,
                                  content="address=emil@example.net&lang=de&kind=bulletins")
    assert first.status_code == again.status_code == fresh.status_code == 200
    assert again.text == fresh.text.replace("emil", "dora")  # nothing tells them apart
    await wait_for(lambda: _n(smtp, 2), what="emil's confirmation")
    assert len(smtp.sink.to("dora@example.net")) == 1


async def test_the_workspace_shows_counts_and_progress_but_no_address(
        mail_node: LiveNode, smtp: SmtpServer) -> None:
    from tests.workspace_helpers import form_token, logged_in, make_user

    node = mail_node.node
    group = await operations.create_group(node, "koeln", display_name="Köln", language="de")
    await subscriptions.import_addresses(node, group, "de", ["one@example.net",
                                                              "two@example.net"], "a paper list")
    await news.create_item(node, "koeln", {"language": "de", "versions": {
        "de": {"title": "Streik", "text": "Text"}}})
    await make_user(mail_node, "ali", groups=("koeln",))
    async with logged_in(mail_node, "ali") as client:
        token = await form_token(client, "/admin/groups/koeln")
        pressed = await client.post("/admin/groups/koeln/bulletin", data={"csrf": token})
        assert pressed.status_code == 303
        await wait_for(lambda: _n(smtp, 2), what="two mails")

        async def recorded() -> bool:
            return all(p.done for p in await queue.progress(node.db))
        await wait_for(recorded, what="both recorded")
        page = (await client.get("/admin/groups/koeln")).text
        again = await client.post("/admin/groups/koeln/bulletin", data={"csrf": token})
        assert again.status_code == 400 and "no news items" in again.text
    assert "Mailing lists" in page and '<progress max="2" value="2">' in page
    assert "sent 2" in page and "@example.net" not in page


async def test_a_call_is_mailed_when_published_and_when_postponed_to_those_who_want_calls(
        mail_node: LiveNode, smtp: SmtpServer) -> None:
    from node.calls import operations as calls
    from tests.test_events import geneva_call

    node = mail_node.node
    group = await operations.create_group(node, "geneva", display_name="Genf", language="de")
    await subscriptions.import_addresses(node, group, "de", ["calls@example.net",
                                                              "news@example.net"], "list")
    async with node.db.write() as session:
        row = (await session.exec(select(MailSubscriber).where(
            MailSubscriber.address == "calls@example.net"))).one()
        row.calls = True
    call = await calls.create_call(node, "geneva", geneva_call())
    await calls.change_status(node, call, "postponed", start="2027-06-15T12:00")
    await wait_for(lambda: _n(smtp, 2), what="two call mails")
    mails = smtp.sink.to("calls@example.net")
    assert [m.message["Content-Language"] for m in mails] == ["de", "de"]
    assert mails[0].message["Subject"] == "Protestkundgebung vor der ILO"
    assert mails[1].message["Subject"] == "Verschoben: Protestkundgebung vor der ILO"
    assert call + "#v-de" in mails[1].part("plain")
    await calls.change_status(node, call, "cancelled")
    await wait_for(lambda: _n(smtp, 3), what="the cancellation")
    assert smtp.sink.to("news@example.net") == []
