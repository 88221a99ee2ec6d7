"""The whole loop over real HTTP: signed webhooks into the live server, the real Twilio SDK out to a
loopback fake of Twilio's REST API, and the fake's signed status callbacks back in.

Under pytest the task queue runs inline when the transaction commits, so the dial-status
response returns after the send; the fake holds its status callbacks until the test releases
them, so each test decides when delivery is reported.
"""

import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from compliance.models import ConsentEvent
from conftest import CALLER, DOWNTOWN_BUYER_LINE, HttpClient, Twilio
from leads.models import Message
from leads.tasks import outbox_sweep_task
from tests.fake_twilio import FakeTwilio

pytestmark = pytest.mark.django_db(transaction=True)

ACCOUNT_SID = "AC" + "5f" * 16


@pytest.fixture(scope="module")
def fake_twilio():
    from django.conf import settings

    with FakeTwilio(auth_token=settings.TWILIO_AUTH_TOKEN, callbacks="manual", callback_threads=1) as fake:
        yield fake


@pytest.fixture
def real_twilio(live_server, settings, fake_twilio, brokerage):
    """The production SMS backend and SDK, pointed at the fake; webhooks signed for the live server."""
    fake_twilio.reset()
    settings.SMS_BACKEND = "leads.sms.twilio.TwilioBackend"
    settings.TWILIO_ACCOUNT_SID = ACCOUNT_SID
    settings.TWILIO_API_BASE_URL = fake_twilio.url
    settings.PUBLIC_BASE_URL = live_server.url
    client = HttpClient(live_server.url)
    yield Twilio(client, settings.TWILIO_AUTH_TOKEN, live_server.url)
    # A kept-alive connection would hold a live-server thread until the session ends, when the
    # shared test database connection may no longer be used from it.
    client.session.close()


def test_it_texts_a_missed_caller_through_twilio_and_records_delivery(real_twilio, fake_twilio, live_server):
    real_twilio.missed_call()

    sent = fake_twilio.wait_message(CALLER, timeout=5)
    assert sent is not None, "the text-back never reached Twilio"
    assert sent["account_sid"] == ACCOUNT_SID and sent["to"] == CALLER and sent["from"] == DOWNTOWN_BUYER_LINE
    assert "Harbor & Oak Realty" in sent["body"] and "12 Oak St" in sent["body"] and "STOP" in sent["body"]
    assert sent["status_callback"] == live_server.url + "/twilio/sms/status/"
    message = Message.objects.get(kind=Message.Kind.TEXTBACK)
    assert message.status == Message.Status.SENT and message.provider_sid == sent["sid"] and message.attempts == 1

    assert fake_twilio.release_callbacks() == 1
    assert fake_twilio.wait_callbacks(2, timeout=5)
    assert [(c["status"], c["http_status"]) for c in fake_twilio.callbacks] == [("sent", 204), ("delivered", 204)]
    message.refresh_from_db()
    assert message.status == Message.Status.DELIVERED and message.delivered_at is not None
    assert sorted(message.status_events.values_list("status", flat=True)) == ["delivered", "sent"]
    assert len(fake_twilio.messages) == 1


def test_it_fails_the_text_and_records_a_carrier_opt_out_on_21610(real_twilio, fake_twilio):
    fake_twilio.fail_next(status=400, code=21610)

    real_twilio.missed_call()

    [attempt] = fake_twilio.rejected
    assert attempt["to"] == CALLER and attempt["http_status"] == 400
    message = Message.objects.get(kind=Message.Kind.TEXTBACK)
    assert message.status == Message.Status.FAILED and message.error_code == "21610"
    assert message.next_attempt_at is None and message.provider_sid is None
    opt_out = ConsentEvent.objects.get(phone=CALLER, kind=ConsentEvent.Kind.OPT_OUT)
    assert opt_out.source == ConsentEvent.Source.CARRIER and opt_out.sender == DOWNTOWN_BUYER_LINE
    assert fake_twilio.messages == []


def test_it_keeps_the_text_for_a_later_retry_when_twilio_answers_503(real_twilio, fake_twilio):
    fake_twilio.fail_next(status=503)

    real_twilio.missed_call()

    [attempt] = fake_twilio.rejected
    assert attempt["http_status"] == 503
    message = Message.objects.get(kind=Message.Kind.TEXTBACK)
    assert message.status == Message.Status.QUEUED and message.attempts == 1
    assert message.next_attempt_at > timezone.now()
    assert not ConsentEvent.objects.filter(phone=CALLER, kind=ConsentEvent.Kind.OPT_OUT).exists()
    assert fake_twilio.messages == []

    with time_machine.travel(message.next_attempt_at + dt.timedelta(seconds=1)):
        assert outbox_sweep_task() == 1

    assert fake_twilio.wait_message(CALLER, timeout=5) is not None
    message.refresh_from_db()
    assert message.status == Message.Status.SENT and message.attempts == 2


def test_a_landline_caller_is_looked_up_through_twilio_and_gets_a_call_back_task_not_a_text(real_twilio, fake_twilio):
    from leads.models import Lead

    fake_twilio.set_line_type(CALLER, "landline")
    real_twilio.missed_call()
    lead = Lead.objects.get(phone=CALLER)
    assert lead.call_back_since is not None and "landline" in lead.call_back_reason
    assert fake_twilio.messages == []
    assert Message.objects.get(kind=Message.Kind.TEXTBACK).status == Message.Status.CANCELED
