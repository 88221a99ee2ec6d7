"""Every lead we handle reaches the brokerage's CRM: what is sent, how it is signed, and that a CRM
that refuses, throttles or disappears for an hour loses nothing and gets nothing twice."""

import base64
import datetime as dt
import email.utils
import hmac
import time

import pytest
import time_machine
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conftest import CALLER, DOWNTOWN_BUYER_LINE, LAKESIDE_LINE, new_sid
from crm.models import CrmDelivery, CrmEndpoint
from crm.payloads import webhook_signature
from crm.services import crm_deliveries_sweep
from crm.tests.conftest import Answer, milestone_send
from leads.models import Lead, Message, Qualification
from leads.signals import Milestone, lead_milestone
from routing.models import Agent

pytestmark = pytest.mark.django_db

SELLER_LINE = "+15555550110"
START = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)


@pytest.fixture
def missed_call(twilio, sms_outbox, django_capture_on_commit_callbacks):
    """A missed call through the real webhooks, its on-commit work (text-back, CRM) run as a worker would."""

    def call(*, caller: str = CALLER, line: str = DOWNTOWN_BUYER_LINE) -> Lead:
        with django_capture_on_commit_callbacks(execute=True):
            twilio.missed_call(caller=caller, line=line)
        return Lead.objects.get(phone=caller)

    return call


@pytest.fixture
def run_on_commit(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


def conversation(lead: Lead) -> None:
    """The caller answers the text-back, their agent replies, and the agent's own phone is alerted."""
    ann = Agent.objects.get(user__email="ann@example.com")
    common = {"lead": lead, "line": lead.line}
    Message.objects.create(
        **common, direction="in", kind="inbound", sender="lead", status="received", body="We're selling our place on Elm St",
    )
    Message.objects.create(
        **common, direction="out", kind="reply", sender="agent", agent=ann, status="sent", body="Great! Can I see it Thursday?",
    )
    Message.objects.create(
        **common, direction="out", kind="agent_alert", sender="system", status="sent", to_number=ann.phone,
        body="New lead: +15555551234",
    )


def qualified(lead: Lead, **facts) -> Lead:
    """What the qualification script leaves behind: the lead's facts and the script's record."""
    Lead.objects.filter(pk=lead.pk).update(**facts)
    Qualification.objects.create(
        lead=lead, state="done", questions=["intent", "timeline", "budget"], answers={"intent": "sell", "timeline": 3},
        replies={"intent": "We're selling our place on Elm St"}, unclear=["budget"], started_at=timezone.now(),
        finished_at=timezone.now(),
    )
    return Lead.objects.get(pk=lead.pk)


# --- what Follow Up Boss receives -----------------------------------------------------------------


def test_it_posts_a_missed_call_to_follow_up_boss(follow_up_boss, fake_crm, missed_call):
    lead = missed_call()
    [request] = fake_crm.received
    assert (request.method, request.path) == ("POST", "/v1/events")
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"fub-api-key:").decode()
    assert request.headers["X-System"] == "Textback" and request.headers["X-System-Key"] == "fub-system-key"
    assert request.headers["Content-Type"] == "application/json"
    event = request.json
    assert event["source"] == "Zillow" and event["system"] == "Textback"
    assert event["type"] == "Property Inquiry"  # a buyer calling a listing's line
    assert event["person"] == {"phones": [{"value": CALLER, "type": "mobile"}], "tags": ["Textback"]}
    assert event["property"] == {"street": "12 Oak St"}
    assert event["description"] == "Missed call to +15555550100 (Zillow); Textback texted the caller back."
    assert event["message"].startswith("Textback: Harbor & Oak Realty") and "12 Oak St" in event["message"]
    assert event["occurredAt"].endswith("Z")
    delivery = CrmDelivery.objects.get()
    assert (delivery.lead, delivery.milestone, delivery.status, delivery.attempts) == (lead, "missed_call", "delivered", 1)
    assert delivery.payload == event  # the log holds exactly what was sent
    [attempt] = delivery.attempt_log.all()
    assert attempt.status_code == 200 and attempt.response_excerpt == '{"id": 1}' and attempt.error == ""


def test_it_sends_a_qualified_seller_with_the_conversation(follow_up_boss, fake_crm, missed_call, run_on_commit):
    lead = missed_call(line=SELLER_LINE)
    conversation(lead)
    lead = qualified(
        lead, name="Casey Q. Caller", email="casey@example.com", rating="hot", timeline_months=3, financing="cash",
        price=450000, address="48 Elm St", city="Springfield", zip_code="62704",
    )
    with run_on_commit():
        milestone_send(lead, Milestone.QUALIFIED)
    event = fake_crm.received[-1].json
    assert event["type"] == "Seller Inquiry" and event["source"] == "Yard sign"
    assert event["person"] == {
        "firstName": "Casey", "lastName": "Q. Caller", "phones": [{"value": CALLER, "type": "mobile"}],
        "emails": [{"value": "casey@example.com"}], "tags": ["Textback", "hot"],
    }
    assert event["property"] == {"street": "48 Elm St", "city": "Springfield", "code": "62704", "price": 450000}
    assert event["description"] == "Answered Textback's qualification questions by text."
    lines = event["message"].split("\n")
    assert lines[:9] == [
        "Rating: Hot", "Intent: selling", "Timeline: within 3 months", "Price: $450,000", "Financing: Cash",
        "Area: Springfield 62704", "Address: 48 Elm St", "Unclear: budget", "",
    ]
    assert lines[9].startswith("Textback: Harbor & Oak Realty")
    assert lines[10:] == ["Caller: We're selling our place on Elm St", "Ann Lee: Great! Can I see it Thursday?"]
    assert "New lead" not in event["message"]  # the alert to Ann's own phone is not the conversation


@pytest.mark.parametrize(
    "line, intent, expected",
    [
        (DOWNTOWN_BUYER_LINE, "buy", "Property Inquiry"),
        (DOWNTOWN_BUYER_LINE, "sell", "Seller Inquiry"),  # called about a listing, but selling
        (SELLER_LINE, "buy", "Seller Inquiry"),
        (LAKESIDE_LINE, "buy", "Seller Inquiry"),  # what is my home worth
    ],
)
def test_it_maps_leads_to_follow_up_boss_inquiry_types(follow_up_boss, fake_crm, missed_call, run_on_commit, line, intent, expected):
    lead = missed_call(line=line)
    Qualification.objects.create(lead=lead, questions=["intent"], answers={"intent": intent}, started_at=timezone.now())
    with run_on_commit():
        milestone_send(lead, Milestone.QUALIFIED)
    assert [r.json["type"] for r in fake_crm.received] == [
        "Seller Inquiry" if line != DOWNTOWN_BUYER_LINE else "Property Inquiry", expected,
    ]


def test_it_calls_a_lead_without_a_listing_a_general_inquiry(follow_up_boss, fake_crm, missed_call):
    from routing.models import TrackingNumber

    TrackingNumber.objects.filter(number=DOWNTOWN_BUYER_LINE).update(listing="")
    missed_call()
    [request] = fake_crm.received
    assert request.json["type"] == "General Inquiry" and "property" not in request.json


def test_it_describes_an_appointment_in_the_office_time(follow_up_boss, fake_crm, missed_call, run_on_commit):
    lead = missed_call()
    Lead.objects.filter(pk=lead.pk).update(outcome="appointment", appointment_at=dt.datetime(2026, 3, 5, 19, 30, tzinfo=dt.UTC))
    with run_on_commit():
        milestone_send(Lead.objects.get(pk=lead.pk), Milestone.APPOINTMENT)
    assert fake_crm.received[-1].json["description"] == "Appointment booked for Thu Mar 05, 2026 14:30 (America/New_York)."


# --- what a webhook receives --------------------------------------------------------------------


def test_it_signs_webhooks_so_a_receiver_can_verify_them(webhook, fake_crm, missed_call):
    lead = missed_call()
    [request] = fake_crm.received
    delivery = CrmDelivery.objects.get()
    assert request.path == "/hooks/textback"
    assert request.headers["X-Textback-Event"] == "missed_call"
    assert request.headers["X-Textback-Delivery"] == str(delivery.pk)
    timestamp = request.headers["X-Textback-Timestamp"]
    assert abs(int(timestamp) - time.time()) < 60
    # What a receiver does: recompute over the raw body with its copy of the secret.
    signature = request.headers["X-Textback-Signature"]
    assert hmac.compare_digest(signature, webhook_signature("whsec-test-secret", timestamp, request.body))
    assert not hmac.compare_digest(signature, webhook_signature("not-the-secret", timestamp, request.body))
    assert not hmac.compare_digest(signature, webhook_signature("whsec-test-secret", int(timestamp) + 1, request.body))
    body = request.json
    assert (body["id"], body["event"]) == (delivery.pk, "missed_call")
    assert body["lead"]["phone"] == CALLER and body["lead"]["id"] == lead.pk
    assert body["lead"]["agent"] == {"name": lead.assigned_agent.name, "email": lead.assigned_agent.user.email,
                                     "phone": lead.assigned_agent.phone}
    assert body["lead"]["office"] == {"name": "Downtown", "timezone": "America/New_York"}
    assert body["lead"]["line"]["listing"] == "12 Oak St" and body["qualification"] is None
    [text] = body["messages"]
    assert (text["direction"], text["sender"]) == ("out", "system") and text["body"].startswith("Harbor & Oak Realty")


def test_it_sends_only_the_milestones_an_endpoint_chose(webhook, fake_crm, missed_call, run_on_commit):
    CrmEndpoint.objects.filter(pk=webhook.pk).update(milestones=["appointment"])
    lead = missed_call()
    assert fake_crm.received == [] and not CrmDelivery.objects.exists()
    with run_on_commit():
        milestone_send(lead, Milestone.APPOINTMENT)
    assert [r.headers["X-Textback-Event"] for r in fake_crm.received] == ["appointment"]


def test_it_writes_to_every_endpoint_of_the_brokerage_and_no_other(follow_up_boss, webhook, fake_crm, missed_call):
    from routing.models import Brokerage, Office

    other = Brokerage.objects.create(name="Elsewhere Realty")
    CrmEndpoint.objects.create(brokerage=other, name="Theirs", kind="webhook", url=f"{fake_crm.url}/theirs", secret="x")
    Office.objects.filter(name="Lakeside").update(brokerage=other)
    missed_call()
    assert sorted(r.path for r in fake_crm.received) == ["/hooks/textback", "/v1/events"]


# --- refusals, throttling and outages ---------------------------------------------------------------


@pytest.mark.parametrize("retry_after", ["120", "date"])
def test_it_waits_as_long_as_retry_after_asks(webhook, fake_crm, missed_call, retry_after):
    with time_machine.travel(START, tick=False) as clock:
        value = email.utils.format_datetime(START + dt.timedelta(seconds=120), usegmt=True) if retry_after == "date" else "120"
        fake_crm.answer(Answer(429, {"Retry-After": value}, '{"error": "slow down"}'))
        missed_call()
        delivery = CrmDelivery.objects.get()
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 429)
        assert delivery.next_attempt_at == START + dt.timedelta(seconds=120)  # not the 30 s backoff
        clock.shift(dt.timedelta(seconds=119))
        assert crm_deliveries_sweep() == 0 and len(fake_crm.received) == 1
        clock.shift(dt.timedelta(seconds=1))
        assert crm_deliveries_sweep() == 1
    delivery.refresh_from_db()
    assert delivery.status == "delivered" and delivery.attempts == 2
    assert [r.at - START for r in fake_crm.received] == [dt.timedelta(0), dt.timedelta(seconds=120)]
    assert [(a.status_code, a.retry_after_seconds) for a in delivery.attempt_log.all()] == [(429, 120), (200, None)]
    assert fake_crm.received[0].body == fake_crm.received[1].body  # the same event, not a rebuilt one


def test_it_loses_nothing_while_the_crm_is_down_for_an_hour(webhook, fake_crm, missed_call):
    back_at = START + dt.timedelta(hours=1)
    fake_crm.respond = lambda request: Answer() if request.at >= back_at else Answer(503, body="maintenance")
    callers = ["+15555551001", "+15555551002", "+15555551003"]
    with time_machine.travel(START, tick=False) as clock:
        for minute in range(0, 2 * 60):
            if minute in (0, 5, 20):
                missed_call(caller=callers[[0, 5, 20].index(minute)])
            crm_deliveries_sweep()
            clock.shift(dt.timedelta(minutes=1))
    deliveries = list(CrmDelivery.objects.order_by("id"))
    assert [d.status for d in deliveries] == ["delivered"] * 3
    arrived = [int(r.headers["X-Textback-Delivery"]) for r in fake_crm.received if r.at >= back_at]
    assert arrived == [d.pk for d in deliveries]  # each exactly once, in the order they were made
    # While it was down, the CRM was probed by the oldest delivery alone, ever more slowly.
    down = [r for r in fake_crm.received if r.at < back_at]
    assert {r.headers["X-Textback-Delivery"] for r in down} == {str(deliveries[0].pk)}
    assert len(down) <= 10
    assert all(r.at < back_at + dt.timedelta(minutes=16) for r in fake_crm.received)


def test_it_gives_up_on_a_refusal_at_once_and_keeps_the_answer(follow_up_boss, fake_crm, missed_call):
    fake_crm.answer(Answer(401, body='{"errorMessage": "Invalid API key"}'))
    missed_call()
    delivery = CrmDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 1, 401)
    assert delivery.next_attempt_at is None and "Invalid API key" in delivery.last_error
    assert delivery.attempt_log.get().response_excerpt == '{"errorMessage": "Invalid API key"}'
    with time_machine.travel(timezone.now() + dt.timedelta(hours=1)):
        assert crm_deliveries_sweep() == 0
    assert len(fake_crm.received) == 1


def test_it_gives_up_after_48_hours_of_failures(webhook, fake_crm, missed_call):
    fake_crm.respond = lambda request: Answer(500, body="boom")
    with time_machine.travel(START, tick=False) as clock:
        missed_call()
        clock.shift(dt.timedelta(hours=47, minutes=59))
        crm_deliveries_sweep()
        assert CrmDelivery.objects.get().status == "pending"
        clock.shift(dt.timedelta(minutes=15))
        crm_deliveries_sweep()
    delivery = CrmDelivery.objects.get()
    assert delivery.status == "failed" and delivery.last_error.startswith("Gave up after 3 attempts over 48 hours.")


def test_it_retries_when_nobody_answers(webhook, fake_crm, missed_call):
    CrmEndpoint.objects.filter(pk=webhook.pk).update(url="http://127.0.0.1:9/nobody-listens")
    with time_machine.travel(START, tick=False):
        missed_call()
    delivery = CrmDelivery.objects.get()
    assert delivery.status == "pending" and delivery.last_status_code is None
    [attempt] = delivery.attempt_log.all()
    assert attempt.status_code is None and attempt.error.startswith("ConnectionError")
    assert delivery.next_attempt_at == START + dt.timedelta(seconds=30)


def test_it_never_posts_a_claimed_delivery_twice(webhook, fake_crm, missed_call):
    from crm.services import crm_delivery_send

    missed_call()
    delivery = CrmDelivery.objects.get()
    assert crm_delivery_send(delivery_id=delivery.pk) is None  # already delivered
    CrmDelivery.objects.filter(pk=delivery.pk).update(status="pending", next_attempt_at=timezone.now() + dt.timedelta(seconds=60))
    assert crm_delivery_send(delivery_id=delivery.pk) is None  # leased to a worker still posting
    assert len(fake_crm.received) == 1


# --- the outbox's guarantees --------------------------------------------------------------------------


def test_it_sends_a_delivery_whose_enqueue_failed_on_the_next_sweep(webhook, fake_crm, missed_call, monkeypatch, caplog):
    import crm.tasks

    def broker_down(*args, **kwargs):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(crm.tasks, "async_task", broker_down)
    missed_call()  # the text-back's path carries on
    assert fake_crm.received == [] and CrmDelivery.objects.get().status == "pending"
    assert "could not enqueue CRM delivery" in caplog.text
    monkeypatch.undo()
    assert crm_deliveries_sweep() == 1
    assert len(fake_crm.received) == 1 and CrmDelivery.objects.get().status == "delivered"


def test_it_posts_nothing_when_the_transaction_rolls_back(webhook, fake_crm, missed_call, run_on_commit):
    lead = missed_call()
    with run_on_commit(), pytest.raises(RuntimeError):
        with transaction.atomic():
            lead_milestone.send(sender=Lead, lead=lead, milestone=Milestone.QUALIFIED, at=timezone.now())
            raise RuntimeError("the qualification failed half-way")
    assert list(CrmDelivery.objects.values_list("milestone", flat=True)) == ["missed_call"]
    assert crm_deliveries_sweep() == 0 and len(fake_crm.received) == 1


def test_it_never_costs_the_caller_a_text_back(webhook, fake_crm, missed_call, sms_outbox, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise ValueError("a bug in the outbox")

    monkeypatch.setattr(CrmDelivery.objects, "bulk_create", broken)
    missed_call()
    assert len(sms_outbox) == 1 and Lead.objects.filter(phone=CALLER).exists()
    assert not CrmDelivery.objects.exists() and fake_crm.received == []
    assert "could not record CRM deliveries" in caplog.text


def test_it_costs_the_missed_call_path_one_query_without_endpoints(brokerage, sms_outbox, django_assert_max_num_queries):
    from leads.services import missed_call_record
    from routing.selectors import line_by_number

    line = line_by_number(number=DOWNTOWN_BUYER_LINE)
    with CaptureQueriesContext(connection) as queries:
        missed_call_record(line=line, call_sid=new_sid("CA"), from_number=CALLER, reason="no_answer")
    assert len([q for q in queries if "crm_" in q["sql"]]) == 1
    # Everything the milestone costs, receiver included: that one query.
    lead = Lead.objects.select_related("office").get(phone=CALLER)
    with django_assert_max_num_queries(1):
        lead_milestone.send(sender=Lead, lead=lead, milestone=Milestone.MISSED_CALL, at=timezone.now())
    assert not CrmDelivery.objects.exists()
