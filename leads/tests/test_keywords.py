import pytest

from compliance.models import ConsentEvent
from compliance.services import consent_record
from conftest import CALLER, DOWNTOWN_BUYER_LINE, new_sid
from leads.models import Lead, Message
from leads.services import message_send

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("word", ["STOP", "stop", " Stop ", "STOPALL", "unsubscribe", "Cancel", "END", "quit", "REVOKE", "optout"])
def test_it_opts_out_on_every_twilio_stop_keyword_and_leaves_the_confirmation_to_twilio(brokerage, twilio, sms_outbox, django_capture_on_commit_callbacks, word):
    """Twilio answers its own keywords and then blocks the line (a text of ours would fail with 21610)."""
    with django_capture_on_commit_callbacks(execute=True):
        twilio.sms(word)
    event = ConsentEvent.objects.get(kind=ConsentEvent.Kind.OPT_OUT)
    assert event.phone == CALLER and event.sender == DOWNTOWN_BUYER_LINE and event.raw_text == word
    assert sms_outbox == [] and not Message.objects.filter(kind=Message.Kind.OPT_OUT_CONFIRMATION).exists()


def test_it_does_not_treat_stop_inside_a_sentence_as_a_keyword(brokerage, twilio, sms_outbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        twilio.sms("Can we stop by the open house Sunday?")
    assert not ConsentEvent.objects.filter(kind=ConsentEvent.Kind.OPT_OUT).exists()
    assert Lead.objects.get().status == Lead.Status.ENGAGED
    # "stop" in a longer sentence may still be a revocation: an agent is asked to confirm.
    inbound = Message.objects.get(direction=Message.Direction.INBOUND)
    assert inbound.revocation_check == Message.RevocationCheck.PENDING


def test_it_sends_nothing_when_stop_arrives_while_the_textback_is_queued(queued_textback, twilio, sms_outbox, django_capture_on_commit_callbacks):
    textback = queued_textback
    with django_capture_on_commit_callbacks(execute=True):
        twilio.sms("STOP")
    textback.refresh_from_db()
    assert textback.status == Message.Status.CANCELED and "Opted out" in textback.error_message
    # The worker's task for the text-back still runs later: the gate says no at send time too.
    message_send(message_id=textback.pk)
    assert [m["body"] for m in sms_outbox if "unsubscribed" not in m["body"]] == []


def test_the_gate_blocks_at_send_time_even_if_the_row_was_queued_before_the_opt_out(queued_textback, sms_outbox):
    textback = queued_textback
    consent_record(phone=CALLER, sender=DOWNTOWN_BUYER_LINE, kind="opt_out", source="agent")
    message_send(message_id=textback.pk)
    textback.refresh_from_db()
    assert textback.status == Message.Status.CANCELED and sms_outbox == []


def test_it_confirms_an_opt_out_only_once_under_replays_and_repeats(brokerage, twilio, sms_outbox, django_capture_on_commit_callbacks):
    sid = new_sid("SM")
    with django_capture_on_commit_callbacks(execute=True):
        twilio.sms("please stop texting me", message_sid=sid)
        twilio.sms("please stop texting me", message_sid=sid)  # Twilio's retry
    assert len(sms_outbox) == 1
    assert ConsentEvent.objects.filter(kind=ConsentEvent.Kind.OPT_OUT).count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        twilio.sms("I said stop texting me")  # a second "stop": on record, not answered again
    assert len(sms_outbox) == 1 and ConsentEvent.objects.filter(kind=ConsentEvent.Kind.OPT_OUT).count() == 2


def test_it_lets_twilio_confirm_when_advanced_opt_out_already_did(brokerage, twilio, sms_outbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        twilio.sms("arrêter", OptOutType="STOP")
    assert ConsentEvent.objects.filter(kind=ConsentEvent.Kind.OPT_OUT).exists()
    assert sms_outbox == []


def test_start_allows_texting_again(brokerage, twilio, sms_outbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        twilio.sms("STOP")
        twilio.missed_call()
    assert [m for m in sms_outbox if "missed your call" in m["body"]] == []
    assert Message.objects.get(kind=Message.Kind.TEXTBACK).status == Message.Status.CANCELED
    with django_capture_on_commit_callbacks(execute=True):
        twilio.sms("start")
    assert "resubscribed" in sms_outbox[-1]["body"]
    Message.objects.filter(kind=Message.Kind.TEXTBACK).update(created_at="2020-01-01T00:00:00Z")
    with django_capture_on_commit_callbacks(execute=True):
        twilio.missed_call()
    assert "missed your call" in sms_outbox[-1]["body"]


def test_help_gets_a_ctia_reply(brokerage, twilio, sms_outbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        twilio.sms("help")
    [reply] = sms_outbox
    for part in ("Harbor & Oak Realty", "(555) 555-0199", "Msg & data rates may apply", "STOP"):
        assert part in reply["body"]
    assert ConsentEvent.objects.filter(kind=ConsentEvent.Kind.HELP).exists()


def test_an_opt_out_on_one_line_does_not_block_another_line(brokerage, twilio, sms_outbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        twilio.sms("STOP")
        twilio.missed_call(line="+15555550110")
    assert any("missed your call" in m["body"] and m["from"] == "+15555550110" for m in sms_outbox)


@pytest.mark.parametrize("body", [
    "Please stop texting me", "don't text me again", "Remove me from your list", "no more texts please",
    "PARAR", "Deja de escribirme", "no me envíes más mensajes", "bórrame de la lista",
])
def test_it_honours_a_revocation_in_plain_words(brokerage, twilio, sms_outbox, django_capture_on_commit_callbacks, body):
    with django_capture_on_commit_callbacks(execute=True):
        twilio.sms(body)
    event = ConsentEvent.objects.get(kind=ConsentEvent.Kind.OPT_OUT)
    assert event.source == ConsentEvent.Source.TEXT and event.raw_text == body
    [confirmation] = sms_outbox
    assert "unsubscribed" in confirmation["body"]


@pytest.mark.parametrize("body", ["Yes", "yes!", "START"])
def test_yes_from_someone_who_never_opted_out_is_just_an_answer(brokerage, twilio, sms_outbox, django_capture_on_commit_callbacks, body):
    with django_capture_on_commit_callbacks(execute=True):
        twilio.sms(body)
    assert not ConsentEvent.objects.filter(kind=ConsentEvent.Kind.OPT_IN).exists()
    assert sms_outbox == [] and Lead.objects.get().status == Lead.Status.ENGAGED


def test_a_stop_to_a_retired_line_is_still_recorded(brokerage, twilio, django_capture_on_commit_callbacks):
    from routing.models import TrackingNumber

    TrackingNumber.objects.filter(number=DOWNTOWN_BUYER_LINE).update(active=False)
    with django_capture_on_commit_callbacks(execute=True):
        assert twilio.sms("STOP").status_code == 200
    assert ConsentEvent.objects.filter(kind=ConsentEvent.Kind.OPT_OUT, sender=DOWNTOWN_BUYER_LINE).exists()
