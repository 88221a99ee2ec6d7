import pytest

from conftest import CALLER, DOWNTOWN_BUYER_LINE, new_sid
from leads.models import Call, Lead, Message

pytestmark = pytest.mark.django_db


def test_it_texts_back_a_missed_call_once(brokerage, twilio, sms_outbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        call_sid = twilio.missed_call()
    lead = Lead.objects.get(phone=CALLER)
    call = Call.objects.get(call_sid=call_sid)
    assert call.missed and call.missed_reason == Call.MissedReason.NO_ANSWER and call.dial_status == "no-answer"
    assert lead.assigned_agent is not None and lead.assigned_agent.office.name == "Downtown"
    [text] = sms_outbox
    assert text["to"] == CALLER and text["from"] == DOWNTOWN_BUYER_LINE
    assert "Harbor & Oak Realty" in text["body"] and "12 Oak St" in text["body"] and "STOP" in text["body"]
    message = Message.objects.get(kind=Message.Kind.TEXTBACK)
    assert message.status == Message.Status.SENT and message.provider_sid == text["sid"] and message.segments == 1
    assert Lead.objects.get().status == Lead.Status.CONTACTED


@pytest.mark.parametrize("status", ["busy", "no-answer", "failed", "canceled"])
def test_it_treats_each_unanswered_dial_status_as_missed(brokerage, twilio, sms_outbox, django_capture_on_commit_callbacks, status):
    call_sid = new_sid("CA")
    with django_capture_on_commit_callbacks(execute=True):
        twilio.incoming_call(call_sid=call_sid)
        response = twilio.dial_status(call_sid=call_sid, status=status)
    assert response.status_code == 200 and b"<Record" in response.content
    assert Call.objects.get(call_sid=call_sid).missed
    assert len(sms_outbox) == 1


@pytest.mark.parametrize("status", ["completed", "answered"])
def test_it_does_not_text_an_answered_call(brokerage, twilio, sms_outbox, django_capture_on_commit_callbacks, status):
    call_sid = new_sid("CA")
    with django_capture_on_commit_callbacks(execute=True):
        twilio.incoming_call(call_sid=call_sid)
        response = twilio.dial_status(call_sid=call_sid, status=status)
        twilio.call_status(call_sid=call_sid, status="completed")
    assert b"<Hangup" in response.content
    call = Call.objects.get(call_sid=call_sid)
    assert not call.missed and call.answered
    assert sms_outbox == []


def test_it_rings_the_on_duty_agents_under_voicemail_pickup(brokerage, twilio):
    response = twilio.incoming_call(call_sid=new_sid("CA"))
    body = response.content.decode()
    assert response["Content-Type"].startswith("text/xml")
    assert '<Dial action="http://testserver/twilio/voice/dial-status/"' in body
    assert 'timeout="12"' in body
    for phone in ("+15555550101", "+15555550102", "+15555550104"):
        assert f"<Number>{phone}</Number>" in body
    assert "+15555550201" not in body  # another office's agent
