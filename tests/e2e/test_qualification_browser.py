"""Qualification over SMS in a real browser: a missed call, the caller answers the questions by
text (signed webhooks in, the real Twilio SDK out to a loopback fake), and the agent watching
the thread sees each question and answer, then the summary card and a hot-lead alert, live."""

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from conftest import CALLER
from leads.models import Lead

from .conftest import sign_in

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ANSWERS = [
    ("Hi! Is the Oak St house still available?", "are you looking to buy, sell, or both?"),
    ("We want to buy", "When are you hoping to move?"),
    ("asap, our lease is up next month", "What price range are you looking at?"),
    ("400 to 450k", "Which area or ZIP code are you looking in?"),
    ("78704", "Are you pre-approved for a mortgage, or paying cash?"),
    ("Yes, pre-approved with Chase", "Thanks, that helps!"),
]


def test_the_agent_watches_the_caller_answer_and_gets_the_summary_and_a_hot_lead_alert(
    page, live, twilio_http, fake_twilio, django_user_model,
):
    twilio_http.missed_call()
    lead = Lead.objects.get(phone=CALLER)
    sign_in(page, live.url, django_user_model, lead.assigned_agent.user.email)
    page.goto(f"{live.url}/leads/{lead.pk}/")
    expect(page.locator("#live-status")).to_have_text("Live")

    for count, (answer, next_question) in enumerate(ANSWERS, start=2):
        assert twilio_http.sms(answer).status_code == 200
        # The question reached Twilio (the fake) and shows in the open thread, delivered.
        assert fake_twilio.wait_for(lambda f: len(f._messages) >= count and next_question in f._messages[-1]["body"], timeout=5), [m["body"] for m in fake_twilio.messages]
        expect(page.locator("#timeline .bubble.is-out").last).to_contain_text(next_question)
        if count < len(ANSWERS) + 1:
            expect(page.locator(".thread-asking")).to_be_visible()

    card = page.locator("[data-qualification-card]")
    expect(card).to_contain_text("Hot")
    expect(card).to_contain_text("Buying")
    expect(card).to_contain_text("$400k–$450k")
    expect(card).to_contain_text("78704")
    expect(card).to_contain_text("Pre-approved")
    expect(page.locator(".thread-title .rating-hot")).to_have_text("Hot")
    expect(page.locator(".thread-asking")).to_have_count(0)
    toast = page.locator(".toast").filter(has_text="Hot lead")
    expect(toast).to_contain_text(CALLER)
    expect(page.locator(f"#row-{lead.pk} .rating-hot")).to_be_visible()
    expect(page.locator("#timeline .bubble.is-out").last.locator(".delivery")).to_have_text("Delivered", timeout=5000)
    if os.environ.get("TEXTBACK_SCREENSHOTS"):
        page.screenshot(path=ROOT / "docs" / "inbox-qualification.png")
        page.set_viewport_size({"width": 390, "height": 844})
        page.locator("[data-qualification-card]").scroll_into_view_if_needed()
        page.screenshot(path=ROOT / "docs" / "inbox-qualification-phone.png")


def test_a_broker_sets_the_office_questions_and_reads_what_the_crm_got(page, live, twilio_http, django_user_model):
    """The control room: a broker chooses an office's questions in its playbook, and opens the
    log of a delivery to Follow Up Boss (a 429 with Retry-After, then delivered)."""
    import datetime as dt

    from django.utils import timezone

    from crm.models import CrmDelivery, CrmEndpoint
    from crm.payloads import follow_up_boss_event
    from crm.selectors import lead_snapshot
    from leads.models import Playbook

    twilio_http.missed_call()
    for answer, _ in ANSWERS:
        twilio_http.sms(answer)
    lead = Lead.objects.get(phone=CALLER)
    endpoint = CrmEndpoint.objects.create(
        brokerage=lead.office.brokerage, name="Follow Up Boss", kind="follow_up_boss", url="https://api.followupboss.com/v1/events",
        api_key="fub-demo-key",
    )
    now = timezone.now()
    delivery = CrmDelivery.objects.create(
        endpoint=endpoint, lead=lead, milestone="qualified", occurred_at=now, attempts=2, status="delivered",
        last_status_code=200, delivered_at=now + dt.timedelta(seconds=121),
        payload=follow_up_boss_event(lead_snapshot(lead=lead), milestone="qualified", at=now, endpoint=endpoint),
    )
    delivery.attempt_log.create(at=now, status_code=429, duration_ms=84, retry_after_seconds=120, response_excerpt='{"errorMessage": "Too many requests"}')
    delivery.attempt_log.create(at=now + dt.timedelta(seconds=121), status_code=200, duration_ms=131, response_excerpt='{"id": 5821}')

    sign_in(page, live.url, django_user_model, "bree@example.com")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live.url}/admin/leads/playbook/add/")
    page.get_by_label("Office").select_option(label=lead.office.name)
    page.get_by_label("Pre-approved or not").uncheck()
    page.get_by_role("button", name="Save and continue editing").click()
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    assert Playbook.objects.get(office=lead.office).questions == ["intent", "timeline", "budget", "area"]
    if os.environ.get("TEXTBACK_SCREENSHOTS"):
        page.screenshot(path=ROOT / "docs" / "admin-playbook.png")

    page.goto(f"{live.url}/admin/crm/crmdelivery/{delivery.pk}/change/")
    expect(page.locator("body")).to_contain_text("Property Inquiry")
    attempts = page.locator(".inline-group")
    expect(attempts).to_contain_text("429")
    expect(attempts).to_contain_text("Too many requests")
    expect(attempts).to_contain_text("5821")
    if os.environ.get("TEXTBACK_SCREENSHOTS"):
        page.screenshot(path=ROOT / "docs" / "admin-crm-delivery.png", full_page=True)
