"""What agents do from the inbox, over HTTP: each action changes the lead on record, tells the
right people live, and a refused action says why and changes nothing."""

import pytest

from compliance.models import ConsentEvent
from compliance.services import consent_record
from conftest import CALLER
from inbox.tests.conftest import agent, signed_in
from leads.models import Lead, LeadEvent, Message

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def test_claiming_a_pool_lead_makes_it_yours_once(leads, live_events, django_capture_on_commit_callbacks):
    pool = leads["pool"]
    listener = live_events.join(f"agent.{agent('ann@example.com').pk}", f"pool.{pool.office_id}")
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in("ann@example.com").post(f"/leads/{pool.pk}/claim/", **HTMX)
    assert response.status_code == 200 and "The lead is yours." in response.content.decode()
    pool.refresh_from_db()
    assert pool.assigned_agent.name == "Ann Lee" and pool.assigned_at is not None
    assert LeadEvent.objects.get(lead=pool).kind == LeadEvent.Kind.CLAIMED
    assert {e["type"] for e in listener.drain()} == {"lead.assigned"}

    second = signed_in("ben@example.com").post(f"/leads/{pool.pk}/claim/", **HTMX)
    # Ben no longer sees it: it left the pool the moment Ann claimed it.
    assert second.status_code == 404
    assert Lead.objects.get(pk=pool.pk).assigned_agent.name == "Ann Lee"


def test_a_team_leader_who_claims_second_is_told_who_was_first(leads):
    pool = leads["pool"]
    signed_in("ann@example.com").post(f"/leads/{pool.pk}/claim/", **HTMX)
    response = signed_in("tess@example.com").post(f"/leads/{pool.pk}/claim/", **HTMX)
    assert response.status_code == 409 and "Ann Lee already has this lead." in response.content.decode()
    assert LeadEvent.objects.filter(lead=pool).count() == 1


def test_a_transfer_needs_a_reason_and_stays_in_the_office(leads):
    tess = signed_in("tess@example.com")
    lead = leads["ann"]
    ben, dan = agent("ben@example.com"), agent("dan@example.com")
    assert tess.post(f"/leads/{lead.pk}/transfer/", {"agent": ben.pk, "reason": " "}, **HTMX).status_code == 400
    assert tess.post(f"/leads/{lead.pk}/transfer/", {"agent": dan.pk, "reason": "Lakeside"}, **HTMX).status_code == 400
    assert tess.post(f"/leads/{lead.pk}/transfer/", {"agent": "nobody", "reason": "x"}, **HTMX).status_code == 400
    assert Lead.objects.get(pk=lead.pk).assigned_agent.name == "Ann Lee" and not LeadEvent.objects.exists()

    response = tess.post(f"/leads/{lead.pk}/transfer/", {"agent": ben.pk, "reason": "Ben speaks Spanish"}, **HTMX)
    assert response.status_code == 200 and "Transferred to Ben Ortiz." in response.content.decode()
    event = LeadEvent.objects.get(lead=lead)
    assert (event.kind, event.actor.name, event.agent.name, event.text) == ("transferred", "Tess Morgan", "Ben Ortiz", "Ben speaks Spanish")
    assert "Ben speaks Spanish" in response.content.decode()  # on the timeline at once


def test_a_transfer_alerts_the_new_agents_phone_through_the_outbox(leads, sms_outbox, django_capture_on_commit_callbacks):
    ben = agent("ben@example.com")
    ben.sms_alerts = True
    ben.save()
    with django_capture_on_commit_callbacks(execute=True):
        signed_in("ann@example.com").post(f"/leads/{leads['ann'].pk}/transfer/", {"agent": ben.pk, "reason": "vacation"}, **HTMX)
    alert = Message.objects.get(kind=Message.Kind.AGENT_ALERT)
    assert alert.to_number == ben.phone and alert.status == Message.Status.SENT
    assert [(m["to"], m["from"]) for m in sms_outbox] == [(ben.phone, leads["ann"].line.number)]
    assert f"/leads/{leads['ann'].pk}/" in sms_outbox[0]["body"]
    lead = Lead.objects.get(pk=leads["ann"].pk)
    assert lead.status == Lead.Status.NEW  # an alert to the agent is not contact with the lead


def test_an_agent_can_hand_their_lead_back_to_the_pool(leads):
    response = signed_in("ann@example.com").post(f"/leads/{leads['ann'].pk}/transfer/", {"agent": "pool", "reason": "out sick"}, **HTMX)
    # Ann still sees it: it is in her office's pool now.
    assert response.status_code == 200 and "Returned to the office pool." in response.content.decode()
    assert Lead.objects.get(pk=leads["ann"].pk).assigned_agent is None
    assert LeadEvent.objects.get().kind == LeadEvent.Kind.RETURNED_TO_POOL


def test_a_reply_is_queued_sent_and_stops_the_waiting_clock(leads, twilio, sms_outbox, django_capture_on_commit_callbacks):
    twilio.sms("Still available?")
    lead = Lead.objects.get(phone=CALLER)
    assert lead.awaiting_reply_since is not None
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in("ann@example.com").post(f"/leads/{lead.pk}/reply/", {"body": "Yes! Want to see it?"}, **HTMX)
    assert response.status_code == 200
    reply = Message.objects.get(kind=Message.Kind.REPLY)
    assert (reply.agent.name, reply.status, reply.body) == ("Ann Lee", Message.Status.SENT, "Yes! Want to see it?")
    assert sms_outbox[-1]["to"] == CALLER and sms_outbox[-1]["body"] == "Yes! Want to see it?"
    lead.refresh_from_db()
    assert lead.awaiting_reply_since is None
    assert 'id="composer"' in response.content.decode()  # a fresh, empty composer comes back


def test_replying_to_a_pool_lead_claims_it(leads):
    pool = leads["pool"]
    assert signed_in("ben@example.com").post(f"/leads/{pool.pk}/reply/", {"body": "Hi there"}, **HTMX).status_code == 200
    pool.refresh_from_db()
    assert pool.assigned_agent.name == "Ben Ortiz" and LeadEvent.objects.get(lead=pool).kind == LeadEvent.Kind.CLAIMED


def test_a_reply_to_an_opted_out_lead_is_refused_with_the_reason(leads, twilio):
    twilio.sms("STOP")
    lead = Lead.objects.get(phone=CALLER)
    before = Message.objects.count()
    response = signed_in("ann@example.com").post(f"/leads/{lead.pk}/reply/", {"body": "Please reconsider"}, **HTMX)
    assert response.status_code == 400 and "Opted out" in response.content.decode()
    assert Message.objects.count() == before
    page = signed_in("ann@example.com").get(f"/leads/{lead.pk}/").content.decode()
    assert "This lead has opted out of texts." in page and "<fieldset class=\"composer-fields\" disabled>" in page


def test_empty_and_overlong_replies_are_refused(leads):
    ann = signed_in("ann@example.com")
    assert ann.post(f"/leads/{leads['ann'].pk}/reply/", {"body": "   "}, **HTMX).status_code == 400
    assert ann.post(f"/leads/{leads['ann'].pk}/reply/", {"body": "x" * 1601}, **HTMX).status_code == 400
    assert not Message.objects.exists()


def test_a_closing_outcome_closes_the_lead_until_it_calls_again(leads, twilio, sms_outbox, django_capture_on_commit_callbacks):
    twilio.sms("Just browsing")
    lead = Lead.objects.get(phone=CALLER)
    ann = signed_in("ann@example.com")
    assert ann.post(f"/leads/{lead.pk}/outcome/", {"outcome": "not_interested"}, **HTMX).status_code == 200
    lead.refresh_from_db()
    assert (lead.status, lead.outcome, lead.awaiting_reply_since) == (Lead.Status.CLOSED, "not_interested", None)
    assert "Just browsing" not in ann.get("/").content.decode()
    assert "Just browsing" in ann.get("/?view=closed").content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        twilio.missed_call()
    lead.refresh_from_db()
    assert lead.status == Lead.Status.CONTACTED and lead.awaiting_reply_since is not None
    assert Message.objects.filter(lead=lead, kind=Message.Kind.TEXTBACK).count() == 1  # texted back again


def test_an_appointment_needs_its_time_in_the_offices_zone(leads):
    ann, lead = signed_in("ann@example.com"), leads["ann"]
    assert ann.post(f"/leads/{lead.pk}/outcome/", {"outcome": "appointment"}, **HTMX).status_code == 400
    assert ann.post(f"/leads/{lead.pk}/outcome/", {"outcome": "appointment", "appointment_at": "soon"}, **HTMX).status_code == 400
    response = ann.post(f"/leads/{lead.pk}/outcome/", {"outcome": "appointment", "appointment_at": "2026-12-05T11:00"}, **HTMX)
    assert response.status_code == 200
    lead.refresh_from_db()
    assert lead.outcome == "appointment" and lead.appointment_at.isoformat() == "2026-12-05T16:00:00+00:00"  # 11:00 New York
    assert LeadEvent.objects.get(lead=lead).text == "Appointment booked: Sat Dec 5, 11:00 AM EST"


def test_notes_and_details_are_on_the_timeline(leads):
    ann, lead = signed_in("ann@example.com"), leads["ann"]
    assert ann.post(f"/leads/{lead.pk}/note/", {"text": "  "}, **HTMX).status_code == 400
    response = ann.post(f"/leads/{lead.pk}/note/", {"text": "Wants a yard"}, **HTMX)
    assert response.status_code == 200 and "Wants a yard" in response.content.decode()
    assert ann.post(f"/leads/{lead.pk}/details/", {"name": "Casey", "email": "not-an-email", "lead_type": "buyer"}, **HTMX).status_code == 400
    response = ann.post(f"/leads/{lead.pk}/details/", {"name": "Casey Buyer", "email": "casey@example.com", "lead_type": "seller"}, **HTMX)
    assert response.status_code == 200
    lead.refresh_from_db()
    assert (lead.name, lead.email, lead.lead_type) == ("Casey Buyer", "casey@example.com", "seller")
    assert [e.kind for e in LeadEvent.objects.filter(lead=lead)] == ["note", "edited"]


@pytest.mark.parametrize(
    "typed, stored", [("450000", 450_000), ("$450,000", 450_000), ("450k", 450_000), ("1.2m", 1_200_000), ("", None)]
)
def test_agents_record_what_routing_reads(leads, typed, stored):
    ann, lead = signed_in("ann@example.com"), leads["ann"]
    fields = {"name": "Casey", "email": "", "lead_type": "buyer", "zip_code": "33139", "city": "Miami Beach", "language": "ES"}
    assert ann.post(f"/leads/{lead.pk}/details/", {**fields, "price": typed}, **HTMX).status_code == 200
    lead.refresh_from_db()
    assert (lead.zip_code, lead.city, lead.price, lead.language) == ("33139", "Miami Beach", stored, "es")


@pytest.mark.parametrize("field, value", [("zip_code", "3313"), ("price", "a lot"), ("language", "Spanish")])
def test_bad_details_are_refused_and_change_nothing(leads, field, value):
    ann, lead = signed_in("ann@example.com"), leads["ann"]
    fields = {"name": "Casey", "email": "", "lead_type": "buyer", field: value}
    assert ann.post(f"/leads/{lead.pk}/details/", fields, **HTMX).status_code == 400
    lead.refresh_from_db()
    assert lead.name == "Ann's buyer" and not LeadEvent.objects.filter(lead=lead).exists()


def test_actions_work_without_javascript(leads):
    response = signed_in("ann@example.com").post(f"/leads/{leads['ann'].pk}/note/", {"text": "by form", "view": "mine"})
    assert response.status_code == 302 and response["Location"] == f"/leads/{leads['ann'].pk}/?view=mine"


def test_going_off_duty_stops_new_leads(leads, twilio):
    ann = signed_in("ann@example.com")
    response = ann.post("/me/duty/", {"on_duty": "0"}, **HTMX)
    assert response.status_code == 200 and "Off duty" in response.content.decode()
    assert not agent("ann@example.com").on_duty
    for i in range(4):
        twilio.missed_call(caller=f"+1555555990{i}")
    assert not Lead.objects.filter(phone__startswith="+1555555990", assigned_agent__user__email="ann@example.com").exists()


def test_a_missed_call_alerts_the_assigned_agents_phone(brokerage, twilio, sms_outbox, django_capture_on_commit_callbacks):
    from routing.models import Agent

    Agent.objects.update(sms_alerts=True)
    with django_capture_on_commit_callbacks(execute=True):
        twilio.missed_call()
    lead = Lead.objects.get(phone=CALLER)
    assert [m["to"] for m in sms_outbox] == [CALLER, lead.assigned_agent.phone]  # the caller first
    assert Message.objects.get(kind=Message.Kind.AGENT_ALERT).to_number == lead.assigned_agent.phone


def test_an_agent_who_opted_out_of_texts_gets_no_alert(brokerage, twilio, sms_outbox, django_capture_on_commit_callbacks):
    """The gate applies to alerts too: an agent's own STOP is honoured."""
    from routing.models import Agent

    Agent.objects.update(sms_alerts=True)
    for a in Agent.objects.all():
        consent_record(phone=a.phone, sender="", kind=ConsentEvent.Kind.OPT_OUT, source=ConsentEvent.Source.AGENT)
    with django_capture_on_commit_callbacks(execute=True):
        twilio.missed_call()
    assert [m["to"] for m in sms_outbox] == [CALLER]
    assert Message.objects.get(kind=Message.Kind.AGENT_ALERT).status == Message.Status.CANCELED


def test_a_lead_a_colleague_took_a_moment_ago_cannot_be_replied_to_or_closed(leads, monkeypatch):
    """The page said it was in the pool; by the time Ann's reply is locked in, Ben has it."""
    from inbox import views
    from inbox.services import lead_claim

    pool = leads["pool"]
    seen_in_pool = views.selectors.lead_for_agent(agent=agent("ann@example.com"), lead_id=pool.pk)
    lead_claim(agent=agent("ben@example.com"), lead=pool)
    monkeypatch.setattr(views.selectors, "lead_for_agent", lambda **kw: seen_in_pool)
    ann = signed_in("ann@example.com")
    for action, data in [("reply/", {"body": "Hi!"}), ("outcome/", {"outcome": "closed"}), ("note/", {"text": "mine"})]:
        response = ann.post(f"/leads/{pool.pk}/{action}", data, **HTMX)
        assert response.status_code == 409 and "someone else took it" in response.content.decode()
    assert not Message.objects.exists()
    assert Lead.objects.get(pk=pool.pk).status != Lead.Status.CLOSED
    assert list(LeadEvent.objects.values_list("kind", flat=True)) == ["claimed"]


def test_an_htmx_action_on_a_lead_gone_elsewhere_says_so(leads):
    response = signed_in("ann@example.com").post(f"/leads/{leads['ben'].pk}/claim/", **HTMX)
    assert response.status_code == 404 and "not in your inbox" in response.content.decode()


def test_an_expired_session_sends_the_page_to_the_login_form(leads, client):
    response = client.post(f"/leads/{leads['ann'].pk}/reply/", {"body": "hi"}, HTTP_HX_REQUEST="true",
                           HTTP_HX_CURRENT_URL=f"http://testserver/leads/{leads['ann'].pk}/")
    assert response.status_code == 204 and response["HX-Redirect"] == f"/accounts/login/?next=/leads/{leads['ann'].pk}/"


def test_the_duty_toggle_never_redirects_off_site(leads):
    response = signed_in("ann@example.com").post("/me/duty/", {"on_duty": "0", "next": "//evil.example/"})
    assert response.status_code == 302 and response["Location"] == "/"


def test_a_deferred_reply_is_scheduled_not_refused(leads, sms_outbox, django_capture_on_commit_callbacks):
    """An agent reaching out at night to a lead who called days ago: the composer offers to
    schedule, and the text waits in the outbox for 8:00 am where the caller is."""
    import datetime as dt
    import zoneinfo

    import time_machine

    eastern = zoneinfo.ZoneInfo("America/New_York")
    lead = leads["ann"]
    with time_machine.travel(dt.datetime(2026, 11, 27, 22, 15, tzinfo=eastern), tick=False):
        ann = signed_in("ann@example.com")
        page = ann.get(f"/leads/{lead.pk}/").content.decode()
        assert "your text waits in the outbox" in page and ">Schedule</button>" in page
        with django_capture_on_commit_callbacks(execute=True):
            response = ann.post(f"/leads/{lead.pk}/reply/", {"body": "Good morning! Still interested?"}, **HTMX)
    assert response.status_code == 200 and "Scheduled: it goes at Sat 8:00 AM" in response.content.decode()
    reply = Message.objects.get(kind=Message.Kind.REPLY)
    assert reply.status == Message.Status.QUEUED and sms_outbox == []
    assert reply.next_attempt_at == dt.datetime(2026, 11, 28, 8, 0, tzinfo=eastern)


def test_an_agent_answering_their_alert_is_not_a_lead_but_their_stop_is_honoured(brokerage, twilio):
    ann = agent("ann@example.com")
    assert twilio.sms("ok on it", caller=ann.phone).status_code == 200
    assert not Lead.objects.exists() and not Message.objects.exists()
    assert twilio.sms("STOP", caller=ann.phone).status_code == 200
    assert ConsentEvent.objects.get(phone=ann.phone).kind == ConsentEvent.Kind.OPT_OUT
    assert not Lead.objects.exists()
