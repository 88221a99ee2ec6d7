"""Twilio's standard keywords, matched the way carriers do (the whole message, any case), and
plain-language revocations, which the FCC's 2024 order says must be honoured too."""

import enum
import re


class Keyword(enum.Enum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
OPT_IN_WORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})

# Twilio's Advanced Opt-Out posts its own verdict; trust it when present.
_TWILIO_OPT_OUT_TYPES = {"STOP": Keyword.OPT_OUT, "START": Keyword.OPT_IN, "HELP": Keyword.HELP}


def keyword_classify(body: str, opt_out_type: str = "") -> Keyword | None:
    if opt_out_type.upper() in _TWILIO_OPT_OUT_TYPES:
        return _TWILIO_OPT_OUT_TYPES[opt_out_type.upper()]
    word = body.strip().strip(".!").upper()
    if word in OPT_OUT_WORDS:
        return Keyword.OPT_OUT
    if word in OPT_IN_WORDS:
        return Keyword.OPT_IN
    if word in HELP_WORDS:
        return Keyword.HELP
    return None


# Clear ways people say "stop texting me" in English and Spanish. Matching is deliberately
# narrow ("stop by the open house" is not here): a later issue adds flagging of ambiguous ones.
_REVOCATIONS = [
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        r"\b(stop|quit|cease)\s+(texting|messaging|contacting|sending|spamming)\b",
        r"\b(do not|don'?t|dont|never)\s+(text|message|contact|sms)\s+me\b",
        r"\b(remove|take)\s+me\s+(off|from)\b",
        r"\bno\s+more\s+(texts|messages|sms)\b",
        r"\b(unsubscribe|opt[\s-]?out)\b",
        r"^\s*(parar|para|baja|alto)\s*[.!]*\s*$",
        r"\bdej[ae]\s+de\s+(escribirme|enviarme|mandarme|textearme|contactarme)\b",
        r"\bno\s+me\s+(env[ií]es|mandes|escribas|contactes)\s+m[aá]s\b",
        r"\bno\s+m[aá]s\s+mensajes\b",
        r"\b(b[oó]rrame|elim[ií]name|s[aá]came)\s+de\b",
    )
]


def revocation_detect(body: str) -> bool:
    """Does this free-text message clearly withdraw consent to be texted?"""
    return any(pattern.search(body) for pattern in _REVOCATIONS)
