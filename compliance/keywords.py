"""Twilio's standard keywords, matched the way carriers do (the whole message, any case), and
plain-language revocations, which the FCC's 2024 order says must be honoured too."""

import enum
import re
import unicodedata


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


# --- Free-text revocations -----------------------------------------------------------------
# The FCC's 2024 order lets consent be revoked "by any reasonable means", so beyond the
# carrier keywords above we read the words. Two verdicts: CLEAR opts out at once; AMBIGUOUS
# puts the message in front of an agent. A confirming click is cheap and a missed revocation
# is a lawsuit, so doubt means AMBIGUOUS, never CLEAR. All patterns run on _normalise()'s
# output: lower case, no accents, no apostrophes ("don't" -> "dont"), emoji and symbols gone,
# single spaces, clause punctuation (. , ! ? ; :) kept so "wrong number, stop" splits.


class Revocation(enum.Enum):
    CLEAR = "clear"          # opt out at once
    AMBIGUOUS = "ambiguous"  # may be asking us to stop: an agent confirms


_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'"})


def _normalise(body: str) -> str:
    """One spelling for the many ways a phone types a sentence, so the patterns stay short."""
    text = unicodedata.normalize("NFKD", (body or "").translate(_APOSTROPHES))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()  # envíes -> envies
    text = text.replace("'", "").replace("&", " and ")          # don't -> dont, call & text
    text = re.sub(r"[^a-z0-9.,!?;:\s]", " ", text)                # emoji, symbols, ¿¡, hyphens
    text = re.sub(r"([a-z])\1{2,}", r"\1", text)                  # stooop / STOPPPP -> stop
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\s*([.,!?;:])[.,!?;:\s]*", r"\1 ", text)      # "stop !! ." -> "stop! "
    return text.strip(" .,!?;:")


def _words(*alternatives: str) -> str:
    return "(?:" + "|".join(alternatives) + ")"


# Shared vocabulary, texting shorthand included.
_PLEASE = _words("please", "pls", "plz", "plez", "plse", "plss", "pleas", "por favor", "porfavor", "porfa",
                 "xfa", "x favor", "plis")
_ME = _words("me", "us", "this number", "my number", "this phone", "my phone", "my cell")
# Contact verbs as gerunds, typos and Spanglish included: "stop textin me", "stop mandandome".
_CONTACTING = _words(
    r"te?xt?(?:ing|in|ng|n)", "msg(?:ing|in)", "mess?agg?(?:ing|in)", "contact(?:ing|in)", "send(?:ing|in)",
    "spamm?(?:ing|in)", "bugg(?:ing|in)", "bother(?:ing|in)", "harass(?:ing|in)", "pester(?:ing|in)",
    "writ(?:ing|in)", "email(?:ing|in)", "hitt(?:ing|in) me up", "blow(?:ing|in) up my phone",
    "mandandome", "enviandome", "escribiendome", "texteandome", "mandarme", "enviarme", "escribirme",
    "textearme",
)
_TEXTS = _words("texts?", "txts?", "messages?", "msgs?", "sms", "spam", "listings?", "alerts?", "ads",
                "stuff", "junk", "crap", "mensajes?", "mensajitos", "textos?")
_MESSAGES = _words("texts?", "txts?", "messages?", "msgs?", "sms", "mensajes?")
_TEXT_VERB = _words("te?xt", "txt", "message", "msg", "contact", "sms", "write", "email", "spam", "bother")
# Spanish contact verbs: infinitive stems after "deja de", subjunctive after "no me".
_ES_CONTACT_INF = _words("escribir", "mandar", "enviar", "textear", "contactar", "molestar") + _words("me", "nos", "")
_ES_CONTACT_SUBJ = _words("escrib(?:a|as|an)", "mand(?:e|es|en)", "envi(?:e|es|en)", "texte(?:e|es|en)",
                          "contact(?:e|es|en)", "molest(?:e|es|en)")
_END = r"(?=$|[.,!?;:]|\s" + _PLEASE + r"\b|\s(?:now|again|anymore|any more|ever|already|ok|thanks|thank|thx|ya|mas)\b)"

_CLEAR_PATTERNS = [
    re.compile(pattern)
    for pattern in (
        # "stop texting me", "quit bugging me", "stop calling and texting me", "stop textin"
        r"\b(?:stop|stp|quit|cease)\s+(?:(?:fucking|freaking|effing|friggin|frickin|fkn|ever|all)\s+)?"
        r"(?:(?:calling|emailing|texting|messaging)\s+(?:and|or|n)\s+)?" + _CONTACTING
        + r"(?:\s+" + _ME + r")?(?:\s+" + _words("these", "this", "those", "them", "anything", _TEXTS,
                                                 _words("ur", "your", "the", "all these", "all the", "all ur", "all your")
                                                 + r"\s+" + _TEXTS)
        + r")?" + _END,
        # "stop the texts", "stop with the messages", "stop con los mensajes", "enough with the texts"
        r"\b(?:stop|quit|enough)\s+(?:(?:with|con)\s+)?(?:(?:the|these|all the|all these|your|ur|los|tus|sus|estos)\s+)?"
        + _TEXTS + r"\b",
        # "how do I stop getting these", "I want to stop receiving texts"
        r"\bstop\s+(?:getting|receiving|recieving)\s+(?:these|this|them|your|ur|the|any|" + _TEXTS + r")\b",
        # "don't text me", "please do not contact us again", "can u not text me"
        r"\b(?:dont|do not|never|(?:can|could) (?:u|you) not)\s+(?:ever\s+)?" + _TEXT_VERB + r"\s+" + _ME + r"\b",
        # "remove me from your list", "take me off", "opt me out", "unsubscribe me", "delete my number"
        r"\b(?:remove|take|delete|drop|erase|get)\s+(?:me|us|my number|this number)\s+(?:off|from|out of)\s+"
        r"(?:(?:your|ur|the|this|that|these|all|all your|all the|ur)\s+)?"
        + _words("list", "lists", "texts?", "messages?", "mailing", "contacts?", "database", "system",
                 "distribution", "marketing", "sms", "text list", "texting list", "number"),
        r"\b(?:remove|delete|lose|erase)\s+" + _words("me", "us", "my number", "this number", "my info") + _END,
        r"\b(?:unsubscribe|unsub|opt)\s+(?:me|us|this number|my number)\b",
        r"\bunsubscribe\s+from\s+(?:(?:this|these|your|ur|the|all)\s+)?" + _TEXTS + r"\b",
        # "I want to unsubscribe", "I'd like to opt out", "how do I unsubscribe", "I'm opting out"
        r"\b(?:want|wanna|would like|wish|need|like)\s+to\s+"
        + _words("unsubscribe", "unsub", "opt out", "be removed", "be taken off", "stop getting",
                 "stop receiving", "stop these", "stop the texts") + r"\b",
        r"\bhow (?:do|can|would) (?:i|we) " + _words("unsubscribe", "unsub", "opt out", "stop (?:these|this|the|your|ur|them)",
                                                     "get off (?:this|your|ur|the) list", "make (?:this|these|it|them) stop"),
        r"\b(?:im|i am)\s+(?:opting out|unsubscribing)\b",
        # A revocation already given and not honoured: "I said stop", "I already unsubscribed"
        r"\bi\s+(?:already\s+)?(?:said|told you|told u|asked you|asked u|asked)\s+(?:to\s+)?(?:stop|unsubscribe|remove me)\b",
        r"\b(?:i|ive|i have|i already|ive already)\s+(?:already\s+)?(?:unsubscribed|opted out)\b",
        r"\bno\s+more\s+(?:texting|" + _TEXTS + r")\b",
        # "I don't want any more texts", "I no longer wish to be contacted", "we do not want to receive messages"
        # (messages only: "I don't want any more listings in Miami, just Tampa" is about listings)
        r"\b(?:dont|do not|no longer|dont ever|do not ever)\s+(?:want|wish|like)\s+(?:to\s+)?"
        r"(?:(?:get|receive|recieve|be sent|have)\s+)?(?:(?:any|anymore|any more|your|ur|these|the|more)\s+)*"
        r"(?:" + _MESSAGES + r"|to be (?:contacted|texted|messaged)|to hear from (?:you|u|your|ur))\b",
        # "please do not send me any more messages", "don't send me texts"
        r"\b(?:dont|do not|never)\s+send\s+(?:me|us)\s+(?:(?:any|anymore|any more|more|these|your|ur)\s+)*" + _MESSAGES + r"\b",
        # "please take my number off", "take my number off your list"
        r"\btake\s+(?:my|this)\s+number\s+off\b",
        r"\bno\s+" + _words("texts?", "txts?", "messages?", "mensajes") + r"\s+" + _PLEASE + r"\b",
        r"\bleave\s+(?:me|us)\s+(?:the (?:fuck|f|hell|heck) )?alone\b",
        # Spanish: "deja de escribirme", "paren de mandar mensajes", "deje de molestarme"
        r"\b(?:dej|par)(?:a|e|en|ar|ame|enme)\s+de\s+" + _ES_CONTACT_INF + r"\b",
        # "no me envies mas mensajes", "ya no me escriban", "no me vuelvas a escribir"
        r"\bno\s+(?:me|nos)\s+" + _ES_CONTACT_SUBJ + r"\b",
        r"\bno\s+(?:me|nos)\s+vuelv(?:a|as|an)\s+a\s+" + _ES_CONTACT_INF + r"\b",
        # "no quiero mas mensajes", "ya no quiero recibir textos", "no quiero que me escriban"
        r"\bno\s+(?:quiero|queremos|deseo)\s+(?:recibir\s+)?(?:(?:mas|ningun|ningunos?|ningunas?)\s+)?"
        r"(?:mensajes?|textos?|mensajitos|sms)\b",
        r"\bno\s+(?:quiero|queremos|deseo)\s+que\s+(?:me|nos)\s+" + _ES_CONTACT_SUBJ + r"\b",
        r"\b(?:no mas|basta de|basta con los|alto a los)\s+(?:mensajes?|textos?|mensajitos|sms)\b",
        # "borrame de tu lista", "sacame de la lista", "eliminen mi numero"
        r"\b(?:borr|elimin|sac|saqu|quit)(?:a|e|en)(?:me|nos)\s+(?:de|del)\s+(?:(?:la|tu|su|sus|esta|esa|el|los|vuestra)\s+)?"
        r"(?:lista|listas|base|sistema|contactos|registro|mensajes|numeros)\b",
        r"\b(?:borr|elimin|quit)(?:a|e|en)\s+(?:mi|este)\s+numero\b",
        # "darme de baja", "denme de baja", "me doy de baja", "dejame en paz", "no me molesten"
        r"\b(?:dar(?:me|nos)?|dame|denme|den|doy|damos)\s+de\s+baja\b",
        r"\b(?:dejame|dejeme|dejenme|dejanos|dejennos)\s+(?:en paz|tranquil[oa]s?)\b",
    )
]

# A bare stop word as a whole sentence, with at most politeness around it, is the keyword
# said loudly: "STOP!!!", "pls stop", "wrong number, stop", "PARAR", "para ya", "ya basta".
_FILLER = _words(_PLEASE, "just", "now", "it", "already", "ok", "okay", "k", "thanks", "thank you", "thx", "ty",
                 "asap", "immediately", "right now", "seriously", "for real", "for good", "all", "ya", "ahora",
                 "ahorita", "gracias", "ya mismo", "de inmediato", "inmediatamente")
_BARE = _words("stop", "stp", "stopall", "unsubscribe", "unsub", "optout", "opt out", "revoke",
               "parar", "paren", "pare", "para", "alto", "basta")
_BARE_CLAUSE = re.compile(rf"^(?:{_FILLER}\s+)*{_BARE}(?:\s+(?:{_FILLER}|{_BARE}))*$")
# Words that opt out only as the entire message, like the carrier keywords: "Cancel." yes,
# "cancel please" may mean the showing, so it goes to an agent.
_WHOLE_MESSAGE_ONLY = frozenset({"cancel", "end", "quit", "remove", "cancelar", "baja"})

# Negation flips a clear phrase ("don't stop texting me", "no, don't remove me", "no deje de
# escribirme"); it's looked for in the few words before, within the clause and not across a
# conjunction, so "not interested so stop texting me" still counts. A flipped phrase is
# AMBIGUOUS, not None: the detection is a heuristic and an agent's glance is cheap.
_NEGATORS = frozenset({"dont", "not", "never", "didnt", "wont", "cant", "cannot", "doesnt", "isnt", "wasnt",
                       "shouldnt", "wouldnt", "havent", "hasnt", "aint", "no", "nunca", "jamas", "ni", "nor"})
_SCOPE_BREAKS = re.compile(r"[.,!?;:]|\b(?:so|and|but|because|cause|cuz|then|just|pero|y|entonces|asi que|"
                           r"interested|interesa|interesado|interesada)\b")
# A time window narrows the request rather than withdrawing consent: "stop texting me so late",
# "don't text me before 9am", "no me escribas en la noche". An agent reads those.
_QUALIFIER = re.compile(r"\s*(?:until|till|til|after|before|during|between|when|while|at night|at work|"
                        r"on (?:the )?weekends?|on sundays?|so (?:early|late)|this (?:early|late)|"
                        r"hasta|despues|antes|durante|cuando|mientras|en la noche|de noche|tan (?:tarde|temprano))\b")
# Objects after "don't text me" that turn it into a request about content: "don't text me the address".
_CONTENT_OBJECT = re.compile(r"\s*(?:the|a|an|it|that|those|pics|pictures|photos|fotos|address|details|info|link|back|yet)\b")

# Possible revocations an agent confirms: any opt-out word, wherever it stands. That includes
# "stop by", "bus stop" and "stop sign", deliberately: one rule with no list of innocent
# idioms to get wrong. Spanish "para" (= "for"), "alto" (= tall/high) and "baja" (planta baja,
# baja el precio) are everyday real-estate words, so they count only as whole sentences
# (above) or in "dar de baja"/"para de escribir".
_AMBIGUOUS_PATTERNS = [
    re.compile(pattern)
    for pattern in (
        r"\b(?:stop\w*|stp|unsub\w*|cancel\w*|quit|quits|quitting|remov\w*|end|ends|ended|ending|"
        r"opt(?:ed|ing)?\s*out|optout|revok\w*|ceas\w*)\b",
        r"\b(?:parar|paren|pare|detener|deten|detenga|detengan|basta|de baja)\b",
        r"\b(?:dej|par)\w*\s+de\s+(?:escrib|mand|envi|text|contact|llam|molest)\w*",
        r"\bdej(?:ar|a|e|en|es|ame|enme)\s+de\b",
        r"\b(?:borr|elimin|sac|saqu|quit)(?:a|e|en)(?:me|nos)\b",
        # Not opt-out words, but signs this person may not want the texts: an agent should know.
        r"\bwrong (?:number|num|no|person)\b|\bnumero equivocado\b|\bse equivoc\w* de numero\b",
        r"\bnot interested\b|\bno (?:me|nos) interesa\b|\bno estoy interesad[oa]\b",
        r"\b(?:dont|do not|never) call (?:me|us)\b|\bno me llam(?:e|es|en)\b",
        r"\b(?:take|get) (?:me|us) off\b|\bspam\b|\bleave me\b",
    )
]


def _negated(text: str, start: int) -> bool:
    """Is there a negator in the few words before start, in the same clause?"""
    before = _SCOPE_BREAKS.split(text[:start])[-1]
    return bool(_NEGATORS.intersection(before.split()[-5:]))


def revocation_classify(body: str) -> Revocation | None:
    """CLEAR when the message withdraws consent to be texted, AMBIGUOUS when it might, else None."""
    text = _normalise(body)
    if not text:
        return None
    if re.sub(r"[^a-z]", "", text) in _WHOLE_MESSAGE_ONLY:
        return Revocation.CLEAR
    if any(_BARE_CLAUSE.match(clause.strip()) for clause in re.split(r"[.,!?;:]", text)):
        return Revocation.CLEAR
    hedged = False
    for pattern in _CLEAR_PATTERNS:
        for match in pattern.finditer(text):
            after = text[match.end():]
            if _negated(text, match.start()) or _QUALIFIER.match(after) or (
                match.group(0).startswith(("dont", "do not", "never", "can", "could")) and _CONTENT_OBJECT.match(after)
            ):
                hedged = True
                continue
            return Revocation.CLEAR
    if hedged or any(pattern.search(text) for pattern in _AMBIGUOUS_PATTERNS):
        return Revocation.AMBIGUOUS
    return None

