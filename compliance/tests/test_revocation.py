"""Free-text revocations, as leads really type them. No database: classification is pure."""

import pytest

from compliance.keywords import Revocation, revocation_classify

CLEAR, AMBIGUOUS = Revocation.CLEAR, Revocation.AMBIGUOUS

CASES = [
    # --- English, clear: opt out at once --------------------------------------------------------
    ("I don't want any more texts", CLEAR),
    ("I do not want to receive texts", CLEAR),
    ("Please do not send me any more messages", CLEAR),
    ("don't send me texts", CLEAR),
    ("I no longer wish to be contacted", CLEAR),
    ("i no longer want to receive messages from you", CLEAR),
    ("Please take my number off", CLEAR),
    ("I don't want to see the house anymore", None),
    ("I don't want any more listings in Miami, just Tampa", None),
    ("stop texting me", CLEAR),
    ("Please stop texting me.", CLEAR),
    ("STOP TEXTING ME!!! 😡", CLEAR),
    ("stop textin me", CLEAR),
    ("pls stop", CLEAR),
    ("Stop please 🙏", CLEAR),
    ("STOP STOP STOP", CLEAR),
    ("stooop", CLEAR),
    ("remove me from your list", CLEAR),
    ("Remove me from ur list pls", CLEAR),
    ("take me off this list", CLEAR),
    ("no more texts", CLEAR),
    ("No more messages please", CLEAR),
    ("please don't text me again", CLEAR),
    ("Please don’t text me again", CLEAR),
    ("do not contact me", CLEAR),
    ("can u not text me", CLEAR),
    ("unsubscribe me", CLEAR),
    ("I want to unsubscribe", CLEAR),
    ("how do i opt out of these", CLEAR),
    ("leave me alone", CLEAR),
    ("wrong number, stop", CLEAR),
    ("Wrong number. Stop texting this number", CLEAR),
    ("I'm not interested, stop texting me", CLEAR),
    ("not interested so stop messaging me", CLEAR),
    ("quit bugging me", CLEAR),
    ("stop calling and texting me", CLEAR),
    ("u need to stop sending me these", CLEAR),
    ("i already said stop", CLEAR),
    ("I unsubscribed last week why r u still texting", CLEAR),
    ("Cancel", CLEAR),  # a carrier keyword on its own
    ("End.", CLEAR),
    ("delete my number", CLEAR),
    ("stop the texts", CLEAR),
    ("Im not interested stop texting me", CLEAR),
    ("I told u to stop", CLEAR),
    ("opt-out", CLEAR),
    # --- Spanish and Spanglish, clear --------------------------------------------------------------
    ("deja de escribirme", CLEAR),
    ("Deja de escribirme por favor", CLEAR),
    ("no me envíes más mensajes", CLEAR),
    ("no me envies mas mensajes", CLEAR),
    ("no quiero más mensajes", CLEAR),
    ("bórrame de tu lista", CLEAR),
    ("ya no me escriban", CLEAR),
    ("PARAR", CLEAR),
    ("Para.", CLEAR),
    ("para ya porfa", CLEAR),
    ("para de escribirme", CLEAR),
    ("basta de mensajes", CLEAR),
    ("Ya basta!!", CLEAR),
    ("ALTO", CLEAR),
    ("quiero darme de baja", CLEAR),
    ("sáquenme de la lista", CLEAR),
    ("déjenme en paz", CLEAR),
    ("paren de mandar mensajes", CLEAR),
    ("no me vuelvas a escribir", CLEAR),
    ("ya stop porfa", CLEAR),
    ("stop mandandome mensajes plz", CLEAR),
    ("no more mensajes", CLEAR),
    ("numero equivocado, deja de escribir", CLEAR),
    # --- Negated: never CLEAR. AMBIGUOUS when an opt-out word is there (an agent glances). --------
    ("don't stop texting me", AMBIGUOUS),
    ("no, don't remove me", AMBIGUOUS),
    ("I didn't say stop texting me lol", AMBIGUOUS),
    ("no deje de escribirme", AMBIGUOUS),
    ("no dejes de escribirme porfa", AMBIGUOUS),
    ("please keep texting me", None),
    # --- Narrowed, not withdrawn: a time window goes to an agent ----------------------------------
    ("stop texting me so late", AMBIGUOUS),
    ("dont text me before 9am", AMBIGUOUS),
    ("Stop texting me until Monday", AMBIGUOUS),
    ("dont text me the address, email it", AMBIGUOUS),  # about content, most likely; an agent checks
    # --- Ambiguous: an opt-out word that is probably something else -------------------------------
    ("Can we stop by the open house Saturday?", AMBIGUOUS),
    ("I want to cancel my showing and stop looking for now", AMBIGUOUS),
    ("Is the house near the bus stop?", AMBIGUOUS),
    ("We'll stop at the bank first", AMBIGUOUS),
    ("the stop sign by the house, is that a busy street?", AMBIGUOUS),
    ("Cancel please", AMBIGUOUS),  # the showing? the texts? an agent asks
    ("can you remove the old listing photos", AMBIGUOUS),
    ("is it the end unit?", AMBIGUOUS),
    ("STOP BY AT 5 OK?", AMBIGUOUS),
    ("Stop lol 😂 that kitchen is wild", AMBIGUOUS),
    ("wrong number", AMBIGUOUS),
    ("not interested anymore", AMBIGUOUS),
    ("quiero cancelar la cita del sábado", AMBIGUOUS),
    ("dejé de buscar casa por ahora", AMBIGUOUS),
    ("no me interesa", AMBIGUOUS),
    ("stop texting my wife", AMBIGUOUS),  # someone else's consent: an agent sorts it out
    ("stop calling me", AMBIGUOUS),  # calls only: the texts may still be wanted
    # --- Ordinary messages: neither ---------------------------------------------------------------
    ("Para cuándo está disponible la casa?", None),
    ("para cuando la puedo ver", None),
    ("Busco casa para mi familia, 3 recámaras", None),
    ("Is the price negotiable?", None),
    ("What's the asking price on Maple St?", None),
    ("I'm pre-approved for 450k", None),
    ("yes 3 bedrooms", None),
    ("Can I see it Saturday at 2?", None),
    ("how big is the backyard", None),
    ("Is there an HOA fee?", None),
    ("call me back when u can", None),
    ("ok thx, what's the address?", None),
    ("Does it have a garage?", None),
    ("¿Cuánto cuesta la casa? ¿Aceptan FHA?", None),
    ("El techo es muy alto? me gusta", None),
    ("está en planta baja?", None),
    ("baja el precio?", None),
    ("Hola, vi el anuncio, todavía está disponible?", None),
    ("my wife and I want to see it this weekend", None),
    ("yes please", None),
    ("👍", None),
    ("", None),
]


@pytest.mark.parametrize("body,expected", CASES, ids=[f"{i:03}:{body[:30]}" for i, (body, _) in enumerate(CASES)])
def test_it_classifies_real_world_messages(body, expected):
    assert revocation_classify(body) is expected


def test_it_has_a_wide_table():
    assert len(CASES) >= 70
    assert sum(expected is None for _, expected in CASES) >= 15


@pytest.mark.parametrize("body", ["No me envíes más mensajes", "no me envies mas mensajes", "NO ME ENVIES MAS MENSAJES"])
def test_it_ignores_accents_and_case(body):
    assert revocation_classify(body) is CLEAR


def test_it_treats_curly_and_straight_apostrophes_alike():
    assert revocation_classify("don’t text me") is revocation_classify("don't text me") is CLEAR

