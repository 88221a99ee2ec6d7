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
import functools
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

    def read_volunteered(self, question: Question, text: str) -> object | None:
        """An answer to `question` given before it was asked, or None; only what cannot be
        mistaken for an answer to something else."""

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


def _timeline_span(words: str) -> int | None:
    """Months in "3 months", "2-3 months", "a couple of weeks", "un año"."""
    number = r"(\d+(?:\.\d+)?|" + "|".join(sorted(map(re.escape, _NUMBER_WORDS), key=len, reverse=True)) + ")"
    unit = "(" + "|".join(sorted(_UNITS, key=len, reverse=True)) + ")"
    span = re.search(number + r"(?:\s*(?:-|to|a|or|o)\s*" + number + r")?\s*" + unit + r"\b", words)
    if span is None:
        return None
    first = _NUMBER_WORDS.get(span.group(1)) or float(span.group(1))
    last = (_NUMBER_WORDS.get(span.group(2)) or float(span.group(2))) if span.group(2) else first
    return round(max(first, last) * _UNITS[span.group(3)])


def read_timeline(text: str, *, today: dt.date) -> int | None:
    """Months until the caller means to move: 0 for now, 12 for "not for a while"."""
    words = normalise(text)
    if _has(words, r"\b(just (looking|browsing|curious)|no rush|not sure|no hurry|someday|eventually|solo (estoy )?mirando|no hay prisa|sin prisa)\b"):
        return 12
    # "Not now", "not ready yet", "todavia no": later, not sooner.
    if _has(words, r"\b(not|no|isn'?t|aren'?t)\s+(right\s+)?(now|ready|yet|soon|anytime soon|ahora|todavia|pronto)\b|\btodavia no\b"):
        return 12
    span = _timeline_span(words)
    if span is not None:  # "a year from now" is a year
        return span
    if _has(words, r"\b(asap|a\.s\.a\.p|right away|immediately|right now|now|today|this week|ready|ya mismo|ahora|cuanto antes|lo antes posible|urgente|inmediatamente|esta semana)\b"):
        return 0
    if _has(words, r"\b(this month|este mes)\b"):
        return 0
    if _has(words, r"\b(next month|el (proximo|siguiente) mes|el mes que viene)\b"):
        return 1
    if _has(words, r"\b(next year|el (proximo )?ano que viene|el proximo ano)\b"):
        return max(1, 12 - today.month + 1)
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
    # A pre-approval named outright decides, unless it is denied ("not pre-approved", "no estoy pre-aprobado").
    if _has(words, r"\b(not|no|never|haven'?t been|havent been|sin)\s+(yet\s+|estoy\s+|tengo\s+(la\s+)?)?pre.?(approved|approval|aprobad[oa]|aprobacion)\b"):
        return Financing.NOT_YET
    if _has(words, r"\b(pre.?approved|preapproved|pre.?approval|approved|pre.?aprobad[oa]|pre.?aprobacion|aprobad[oa])\b"):
        return Financing.PRE_APPROVED
    if _has(words, r"\b(not yet|no(pe)?|havent|haven'?t|todavia no|aun no|no tengo|no estoy)\b"):
        return Financing.NOT_YET
    if _has(words, r"\b(yes|yep|yeah|yup|sure|already|si|ya tengo|ya estoy)\b"):
        return Financing.PRE_APPROVED
    return None


# --- the caller asks for a human -----------------------------------------------------------------

_PERSON = (
    r"\b(real person|a human|human being|talk to (someone|somebody|an agent|a person|an actual)|speak (to|with) (someone|somebody|an agent|a person)|"
    r"(?<!don't )(?<!dont )(?<!do not )(?<!no )call me|give me a call|can (someone|you) call|have (someone|an agent) call|is this a (bot|robot)|are you a (bot|robot)|stop asking|"
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

    def read_volunteered(self, question: Question, text: str) -> object | None:
        return read_volunteered(question, text)

    def wants_a_person(self, text: str) -> bool:
        return wants_a_person(text)


# --- the script's words ------------------------------------------------------------------------

# The first time each question is asked, and the one clarifying question after an unclear answer.
# Sellers hear about their home, buyers about the one they want. {agent} is the agent's first name.
_ASK = {
    "en": {
        Question.INTENT: ("Quick question so we can help: are you looking to buy, sell, or both?",
                          "Sorry, just to check: are you buying a home, selling one, or both?"),
        Question.TIMELINE: ("When are you hoping to move? (e.g. ASAP, 3 months, next spring)",
                            "Roughly how many months until you'd like to move? A guess is fine."),
        Question.BUDGET: ("What price range are you looking at?", "About what price? A rough number like 450k is fine."),
        Question.AREA: ("Which area or ZIP code are you looking in?", "Which city, neighborhood or ZIP code?"),
        Question.PRE_APPROVED: ("Are you pre-approved for a mortgage, or paying cash?",
                                "Have you talked to a lender yet? Yes, no, or cash?"),
    },
    "es": {
        Question.INTENT: ("Una pregunta rapida para ayudarle: ¿busca comprar, vender o ambos?",
                          "Perdon, para confirmar: ¿quiere comprar una casa, vender una, o ambos?"),
        Question.TIMELINE: ("¿Para cuando piensa mudarse? (por ejemplo: ya, en 3 meses, la primavera)",
                            "¿Mas o menos en cuantos meses le gustaria mudarse? Un estimado esta bien."),
        Question.BUDGET: ("¿En que rango de precio esta buscando?", "¿Mas o menos que precio? Un numero como 300 mil esta bien."),
        Question.AREA: ("¿En que zona o codigo postal busca?", "¿En que ciudad, barrio o codigo postal?"),
        Question.PRE_APPROVED: ("¿Ya tiene pre-aprobacion de un prestamo, o pagaria en efectivo?",
                                "¿Ya hablo con un prestamista? Si, no, o efectivo?"),
    },
}
_ASK_SELLER = {
    "en": {
        Question.BUDGET: ("Roughly what do you hope to sell for?", "About what price? A rough number like 450k is fine."),
        Question.AREA: ("What's the address of the home you're selling?", "What's the street address or ZIP code of the home?"),
    },
    "es": {
        Question.BUDGET: ("¿Mas o menos en cuanto espera vender?", "¿Mas o menos que precio? Un numero como 300 mil esta bien."),
        Question.AREA: ("¿Cual es la direccion de la casa que vende?", "¿Cual es la direccion o el codigo postal de la casa?"),
    },
}
_THANKS = {
    "en": "Thanks, that helps! {agent} will text you shortly.",
    "es": "¡Gracias, eso nos ayuda! {agent} le escribira en breve.",
}
_SOMEONE = {"en": "An agent", "es": "Un agente"}


def question_text(question: Question, *, language: str, intent: str | None, clarifying: bool) -> str:
    language = language if language in _ASK else "en"
    words = _ASK[language][question]
    if intent == Intent.SELL and question in _ASK_SELLER[language]:
        words = _ASK_SELLER[language][question]
    return words[1 if clarifying else 0]


def thanks_text(*, language: str, agent_name: str) -> str:
    language = language if language in _THANKS else "en"
    return _THANKS[language].format(agent=agent_name.split()[0] if agent_name else _SOMEONE[language])


def next_question(questions: list[str], answers: dict, unclear: list[str]) -> Question | None:
    """The first question neither answered nor given up on. A seller is not asked about a mortgage."""
    for key in questions:
        if key in answers or key in unclear:
            continue
        if key == Question.PRE_APPROVED and answers.get(Question.INTENT) == Intent.SELL:
            continue
        return Question(key)
    return None


def read_volunteered(question: Question, text: str) -> object | None:
    """An answer given before its question was asked ("buying, around 450k"): only what cannot be
    something else counts. A price must carry a $ or a scale, so a ZIP code, a house number or a
    year is never read as one."""
    if question is Question.INTENT:
        return read_intent(text)
    if question is Question.BUDGET and re.search(r"\$|\d\s*(k|m|mm|mil|million|millones|thousand)\b", normalise(text)):
        return read_budget(text)
    return None


VOLUNTEERED = (Question.INTENT, Question.BUDGET)


def answer_as_json(value: object) -> object:
    """An answer as stored on the qualification (JSON): enums by value, dataclasses as dicts."""
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    return value


def answers_as_values(stored: dict) -> dict[Question, object]:
    """Stored answers back as the readers' values, for the rating."""
    kinds = {Question.INTENT: Intent, Question.PRE_APPROVED: Financing}
    values: dict[Question, object] = {}
    for key, value in stored.items():
        question = Question(key)
        if question in kinds:
            values[question] = kinds[question](value)
        elif question is Question.BUDGET:
            values[question] = Budget(**value)
        elif question is Question.AREA:
            values[question] = Area(**value)
        else:
            values[question] = value
    return values


def lead_fields(question: Question, value: object) -> dict[str, object]:
    """What an answer tells the lead's record (and so routing and the CRM)."""
    if question is Question.INTENT:
        return {"lead_type": "seller" if value == Intent.SELL else "buyer"}
    if question is Question.TIMELINE:
        return {"timeline_months": value}
    if question is Question.BUDGET:
        return {"price": value.high or value.low}
    if question is Question.AREA:
        fields = {"zip_code": value.zip_code} if value.zip_code else {}
        if value.address:
            fields["address"] = value.address[:200]
        if value.place:
            fields["city"] = value.place[:80]
        return fields
    return {"financing": value.value}


def _money(dollars: int) -> str:
    if dollars >= 1_000_000:
        return f"${dollars / 1_000_000:.2f}".rstrip("0").rstrip(".") + "M"
    return f"${round(dollars / 1_000)}k"


def answer_summary(question: Question, value: object) -> str:
    """One answer in a few words, for the agent's summary card and the CRM."""
    if question is Question.INTENT:
        return {Intent.BUY: "Buying", Intent.SELL: "Selling", Intent.BOTH: "Buying and selling"}[value]
    if question is Question.TIMELINE:
        return "Now" if value == 0 else "Within a month" if value == 1 else f"In about {value} months"
    if question is Question.BUDGET:
        if value.low is None:
            return f"Up to {_money(value.high)}"
        if value.high is None:
            return f"From {_money(value.low)}"
        return _money(value.low) if value.low == value.high else f"{_money(value.low)}–{_money(value.high)}"
    if question is Question.AREA:
        return ", ".join(part for part in (value.address, value.place, value.zip_code) if part)
    return {Financing.PRE_APPROVED: "Pre-approved", Financing.CASH: "Cash buyer", Financing.IN_PROGRESS: "Applying for a loan",
            Financing.NOT_YET: "Not pre-approved yet"}[value]


QUESTION_LABELS = {
    Question.INTENT: "Looking to", Question.TIMELINE: "Timeline", Question.BUDGET: "Price",
    Question.AREA: "Where", Question.PRE_APPROVED: "Financing",
}


# --- which language the caller writes in ---------------------------------------------------------

# Short replies ("ok", "450k", "si") say little about a language: only a clear reading counts.
_LANGUAGE_CONFIDENCE = 0.7


@functools.cache
def _detector():
    # Built on first use, once per process: English and Spanish only, models loaded lazily.
    from lingua import Language, LanguageDetectorBuilder

    return LanguageDetectorBuilder.from_languages(Language.ENGLISH, Language.SPANISH).build()


def detect_language(text: str) -> str | None:
    """"es" or "en" when the text clearly reads as one, else None (keep what we had). Offline."""
    words = re.findall(r"[^\W\d_]{2,}", text or "")
    if len(words) < 2 and not (words and len(words[0]) >= 5):
        return None
    best = max(_detector().compute_language_confidence_values(" ".join(words)), key=lambda c: c.value)
    if best.value < _LANGUAGE_CONFIDENCE:
        return None
    return "es" if best.language.name == "SPANISH" else "en"
