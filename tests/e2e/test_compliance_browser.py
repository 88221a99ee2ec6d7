"""Compliance as an agent meets it, in a real browser: a text that may be an opt-out is asked
about in the thread, the answer opts the caller out live, and the consent panel shows the
number's whole record.

Every run checks what the page says; `TEXTBACK_SCREENSHOTS=1` also refreshes the image in docs/.
"""

import json
import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from compliance.models import ConsentEvent
from conftest import new_sid
from leads.models import Lead, Message
from leads.services import inbound_sms_record, missed_call_record
from routing.brokerage_import import brokerage_import
from routing.selectors import line_by_number

from .conftest import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
CALLER = "+15555550163"


def test_an_agent_confirms_an_unclear_stop_and_sees_the_consent_record(page, live, django_user_model):
    brokerage_import(json.loads((ROOT / "demo" / "brokerage.json").read_text()))
    line = line_by_number(number="+15555550100")
    missed_call_record(line=line, call_sid=new_sid("CA"), from_number=CALLER, reason="no_answer")
    Lead.objects.filter(phone=CALLER).update(name="Marcus Hill")
    inbound_sms_record(
        line=line, message_sid=new_sid("SM"), from_number=CALLER, media_urls=[],
        body="We are not interested anymore, we bought elsewhere. Thanks for your help!",
    )
    lead = Lead.objects.select_related("assigned_agent__user").get(phone=CALLER)
    assert lead.messages.get(direction="in").revocation_check == Message.RevocationCheck.PENDING

    page.set_viewport_size({"width": 1280, "height": 860})
    page.add_init_script("document.addEventListener('htmx:wsAfterMessage', () => { window.liveFrames = (window.liveFrames || 0) + 1; });")
    sign_in(page, live.url, django_user_model, lead.assigned_agent.user.email)
    page.goto(f"{live.url}/leads/{lead.pk}/")
    page.wait_for_function("window.liveFrames >= 1")
    question = page.locator("form.revocation-check")
    expect(question).to_contain_text("Is this asking us to stop texting?")
    expect(page.locator(".thread-status")).to_contain_text("Can text · Implied: they reached out")

    question.get_by_role("button", name="Yes, opt them out").click()
    expect(page.locator("#feedback")).to_contain_text("Opted out")
    expect(page.locator(".thread-status")).to_contain_text("Opted out")
    expect(page.locator("#composer")).to_contain_text("This lead has opted out of texts.")
    expect(page.locator("form.revocation-check")).to_have_count(0)
    event = ConsentEvent.objects.get(phone=CALLER, kind=ConsentEvent.Kind.OPT_OUT)
    assert lead.assigned_agent.name in event.actor

    consent = page.locator("#thread-panel details", has_text="Consent")
    consent.locator("summary").click()
    expect(consent.locator(".consent-history li").first).to_contain_text("Opt-out · Inbound text")
    expect(consent).to_contain_text("Implied: inbound call")
    if os.environ.get("TEXTBACK_SCREENSHOTS"):
        page.screenshot(path=ROOT / "docs" / "inbox-consent.png")


def test_a_broker_sets_texting_rules_and_exports_the_ledger_in_admin(page, live, django_user_model):
    brokerage_import(json.loads((ROOT / "demo" / "brokerage.json").read_text()))
    line = line_by_number(number="+15555550100")
    for i, body in enumerate(["Is 12 Oak St still available?", "STOP", "START"]):
        inbound_sms_record(line=line, message_sid=new_sid("SM"), from_number=CALLER, media_urls=[], body=body)
    missed_call_record(line=line, call_sid=new_sid("CA"), from_number="+15555550164", reason="no_answer")
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(page, live.url, django_user_model, "bree@harborandoak.example")

    page.goto(f"{live.url}/admin/compliance/consentevent/")
    expect(page.locator("#result_list")).to_contain_text("Opt-in (START)")
    expect(page.locator(".object-tools")).to_contain_text("Export CSV for an audit")
    if os.environ.get("TEXTBACK_SCREENSHOTS"):
        page.screenshot(path=ROOT / "docs" / "admin-consent-ledger.png")

    page.get_by_role("link", name="Export CSV for an audit").click()
    page.get_by_label("Phone").fill(CALLER)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    rows = Path(download.value.path()).read_text().splitlines()
    assert rows[0].startswith("seq,created_at_utc,phone") and len(rows) == 1 + ConsentEvent.objects.filter(phone=CALLER).count()

    office = line.office
    page.goto(f"{live.url}/admin/routing/office/{office.pk}/change/")
    rules = page.locator("fieldset", has_text="Texting rules")
    expect(rules).to_contain_text("never looser")
    page.locator("#id_quiet_hours_start").fill("07:00")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".errorlist")).to_contain_text("8:00 am at the earliest")
    if os.environ.get("TEXTBACK_SCREENSHOTS"):
        page.locator("fieldset", has_text="Texting rules").screenshot(path=ROOT / "docs" / "admin-texting-rules.png")


def test_a_caller_opts_in_on_the_public_form_from_a_phone(page, live):
    brokerage_import(json.loads((ROOT / "demo" / "brokerage.json").read_text()))
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live.url}/text-me/")
    page.get_by_label("Mobile number").fill("(305) 555-0147")
    page.get_by_role("button", name="Text me").click()
    expect(page.locator(".form-error")).to_contain_text("Nothing was recorded")
    expect(page.locator(".field-error")).to_contain_text("Tick the box")
    page.get_by_label("Your name (optional)").fill("Rosa Diaz")
    page.locator("input[name=agree]").check()
    if os.environ.get("TEXTBACK_SCREENSHOTS"):
        page.screenshot(path=ROOT / "docs" / "web-form-opt-in.png")
    page.get_by_role("button", name="Text me").click()
    expect(page.locator("h1")).to_have_text("You're on the list.")
    event = ConsentEvent.objects.get(phone="+13055550147")
    assert event.source == ConsentEvent.Source.WEB_FORM and "Rosa Diaz" in event.note
