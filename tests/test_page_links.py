"""Every link a public page advertises answers (issue 25, defect 4).

A walk of a populated node — front page, groups, a language channel, a network,
calls, news, a bulletin, a note, a campaign, the campaign lists, a tag page and the
node's own actor — that follows every link to another page of this node and
requests every ``<link rel=alternate>`` and every feed or calendar link each page
shows. A reader's feed reader or calendar app follows those without a human to
notice a 404.
"""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx
from sqlmodel import col, select

from node.calls import operations as calls
from node.campaigns import operations as campaigns
from node.groups import operations
from node.networks import members as networks
from node.news import channels
from node.news import operations as news
from node.storage.models import LocalObject, NewsCopy
from tests.conftest import LiveNode
from tests.public_site import call_body, seed
from tests.test_campaigns import dossier

FEED_TYPES = ("application/atom+xml", "application/feed+json", "application/rss+xml",
              "text/calendar", "application/activity+json")
FEED_ENDINGS = (".atom", ".json", ".ics", ".rss")
# Pages are walked up to this many: far more than the seeded node has.
MAX_PAGES = 400


class Links(HTMLParser):
    """The page's advertised links (<link rel=alternate>, feed and calendar <a>s)
    and its links to other pages."""

    def __init__(self) -> None:
        super().__init__()
        self.advertised: list[tuple[str, str]] = []  # (href, type)
        self.pages: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        href = found.get("href")
        if not href or tag not in ("a", "link"):
            return
        rel = found.get("rel", "").split()
        feed = (found.get("type", "") in FEED_TYPES
                or urlsplit(href).path.endswith(FEED_ENDINGS))
        if (tag == "link" and "alternate" in rel) or (tag == "a" and feed):
            self.advertised.append((href, found.get("type", "")))
        elif tag == "a":
            self.pages.append(href)


def same_node(base: str, href: str, page: str) -> str | None:
    """``href`` made absolute if it points to this node, without its fragment."""
    url = urljoin(page, href)
    parts = urlsplit(url)
    if f"{parts.scheme}://{parts.netloc}" != base:
        return None
    return urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))


def is_page(url: str) -> bool:
    path = urlsplit(url).path
    # A language choice (?lang=) shows the same page in another language.
    return not path.startswith(("/media/", "/static/")) and "lang=" not in urlsplit(url).query


async def populated(live: LiveNode) -> list[str]:
    """Seed every kind of page; return the URLs the walk starts from."""
    node = live.node
    site = await seed(node)
    await channels.enable(node, "tehran", ["fa"])
    # Published after the channel exists: the channel has a one-language copy of it.
    copied = await news.create_item(node, "tehran", {
        "language": "fa", "versions": {"fa": {"title": "خبر کانال", "text": "متن خبر."},
                                       "de": {"text": "Text der Meldung."}}})
    await networks.create(node, "net", display_name="Network", language="en")
    tagged = await news.create_item(node, "koeln", {
        "language": "de", "hashtags": ["Streik"],
        "versions": {"de": {"title": "Streik", "text": "Heute #Streik in Köln."}}})
    tagged_call = await calls.create_call(node, "koeln", call_body(
        datetime.now(UTC) + timedelta(days=3), hashtags=["Kundgebung"], language="de",
        title={"de": "Kundgebung"}, text={"de": "Kommt alle."}))
    await operations.create_group(node, "vahed", display_name="Vahed", language="fa")
    for n in range(20):  # the group's posts run to a second page
        await operations.publish_note(node, "koeln", text=f"Beitrag {n}")
    campaign = await campaigns.create_campaign(node, "vahed", dossier())
    return [live.url("/"), live.url("/actor"), live.url("/campaigns"),
            live.url("/groups/tehran"), live.url("/groups/tehran_fa"), live.url("/groups/net"),
            live.url("/groups/vahed/campaigns"), live.url("/tags/Streik"),
            site.call_id, site.past_call_id, site.news_id, site.bulletin_id, site.hostile_id,
            tagged, tagged_call, copied, campaign]


async def test_every_advertised_feed_and_alternate_link_on_every_page_answers(
        live_node: LiveNode) -> None:
    starts = await populated(live_node)
    base = live_node.base_url
    seen = set(starts)
    queue = deque(starts)
    walked: list[str] = []
    checked: dict[str, int] = {}
    broken: list[str] = []
    async with httpx.AsyncClient(timeout=30) as client:
        while queue and len(walked) < MAX_PAGES:
            url = queue.popleft()
            response = await client.get(url, headers={"Accept": "text/html"})
            walked.append(url)
            if response.status_code != 200:
                broken.append(f"page {url} answers {response.status_code}")
                continue
            if "text/html" not in response.headers["content-type"]:
                continue
            links = Links()
            links.feed(response.text)
            for href, kind in links.advertised:
                target = same_node(base, href, url)
                if target is None:
                    broken.append(f"{url} advertises {href} on another host")
                    continue
                # Asked for as the type the link names: a feed reader's request.
                key = f"{target} as {kind or 'anything'}"
                if key not in checked:
                    answer = await client.get(target, headers={"Accept": kind or "*/*"})
                    checked[key] = answer.status_code
                    if answer.status_code == 200 and kind:
                        assert answer.headers["content-type"].startswith(kind), key
                if checked[key] != 200:
                    broken.append(f"{url} advertises {key}: {checked[key]}")
            for href in links.pages:
                target = same_node(base, href, url)
                if target is not None and is_page(target) and target not in seen:
                    seen.add(target)
                    queue.append(target)
    assert broken == [], "\n".join(broken)
    assert not queue, f"more than {MAX_PAGES} pages: the walk did not finish"
    # The walk reached every kind of page, and found their feeds.
    for start in starts:
        assert start in walked, start
    assert live_node.url("/groups/koeln?page=2") in walked
    paths = {urlsplit(k.split(" as ")[0]).path for k in checked}
    for feed in ("/groups/tehran/feed.atom", "/groups/tehran/feed.json",
                 "/groups/tehran/calendar.ics", "/groups/tehran_fa/feed.atom",
                 "/groups/net/calls.atom", "/campaigns/feed.atom",
                 "/groups/vahed/campaigns.atom"):
        assert feed in paths, (feed, sorted(paths))
    assert any(p.endswith("/calendar.ics") and p.startswith("/objects/") for p in paths)
    # Beside the starts: the channel's copies, reached from the channel's page.
    async with live_node.node.db.read() as session:
        copies = (await session.exec(select(LocalObject.uuid).join(
            NewsCopy, col(NewsCopy.object_id) == LocalObject.id))).all()
    assert copies and all(live_node.node.urls.object(u) in walked for u in copies)
