"""'What you can do' under consent: a petition link or hashtag that names the person is
left out under name_withheld, everywhere the box is rendered (issue 16, point 2)."""

from __future__ import annotations

from datetime import date

from node.campaigns import consent, render
from node.core.urls import Urls
from node.storage.models import Campaign

NAMES = {"en": "Behnam Ebrahimzadeh", "fa": "بهنام ابراهیم‌زاده"}
ACT = {"petition": "https://petition.example/free-behnam-ebrahimzadeh",
       "hashtag": "FreeBehnam", "addresses": ["Behnam Ebrahimzadeh\nEvin prison, Tehran"]}


def campaign(visibility: str, act: dict[str, object]) -> Campaign:
    return Campaign(uuid="c1", group_id=1, language="en", country="IR", status="detained",
                    visibility=visibility, data={"names": NAMES, "act": act}, timeline=[],
                    detentions=[{"arrested": "2024-01-02"}])


def test_public_campaign_shows_petition_hashtag_and_addresses_as_given() -> None:
    shown = consent.act(campaign("public", ACT))
    assert shown == {"petition": ACT["petition"], "hashtag": "FreeBehnam",
                     "addresses": ACT["addresses"]}


def test_name_withheld_leaves_out_links_and_tags_that_name_the_person() -> None:
    shown = consent.act(campaign("name_withheld", ACT))
    assert "petition" not in shown and "hashtag" not in shown
    assert shown["addresses"] == ["B. E.\nEvin prison, Tehran"]


def test_name_withheld_keeps_links_that_do_not_name_the_person() -> None:
    act = {"petition": "https://petition.example/p/12345", "hashtag": "FreeThemAll"}
    assert consent.act(campaign("name_withheld", act)) == act


def test_percent_encoded_persian_name_in_a_link_counts_as_naming() -> None:
    act = {"petition": "https://petition.example/%D8%A8%D9%87%D9%86%D8%A7%D9%85"}  # بهنام
    assert consent.act(campaign("name_withheld", act)) == {}


def test_rendered_document_of_name_withheld_campaign_has_no_word_of_the_name() -> None:
    fields = render.document_fields(campaign("name_withheld", ACT),
                                    Urls("https://node.example"),
                                    "https://node.example/objects/c1", today=date(2025, 1, 1))
    text = repr(fields).casefold()
    for word in ("behnam", "ebrahimzadeh", "بهنام"):
        assert word not in text
