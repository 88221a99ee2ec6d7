"""Screenshots of the inbox for the README, from real data made the way production makes it.

Run with `TEXTBACK_SCREENSHOTS=1 .venv/bin/python -m pytest tests/e2e/test_inbox_screenshots.py`;
the images go to docs/. Skipped in the normal test pass.
"""

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from inbox.services import agent_reply_send, lead_note_add, lead_outcome_set
from leads.models import Lead, ReplySnippet
from routing.models import Agent

from .conftest import sign_in

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.environ.get("TEXTBACK_SCREENSHOTS"), reason="set TEXTBACK_SCREENSHOTS=1 to refresh docs/"),
]

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _conversations(twilio_http):
    """A morning's worth of leads: a buyer mid-conversation, a seller waiting, a voicemail, an opt-out."""
    # The default snippets come from a migration, which a previous browser test's flush removed.
    for position, (title, body) in enumerate([
        ("Still available", "Hi, this is {agent} with {brokerage}. It's still available. When would you like to see it?"),
        ("Book a showing", "I can show it today after 4 or tomorrow morning. Which works better for you?"),
        ("Pre-approval", "Have you spoken with a lender yet? I can connect you with one we trust."),
        ("Call you now?", "Is now a good time for a quick call?"),
    ]):
        ReplySnippet.objects.get_or_create(title=title, defaults={"body": body, "position": position})
    twilio_http.missed_call(caller="+15555550123")
    twilio_http.sms("Hi! Is 12 Oak St still available? We're pre-approved up to 650k", caller="+15555550123")
    buyer = Lead.objects.get(phone="+15555550123")
    Lead.objects.filter(pk=buyer.pk).update(name="Maria Gonzalez")
    buyer.refresh_from_db()
    agent = buyer.assigned_agent
    agent_reply_send(agent=agent, lead=buyer, body=f"Hi Maria, this is {agent.name.split()[0]}! It is. Could you see it Saturday at 11?")
    twilio_http.sms("Saturday at 11 works. Can my husband join?", caller="+15555550123")
    lead_note_add(actor=agent, lead=buyer, text="Pre-approved 650k with First Harbor; wants a yard.")

    twilio_http.missed_call(caller="+15555550188", line="+15555550110")
    twilio_http.sms("We're thinking of selling our condo on Pine this spring", caller="+15555550188", line="+15555550110")
    Lead.objects.filter(phone="+15555550188").update(name="James Whitfield")

    call_sid = twilio_http.missed_call(caller="+15555550142")
    twilio_http.call_status(
        call_sid=call_sid, caller="+15555550142", status="completed", RecordingUrl="https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1",
        RecordingDuration="18",
    )
    twilio_http.sms("Remove me from your list", caller="+15555550177")
    closed = Lead.objects.get(phone="+15555550177")
    lead_outcome_set(actor=Agent.objects.get(user__email="tess@example.com"), lead=closed, outcome=Lead.Outcome.WRONG_NUMBER)
    return buyer


def test_screenshots_of_the_inbox(chromium, live, twilio_http, django_user_model):
    buyer = _conversations(twilio_http)
    for name, viewport in [("desktop", {"width": 1440, "height": 900}), ("phone", {"width": 390, "height": 844})]:
        context = chromium.new_context(viewport=viewport, device_scale_factor=1)
        page = context.new_page()
        sign_in(page, live.url, django_user_model, "tess@example.com")
        page.goto(live.url + "/")
        expect(page.locator("#live-status")).to_have_text("Live")
        page.screenshot(path=DOCS / f"inbox-list-{name}.png")
        page.goto(f"{live.url}/leads/{buyer.pk}/")
        expect(page.locator("#live-status")).to_have_text("Live")
        page.screenshot(path=DOCS / f"inbox-thread-{name}.png")
        context.close()
