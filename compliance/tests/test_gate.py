import pytest

from compliance.gate import Purpose, Verdict, gate_check
from compliance.keywords import Keyword, keyword_classify, revocation_detect
from compliance.models import AppendOnlyError, ConsentEvent, NumberProfile
from compliance.services import consent_record

pytestmark = pytest.mark.django_db

PHONE, LINE, OTHER_LINE = "+15555551234", "+15555550100", "+15555550110"


def opt(kind: str, sender: str = LINE, ref: str = "") -> ConsentEvent:
    event, _ = consent_record(phone=PHONE, sender=sender, kind=kind, source="keyword", source_ref=ref)
    return event


def test_it_allows_a_number_with_no_history():
    assert gate_check(phone=PHONE, sender=LINE, purpose=Purpose.TEXTBACK).allowed


def test_the_latest_opt_out_or_opt_in_decides_for_that_sender_only():
    opt("opt_out", ref="SM1")
    blocked = gate_check(phone=PHONE, sender=LINE, purpose=Purpose.REPLY)
    assert blocked.verdict is Verdict.BLOCKED and "Opted out" in blocked.reason
    assert gate_check(phone=PHONE, sender=OTHER_LINE, purpose=Purpose.REPLY).allowed
    opt("help", ref="SM2")  # asking for help does not undo an opt-out
    assert not gate_check(phone=PHONE, sender=LINE, purpose=Purpose.REPLY).allowed
    opt("opt_in", ref="SM3")
    assert gate_check(phone=PHONE, sender=LINE, purpose=Purpose.REPLY).allowed


def test_an_opt_out_for_every_sender_blocks_every_line():
    opt("opt_out", sender="", ref="SM1")
    assert not gate_check(phone=PHONE, sender=OTHER_LINE, purpose=Purpose.TEXTBACK).allowed


def test_only_the_confirmation_of_the_latest_opt_out_gets_through():
    first = opt("opt_out", ref="SM1")
    assert gate_check(phone=PHONE, sender=LINE, purpose=Purpose.OPT_OUT_CONFIRMATION, consent_event_id=first.pk).allowed
    opt("opt_in", ref="SM2")
    second = opt("opt_out", ref="SM3")
    assert not gate_check(phone=PHONE, sender=LINE, purpose=Purpose.OPT_OUT_CONFIRMATION, consent_event_id=first.pk).allowed
    assert gate_check(phone=PHONE, sender=LINE, purpose=Purpose.OPT_OUT_CONFIRMATION, consent_event_id=second.pk).allowed


def test_it_blocks_landlines():
    NumberProfile.objects.create(phone=PHONE, line_type=NumberProfile.LineType.LANDLINE)
    decision = gate_check(phone=PHONE, sender=LINE, purpose=Purpose.TEXTBACK)
    assert decision.verdict is Verdict.BLOCKED and "Landline" in decision.reason


def test_consent_events_cannot_be_edited_or_deleted():
    event = opt("opt_out", ref="SM1")
    event.kind = "opt_in"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()


def test_a_replayed_source_records_once():
    opt("opt_out", ref="SM1")
    opt("opt_out", ref="SM1")
    assert ConsentEvent.objects.count() == 1


@pytest.mark.parametrize("body,keyword", [
    ("STOP", Keyword.OPT_OUT), ("  unsubscribe. ", Keyword.OPT_OUT), ("Start", Keyword.OPT_IN),
    ("info", Keyword.HELP), ("stop it", None), ("Stop by Sunday?", None), ("", None),
])
def test_keywords_are_whole_messages_in_any_case(body, keyword):
    assert keyword_classify(body) is keyword


def test_twilio_advanced_opt_out_verdict_wins():
    assert keyword_classify("arrêter", "STOP") is Keyword.OPT_OUT


@pytest.mark.parametrize("body", ["Can we stop by the open house?", "Is the stop sign on the corner?", "Para cuándo está disponible?", "yes please"])
def test_ordinary_messages_are_not_revocations(body):
    assert not revocation_detect(body)
