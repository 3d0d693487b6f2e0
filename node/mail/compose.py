"""What a mail says, and the bytes of one mail to one recipient.

A message's texts per language are made once, when it is queued
(``bulletin_versions``, ``confirm_versions``); the worker ``prepare``s each
(message, language) once and ``render``s each recipient's mail from it at send
time, with that recipient's links and headers:

- ``multipart/alternative``: plain text first, then HTML (RFC 2046 §5.1.4: the
  last part is the preferred one) with ``lang`` and ``dir`` (rtl for Persian,
  Arabic, Kurdish …), links to the items on the site, and no image, remote
  or inline, and no tracker: nothing in it reports back that it was read;
- ``Message-ID`` derived from message and recipient, so a mail sent again after
  a crash is recognisable as the same mail;
- ``List-Id`` (RFC 2919) per group and language, ``List-Unsubscribe`` with an
  https URL carrying the subscriber's token and ``List-Unsubscribe-Post:
  List-Unsubscribe=One-Click`` (RFC 8058; both signed by DKIM, as §4 asks).

The envelope sender (what becomes ``Return-Path``) is the VERP address
(addresses.verp_address): the worker gives it to SMTP, not a header.
"""

from __future__ import annotations

import binascii
import html
import re
import secrets
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from typing import Any

from node.news.items import render_markdown
from node.storage.db import utcnow

RTL = frozenset({"fa", "ar", "ckb", "he", "ur", "ps", "yi", "sd", "ug", "dv"})
LINK_RE = re.compile(r"^- \[(?P<title>.*)\]\(<(?P<url>[^<>\s]+)>\)$")
UNESCAPE_RE = re.compile(r"\\([!-/:-@\[-`{-~])")
CONFIRM_MARK = "@@CONFIRM_URL@@"

# The few sentences of the mails themselves, in the network's languages (as the
# bulletin's headings in news/bulletin.py); English otherwise.
CONFIRM_SUBJECT = {
    "en": "Confirm your subscription to {group}",
    "de": "Bestätigen Sie Ihr Abonnement von {group}",
    "fa": "اشتراک خود در {group} را تأیید کنید",
}
CONFIRM_TEXT = {
    "en": ("Someone, probably you, asked to receive the mailings of {group} at this "
           "address. To confirm, open this link and press the button:\n\n{url}\n\n"
           "If it was not you, do nothing: this address will be forgotten in 7 days."),
    "de": ("Jemand, wahrscheinlich Sie, möchte die Rundschreiben von {group} an diese "
           "Adresse erhalten. Zur Bestätigung öffnen Sie diesen Link und drücken Sie den "
           "Knopf:\n\n{url}\n\nWaren Sie es nicht, tun Sie nichts: die Adresse wird nach "
           "7 Tagen vergessen."),
    "fa": ("کسی، احتمالاً خود شما، خواسته است نامه‌های {group} به این نشانی فرستاده شود. "
           "برای تأیید این پیوند را باز کنید و دکمه را بزنید:\n\n{url}\n\n"
           "اگر شما نبودید، کاری نکنید: این نشانی پس از ۷ روز فراموش می‌شود."),  # noqa: RUF001
}
FOOTER = {
    "en": "You receive this because you subscribed to {group}. Unsubscribe: {url}",
    "de": "Sie erhalten dies, weil Sie {group} abonniert haben. Abbestellen: {url}",
    "fa": "این نامه را دریافت می‌کنید چون مشترک {group} شده‌اید. لغو اشتراک: {url}",
}
READ_ONLINE = {"en": "Read online", "de": "Online lesen", "fa": "خواندن در وب"}


def _pick(table: dict[str, str], language: str) -> str:
    return table.get(language.split("-")[0], table["en"])


def one_line(text: str, limit: int = 300) -> str:
    """A header value: control characters (CR, LF …) become spaces, bounded."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())[:limit]


def direction(language: str) -> str:
    return "rtl" if language.split("-")[0].lower() in RTL else "ltr"


def _markdown_to_text(markdown: str) -> str:
    """The bulletin's list of linked titles as plain text: title, then its URL."""
    lines = []
    for line in markdown.splitlines():
        match = LINK_RE.match(line)
        if match:
            title = UNESCAPE_RE.sub(r"\1", match.group("title"))
            lines.append(f"* {title}\n  {match.group('url')}")
        else:
            lines.append(UNESCAPE_RE.sub(r"\1", line))
    return "\n".join(lines)


def bulletin_versions(versions: dict[str, Any], url: str) -> dict[str, dict[str, str]]:
    """A bulletin's mail per language, from its news item's versions."""
    out = {}
    for lang, version in versions.items():
        title = str(version.get("title") or "")
        markdown = str(version.get("text") or "")
        anchor = url if lang == next(iter(versions)) else f"{url}#v-{lang}"
        out[lang] = {"subject": title, "text": f"{title}\n\n{_markdown_to_text(markdown)}\n",
                     "html": render_markdown(markdown), "url": anchor, "title": title}
    return out


def confirm_versions(language: str, group_name: str) -> dict[str, dict[str, str]]:
    subject = _pick(CONFIRM_SUBJECT, language).format(group=group_name)
    text = _pick(CONFIRM_TEXT, language).format(group=group_name, url=CONFIRM_MARK)
    body = "".join(f"<p>{html.escape(p).replace(html.escape(CONFIRM_MARK), _confirm_link())}"
                   "</p>" for p in text.split("\n\n"))
    return {language: {"subject": subject, "text": text + "\n", "html": body, "url": "",
                       "title": subject}}


def _confirm_link() -> str:
    return f'<a href="{CONFIRM_MARK}">{CONFIRM_MARK}</a>'


UNSUBSCRIBE_MARK = "@@UNSUBSCRIBE_URL@@"


@dataclass(frozen=True, slots=True)
class Prepared:
    """A message in one language with everything but the recipient: made once per
    message and language, so each recipient costs a few substitutions, two
    quoted-printable encodings (binascii, in C) and the signature — the email
    package's header objects cost ~1.3 ms a mail (bench/mail.py)."""

    head: bytes  # From, Subject, List-Id, Auto-Submitted, MIME headers (CRLF, encoded)
    text: str  # with CONFIRM_MARK / UNSUBSCRIBE_MARK where the recipient's links go
    html: str
    boundary: str
    listed: bool  # a list mail: List-Unsubscribe(-Post) headers


def _html_page(language: str, title: str, body: str, links: str) -> str:
    dir_ = direction(language)
    return (f'<!DOCTYPE html>\n<html lang="{html.escape(language)}" dir="{dir_}">'
            f'<head><meta charset="utf-8"><title>{html.escape(title)}</title></head>'
            f'<body dir="{dir_}" style="font-family:sans-serif;max-width:40em">'
            f"<h1>{html.escape(title)}</h1>{body}{links}</body></html>\n")


def prepare(version: dict[str, str], language: str, group_name: str, from_address: str,
            list_id: str | None) -> Prepared:
    """``list_id`` None: not a list mail (a confirmation: no unsubscribe link)."""
    head = EmailMessage(policy=SMTP)
    head["From"] = Address(display_name=one_line(group_name, 100), addr_spec=from_address)
    head["Subject"] = one_line(version["subject"])
    if list_id is not None:
        head["List-Id"] = list_id
    head["Auto-Submitted"] = "auto-generated"  # RFC 3834: vacation replies stay away
    boundary = "=_hb_" + secrets.token_hex(12)  # "=_" never occurs in quoted-printable
    head["MIME-Version"] = "1.0"
    head["Content-Type"] = f'multipart/alternative; boundary="{boundary}"'
    head["Content-Language"] = language
    text = version["text"]
    body = version["html"]
    links = ""
    if version.get("url"):
        read = _pick(READ_ONLINE, language)
        text += f"\n{read}: {version['url']}\n"
        links += f'<p><a href="{html.escape(version["url"])}">{html.escape(read)}</a></p>'
    if list_id is not None:
        footer = _pick(FOOTER, language)
        text += "\n-- \n" + footer.format(group=group_name, url=UNSUBSCRIBE_MARK) + "\n"
        links += "<hr><p><small>" + html.escape(footer).format(
            group=html.escape(group_name),
            url=f'<a href="{UNSUBSCRIBE_MARK}">{UNSUBSCRIBE_MARK}</a>') + "</small></p>"
    page = _html_page(language, version.get("title", version["subject"]), body, links)
    return Prepared(head.as_bytes().split(b"\r\n\r\n", 1)[0] + b"\r\n", text, page,
                    boundary, list_id is not None)


def _qp(text: str) -> bytes:
    encoded = binascii.b2a_qp(text.replace("\r\n", "\n").encode("utf-8"), istext=True)
    return encoded.replace(b"\n", b"\r\n")


def render(prepared: Prepared, to: str, message_id: str, *, unsubscribe_url: str | None = None,
           confirm_url: str | None = None) -> bytes:
    """One recipient's mail (unsigned), CRLF line ends. ``to`` and the URLs are ASCII
    without control characters (addresses.normalise, our own URLs)."""
    text, page = prepared.text, prepared.html
    for mark, url in ((UNSUBSCRIBE_MARK, unsubscribe_url), (CONFIRM_MARK, confirm_url)):
        if url is not None:
            text = text.replace(mark, url)
            page = page.replace(mark, html.escape(url))
    lines = [f"To: {to}", f"Date: {format_datetime(utcnow())}", f"Message-ID: {message_id}"]
    if prepared.listed and unsubscribe_url is not None:
        lines += [f"List-Unsubscribe: <{unsubscribe_url}>",
                  "List-Unsubscribe-Post: List-Unsubscribe=One-Click"]
    b = prepared.boundary
    part = 'Content-Type: text/{}; charset="utf-8"\r\nContent-Transfer-Encoding: ' \
           "quoted-printable\r\n\r\n"
    return b"".join([
        prepared.head, "\r\n".join(lines).encode("ascii"), b"\r\n\r\n",
        f"--{b}\r\n{part.format('plain')}".encode(), _qp(text), b"\r\n",
        f"--{b}\r\n{part.format('html')}".encode(), _qp(page), b"\r\n",
        f"--{b}--\r\n".encode()])


def list_id(group_username: str, language: str, domain: str, group_name: str) -> str:
    """RFC 2919: a phrase and <list-label.namespace>; the label per group and language."""
    label = f"{group_username}.{language}".lower().replace("_", "-")
    phrase = "".join(c for c in one_line(group_name, 100) if c not in '"\\()<>,;:@[]')
    return f"{phrase} {language} <{label}.lists.{domain}>"
