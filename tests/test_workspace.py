"""The editors' workspace: role isolation, CSRF on its forms, drafts that never leak,
uploads that fail cleanly, and publishing through the same operations as the API
(issue 14, points 2 and 3)."""

from __future__ import annotations

import re
from typing import Any

import httpx
from sqlalchemy import func
from sqlmodel import select

from node.groups import operations
from node.media.uploads import MAX_UPLOAD
from node.storage.models import Draft, Event, LocalObject, MediaFile
from tests.conftest import LiveNode
from tests.workspace_helpers import call_form, form_token, logged_in, make_user, png

SECRET_TITLE = "Geheimer Entwurf 7731"


async def _setup(live: LiveNode) -> None:
    node = live.node
    await operations.create_group(node, "koeln", display_name="Köln", language="de")
    await operations.create_group(node, "tehran", display_name="تهران", language="fa")
    await make_user(live, "ali", groups=("koeln",))
    await make_user(live, "root", admin=True)


async def _count(live: LiveNode, model: Any) -> int:
    async with live.node.db.read() as session:
        return int((await session.exec(select(func.count()).select_from(model))).one())


async def test_an_editor_gets_403_on_another_groups_pages_and_changes_nothing(
        live_node: LiveNode) -> None:
    await _setup(live_node)
    async with logged_in(live_node, "ali") as ali:
        token = await form_token(ali)
        home = await ali.get("/admin")
        assert "/admin/groups/koeln" in home.text and "/admin/groups/tehran" not in home.text
        assert (await ali.get("/admin/groups/koeln")).status_code == 200
        for path in ("/admin/groups/tehran", "/admin/groups/tehran/call/new",
                     "/admin/groups/tehran/news/new", "/admin/groups/nonexistent"):
            assert (await ali.get(path)).status_code == 403, path
        posted = await ali.post("/admin/groups/tehran/call/new",
                                data=call_form(csrf=token))
        assert posted.status_code == 403
        drafted = await ali.post("/admin/groups/tehran/call/new",
                                 data=call_form(csrf=token, action="draft"))
        assert drafted.status_code == 403
    assert await _count(live_node, LocalObject) == 0
    assert await _count(live_node, Draft) == 0
    async with logged_in(live_node, "root") as root:
        for path in ("/admin/groups/tehran", "/admin/groups/koeln"):
            assert (await root.get(path)).status_code == 200


async def test_an_editor_cannot_reach_another_groups_post_through_their_own_group(
        live_node: LiveNode) -> None:
    await _setup(live_node)
    node = live_node.node
    url = await operations.publish_note(node, "tehran", text="سلام")
    uuid = url.rsplit("/", 1)[-1]
    async with logged_in(live_node, "ali") as ali:
        token = await form_token(ali)
        assert (await ali.get(f"/admin/groups/koeln/posts/{uuid}")).status_code == 404
        status = await ali.post(f"/admin/groups/koeln/posts/{uuid}/status",
                                data={"csrf": token, "status": "cancelled"})
        assert status.status_code == 404
        edit = await ali.get(f"/admin/groups/koeln/call/{uuid}/edit")
        assert edit.status_code == 404


async def test_a_cross_site_form_post_is_403_and_changes_nothing(live_node: LiveNode) -> None:
    await _setup(live_node)
    async with logged_in(live_node, "ali") as ali:
        token = await form_token(ali)
        for data, headers in (
            (call_form(), {}),  # no token
            (call_form(csrf="0" * 64), {}),  # a forged one
            (call_form(csrf=token), {"origin": "https://evil.example"}),  # another site
        ):
            response = await ali.post("/admin/groups/koeln/call/new", data=data,
                                      headers=headers)
            assert response.status_code == 403
        # Another account's token does not fit this session either.
        async with logged_in(live_node, "root") as root:
            theirs = await form_token(root)
        refused = await ali.post("/admin/groups/koeln/call/new", data=call_form(csrf=theirs))
        assert refused.status_code == 403
    assert await _count(live_node, LocalObject) == 0
    assert await _count(live_node, Draft) == 0


async def test_a_form_post_without_a_session_is_refused(live_node: LiveNode) -> None:
    await _setup(live_node)
    async with httpx.AsyncClient(base_url=live_node.base_url) as stranger:
        response = await stranger.post("/admin/groups/koeln/call/new", data=call_form())
        assert response.status_code == 403
        assert (await stranger.get("/admin/groups/koeln")).status_code == 303
    assert await _count(live_node, LocalObject) == 0


async def _public_surfaces(client: httpx.AsyncClient, group: str) -> dict[str, str]:
    """Every public surface a post of ``group`` could appear on, fetched."""
    ap = {"Accept": "application/activity+json"}
    found = {
        "front page": (await client.get("/")).text,
        "group page": (await client.get(f"/groups/{group}")).text,
        "actor": (await client.get(f"/groups/{group}", headers=ap)).text,
        "atom": (await client.get(f"/groups/{group}/feed.atom")).text,
        "json feed": (await client.get(f"/groups/{group}/feed.json")).text,
        "calendar": (await client.get(f"/groups/{group}/calendar.ics")).text,
        "tag page": (await client.get("/tags/entwurf")).text,
        "featured": (await client.get(f"/groups/{group}/featured", headers=ap)).text,
    }
    outbox = (await client.get(f"/groups/{group}/outbox", headers=ap)).json()
    first = outbox.get("first")
    if isinstance(first, str):
        found["outbox"] = (await client.get(first, headers=ap)).text
    return found


async def test_drafts_are_on_no_public_surface(live_node: LiveNode) -> None:
    await _setup(live_node)
    async with logged_in(live_node, "ali") as ali:
        token = await form_token(ali)
        saved = await ali.post("/admin/groups/koeln/call/new", data=call_form(
            csrf=token, action="draft", languages="de", language="de",
            title_de=SECRET_TITLE, text_de="Nur ein Entwurf", hashtags="entwurf"))
        assert saved.status_code == 303
        draft_page = await ali.get(saved.headers["location"])
        assert SECRET_TITLE in draft_page.text
        preview = await ali.get(saved.headers["location"].split("?")[0] + "/preview")
        assert preview.status_code == 200 and SECRET_TITLE in preview.text
        # A published call, to show the surfaces do list what is published.
        published = await ali.post("/admin/groups/koeln/call/new", data=call_form(
            csrf=token, languages="de", language="de", title_de="Öffentlicher Aufruf",
            text_de="Kommt", hashtags="entwurf"))
        assert published.status_code == 303, published.text
    async with httpx.AsyncClient(base_url=live_node.base_url) as public:
        surfaces = await _public_surfaces(public, "koeln")
        objects = [(await public.get(f"/objects/{o.uuid}")).text
                   for o in await _objects(live_node)]
    assert "outbox" in surfaces
    for name, text in {**surfaces, **{f"object {i}": t for i, t in enumerate(objects)}}.items():
        assert SECRET_TITLE not in text, name
    for name in ("atom", "json feed", "calendar", "outbox"):
        assert "Öffentlicher Aufruf" in surfaces[name] or \
            "\\u00d6ffentlicher Aufruf" in surfaces[name], name
    async with live_node.node.db.read() as session:
        assert not [o for o in (await session.exec(select(LocalObject))).all()
                    if SECRET_TITLE in str(o.names)]


def test_only_the_workspace_and_accounts_read_the_draft_table() -> None:
    """Why no public listing needs a draft filter: drafts live in their own table, never
    in local_object, and only these modules name it; a public module that starts
    reading it fails here (docs/ARCHITECTURE.md, "Drafts")."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    readers = set()
    for path in (root / "node").rglob("*.py"):
        if path.is_relative_to(root / "node" / "storage" / "models"):
            continue  # where the table is defined (and re-exported), not read
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                 for a in n.names}
        if "Draft" in names or "drafts" in names:
            readers.add(path.relative_to(root).as_posix())
    assert readers == {"node/accounts/drafts.py", "node/accounts/users.py",
                       "node/web/admin/actions.py",
                       "node/web/admin/dashboard.py", "node/web/admin/editor.py"}, readers


async def _objects(live: LiveNode) -> list[LocalObject]:
    async with live.node.db.read() as session:
        return list((await session.exec(select(LocalObject))).all())


async def test_publishing_a_draft_runs_the_api_operation_and_removes_the_draft(
        live_node: LiveNode) -> None:
    await _setup(live_node)
    async with logged_in(live_node, "ali") as ali:
        token = await form_token(ali)
        saved = await ali.post("/admin/groups/koeln/call/new",
                               data=call_form(csrf=token, action="preview"))
        assert saved.status_code == 303 and saved.headers["location"].endswith("/preview")
        preview = await ali.get(saved.headers["location"])
        assert 'lang="fa" dir="rtl" id="preview-fa"' in preview.text
        assert 'lang="de" dir="ltr" id="preview-de"' in preview.text
        draft_id = re.search(r"/drafts/(\d+)/", saved.headers["location"]).group(1)  # type: ignore[union-attr]
        done = await ali.post(f"/admin/groups/koeln/drafts/{draft_id}/publish",
                              data={"csrf": token})
        assert done.status_code == 303
        post_page = await ali.get(done.headers["location"])
        assert post_page.status_code == 200 and "Delivery" in post_page.text
    assert await _count(live_node, Draft) == 0
    async with live_node.node.db.read() as session:
        obj = (await session.exec(select(LocalObject))).one()
        event = (await session.exec(select(Event))).one()
    assert obj.names == {"fa": "اعتصاب کارگران", "de": "Streik der Arbeiter"}
    assert event.timezone == "Europe/Berlin" and event.place == {"name": "Rathaus",
                                                                 "city": "Köln"}


async def test_the_form_has_right_to_left_inputs_for_persian(live_node: LiveNode) -> None:
    await _setup(live_node)
    async with logged_in(live_node, "ali") as ali:
        form = (await ali.get("/admin/groups/koeln/call/new?languages=fa+de+ar")).text
    assert re.search(r'id="title_fa"[^>]*dir="rtl"', form)
    assert re.search(r'id="text_ar"[^>]*dir="rtl"', form)
    assert re.search(r'id="title_de"[^>]*dir="auto"', form)
    assert "<script" not in form


async def test_invalid_input_is_shown_in_the_form_and_nothing_is_published(
        live_node: LiveNode) -> None:
    await _setup(live_node)
    async with logged_in(live_node, "ali") as ali:
        token = await form_token(ali)
        html_title = await ali.post("/admin/groups/koeln/call/new", data=call_form(
            csrf=token, title_de="<script>alert(1)</script>"))
        assert html_title.status_code == 400
        assert "must be plain text" in html_title.text
        assert "<script>alert(1)" not in html_title.text  # shown as text, escaped
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html_title.text
        bad_zone = await ali.post("/admin/groups/koeln/call/new", data=call_form(
            csrf=token, timezone="Mars/Olympus"))
        assert bad_zone.status_code == 400 and "unknown timezone" in bad_zone.text
        bad_langs = await ali.post("/admin/groups/koeln/call/new", data=call_form(
            csrf=token, languages="fa <b>"))
        assert bad_langs.status_code == 400
    assert await _count(live_node, LocalObject) == 0


async def test_upload_errors_are_shown_in_the_form_and_store_nothing(
        live_node: LiveNode) -> None:
    await _setup(live_node)
    async with logged_in(live_node, "ali") as ali:
        token = await form_token(ali)
        for name, data, expected in (
            ("flyer.png", b"this is not an image at all", "could not be used"),
            ("flyer.png", b"\x89PNG" + b"\0" * MAX_UPLOAD, "larger than"),
        ):
            response = await ali.post("/admin/groups/koeln/call/new",
                                      data=call_form(csrf=token, action="draft"),
                                      files={"flyer": (name, data, "image/png")})
            assert response.status_code == 400
            assert expected in response.text and "Nothing was saved" in response.text
            # What was typed stays in the form.
            assert "Streik der Arbeiter" in response.text
    assert await _count(live_node, MediaFile) == 0
    assert await _count(live_node, Draft) == 0
    assert await _count(live_node, LocalObject) == 0


async def test_a_flyer_uploaded_with_the_form_is_the_groups_and_is_published(
        live_node: LiveNode) -> None:
    await _setup(live_node)
    async with logged_in(live_node, "ali") as ali:
        token = await form_token(ali)
        response = await ali.post("/admin/groups/koeln/call/new",
                                  data=call_form(csrf=token, flyer_alt="Ein rotes Quadrat"),
                                  files={"flyer": ("flyer.png", png(), "image/png")})
        assert response.status_code == 303, response.text
    async with live_node.node.db.read() as session:
        event = (await session.exec(select(Event))).one()
        media = (await session.exec(select(MediaFile).where(
            MediaFile.variant_of == None))).one()  # noqa: E711
    assert event.flyer is not None and event.flyer["alt"] == "Ein rotes Quadrat"
    assert event.flyer["path"] == f"uploads/{media.name}"


async def test_a_published_call_is_edited_postponed_and_cancelled_from_the_workspace(
        live_node: LiveNode) -> None:
    await _setup(live_node)
    async with logged_in(live_node, "ali") as ali:
        token = await form_token(ali)
        created = await ali.post("/admin/groups/koeln/call/new", data=call_form(csrf=token))
        uuid = created.headers["location"].split("/posts/")[1].split("?")[0]
        edit = await ali.get(f"/admin/groups/koeln/call/{uuid}/edit")
        assert edit.status_code == 200 and "Streik der Arbeiter" in edit.text
        changed = await ali.post(f"/admin/groups/koeln/call/{uuid}/edit", data=call_form(
            csrf=token, title_de="Großer Streik"))
        assert changed.status_code == 303
        postponed = await ali.post(f"/admin/groups/koeln/posts/{uuid}/status", data={
            "csrf": token, "status": "postponed", "start": "2031-06-01T17:00"})
        assert postponed.status_code == 303
        page = await ali.get(f"/admin/groups/koeln/posts/{uuid}")
        assert 'id="event-status">postponed<' in page.text
    async with live_node.node.db.read() as session:
        obj = (await session.exec(select(LocalObject).where(LocalObject.uuid == uuid))).one()
        event = (await session.exec(select(Event))).one()
    assert obj.names["de"] == "Großer Streik"
    assert event.status == "postponed" and event.sequence == 2


async def test_the_post_page_shows_delivery_per_host_and_the_group_page_its_followers(
        live_node: LiveNode, remote: Any) -> None:
    from node.federation.delivery import prepare_follower
    from node.storage.models import Follower
    from tests.conftest import free_port, wait_for

    await _setup(live_node)
    node = live_node.node
    async with node.db.read() as session:
        from node.federation.local_actors import get_group

        group = await get_group(session, "koeln")
    assert group is not None
    reader = remote.add_actor("reader")
    dead = f"http://127.0.0.1:{free_port()}"
    async with node.db.write() as session:
        for uri, inbox in ((reader.id, reader.inbox), (dead + "/users/gone", dead + "/inbox")):
            await prepare_follower(session, Follower(
                local_actor_id=group.id or 0, actor_uri=uri, inbox=inbox,
                follow_activity_id=uri + "#follow", state="accepted"))
    async with logged_in(live_node, "ali") as ali:
        token = await form_token(ali)
        created = await ali.post("/admin/groups/koeln/call/new", data=call_form(csrf=token))
        post_path = created.headers["location"].split("?")[0]

        async def both_known() -> str:
            text = (await ali.get(post_path)).text
            return text if "state-delivered" in text and "state-retrying" in text else ""

        text = await wait_for(both_known, what="delivered and retrying rows")
        group_page = (await ali.get("/admin/groups/koeln")).text
    retrying = text.split('class="state-retrying"')[1].split("</tr>")[0]
    assert dead.removeprefix("http://") in retrying and "next attempt" in retrying
    assert "connect" in retrying  # why the last attempt failed
    assert '<p id="follower-count">2 followers</p>' in group_page
    assert f'<td dir="ltr">{reader.inbox.split("/")[2]}</td>' in group_page


async def test_follow_requests_are_approved_and_replies_hidden_from_the_workspace(
        live_node: LiveNode) -> None:
    from node.storage.models import Follower, RemoteObject

    await _setup(live_node)
    node = live_node.node
    url = await operations.publish_note(node, "koeln", text="Hallo")
    async with node.db.write() as session:
        from node.federation.local_actors import get_group

        group = await get_group(session, "koeln")
        assert group is not None
        request = Follower(local_actor_id=group.id or 0, actor_uri="https://x.example/u/a",
                           inbox="https://x.example/u/a/inbox", state="pending",
                           follow_activity_id="https://x.example/f/1")
        reply = RemoteObject(uri="https://x.example/r/1", actor_uri="https://x.example/u/a",
                             object_type="Note", in_reply_to=url,
                             data={"content": "<p>rude</p>"}, moderation_state="approved")
        session.add_all([request, reply])
    async with logged_in(live_node, "ali") as ali:
        page = (await ali.get("/admin/groups/koeln")).text
        token = await form_token(ali)
        assert "https://x.example/u/a" in page and "rude" in page
        accepted = await ali.post(f"/admin/groups/koeln/follow-requests/{request.id}/accept",
                                  data={"csrf": token})
        assert accepted.status_code == 303
        hidden = await ali.post(f"/admin/groups/koeln/replies/{reply.id}/hide",
                                data={"csrf": token})
        assert hidden.status_code == 303
        # The other group's editor path cannot reach them.
        assert (await ali.post(f"/admin/groups/tehran/replies/{reply.id}/hide",
                               data={"csrf": token})).status_code == 403
    async with node.db.read() as session:
        assert (await session.get(Follower, request.id)).state == "accepted"  # type: ignore[union-attr]
        assert (await session.get(RemoteObject, reply.id)).moderation_state == "hidden"  # type: ignore[union-attr]


async def test_news_written_in_the_workspace_is_published_by_the_news_operation(
        live_node: LiveNode) -> None:
    from node.storage.models import NewsItem

    await _setup(live_node)
    async with logged_in(live_node, "ali") as ali:
        token = await form_token(ali)
        form = (await ali.get("/admin/groups/koeln/news/new?languages=fa+de")).text
        assert re.search(r'id="text_fa"[^>]*dir="rtl"', form)
        saved = await ali.post("/admin/groups/koeln/news/new", data={
            "csrf": token, "languages": "de fa", "language": "de", "title_de": "Neuigkeit",
            "text_de": "Die **Streikenden** sind frei.", "text_fa": "اعتصاب‌کنندگان آزاد شدند.",
            "alt_de": "Ein Foto", "hashtags": "streik", "action": "preview"},
            files={"photo": ("p.png", png(), "image/png")})
        assert saved.status_code == 303
        preview = await ali.get(saved.headers["location"])
        assert "<strong>Streikenden</strong>" in preview.text
        assert 'alt="' in preview.text and "/media/uploads/" in preview.text
        draft_id = saved.headers["location"].split("/drafts/")[1].split("/")[0]
        published = await ali.post(f"/admin/groups/koeln/drafts/{draft_id}/publish",
                                   data={"csrf": token})
        assert published.status_code == 303
    async with live_node.node.db.read() as session:
        item = (await session.exec(select(NewsItem))).one()
        obj = await session.get(LocalObject, item.object_id)
    assert set(item.versions) == {"de", "fa"} and item.hashtags == ["streik"]
    assert item.photos[0]["alt"] == {"de": "Ein Foto"}
    assert obj is not None and obj.language == "de"
    assert await _count(live_node, Draft) == 0


async def test_a_draft_is_reached_only_through_its_own_group(live_node: LiveNode) -> None:
    await _setup(live_node)
    async with logged_in(live_node, "root") as root:
        token = await form_token(root)
        saved = await root.post("/admin/groups/tehran/call/new",
                                data=call_form(csrf=token, action="draft"))
        draft_id = saved.headers["location"].split("/drafts/")[1].split("?")[0]
        for path in (f"/admin/groups/koeln/drafts/{draft_id}",
                     f"/admin/groups/koeln/drafts/{draft_id}/preview"):
            assert (await root.get(path)).status_code == 404
        assert (await root.post(f"/admin/groups/koeln/drafts/{draft_id}/publish",
                                data={"csrf": token})).status_code == 404
        assert (await root.get("/admin/groups/koeln/drafts/99999")).status_code == 404
    async with logged_in(live_node, "ali") as ali:
        token = await form_token(ali)
        assert (await ali.get(f"/admin/groups/tehran/drafts/{draft_id}")).status_code == 403
        assert (await ali.post(f"/admin/groups/tehran/drafts/{draft_id}/delete",
                               data={"csrf": token})).status_code == 403
    assert await _count(live_node, Draft) == 1


async def test_join_requests_and_cosigning_invitations_are_answered_from_the_workspace(
        live_node: LiveNode, remote: Any) -> None:
    from node.calls import operations as calls
    from node.storage.models import Invitation, Participation

    await _setup(live_node)
    node = live_node.node
    inviter = remote.add_actor("inviters")
    joiner = remote.add_actor("joiner")
    call = await calls.create_call(node, "koeln", {
        "title": {"de": "Treffen"}, "start": "2031-05-01T17:00", "timezone": "Europe/Berlin",
        "kind": "meeting", "join_mode": "restricted", "place": {"city": "Köln"}})
    async with node.db.write() as session:
        from node.federation.local_actors import get_group

        group = await get_group(session, "koeln")
        obj = (await session.exec(select(LocalObject).where(
            LocalObject.uuid == call.rsplit("/", 1)[-1]))).one()
        event = (await session.exec(select(Event).where(Event.object_id == obj.id))).one()
        join = Participation(event_id=event.id or 0, actor_uri=joiner.id, inbox=joiner.inbox,
                             join_activity_id=joiner.id + "#join")
        invitation = Invitation(local_actor_id=group.id or 0, inviter_uri=inviter.id,  # type: ignore[union-attr]
                                event_uri=inviter.id + "/events/1",
                                invite_activity_id=inviter.id + "#invite",
                                event={"name": "Demo vor dem Ministerium"})
        session.add_all([join, invitation])
    async with logged_in(live_node, "ali") as ali:
        page = (await ali.get("/admin/groups/koeln")).text
        assert "Demo vor dem Ministerium" in page and joiner.id in page
        token = await form_token(ali)
        for path in (f"/admin/groups/koeln/join-requests/{join.id}/accept",
                     f"/admin/groups/koeln/invitations/{invitation.id}/accept"):
            assert (await ali.post(path, data={"csrf": token})).status_code == 303, path
        again = await ali.post(f"/admin/groups/koeln/invitations/{invitation.id}/accept",
                               data={"csrf": token})
        assert again.status_code == 409  # decided once
        bogus = await ali.post(f"/admin/groups/koeln/join-requests/{join.id}/maybe",
                               data={"csrf": token})
        assert bogus.status_code == 404
    async with node.db.read() as session:
        assert (await session.get(Participation, join.id)).state == "accepted"  # type: ignore[union-attr]
        assert (await session.get(Invitation, invitation.id)).state == "accepted"  # type: ignore[union-attr]
