import pytest

from leads.textback import (
    DEFAULT_TEMPLATES,
    DEFAULTS_BY_LANGUAGE,
    gsm7_length,
    is_gsm7,
    plain_text,
    segment_count,
    template_problems,
    textback_render,
)

LONG_BROKERAGE = "Harbor & Oak Realty Group"
LONG_LISTING = "12345 North Longstreet Avenue, Unit 1204, Lakeside Heights"


EVERY_DEFAULT = [(language, lead_type) for language, templates in DEFAULTS_BY_LANGUAGE.items() for lead_type in templates]


@pytest.mark.parametrize(("language", "lead_type"), EVERY_DEFAULT)
def test_it_fits_each_default_text_back_in_one_plain_segment(language, lead_type):
    body = textback_render(
        template=DEFAULTS_BY_LANGUAGE[language][lead_type], brokerage=LONG_BROKERAGE, listing=LONG_LISTING,
        agent="Alexandra Smith", office="Downtown",
    )
    assert is_gsm7(body) and gsm7_length(body) <= 160 and segment_count(body) == 1
    assert body.startswith(LONG_BROKERAGE) and "STOP" in body


@pytest.mark.parametrize(("language", "lead_type"), EVERY_DEFAULT)
def test_it_accepts_each_default_template(language, lead_type):
    assert template_problems(DEFAULTS_BY_LANGUAGE[language][lead_type]) == []


def test_it_shortens_a_long_listing_rather_than_splitting_the_text():
    body = textback_render(
        template=DEFAULT_TEMPLATES["buyer"], brokerage=LONG_BROKERAGE, listing=LONG_LISTING, agent="", office="Downtown"
    )
    assert LONG_LISTING not in body
    assert "about 12345 North Longstreet" in body
    assert gsm7_length(body) == 160


def test_it_keeps_a_short_listing_whole():
    body = textback_render(
        template=DEFAULT_TEMPLATES["buyer"], brokerage="Harbor & Oak Realty", listing="12 Oak St", agent="", office="Downtown"
    )
    assert body == "Harbor & Oak Realty: sorry we missed your call about 12 Oak St! An agent will text you here in a few minutes. Reply STOP to opt out."


def test_it_fills_missing_listing_and_agent_with_plain_words():
    body = textback_render(template="{brokerage}: {agent} will text about {listing}. Reply STOP to opt out.", brokerage="H&O", listing="", agent="", office="Downtown")
    assert body == "H&O: an agent will text about a home. Reply STOP to opt out."


def test_it_folds_typographic_characters_to_plain_ones():
    body = textback_render(
        template="{brokerage}: we’re sorry — you called about “{listing}”… Reply STOP to opt out.",
        brokerage="Harbor\u00a0& Oak", listing="12 Oak St", agent="", office="Downtown",
    )
    assert body == 'Harbor & Oak: we\'re sorry - you called about "12 Oak St"... Reply STOP to opt out.'
    assert is_gsm7(body)
    assert plain_text("‘a’ – b") == "'a' - b"


@pytest.mark.parametrize(
    "body, segments",
    [
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),  # a multi-part plain text carries 153 characters per part
        ("a" * 307, 3),
        ("€" * 80, 1),  # extended characters take two of the 160
        ("€" * 81, 2),
        ("a" * 159 + "[", 2),
        ("é" * 160, 1),  # in the GSM-7 alphabet
        ("😀" + "a" * 68, 1),  # one emoji makes it UCS-2: 70 units, and the emoji takes two
        ("😀" + "a" * 69, 2),
        ("á" * 70, 1),  # not in the GSM-7 alphabet
        ("á" * 71, 2),
        ("á" * 134, 2),  # a multi-part UCS-2 text carries 67 units per part
        ("á" * 135, 3),
        ("", 1),
    ],
)
def test_it_counts_segments_like_carriers(body, segments):
    assert segment_count(body) == segments


def test_it_counts_extended_characters_twice():
    assert gsm7_length("{}[]~^|\\€") == 18
    assert gsm7_length("Reply STOP") == 10


def test_it_asks_for_opt_out_wording():
    problems = template_problems("{brokerage}: sorry we missed your call! An agent will text you here shortly.")
    assert problems == ["Say how to opt out, e.g. 'Reply STOP to opt out.'"]


def test_it_asks_for_the_business_name():
    problems = template_problems("Sorry we missed your call! An agent will text you here shortly. Reply STOP to opt out.")
    assert problems == ["Name the business: include {brokerage}."]


def test_it_rejects_a_template_too_long_for_one_text():
    problems = template_problems("{brokerage}: " + "sorry we missed your call! " * 5 + "Reply STOP to opt out.")
    assert len(problems) == 1 and problems[0].startswith("Too long for one text:")


def test_it_rejects_a_template_that_is_not_plain_text():
    problems = template_problems("{brokerage}: sorry we missed your call 😀 Reply STOP to opt out.")
    assert len(problems) == 1 and problems[0].startswith("Use plain characters only")


@pytest.mark.parametrize(
    "template,problem",
    [
        ("{brokerage}: hi {name}. Reply STOP", "Unknown placeholder {name}"),
        ("{brokerage}: hi {0}. Reply STOP", "Unknown placeholder {0}"),
        ("{brokerage}: hi {listing.upper}. Reply STOP", "Unknown placeholder {listing.upper}"),
        ("{brokerage}: hi {. Reply STOP", "A brace is not part of a placeholder"),
    ],
)
def test_it_rejects_an_unknown_placeholder_or_a_stray_brace(template, problem):
    [found] = template_problems(template)
    assert found.startswith(problem)
    assert "{brokerage}, {listing}, {agent}, {office}" in found


def test_a_bad_template_stored_anyway_cannot_crash_the_textback():
    body = textback_render(template="{brokerage.x} {listing:>9} {", brokerage="B", listing="L", agent="", office="O")
    assert body == "{brokerage.x} {listing:>9} {"
