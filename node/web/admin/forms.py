"""Between the workspace's HTML forms and the JSON bodies the CLI and API take.

One field set per language: ``title_<lang>``, ``text_<lang>`` (and for news
``summary_<lang>``, ``alt_<lang>``); the languages shown are the form's
``languages`` field (``fa de``). The bodies built here go to the same operations as
the API's (calls.operations.create_call, news.operations.create_item), or into a
draft unchanged."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from node.core import languages as langs
from node.core.text import html_to_plain
from node.groups.errors import OperationError
from node.storage.models import Event, LocalObject
from node.web.i18n import N_

MAX_LANGS = 20
# N_: the form shows each through the catalogue (``_(k)``); extraction finds them here.
KINDS = (N_("action"), N_("meeting"), N_("conference"))
JOIN_MODES = (N_("external"), N_("free"), N_("restricted"), N_("invite"))


def language_list(raw: str, default: str) -> list[str]:
    """``fa, de`` → ["fa", "de"]; the default language alone when empty."""
    found: list[str] = []
    for tag in raw.replace(",", " ").split():
        try:
            langs.validate(tag)
        except langs.LanguageError as exc:
            raise OperationError(f"languages: {exc}") from exc
        if tag not in found:
            found.append(tag)
    if len(found) > MAX_LANGS:
        raise OperationError(f"at most {MAX_LANGS} languages")
    return found or [default]


def _get(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _set(body: dict[str, Any], key: str, value: Any) -> None:
    if value not in ("", None, [], {}):
        body[key] = value


def call_body(form: Mapping[str, Any], languages: list[str]) -> dict[str, Any]:
    """The body of POST /api/v1/groups/{g}/events from the call form."""
    body: dict[str, Any] = {}
    primary = _get(form, "language")
    body["language"] = primary if primary in languages else languages[0]
    _set(body, "title", {lang: _get(form, f"title_{lang}") for lang in languages
                         if _get(form, f"title_{lang}")})
    _set(body, "text", {lang: _get(form, f"text_{lang}") for lang in languages
                        if _get(form, f"text_{lang}")})
    for key in ("kind", "start", "end", "timezone", "online_url", "target", "join_mode"):
        _set(body, key, _get(form, key))
    place = {key: _get(form, f"place_{key}") for key in ("name", "street", "city", "country")}
    _set(body, "place", {k: v for k, v in place.items() if v})
    _set(body, "hashtags", [t.lstrip("#") for t in _get(form, "hashtags").split()])
    if _get(form, "flyer_media"):
        body["flyer"] = {"media": _get(form, "flyer_media"), "alt": _get(form, "flyer_alt")}
    return body


def call_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the call form shows for a body (a draft, or a call being edited)."""
    place = body.get("place") or {}
    flyer = body.get("flyer") or {}
    return {
        "language": body.get("language", ""), "titles": body.get("title") or {},
        "texts": body.get("text") or {}, "kind": body.get("kind", "action"),
        "start": body.get("start", ""), "end": body.get("end", ""),
        "timezone": body.get("timezone", ""), "online_url": body.get("online_url", ""),
        "target": body.get("target", ""), "join_mode": body.get("join_mode", "external"),
        "place": place if isinstance(place, dict) else {},
        "hashtags": " ".join(body.get("hashtags") or []),
        "flyer_media": flyer.get("media", "") if isinstance(flyer, dict) else "",
        "flyer_alt": flyer.get("alt", "") if isinstance(flyer, dict) else "",
    }


def published_call_body(obj: LocalObject, event: Event) -> dict[str, Any]:
    """A published call as a body, to fill the form that edits it."""
    from node.calls.events import local_time

    def local(value: Any) -> str:
        return local_time(value, event.timezone).strftime("%Y-%m-%dT%H:%M") if value else ""

    body: dict[str, Any] = {
        "language": obj.language, "title": dict(obj.names),
        "text": {k: html_to_plain(v) for k, v in obj.contents.items()},
        "kind": event.kind, "start": local(event.start_time), "end": local(event.end_time),
        "timezone": event.timezone, "join_mode": event.join_mode,
        "online_url": event.online_url or "", "target": event.target or "",
        "hashtags": list(event.hashtags or []), "place": dict(event.place or {}),
    }
    if event.flyer:
        body["flyer"] = {"media": str(event.flyer["path"]).removeprefix("uploads/"),
                         "alt": event.flyer.get("alt", "")}
    return {k: v for k, v in body.items() if v not in ("", None, [], {})}


def news_body(form: Mapping[str, Any], languages: list[str]) -> dict[str, Any]:
    """The body of POST /api/v1/groups/{g}/news from the news form."""
    body: dict[str, Any] = {}
    primary = _get(form, "language")
    body["language"] = primary if primary in languages else languages[0]
    versions: dict[str, Any] = {}
    for lang in languages:
        version = {key: _get(form, f"{key}_{lang}") for key in ("title", "text", "summary")}
        version = {k: v for k, v in version.items() if v}
        if version:
            versions[lang] = version
    _set(body, "versions", versions)
    if _get(form, "photo_media"):
        alt = {lang: _get(form, f"alt_{lang}") for lang in languages if _get(form, f"alt_{lang}")}
        body["photos"] = [{"media": _get(form, "photo_media"), "alt": alt}]
    _set(body, "hashtags", [t.lstrip("#") for t in _get(form, "hashtags").split()])
    _set(body, "sources", _get(form, "sources").split())
    _set(body, "country", _get(form, "country"))
    return body


def news_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    photos = body.get("photos") or [{}]
    photo = photos[0] if isinstance(photos[0], dict) else {}
    return {
        "language": body.get("language", ""), "versions": body.get("versions") or {},
        "photo_media": photo.get("media", ""), "alts": photo.get("alt") or {},
        "hashtags": " ".join(body.get("hashtags") or []),
        "sources": "\n".join(body.get("sources") or []), "country": body.get("country", ""),
    }


def body_languages(kind: str, body: Mapping[str, Any]) -> list[str]:
    """The languages a stored body has versions in, its primary language first."""
    mapping = body.get("title" if kind == "call" else "versions") or {}
    found = [body.get("language", "")] + [k for k in mapping if k != body.get("language")]
    return [lang for lang in found if lang]
