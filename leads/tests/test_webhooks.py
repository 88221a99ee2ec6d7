import datetime as dt

import pytest

from compliance.models import ConsentEvent
from conftest import CALLER, DOWNTOWN_BUYER_LINE, new_sid
from leads.models import Call, Lead, Message, MessageStatusEvent
from routing.models import Agent, Office

pytestmark = pytest.mark.django_db

WEBHOOKS = [
    "/twilio/voice/incoming/", "/twilio/voice/dial-status/", "/twilio/voice/status/",
    "/twilio/sms/incoming/", "/twilio/sms/status/",
]


def _row_counts():
    return (Lead.objects.count(), Call.objects.count(), Message.objects.count(), ConsentEvent.objects.count(), MessageStatusEvent.objects.count())


@pytest.mark.parametrize("path", WEBHOOKS)
def test_it_rejects_a_missing_or_wrong_signature_and_changes_nothing(brokerage, twilio, sms_outbox, path):
    params = {
        "CallSid": new_sid("CA"), "MessageSid": new_sid("SM"), "From": CALLER, "To": DOWNTOWN_BUYER_LINE,
        "DialCallStatus": "no-answer", "CallStatus": "completed", "MessageStatus": "delivered", "Body": "hi",
    }
    before = _row_counts()
    assert twilio.post(path, params, signature="").status_code == 403
    assert twilio.post(path, params, signature=twilio.signature(path, {**params, "Body": "tampered"})).status_code == 403
    # Signed for another URL (a proxy that rewrites the host must not be trusted blindly).
    other = twilio.validator.compute_signature("http://evil.example" + path, params)
    assert twilio.post(path, params, signature=other).status_code == 403
    assert _row_counts() == before and sms_outbox == []


@pytest.mark.parametrize("path", WEBHOOKS)
def test_it_refuses_get(brokerage, client, path):
    assert client.get(path).status_code == 405


def test_it_is_idempotent_under_replayed_webhooks(brokerage, twilio, sms_outbox, django_capture_on_commit_callbacks):
    call_sid, message_sid = new_sid("CA"), new_sid("SM")
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            twilio.incoming_call(call_sid=call_sid)
        for _ in range(3):
            assert twilio.dial_status(call_sid=call_sid).status_code == 200
        for _ in range(3):
            twilio.call_status(call_sid=call_sid)
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            twilio.sms("Is it still for sale?", message_sid=message_sid)
    assert Lead.objects.count() == 1 and Call.objects.count() == 1
    assert Message.objects.filter(kind=Message.Kind.TEXTBACK).count() == 1
    assert Message.objects.filter(direction=Message.Direction.INBOUND).count() == 1
    # The text-back, and the first qualification question answering the caller's one text.
    assert [m["body"][:14] for m in sms_outbox] == ["Harbor & Oak R", "Quick question"]
    textback = Message.objects.get(kind=Message.Kind.TEXTBACK)
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(2):
            assert twilio.sms_status(message_sid=textback.provider_sid, status="delivered").status_code == 204
    assert MessageStatusEvent.objects.filter(provider_sid=textback.provider_sid).count() == 1


def test_it_texts_after_hours_without_ringing(brokerage, twilio, sms_outbox, django_capture_on_commit_callbacks):
    Office.objects.update(business_days=[], opens_at=dt.time(8), closes_at=dt.time(20))
    call_sid = new_sid("CA")
    with django_capture_on_commit_callbacks(execute=True):
        response = twilio.incoming_call(call_sid=call_sid)
    body = response.content.decode()
    assert "<Dial" not in body and "<Record" in body and "<Say>" in body
    call = Call.objects.get(call_sid=call_sid)
    assert call.missed and call.missed_reason == Call.MissedReason.AFTER_HOURS
    assert len(sms_outbox) == 1
    # Twilio's final status for the same call changes nothing more.
    with django_capture_on_commit_callbacks(execute=True):
        twilio.call_status(call_sid=call_sid, status="completed")
    assert len(sms_outbox) == 1


def test_it_texts_when_nobody_is_on_duty(brokerage, twilio, sms_outbox, django_capture_on_commit_callbacks):
    Agent.objects.filter(office__name="Downtown").update(on_duty=False)
    call_sid = new_sid("CA")
    with django_capture_on_commit_callbacks(execute=True):
        response = twilio.incoming_call(call_sid=call_sid)
    assert "<Dial" not in response.content.decode()
    assert Call.objects.get(call_sid=call_sid).missed_reason == Call.MissedReason.NOBODY_ON_DUTY
    assert len(sms_outbox) == 1


def test_it_texts_a_repeat_caller_once_within_the_window(brokerage, twilio, sms_outbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        twilio.missed_call()
        twilio.missed_call()
        twilio.missed_call()
    assert Call.objects.filter(missed=True).count() == 3
    assert len(sms_outbox) == 1
    assert list(Call.objects.order_by("created_at", "id").values_list("textback_skipped", flat=True)) == [
        "", "Already texted back within 24 h.", "Already texted back within 24 h."
    ]


def test_it_texts_again_after_the_window(brokerage, twilio, sms_outbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        twilio.missed_call()
    Message.objects.update(created_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    with django_capture_on_commit_callbacks(execute=True):
        twilio.missed_call()
    assert len(sms_outbox) == 2


def test_it_does_not_text_back_into_an_open_conversation(brokerage, twilio, sms_outbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        twilio.sms("Hi, is 12 Oak St still available?")
        twilio.missed_call()
    assert Lead.objects.get().status == Lead.Status.ENGAGED
    assert sms_outbox == []
    assert Call.objects.get().textback_skipped == "The caller already has an open conversation."


def test_it_rings_a_repeat_callers_own_agent(brokerage, twilio, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        twilio.missed_call()
    agent = Lead.objects.get().assigned_agent
    body = twilio.incoming_call(call_sid=new_sid("CA")).content.decode()
    assert body.count("<Number>") == 1 and f"<Number>{agent.phone}</Number>" in body


def test_it_cancels_the_textback_when_the_caller_reaches_an_agent_first(queued_textback, twilio, sms_outbox, django_capture_on_commit_callbacks):
    # The missed call's text is queued but not yet sent (its task has not run) ...
    textback = queued_textback
    # ... when the caller rings again and an agent picks up.
    second = new_sid("CA")
    with django_capture_on_commit_callbacks(execute=True):
        twilio.incoming_call(call_sid=second)
        twilio.dial_status(call_sid=second, status="completed")
    from leads.services import message_send

    message_send(message_id=textback.pk)
    textback.refresh_from_db()
    assert textback.status == Message.Status.CANCELED and "reached an agent" in textback.error_message
    assert sms_outbox == []


def test_it_backstops_a_miss_that_dial_status_never_reported(brokerage, twilio, sms_outbox, django_capture_on_commit_callbacks):
    call_sid = new_sid("CA")
    with django_capture_on_commit_callbacks(execute=True):
        twilio.incoming_call(call_sid=call_sid)
        twilio.call_status(call_sid=call_sid, status="completed")
    call = Call.objects.get(call_sid=call_sid)
    assert call.missed and call.missed_reason == Call.MissedReason.NO_DIAL_OUTCOME
    assert len(sms_outbox) == 1


def test_it_backstops_a_call_it_never_saw_ring(brokerage, twilio, sms_outbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        twilio.call_status(call_sid=new_sid("CA"), status="no-answer")
    assert Call.objects.get().missed and len(sms_outbox) == 1


def test_it_ignores_progress_statuses(brokerage, twilio, sms_outbox, django_capture_on_commit_callbacks):
    call_sid = new_sid("CA")
    with django_capture_on_commit_callbacks(execute=True):
        twilio.incoming_call(call_sid=call_sid)
        twilio.call_status(call_sid=call_sid, status="in-progress")
    assert not Call.objects.get().missed and sms_outbox == []


def test_it_stores_the_voicemail(brokerage, twilio, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        call_sid = twilio.missed_call()
        twilio.call_status(
            call_sid=call_sid, status="completed",
            RecordingUrl="https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1", RecordingDuration="17",
        )
    call = Call.objects.get()
    assert call.recording_url.endswith("/RE1") and call.recording_duration == 17


def test_it_records_implied_consent_for_a_call(brokerage, twilio, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        call_sid = twilio.missed_call()
    event = ConsentEvent.objects.get(kind=ConsentEvent.Kind.IMPLIED_CALL)
    assert event.phone == CALLER and event.sender == DOWNTOWN_BUYER_LINE and event.source_ref == call_sid


def test_it_publishes_live_events_to_the_assigned_agent_and_the_thread(brokerage, twilio, live_events, django_capture_on_commit_callbacks):
    ann = Agent.objects.get(name="Ann Lee")
    Agent.objects.exclude(pk=ann.pk).update(on_duty=False)
    live_events.join(f"agent.{ann.pk}")
    with django_capture_on_commit_callbacks(execute=True):
        twilio.missed_call()
    lead = Lead.objects.get()
    types = [e["type"] for e in live_events.drain()]
    assert "lead.assigned" in types and "call.missed" in types
    assert {"message.created", "message.status"} <= set(types)
    live_events.join(f"lead.{lead.pk}")
    with django_capture_on_commit_callbacks(execute=True):
        twilio.sms("Thanks! Can I see it Saturday?")
    events = live_events.drain()
    assert {"type": "message.created", "lead_id": lead.pk} .items() <= events[0].items()


def test_it_does_not_publish_when_the_transaction_rolls_back(brokerage, twilio, live_events, django_capture_on_commit_callbacks):
    from django.db import transaction

    from leads.services import inbound_sms_record
    from routing.selectors import line_by_number

    live_events.join(*(f"office.{o.pk}" for o in Office.objects.all()), *(f"agent.{a.pk}" for a in Agent.objects.all()))
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            inbound_sms_record(line=line_by_number(number=DOWNTOWN_BUYER_LINE), message_sid=new_sid("SM"), from_number=CALLER, body="hello", media_urls=[])
            raise RuntimeError("rolled back")
    assert live_events.drain() == [] and Message.objects.count() == 0


MALFORMED = [
    ("/twilio/voice/incoming/", {"CallSid": "nope", "From": CALLER, "To": DOWNTOWN_BUYER_LINE}, 400),
    ("/twilio/voice/incoming/", {"From": CALLER, "To": DOWNTOWN_BUYER_LINE}, 400),
    ("/twilio/voice/incoming/", {"CallSid": new_sid("CA"), "From": CALLER, "To": "+15555559999"}, 404),
    ("/twilio/voice/incoming/", {"CallSid": new_sid("CA"), "From": CALLER, "To": "not a number"}, 400),
    ("/twilio/voice/dial-status/", {"CallSid": new_sid("CA"), "From": CALLER, "To": DOWNTOWN_BUYER_LINE, "DialCallStatus": "exploded"}, 400),
    ("/twilio/voice/dial-status/", {"CallSid": new_sid("CA"), "From": CALLER, "To": DOWNTOWN_BUYER_LINE}, 400),
    ("/twilio/voice/status/", {"CallSid": new_sid("CA"), "From": CALLER, "To": DOWNTOWN_BUYER_LINE, "CallStatus": "completed", "CallDuration": "-4"}, 400),
    ("/twilio/sms/incoming/", {"MessageSid": new_sid("SM"), "From": "hello", "To": DOWNTOWN_BUYER_LINE, "Body": "hi"}, 400),
    ("/twilio/sms/incoming/", {"MessageSid": new_sid("SM"), "From": CALLER, "To": "+15555559999", "Body": "hi"}, 404),
    ("/twilio/sms/incoming/", {"MessageSid": new_sid("SM"), "From": CALLER, "To": DOWNTOWN_BUYER_LINE, "Body": "x" * 10_000}, 400),
    ("/twilio/sms/incoming/", {"From": CALLER, "To": DOWNTOWN_BUYER_LINE, "Body": "hi"}, 400),
    ("/twilio/sms/status/", {"MessageSid": "SMshort", "MessageStatus": "delivered"}, 400),
    ("/twilio/sms/status/", {"MessageSid": new_sid("SM"), "MessageStatus": "delivered", "ErrorCode": "abc"}, 400),
]


@pytest.mark.parametrize("path,params,status", MALFORMED)
def test_it_answers_malformed_input_with_a_clear_4xx_and_no_change(brokerage, twilio, sms_outbox, path, params, status, django_capture_on_commit_callbacks):
    before = _row_counts()
    with django_capture_on_commit_callbacks(execute=True):
        response = twilio.post(path, params)
    assert response.status_code == status
    assert response["Content-Type"].startswith("text/plain") and response.content
    assert _row_counts() == before and sms_outbox == []


def test_it_rejects_an_oversized_body(brokerage, twilio, client):
    params = {"MessageSid": new_sid("SM"), "From": CALLER, "To": DOWNTOWN_BUYER_LINE, "Body": "hi", "Junk": "x" * 70_000}
    response = twilio.post("/twilio/sms/incoming/", params)
    assert response.status_code in (400, 413) and Message.objects.count() == 0


def test_it_survives_a_body_that_is_not_utf8(brokerage, client, twilio):
    body = b"MessageSid=" + new_sid("SM").encode() + b"&From=%2B15555551234&To=%2B15555550100&Body=caf\xe9%ff"
    response = client.post("/twilio/sms/incoming/", body, content_type="application/x-www-form-urlencoded", HTTP_X_TWILIO_SIGNATURE="x")
    assert response.status_code == 403 and Message.objects.count() == 0


def test_it_accepts_unknown_extra_parameters(brokerage, twilio, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = twilio.sms("hello", SmsSid=new_sid("SM"), FromCity="BOSTON", ApiVersion="2010-04-01", SomethingNew="1")
    assert response.status_code == 200 and Message.objects.count() == 1


def test_it_ignores_a_withheld_caller_id(brokerage, twilio, sms_outbox, django_capture_on_commit_callbacks):
    call_sid = new_sid("CA")
    with django_capture_on_commit_callbacks(execute=True):
        ring = twilio.incoming_call(call_sid=call_sid, caller="anonymous")
        miss = twilio.dial_status(call_sid=call_sid, caller="anonymous")
    assert "<Dial" in ring.content.decode() and "<Record" in miss.content.decode()
    assert Lead.objects.count() == 0 and sms_outbox == []
