"""The phone simulator: staff only, demo mode only, and Twilio's own path through real HTTP.

The live-server tests let the simulator post its signed webhooks to a real server, the way it
does under `make run`; nothing of ours is faked.
"""

import re
import time

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from conftest import CALLER, DOWNTOWN_BUYER_LINE
from leads.models import Call, Lead, Message, TwilioWebhook
from routing.models import TrackingNumber

pytestmark = pytest.mark.django_db

SIMULATOR = "/simulator/"


@pytest.fixture
def broker(brokerage):
    return get_user_model().objects.get(email="bree@example.com")


@pytest.fixture
def staff_client(client, broker):
    client.force_login(broker)
    return client


@pytest.fixture
def live(settings, live_server):
    """Webhooks are signed for, and posted to, the live server."""
    settings.PUBLIC_BASE_URL = live_server.url
    return live_server


PHONE = {"line": DOWNTOWN_BUYER_LINE, "caller": CALLER}


def call_fields(call_sid: str) -> dict:
    return {"sid": call_sid, "line": DOWNTOWN_BUYER_LINE, "caller": CALLER, "started": str(time.time() - 3)}


def test_it_sends_anonymous_visitors_to_the_login(client, brokerage):
    response = client.get(SIMULATOR)
    assert response.status_code == 302 and response.url.startswith("/admin/login/?next=/simulator/")
    assert client.post(SIMULATOR + "call/", PHONE).status_code == 302


def test_it_keeps_agents_who_are_not_staff_out(client, brokerage):
    client.force_login(get_user_model().objects.get(email="ann@example.com"))
    response = client.get(SIMULATOR)
    assert response.status_code == 302 and response.url.startswith("/admin/login/")
    assert client.post(SIMULATOR + "call/", PHONE).status_code == 302
    assert not Call.objects.exists() and not TwilioWebhook.objects.exists()


def test_it_does_not_exist_outside_demo_mode(staff_client, client, settings):
    settings.DEMO_MODE = False
    assert staff_client.get(SIMULATOR).status_code == 404
    assert staff_client.post(SIMULATOR + "call/", PHONE).status_code == 404
    client.logout()
    assert client.get(SIMULATOR).status_code == 404


def test_it_shows_the_phone_and_an_empty_thread_to_staff(staff_client):
    response = staff_client.get(SIMULATOR)
    html = response.content.decode()
    assert response.status_code == 200
    assert DOWNTOWN_BUYER_LINE in html and CALLER in html
    assert "No texts yet — dial the line and let it ring out." in html


def test_it_needs_the_csrf_token_on_posts(broker):
    client = Client(enforce_csrf_checks=True)
    client.force_login(broker)
    assert client.post(SIMULATOR + "call/", PHONE).status_code == 403
    assert not Call.objects.exists() and not TwilioWebhook.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_it_dials_and_rings_out_through_the_signed_webhooks(staff_client, live, sms_outbox):
    response = staff_client.post(SIMULATOR + "call/", PHONE)
    assert "Ringing Ann Lee, Ben Ortiz, Tess Morgan for 12 s" in response.content.decode()
    assert response.headers["HX-Trigger"] == '{"thread-refresh": {}}'
    # While it rings the call is only a stored webhook; its outcome decides what it becomes.
    call_sid = TwilioWebhook.objects.get(kind=TwilioWebhook.Kind.CALL_INCOMING).call_sid

    response = staff_client.post(SIMULATOR + "call/ring-out/", call_fields(call_sid))
    html = response.content.decode()
    assert "Nobody answered" in html and "Voicemail greeting" in html
    assert 'hx-swap-oob="afterbegin:#log"' in html and "/twilio/voice/dial-status/" in html

    call = Call.objects.get(call_sid=call_sid)
    assert call.missed and call.dial_status == "no-answer" and call.call_status == "completed"
    lead = Lead.objects.get(phone=CALLER)
    textback = Message.objects.get(lead=lead, kind=Message.Kind.TEXTBACK)
    assert textback.status == Message.Status.SENT
    [sent] = sms_outbox
    assert sent["to"] == CALLER and sent["sid"] == textback.provider_sid

    # The phone shows the text, and as the carrier reports it delivered through the status webhook.
    response = staff_client.post(SIMULATOR + "thread/", {**PHONE, "seen": ""})
    html = response.content.decode()
    assert "Missed-call text-back" in html and "12 Oak St" in html and "/twilio/sms/status/" in html
    textback.refresh_from_db()
    assert textback.status == Message.Status.DELIVERED


@pytest.mark.django_db(transaction=True)
def test_it_texts_as_the_caller_and_gets_compliance_answers(staff_client, live, sms_outbox):
    response = staff_client.post(SIMULATOR + "text/", {**PHONE, "body": "Is it still available?"})
    assert response.status_code == 200 and "is-ok" in response.content.decode()
    staff_client.post(SIMULATOR + "text/", {**PHONE, "body": "Please stop texting me"})

    inbound = Message.objects.filter(direction=Message.Direction.INBOUND).values_list("body", flat=True)
    assert list(inbound) == ["Is it still available?", "Please stop texting me"]
    confirmation = Message.objects.get(kind=Message.Kind.OPT_OUT_CONFIRMATION)
    assert confirmation.status == Message.Status.SENT and "unsubscribed" in sms_outbox[-1]["body"]

    response = staff_client.post(SIMULATOR + "thread/", {**PHONE, "seen": ""})
    html = response.content.decode()
    assert "Is it still available?" in html and "Opt-out confirmation" in html


def test_it_answers_204_while_the_thread_is_unchanged(staff_client):
    """So htmx leaves the thread alone and a reader's scroll position stays put."""
    first = staff_client.post(SIMULATOR + "thread/", {**PHONE, "seen": ""})
    [seen] = re.findall(r'name="seen" value="([^"]*)"', first.content.decode())
    assert staff_client.post(SIMULATOR + "thread/", {**PHONE, "seen": seen}).status_code == 204
    assert staff_client.post(SIMULATOR + "thread/", {**PHONE, "caller": "+15555551999", "seen": seen}).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_it_shows_a_webhook_that_refuses(staff_client, live, sms_outbox):
    staff_client.post(SIMULATOR + "call/", PHONE)
    call_sid = TwilioWebhook.objects.get().call_sid
    TrackingNumber.objects.filter(number=DOWNTOWN_BUYER_LINE).update(active=False)

    html = staff_client.post(SIMULATOR + "call/answer/", call_fields(call_sid)).content.decode()
    assert "HTTP 404" in html and "is not an active tracking line" in html and "is-error" in html


def test_it_says_so_when_the_public_url_does_not_answer(staff_client, settings):
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:9"
    html = staff_client.post(SIMULATOR + "call/", PHONE).content.decode()
    assert "The call failed" in html and "No answer from http://127.0.0.1:9/twilio/voice/incoming/" in html
