"""The live inbox in a real browser: Daphne serving HTTP and the websocket, signed webhooks in,
the real Twilio SDK out to a loopback fake whose signed status callbacks come back."""

import time

import pytest
from playwright.sync_api import expect

from compliance.models import ConsentEvent
from conftest import CALLER, DOWNTOWN_BUYER_LINE, LAKESIDE_LINE
from leads.models import Lead, Message, Playbook

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

from .conftest import sign_in

def test_an_inbound_text_appears_live_in_the_open_inbox_and_thread(page, live, twilio_http, django_user_model):
    twilio_http.missed_call()
    lead = Lead.objects.get(phone=CALLER)
    # No qualification question, whose text would take the list row's preview a moment later.
    Playbook.objects.create(office=lead.office, qualification_enabled=False)
    agent = lead.assigned_agent
    sign_in(page, live.url, django_user_model, agent.user.email)
    page.goto(f"{live.url}/leads/{lead.pk}/")
    expect(page.locator("#live-status")).to_have_text("Live")
    expect(page.locator("#timeline")).to_contain_text("Missed call")

    started = time.monotonic()
    assert twilio_http.sms("Is 12 Oak St still available? We'd love a showing Saturday").status_code == 200
    expect(page.locator("#timeline")).to_contain_text("We'd love a showing Saturday", timeout=1000)
    expect(page.locator(f"#row-{lead.pk}")).to_contain_text("We'd love a showing Saturday", timeout=1000)
    assert time.monotonic() - started < 1.0
    expect(page.locator(f"#row-{lead.pk} .clock")).to_contain_text("Needs reply")


def test_a_new_lead_appears_in_the_list_without_a_reload(page, live, twilio_http, django_user_model):
    sign_in(page, live.url, django_user_model, "tess@example.com")
    expect(page.locator(".list-empty")).to_be_visible()
    twilio_http.missed_call(caller="+15555553333")
    expect(page.locator(".conversation-list")).to_contain_text("+15555553333", timeout=1000)
    expect(page.locator(".list-empty")).to_have_count(0)


def test_a_reply_reaches_twilio_and_its_delivery_shows_live(page, live, twilio_http, fake_twilio, django_user_model):
    twilio_http.sms("Hi, is the Oak St house still for sale?")
    lead = Lead.objects.get(phone=CALLER)
    sign_in(page, live.url, django_user_model, lead.assigned_agent.user.email)
    page.goto(f"{live.url}/leads/{lead.pk}/")
    expect(page.locator("#live-status")).to_have_text("Live")

    box = page.get_by_label("Your reply")
    box.fill("It is! Want to see it tomorrow at 10?")
    expect(page.locator("[data-segments]")).to_contain_text("1 text")
    box.press("Enter")

    sent = fake_twilio.wait_message(CALLER, timeout=5)
    assert sent is not None and sent["body"] == "It is! Want to see it tomorrow at 10?" and sent["from"] == DOWNTOWN_BUYER_LINE
    reply = Message.objects.get(kind=Message.Kind.REPLY)
    expect(page.locator(f"#msg-{reply.pk} .delivery")).to_have_text("Delivered", timeout=5000)
    expect(box).to_have_value("")
    expect(page.locator(f"#row-{lead.pk} .clock")).to_have_text("Replied")


def test_an_opted_out_leads_composer_is_disabled_with_the_reason(page, live, twilio_http, django_user_model):
    twilio_http.sms("Looking at 12 Oak St")
    lead = Lead.objects.get(phone=CALLER)
    sign_in(page, live.url, django_user_model, lead.assigned_agent.user.email)
    page.goto(f"{live.url}/leads/{lead.pk}/")
    expect(page.get_by_label("Your reply")).to_be_enabled()

    twilio_http.sms("STOP")  # arrives while the thread is open
    composer = page.locator("#composer")
    expect(composer).to_contain_text("This lead has opted out of texts.")
    expect(page.get_by_label("Your reply")).to_be_disabled()
    expect(page.locator("#thread-header")).to_contain_text("Opted out")
    assert ConsentEvent.objects.filter(phone=CALLER, kind=ConsentEvent.Kind.OPT_OUT).exists()

    page.reload()
    expect(page.get_by_label("Your reply")).to_be_disabled()
    expect(composer).to_contain_text("Opted out")


def test_an_agent_of_another_office_never_sees_the_lead(page, live, twilio_http, django_user_model):
    sign_in(page, live.url, django_user_model, "dan@example.com")  # Lakeside
    twilio_http.missed_call(caller="+15555554444", line=LAKESIDE_LINE)
    expect(page.locator(".conversation-list")).to_contain_text("+15555554444", timeout=2000)  # the socket is working

    twilio_http.missed_call(caller=CALLER, line=DOWNTOWN_BUYER_LINE)
    twilio_http.sms("Downtown only, please", caller=CALLER, line=DOWNTOWN_BUYER_LINE)
    page.wait_for_timeout(800)
    expect(page.locator(".conversation-list")).not_to_contain_text(CALLER)

    downtown = Lead.objects.get(phone=CALLER)
    response = page.goto(f"{live.url}/leads/{downtown.pk}/")
    assert response.status == 404
    expect(page.get_by_text("Downtown only, please")).to_have_count(0)

    # Asking the websocket for the thread directly yields nothing of it either.
    page.goto(f"{live.url}/")
    frames = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(payload)))
    page.evaluate(f"new WebSocket('ws://127.0.0.1:{live.port}/ws/inbox/?lead={downtown.pk}')")
    twilio_http.sms("Still downtown only", caller=CALLER, line=DOWNTOWN_BUYER_LINE)
    page.wait_for_timeout(800)
    assert frames and not any("downtown only" in str(f).lower() or CALLER in str(f) for f in frames)


def test_a_lead_assigned_to_the_agent_pops_a_toast_with_a_link(page, live, twilio_http, django_user_model):
    sign_in(page, live.url, django_user_model, "ann@example.com")
    for i in range(3):  # round-robin reaches Ann within one turn of the three Downtown agents
        twilio_http.missed_call(caller=f"+1555555800{i}")
    lead = Lead.objects.get(phone__startswith="+1555555800", assigned_agent__user__email="ann@example.com")
    toast = page.locator(".toast").filter(has_text=lead.phone)
    expect(toast).to_contain_text("New lead assigned to you")
    toast.get_by_role("link").click()
    expect(page.locator("#thread-header")).to_contain_text(lead.phone)


def test_claim_transfer_outcome_and_note_from_the_thread(page, live, twilio_http, django_user_model):
    from routing.models import Agent

    Agent.objects.filter(role="agent").update(on_duty=False)  # nobody takes it: it waits in the pool
    Agent.objects.filter(role="team_leader").update(on_duty=False)
    twilio_http.sms("Hi, what's the price on Oak St?")
    lead = Lead.objects.get(phone=CALLER)
    assert lead.assigned_agent is None
    sign_in(page, live.url, django_user_model, "ben@example.com")
    page.locator(".view-tab", has_text="Unassigned").click()
    page.locator(f"#row-{lead.pk} a").click()

    page.get_by_role("button", name="Claim").click()
    expect(page.locator("#feedback")).to_have_text("The lead is yours.")
    expect(page.locator("#thread-header")).to_contain_text("Ben Ortiz")
    expect(page.locator("#timeline")).to_contain_text("Ben Ortiz claimed the lead")

    page.locator("summary", has_text="Internal note").click()
    page.get_by_placeholder("Only your team sees notes").fill("Asked about price; sent the listing sheet.")
    page.get_by_role("button", name="Add note").click()
    expect(page.locator("#timeline")).to_contain_text("Asked about price; sent the listing sheet.")

    page.locator("[data-outcome]").select_option("appointment")
    page.locator("input[name=appointment_at]").fill("2026-12-05T11:00")
    page.get_by_role("button", name="Save outcome").click()
    expect(page.locator("#timeline")).to_contain_text("Appointment booked: Sat Dec 5, 11:00 AM EST")

    page.locator("summary", has_text="Transfer").click()
    page.locator("select[name=agent]").select_option(label="Ann Lee (off duty)")
    page.get_by_label("Why", exact=True).fill("Ann showed them the house")
    page.get_by_role("button", name="Transfer").click()
    # Ben no longer sees it: the page says so instead of showing a stale thread.
    expect(page.locator("#thread")).to_contain_text("This conversation has left your inbox")
    expect(page.locator("#feedback")).to_have_text("Transferred to Ann Lee.")
    assert Lead.objects.get(pk=lead.pk).assigned_agent.name == "Ann Lee"


def test_a_refused_action_says_why(page, live, twilio_http, django_user_model):
    twilio_http.sms("Hello")
    lead = Lead.objects.get(phone=CALLER)
    sign_in(page, live.url, django_user_model, lead.assigned_agent.user.email)
    page.goto(f"{live.url}/leads/{lead.pk}/")
    page.locator("summary", has_text="Lead details").click()
    page.get_by_label("Email").fill("casey@")
    page.evaluate("document.querySelector('input[name=email]').type = 'text'")  # past the browser's own check
    page.get_by_role("button", name="Save details").click()
    expect(page.locator("#feedback")).to_contain_text("is not an email address")
    expect(page.locator("#feedback")).to_have_class("feedback is-error")


def test_a_text_moves_its_conversation_to_the_top_and_closing_takes_it_out(page, live, twilio_http, django_user_model):
    for caller in ["+15555556001", "+15555556002", "+15555556003"]:
        twilio_http.sms(f"Hello from {caller}", caller=caller)
    sign_in(page, live.url, django_user_model, "tess@example.com")
    rows = page.locator("#conversation-list > li .conv-name")
    expect(rows).to_have_text(["+15555556003", "+15555556002", "+15555556001"])

    twilio_http.sms("Me again", caller="+15555556001")
    expect(rows).to_have_text(["+15555556001", "+15555556003", "+15555556002"])

    from inbox.services import lead_outcome_set
    from routing.models import Agent

    lead_outcome_set(actor=Agent.objects.get(user__email="tess@example.com"), lead=Lead.objects.get(phone="+15555556003"), outcome="closed")
    expect(rows).to_have_text(["+15555556001", "+15555556002"])
    page.locator(".view-tab", has_text="Closed").click()
    expect(rows).to_have_text(["+15555556003"])
