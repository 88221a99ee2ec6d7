"""Voice webhooks are stored, answered at once, and applied by a worker in the order they came."""

import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from conftest import new_sid
from leads.models import Call, Message, TwilioWebhook
from leads.services import twilio_webhook_process
from leads.tasks import outbox_sweep_task

pytestmark = pytest.mark.django_db


def test_it_answers_before_the_work_is_done_and_loses_nothing_if_the_task_is_lost(brokerage, twilio, sms_outbox, django_capture_on_commit_callbacks):
    # The request commits the webhook row; its task never runs (a worker crash, a lost enqueue).
    call_sid = twilio.missed_call()
    assert TwilioWebhook.objects.filter(call_sid=call_sid, processed_at__isnull=True).count() == 2
    assert not Call.objects.exists() and sms_outbox == []
    # The sweep finds the stranded rows and the caller still gets the text.
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=5)), django_capture_on_commit_callbacks(execute=True):
        outbox_sweep_task()
    assert Call.objects.get(call_sid=call_sid).missed
    assert len(sms_outbox) == 1
    assert not TwilioWebhook.objects.filter(processed_at__isnull=True).exists()


def test_it_applies_a_calls_webhooks_in_order_whichever_task_runs_first(brokerage, twilio, sms_outbox):
    call_sid = new_sid("CA")
    twilio.incoming_call(call_sid=call_sid)
    twilio.dial_status(call_sid=call_sid, status="completed")  # an agent answered
    twilio.call_status(call_sid=call_sid, status="completed")
    status_row = TwilioWebhook.objects.get(kind=TwilioWebhook.Kind.CALL_STATUS)
    # The status callback's task runs first; it must not take the answered call for a miss.
    assert twilio_webhook_process(webhook_id=status_row.pk) == 3
    call = Call.objects.get()
    assert call.answered and not call.missed
    assert Message.objects.count() == 0 and sms_outbox == []


def test_a_second_worker_finds_nothing_left_to_do(brokerage, twilio, sms_outbox):
    call_sid = twilio.missed_call()
    first, second = TwilioWebhook.objects.filter(call_sid=call_sid)
    assert twilio_webhook_process(webhook_id=second.pk) == 2
    assert twilio_webhook_process(webhook_id=first.pk) == 0
    assert Message.objects.filter(kind=Message.Kind.TEXTBACK).count() == 1


def test_a_failing_webhook_is_recorded_and_retried_without_holding_back_the_text(brokerage, twilio, sms_outbox, monkeypatch, django_capture_on_commit_callbacks):
    call_sid = twilio.missed_call()
    incoming, dial = TwilioWebhook.objects.filter(call_sid=call_sid)

    def broken_store(**kwargs):
        raise RuntimeError("database went away")

    from leads import services

    monkeypatch.setitem(services._WEBHOOK_HANDLERS, TwilioWebhook.Kind.CALL_INCOMING, broken_store)
    with django_capture_on_commit_callbacks(execute=True):
        assert twilio_webhook_process(webhook_id=incoming.pk) == 1
    incoming.refresh_from_db()
    dial.refresh_from_db()
    assert incoming.processed_at is None and incoming.attempts == 1 and "database went away" in incoming.last_error
    assert dial.processed_at is not None
    assert Call.objects.get().missed and len(sms_outbox) == 1  # the caller still got the text
    monkeypatch.undo()
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=5)), django_capture_on_commit_callbacks(execute=True):
        outbox_sweep_task()
    incoming.refresh_from_db()
    assert incoming.processed_at is not None and len(sms_outbox) == 1


def test_a_ringing_call_waits_for_its_outcome_but_a_miss_before_any_ring_does_not(brokerage, twilio, sms_outbox, django_capture_on_commit_callbacks):
    from routing.models import Office

    call_sid = new_sid("CA")
    with django_capture_on_commit_callbacks(execute=True):
        twilio.incoming_call(call_sid=call_sid)
    assert TwilioWebhook.objects.get(call_sid=call_sid).processed_at is None
    with django_capture_on_commit_callbacks(execute=True):
        twilio.dial_status(call_sid=call_sid)
    assert not TwilioWebhook.objects.filter(processed_at__isnull=True).exists()
    assert list(Call.objects.get().rang_agents.values_list("name", flat=True)) == ["Ann Lee", "Ben Ortiz", "Tess Morgan"]

    Office.objects.update(business_days=[])
    with django_capture_on_commit_callbacks(execute=True):
        twilio.incoming_call(call_sid=new_sid("CA"), caller="+15555550999")
    assert len(sms_outbox) == 2  # after hours: texted at once, no dial outcome will follow
