"""Twilio may deliver two copies of a webhook at the same moment; the database settles the race."""

import threading

import pytest
from django.db import connection
from django.test import Client

from conftest import CALLER, Twilio, new_sid
from leads.models import Call, Lead, Message

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="real row-level concurrency needs PostgreSQL"),
]


def _at_once(count: int, action) -> list:
    """Run `action` on `count` threads released together; each thread has its own connection."""
    barrier, results, errors = threading.Barrier(count), [], []

    def run():
        from django.db import connections

        try:
            barrier.wait()
            results.append(action())
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    return results


def test_concurrent_duplicate_missed_call_webhooks_make_one_lead_one_call_one_text(brokerage, settings, sms_outbox):
    twilio = Twilio(Client(), settings.TWILIO_AUTH_TOKEN, settings.PUBLIC_BASE_URL)
    call_sid = new_sid("CA")
    statuses = _at_once(8, lambda: twilio.incoming_call(call_sid=call_sid).status_code)
    statuses += _at_once(8, lambda: Twilio(Client(), settings.TWILIO_AUTH_TOKEN, settings.PUBLIC_BASE_URL).dial_status(call_sid=call_sid).status_code)
    assert set(statuses) == {200}
    assert Lead.objects.count() == 1 and Call.objects.count() == 1
    assert Message.objects.filter(kind=Message.Kind.TEXTBACK).count() == 1
    assert len(sms_outbox) == 1


def test_simultaneous_calls_from_one_number_get_one_text(brokerage, settings, sms_outbox):
    def missed_call():
        return Twilio(Client(), settings.TWILIO_AUTH_TOKEN, settings.PUBLIC_BASE_URL).missed_call()

    _at_once(6, missed_call)
    assert Lead.objects.count() == 1 and Call.objects.filter(missed=True).count() == 6
    assert len(sms_outbox) == 1 and sms_outbox[0]["to"] == CALLER


def test_concurrent_duplicate_inbound_texts_are_stored_once(brokerage, settings, sms_outbox):
    sid = new_sid("SM")
    statuses = _at_once(8, lambda: Twilio(Client(), settings.TWILIO_AUTH_TOKEN, settings.PUBLIC_BASE_URL).sms("please stop texting me", message_sid=sid).status_code)
    assert set(statuses) == {200}
    assert Message.objects.filter(direction=Message.Direction.INBOUND).count() == 1
    assert len(sms_outbox) == 1  # one opt-out confirmation


def test_simultaneous_missed_calls_take_turns(brokerage, settings, sms_outbox):
    def missed_call(i):
        return Twilio(Client(), settings.TWILIO_AUTH_TOKEN, settings.PUBLIC_BASE_URL).missed_call(caller=f"+1555555{3000 + i}")

    counter = iter(range(100))
    lock = threading.Lock()

    def next_call():
        with lock:
            i = next(counter)
        return missed_call(i)

    _at_once(9, next_call)
    per_agent = {}
    for lead in Lead.objects.select_related("assigned_agent"):
        per_agent[lead.assigned_agent.name] = per_agent.get(lead.assigned_agent.name, 0) + 1
    assert per_agent == {"Ann Lee": 3, "Ben Ortiz": 3, "Tess Morgan": 3}


def test_simultaneous_callers_and_texts_join_one_unbroken_consent_chain(brokerage, settings, sms_outbox):
    """Missed calls, keywords and ordinary texts from many numbers at once: every consent event
    finds its place in the ledger's single chain, none forks it."""
    from compliance.models import ConsentEvent
    from compliance.selectors import ledger_verify

    counter, lock = iter(range(100)), threading.Lock()

    def someone():
        with lock:
            i = next(counter)
        twilio = Twilio(Client(), settings.TWILIO_AUTH_TOKEN, settings.PUBLIC_BASE_URL)
        caller = f"+1555555{4000 + i}"
        if i % 3 == 0:
            return twilio.sms("STOP", caller=caller).status_code
        if i % 3 == 1:
            return twilio.sms("Is it still for sale?", caller=caller).status_code
        twilio.missed_call(caller=caller)
        return 200

    _at_once(12, someone)
    report = ledger_verify()
    assert report.first_break is None and report.events == ConsentEvent.objects.count() >= 12
    assert sorted(ConsentEvent.objects.values_list("seq", flat=True)) == list(range(1, report.events + 1))
