"""Callers' answers as they text them, English and Spanish, and what the rule-based qualifier reads
in each: the value for the lead, or None when the answer is unclear (the script asks once more)."""

import datetime as dt

import pytest
from hypothesis import given, settings, strategies as st

from leads.qualification import (
    Area, Budget, Financing, Intent, Question, Rating, RuleBasedQualifier, intent_rating, read_volunteered, wants_a_person,
)

TODAY = dt.date(2026, 11, 24)  # a Tuesday in November
QUALIFIER = RuleBasedQualifier()

ANSWERS = [
    # buying or selling
    (Question.INTENT, "Buying", Intent.BUY),
    (Question.INTENT, "we're looking to buy our first home", Intent.BUY),
    (Question.INTENT, "Looking for a house in the area", Intent.BUY),
    (Question.INTENT, "selling my condo", Intent.SELL),
    (Question.INTENT, "Thinking about listing my house", Intent.SELL),
    (Question.INTENT, "both - need to sell before we buy", Intent.BOTH),
    (Question.INTENT, "Quiero comprar una casa", Intent.BUY),
    (Question.INTENT, "vendo mi casa", Intent.SELL),
    (Question.INTENT, "las dos cosas", Intent.BOTH),
    (Question.INTENT, "what?", None),
    (Question.INTENT, "Is the one on Oak still available", None),
    # when
    (Question.TIMELINE, "ASAP", 0),
    (Question.TIMELINE, "asap!!", 0),
    (Question.TIMELINE, "right away, our lease ends", 0),
    (Question.TIMELINE, "3 months", 3),
    (Question.TIMELINE, "in the next 2-3 months", 3),
    (Question.TIMELINE, "within six months", 6),
    (Question.TIMELINE, "a couple of months", 2),
    (Question.TIMELINE, "few weeks", 1),
    (Question.TIMELINE, "next spring", 4),  # March, from November
    (Question.TIMELINE, "this summer maybe", 7),
    (Question.TIMELINE, "by March", 4),
    (Question.TIMELINE, "next year", 2),  # January, from November
    (Question.TIMELINE, "1 year", 12),
    (Question.TIMELINE, "just looking for now", 12),
    (Question.TIMELINE, "no rush", 12),
    (Question.TIMELINE, "lo antes posible", 0),
    (Question.TIMELINE, "en 2 meses", 2),
    (Question.TIMELINE, "en unos meses", 3),
    (Question.TIMELINE, "la próxima primavera", 4),
    (Question.TIMELINE, "el año que viene", 2),
    (Question.TIMELINE, "depends on the rates", None),
    (Question.TIMELINE, "idk", None),
    # price range or budget
    (Question.BUDGET, "$450k", Budget(450_000, 450_000)),
    (Question.BUDGET, "450,000", Budget(450_000, 450_000)),
    (Question.BUDGET, "under 500", Budget(None, 500_000)),
    (Question.BUDGET, "no more than $600K", Budget(None, 600_000)),
    (Question.BUDGET, "between 300 and 400k", Budget(300_000, 400_000)),
    (Question.BUDGET, "300-350", Budget(300_000, 350_000)),
    (Question.BUDGET, "around 1.2M", Budget(1_200_000, 1_200_000)),
    (Question.BUDGET, "at least 800k", Budget(800_000, None)),
    (Question.BUDGET, "half a million", Budget(500_000, 500_000)),
    (Question.BUDGET, "pre approved up to 425,000", Budget(None, 425_000)),
    (Question.BUDGET, "hasta 400 mil", Budget(None, 400_000)),
    (Question.BUDGET, "entre 250 y 300 mil dólares", Budget(250_000, 300_000)),
    (Question.BUDGET, "medio millón", Budget(500_000, 500_000)),
    (Question.BUDGET, "1.5 millones", Budget(1_500_000, 1_500_000)),
    (Question.BUDGET, "not sure yet", None),
    (Question.BUDGET, "depends on the house", None),
    (Question.BUDGET, "2 bedrooms at least", None),
    # where
    (Question.AREA, "78704", Area(zip_code="78704")),
    (Question.AREA, "zip is 33139", Area(zip_code="33139")),
    (Question.AREA, "12 Oak St", Area(address="12 Oak St")),
    (Question.AREA, "It's 4821 N Lamar Blvd, Austin TX 78756", Area(zip_code="78756", address="4821 N Lamar Blvd")),
    (Question.AREA, "1400 Maple Avenue", Area(address="1400 Maple Avenue")),
    (Question.AREA, "South Austin", Area(place="South Austin")),
    (Question.AREA, "near downtown", Area(place="downtown")),
    (Question.AREA, "Cerca de Coral Gables", Area(place="Coral Gables")),
    (Question.AREA, "en Hialeah", Area(place="Hialeah")),
    (Question.AREA, "calle 8 #1234", Area(address="calle 8 #1234")),
    (Question.AREA, "idk", None),
    (Question.AREA, "anywhere really", None),
    (Question.AREA, "500k", None),
    # financing
    (Question.PRE_APPROVED, "Yes", Financing.PRE_APPROVED),
    (Question.PRE_APPROVED, "yep, pre-approved with Chase", Financing.PRE_APPROVED),
    (Question.PRE_APPROVED, "we'll pay cash", Financing.CASH),
    (Question.PRE_APPROVED, "not yet", Financing.NOT_YET),
    (Question.PRE_APPROVED, "No", Financing.NOT_YET),
    (Question.PRE_APPROVED, "working on it with our bank", Financing.IN_PROGRESS),
    (Question.PRE_APPROVED, "Sí, ya tengo la pre-aprobación", Financing.PRE_APPROVED),
    (Question.PRE_APPROVED, "todavía no", Financing.NOT_YET),
    (Question.PRE_APPROVED, "en efectivo", Financing.CASH),
    (Question.PRE_APPROVED, "estamos en proceso", Financing.IN_PROGRESS),
    (Question.PRE_APPROVED, "what does that mean?", None),
    # Negations and near misses that once read the wrong way round.
    (Question.TIMELINE, "not now", 12),
    (Question.TIMELINE, "not ready yet", 12),
    (Question.TIMELINE, "a year from now", 12),
    (Question.TIMELINE, "todavía no", 12),
    (Question.PRE_APPROVED, "no problem, we are pre-approved", Financing.PRE_APPROVED),
    (Question.PRE_APPROVED, "we're not pre-approved", Financing.NOT_YET),
    (Question.PRE_APPROVED, "no estoy pre-aprobado", Financing.NOT_YET),
]


@pytest.mark.parametrize("question,text,expected", ANSWERS, ids=[f"{q}:{t}" for q, t, _ in ANSWERS])
def test_it_reads_each_answer_as_a_caller_texts_it(question, text, expected):
    assert QUALIFIER.read(question, text, today=TODAY) == expected


def test_the_table_covers_every_question_in_both_languages():
    assert len(ANSWERS) >= 60 and {q for q, _, _ in ANSWERS} == set(Question)
    assert sum(1 for _, text, _ in ANSWERS if any(w in text.lower() for w in ("quiero", "vendo", "las dos", "en ", "lo antes", "mil", "millón", "cerca", "sí", "todavía", "efectivo", "estamos", "hasta", "la próxima", "el año", "calle", "medio"))) >= 15


@pytest.mark.parametrize("text,wants", [
    ("can I just talk to someone", True), ("Call me please", True), ("is this a bot?", True),
    ("I want a real person", True), ("Quiero hablar con alguien", True), ("llámame por favor", True),
    ("Buying", False), ("under 500", False), ("call me back after 5 is fine for showings?", True),
    ("please don't call me, text only", False), ("do not call me", False),
])
def test_it_notices_when_the_caller_asks_for_a_person(text, wants):
    assert wants_a_person(text) is wants


@pytest.mark.parametrize("text,expected", [
    ("buying, around 450k", Budget(450_000, 450_000)), ("$300,000 max", Budget(300_000, 300_000)),
    ("78704", None), ("1234 Oak St", None), ("around 2030", None), ("3 bedrooms", None),
])
def test_a_price_given_before_it_is_asked_needs_a_dollar_sign_or_a_scale(text, expected):
    assert read_volunteered(Question.BUDGET, text) == expected


@pytest.mark.parametrize("answers,rating", [
    ({Question.TIMELINE: 0, Question.PRE_APPROVED: Financing.PRE_APPROVED}, Rating.HOT),
    ({Question.TIMELINE: 2, Question.PRE_APPROVED: Financing.CASH}, Rating.HOT),
    ({Question.TIMELINE: 1, Question.INTENT: Intent.SELL}, Rating.HOT),
    ({Question.TIMELINE: 3, Question.PRE_APPROVED: Financing.NOT_YET}, Rating.WARM),
    ({Question.TIMELINE: 6, Question.PRE_APPROVED: Financing.PRE_APPROVED}, Rating.WARM),
    ({Question.TIMELINE: 12, Question.PRE_APPROVED: Financing.CASH}, Rating.NURTURE),
    ({Question.INTENT: Intent.BUY, Question.BUDGET: Budget(None, 500_000)}, Rating.NURTURE),
])
def test_the_rating_follows_timeline_and_ability_to_move(answers, rating):
    assert intent_rating(answers) is rating


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=80), question=st.sampled_from(list(Question)))
def test_any_text_reads_as_a_value_or_as_unclear_never_an_error(text, question):
    value = QUALIFIER.read(question, text, today=TODAY)
    expected = {Question.INTENT: Intent, Question.TIMELINE: int, Question.BUDGET: Budget, Question.AREA: Area, Question.PRE_APPROVED: Financing}
    assert value is None or isinstance(value, expected[question])
    if isinstance(value, Budget):
        assert value.low is None or value.high is None or value.low <= value.high
    assert isinstance(QUALIFIER.wants_a_person(text), bool)
