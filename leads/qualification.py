"""Reading a caller's answers to the qualification questions, offline and by rule.

The text-back's follow-up asks a caller, one question at a time: buying or selling, when, the price
range or budget, where, and whether they are pre-approved. People answer the way they text
("450k", "under 500", "asap", "next spring", "78704", "12 Oak St", "sí, ya tengo la
pre-aprobación"); each reader here turns one answer into a value for the lead, or None when the
answer is unclear (the script then asks once more, differently, and moves on).

`Qualifier` is the whole interface the script needs, so a language-model backend could stand in
for `RuleBasedQualifier` later; the default needs no network and gives the same answer every time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import re
import unicodedata
from typing import Protocol


class Question(enum.StrEnum):
    INTENT = "intent"
    TIMELINE = "timeline"
    BUDGET = "budget"
    AREA = "area"
    PRE_APPROVED = "pre_approved"


class Intent(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"
    BOTH = "both"


class Financing(enum.StrEnum):
    PRE_APPROVED = "pre_approved"
    CASH = "cash"
    IN_PROGRESS = "in_progress"
    NOT_YET = "not_yet"


class Rating(enum.StrEnum):
    HOT = "hot"
    WARM = "warm"
    NURTURE = "nurture"


@dataclasses.dataclass(frozen=True)
class Budget:
    low: int | None  # dollars; None: no floor ("under 500k")
    high: int | None  # None: no ceiling ("over 1M")


@dataclasses.dataclass(frozen=True)
class Area:
    zip_code: str = ""
    address: str = ""
    place: str = ""  # a city or neighbourhood, as the caller wrote it


class Qualifier(Protocol):
    """What the qualification script asks of whoever reads the answers."""

    def read(self, question: Question, text: str, *, today: dt.date) -> object | None:
        """The answer's value for `question`, or None when it is unclear."""

    def wants_a_person(self, text: str) -> bool:
        """The caller asks for a human: the script stops at once."""


def normalise(text: str) -> str:
    """Lower case, no accents, one space: "¿Sí, YA tengo pre-aprobación!" -> "si, ya tengo pre-aprobacion!"."""
    text = unicodedata.normalize("NFKD", text or "")
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    text = text.replace("\u2019", "'").replace("¿", " ").replace("¡", " ")
    return re.sub(r"\s+", " ", text).strip()


def _has(text: str, pattern: str) -> bool:
    return re.search(pattern, text) is not None


# --- buying or selling ---------------------------------------------------------------------------

_BUY = r"\b(buy|buying|purchas\w*|looking for (a|an|my)? ?(home|house|place|condo)|first home|comprar|compra|compro|busco casa|buscando casa)\b"
_SELL = r"\b(sell|selling|list(ing)? (my|our)|vender|vendo|venta de mi)\b"


def read_intent(text: str) -> Intent | None:
    words = normalise(text)
    buy, sell = _has(words, _BUY), _has(words, _SELL)
    if _has(words, r"\b(both|ambos|ambas|las dos|los dos)\b") or (buy and sell):
        return Intent.BOTH
    if buy:
        return Intent.BUY
    if sell:
        return Intent.SELL
    return None


# --- when ----------------------------------------------------------------------------------------

_NUMBER_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "nine": 9, "twelve": 12,
    "a couple": 2, "a couple of": 2, "a few": 3, "few": 3, "couple": 2, "couple of": 2,
    "un": 1, "una": 1, "uno": 1, "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "seis": 6, "unos": 3, "unas": 3,
}
_UNITS = {
    "day": 1 / 30, "days": 1 / 30, "dia": 1 / 30, "dias": 1 / 30,
    "week": 0.25, "weeks": 0.25, "semana": 0.25, "semanas": 0.25,
    "month": 1, "months": 1, "mo": 1, "mos": 1, "mes": 1, "meses": 1,
    "year": 12, "years": 12, "yr": 12, "yrs": 12, "ano": 12, "anos": 12,
}
_SEASON_MONTH = {
    "spring": 3, "primavera": 3, "summer": 6, "verano": 6, "fall": 9, "autumn": 9, "otono": 9, "winter": 12, "invierno": 12,
}
_MONTHS = {
    name: n for n, names in enumerate([
        ("january", "jan", "enero"), ("february", "feb", "febrero"), ("march", "mar", "marzo"), ("april", "apr", "abril"),
        ("may", "mayo"), ("june", "jun", "junio"), ("july", "jul", "julio"), ("august", "aug", "agosto"),
        ("september", "sept", "sep", "septiembre"), ("october", "oct", "octubre"), ("november", "nov", "noviembre"),
        ("december", "dec", "diciembre"),
    ], start=1) for name in names
}


def read_timeline(text: str, *, today: dt.date) -> int | None:
    """Months until the caller means to move: 0 for now, 12 for "not for a while"."""
    words = normalise(text)
    if _has(words, r"\b(just (looking|browsing|curious)|no rush|not sure|no hurry|someday|eventually|solo (estoy )?mirando|no hay prisa|sin prisa)\b"):
        return 12
    if _has(words, r"\b(asap|a\.s\.a\.p|right away|immediately|now|today|this week|ready|ya mismo|ahora|cuanto antes|lo antes posible|urgente|inmediatamente|esta semana)\b"):
        return 0
    if _has(words, r"\b(this month|este mes)\b"):
        return 0
    if _has(words, r"\b(next month|el (proximo|siguiente) mes|el mes que viene)\b"):
        return 1
    if _has(words, r"\b(next year|el (proximo )?ano que viene|el proximo ano)\b"):
        return max(1, 12 - today.month + 1)
    number = r"(\d+(?:\.\d+)?|" + "|".join(sorted(map(re.escape, _NUMBER_WORDS), key=len, reverse=True)) + ")"
    unit = "(" + "|".join(sorted(_UNITS, key=len, reverse=True)) + ")"
    span = re.search(number + r"(?:\s*(?:-|to|a|or|o)\s*" + number + r")?\s*" + unit + r"\b", words)
    if span:
        first = _NUMBER_WORDS.get(span.group(1)) or float(span.group(1))
        last = (_NUMBER_WORDS.get(span.group(2)) or float(span.group(2))) if span.group(2) else first
        return round(max(first, last) * _UNITS[span.group(3)])
    for name, month in {**_SEASON_MONTH, **_MONTHS}.items():
        if _has(words, rf"\b{name}\b") and not (name == "may" and _has(words, r"\bmay (be|have|not)\b")):
            months = (month - today.month) % 12
            return months if months or name in _SEASON_MONTH else 12
    return None


# --- price range or budget -----------------------------------------------------------------------

_AMOUNT = (
    r"(\$)?\s*(\d{1,3}(?:[,.]\d{3})+|\d+(?:\.\d+)?)\s*(k|m|mm|mil|million|millones|millon|thousand)?\b"
    r"(?!\s*(bed|bedroom|bd|br|bath|ba|car|garage|sq|square|acre|story|stories|hab|habitacion|recamara|bano))"
)


def _dollars(number: str, scale: str | None, *, sign: bool = True) -> int | None:
    if not (sign or scale or "." in number or len(number) >= 2):
        return None  # a lone digit is a count of something, not a price
    if re.fullmatch(r"\d{1,3}(?:[,.]\d{3})+", number):
        value = float(re.sub(r"[,.]", "", number))
    else:
        value = float(number)
    if scale in ("k", "thousand", "mil"):
        value *= 1_000
    elif scale in ("m", "mm", "million", "millones", "millon"):
        value *= 1_000_000
    elif value < 10:  # "1.2" on its own: millions
        value *= 1_000_000
    elif value < 10_000:  # "450", "under 500": people text prices in thousands
        value *= 1_000
    return int(round(value)) if 25_000 <= value <= 100_000_000 else None


def read_budget(text: str) -> Budget | None:
    words = normalise(text).replace("half a million", "500k").replace("medio millon", "500 mil")
    amounts = [(m, _dollars(m.group(2), m.group(3), sign=bool(m.group(1)))) for m in re.finditer(_AMOUNT, words)]
    amounts = [(m, value) for m, value in amounts if value is not None]
    if not amounts:
        return None
    if len(amounts) >= 2:
        # "300 to 400k": a bare first number takes the second's scale.
        (first, low), (second, high) = amounts[0], amounts[1]
        if not first.group(3) and second.group(3):
            low = _dollars(first.group(2), second.group(3)) or low
        return Budget(min(low, high), max(low, high))
    match, value = amounts[0]
    before = words[:match.start()]
    if _has(before, r"(under|below|less than|no more than|max|maximum|up to|upto|at most|menos de|hasta|maximo|no mas de)\s*$"):
        return Budget(None, value)
    if _has(before, r"(over|above|more than|at least|min|minimum|mas de|minimo|por lo menos|al menos)\s*$"):
        return Budget(value, None)
    return Budget(value, value)


# --- where ---------------------------------------------------------------------------------------

_STREET = (
    r"\b\d{1,6}\s+(?:[nsew]\.?\s+)?[a-z0-9][a-z0-9 .']*?\s+"
    r"(st|street|ave|avenue|rd|road|dr|drive|ln|lane|blvd|boulevard|ct|court|way|pl|place|ter|terrace|cir|circle|pkwy|parkway|hwy|trl|trail)\b\.?"
)
_CALLE = r"\b(calle|avenida|av\.?|camino)\s+[a-z0-9 ]+?\s+#?\d{1,6}\b"
_UNCLEAR = r"^(idk|i dont know|i don'?t know|not sure|no se|anywhere|cualquier|lo que sea|\?+|ok|okay|yes|no|si)\b"


def read_area(text: str) -> Area | None:
    raw = " ".join((text or "").split())
    words = normalise(raw)
    street = re.search(_STREET, words) or re.search(_CALLE, words)
    zip_code = re.search(r"(?<![\d$,.])\b(\d{5})(?:-\d{4})?\b(?![\d,.]|\s*(k|mil|dollars|dolares)\b)", words)
    if street:
        return Area(zip_code=zip_code.group(1) if zip_code else "", address=raw[street.start():street.end()].strip(" .,"))
    if zip_code:
        return Area(zip_code=zip_code.group(1))
    place = re.sub(r"^(in|near|around|the|en|cerca de|por)\s+", "", raw, flags=re.IGNORECASE).strip(" .!")
    if _has(words, _UNCLEAR) or not re.search(r"[a-z]{3}", normalise(place)) or len(place) > 60 or re.search(r"\d", place):
        return None
    return Area(place=place)


# --- financing -----------------------------------------------------------------------------------


def read_financing(text: str) -> Financing | None:
    words = normalise(text)
    if _has(words, r"\b(cash|efectivo|al contado|de contado)\b"):
        return Financing.CASH
    if _has(words, r"\b(working on it|in progress|applying|applied|waiting on|talking to (a|my) (lender|bank)|en proceso|tramite|tramitando|aplicando|esperando)\b"):
        return Financing.IN_PROGRESS
    if _has(words, r"\b(not yet|no(pe)?|not pre.?approved|havent|haven'?t|todavia no|aun no|no tengo|no estoy)\b"):
        return Financing.NOT_YET
    if _has(words, r"\b(yes|yep|yeah|yup|sure|pre.?approved|preapproved|approved|already|si|ya tengo|ya estoy|pre.?aprobad[oa]|aprobad[oa])\b"):
        return Financing.PRE_APPROVED
    return None


# --- the caller asks for a human -----------------------------------------------------------------

_PERSON = (
    r"\b(real person|a human|human being|talk to (someone|somebody|an agent|a person|an actual)|speak (to|with) (someone|somebody|an agent|a person)|"
    r"call me|give me a call|can (someone|you) call|have (someone|an agent) call|is this a (bot|robot)|are you a (bot|robot)|stop asking|"
    r"agent please|representative|persona real|hablar con (alguien|una persona|un agente)|llamame|me pueden llamar|eres un robot|es un robot)\b"
)


def wants_a_person(text: str) -> bool:
    return _has(normalise(text), _PERSON)


# --- the rating ----------------------------------------------------------------------------------


def intent_rating(answers: dict[Question, object]) -> Rating:
    """Hot: moving within three months and able to (pre-approved, cash, or selling). Warm: within
    six months, or within three but not yet financed. Nurture: later, or unknown."""
    months = answers.get(Question.TIMELINE)
    if not isinstance(months, int):
        return Rating.NURTURE
    able = answers.get(Question.PRE_APPROVED) in (Financing.PRE_APPROVED, Financing.CASH) or answers.get(Question.INTENT) == Intent.SELL
    if months <= 3 and able:
        return Rating.HOT
    if months <= 6:
        return Rating.WARM
    return Rating.NURTURE


class RuleBasedQualifier:
    """The default reader: the rules above, English and Spanish, no network."""

    def read(self, question: Question, text: str, *, today: dt.date) -> object | None:
        if question is Question.INTENT:
            return read_intent(text)
        if question is Question.TIMELINE:
            return read_timeline(text, today=today)
        if question is Question.BUDGET:
            return read_budget(text)
        if question is Question.AREA:
            return read_area(text)
        return read_financing(text)

    def wants_a_person(self, text: str) -> bool:
        return wants_a_person(text)
