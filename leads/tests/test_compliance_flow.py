"""Compliance end to end through the webhooks, the outbox and the inbox: landlines become
call-back tasks, unclear revocations wait for an agent, agents record consent, and texts held
for quiet hours go at the right minute across a daylight-saving change."""

import datetime as dt
import zoneinfo

import pytest
import time_machine
from django.utils import timezone

from compliance.gate import Rule
from compliance.models import ConsentEvent, NumberProfile
from conftest import CALLER, DOWNTOWN_BUYER_LINE, new_sid
from inbox.services import ActionRefused, agent_reply_send, consent_record_by_agent, revocation_review
from inbox.tests.conftest import agent, signed_in
from leads.models import Lead, LeadEvent, Message
from leads.selectors import text_gate
from leads.services import inbound_sms_record, message_send, missed_call_record
from leads.sms import locmem
from leads.tasks import outbox_sweep_task
from routing.models import Office
from routing.selectors import line_by_number

pytestmark = pytest.mark.django_db
EASTERN = zoneinfo.ZoneInfo("America/New_York")
HTMX = {"HTTP_HX_REQUEST": "true"}


def missed_call(caller: str = CALLER) -> Lead:
    missed_call_record(line=line_by_number(number=DOWNTOWN_BUYER_LINE), call_sid=new_sid("CA"), from_number=caller, reason="no_answer")
    return Lead.objects.get(phone=caller)


def text(body: str, caller: str = CALLER) -> Message:
    return inbound_sms_record(
        line=line_by_number(number=DOWNTOWN_BUYER_LINE), message_sid=new_sid("SM"), from_number=caller, body=body, media_urls=[]
    )


def send_queued() -> None:
    for pk in Message.objects.filter(status=Message.Status.QUEUED).values_list("pk", flat=True):
        message_send(message_id=pk)


# --- landlines ------------------------------------------------------------------------------------


def test_a_landline_found_before_the_first_text_gets_a_call_back_task_instead(brokerage, sms_outbox):
    locmem.line_types[CALLER] = "landline"
    lead = missed_call()
    send_queued()
    assert sms_outbox == [] and locmem.lookups == [CALLER]
    textback = Message.objects.get(kind=Message.Kind.TEXTBACK)
    assert textback.status == Message.Status.CANCELED and "Landline" in textback.error_message
    lead.refresh_from_db()
    assert lead.call_back_since is not None and "landline" in lead.call_back_reason
    assert LeadEvent.objects.filter(lead=lead, kind=LeadEvent.Kind.CALL_BACK).count() == 1
    # The answer is kept: a second call asks the carrier network nothing more, and makes no second task.
    Lead.objects.filter(pk=lead.pk).update(status=Lead.Status.CLOSED)
    missed_call()
    send_queued()
    assert locmem.lookups == [CALLER] and LeadEvent.objects.filter(kind=LeadEvent.Kind.CALL_BACK).count() == 1


def test_a_mobile_is_looked_up_once_and_texted(brokerage, sms_outbox):
    missed_call()
    send_queued()
    assert [m["to"] for m in sms_outbox] == [CALLER] and locmem.lookups == [CALLER]
    assert NumberProfile.objects.get(phone=CALLER).line_type == "mobile"


def test_a_failed_lookup_does_not_hold_the_text_and_is_asked_again_next_time(brokerage, sms_outbox):
    locmem.line_types[CALLER] = None  # Lookup down, or no answer
    missed_call()
    send_queued()
    assert len(sms_outbox) == 1 and not NumberProfile.objects.filter(phone=CALLER).exists()


def test_error_30006_after_the_fact_makes_the_same_task(queued_textback, twilio, sms_outbox, django_capture_on_commit_callbacks):
    message_send(message_id=queued_textback.pk)
    queued_textback.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        twilio.sms_status(message_sid=queued_textback.provider_sid, status="undelivered", error_code="30006")
    lead = Lead.objects.get()
    assert lead.call_back_since is not None and "30006" in lead.call_back_reason
    assert text_gate(lead=lead, line=lead.line, kind=Message.Kind.REPLY, at=lead.call_back_since).rule is Rule.LANDLINE


def test_the_call_back_list_shows_the_task_until_an_agent_marks_it_done(brokerage, sms_outbox):
    locmem.line_types[CALLER] = "landline"
    lead = missed_call()
    send_queued()
    lead.refresh_from_db()
    ann = signed_in(lead.assigned_agent.user.email)
    page = ann.get("/?view=call_back").content.decode()
    assert f'id="row-{lead.pk}"' in page
    thread = ann.get(f"/leads/{lead.pk}/").content.decode()
    assert "Call back." in thread and "This number is a landline." in thread
    assert ann.post(f"/leads/{lead.pk}/call-back/done/", **HTMX).status_code == 200
    lead.refresh_from_db()
    assert lead.call_back_since is None
    assert f'id="row-{lead.pk}"' not in ann.get("/?view=call_back").content.decode()


# --- revocations an agent confirms ------------------------------------------------------------------


def test_an_unclear_stop_waits_for_an_agent_who_can_opt_the_caller_out_with_one_confirmation(brokerage, sms_outbox):
    lead = missed_call()
    send_queued()
    message = text("Can we stop by the house Saturday or should we stop looking?")
    assert message.revocation_check == Message.RevocationCheck.PENDING
    assert not ConsentEvent.objects.filter(kind=ConsentEvent.Kind.OPT_OUT).exists()
    tess = agent("tess@example.com")
    revocation_review(actor=tess, lead=lead, message_id=message.pk, opted_out=True)
    event = ConsentEvent.objects.get(kind=ConsentEvent.Kind.OPT_OUT)
    assert event.source == ConsentEvent.Source.TEXT and event.raw_text == message.body and "Tess Morgan" in event.actor
    lead.refresh_from_db()
    assert lead.awaiting_reply_since is None  # nothing to answer, so nothing escalates
    send_queued()
    assert [m["body"][:40] for m in sms_outbox[1:]] == ["Harbor & Oak Realty: you are unsubscribe"]
    with pytest.raises(ActionRefused, match="already answered"):
        revocation_review(actor=tess, lead=lead, message_id=message.pk, opted_out=True)
    assert Message.objects.filter(kind=Message.Kind.OPT_OUT_CONFIRMATION).count() == 1


def test_an_agent_can_say_an_unclear_stop_is_not_an_opt_out(brokerage, sms_outbox):
    lead = missed_call()
    message = text("Is the house near the bus stop?")
    revocation_review(actor=agent("tess@example.com"), lead=lead, message_id=message.pk, opted_out=False)
    message.refresh_from_db()
    assert message.revocation_check == Message.RevocationCheck.DISMISSED
    assert LeadEvent.objects.get(kind=LeadEvent.Kind.CONSENT).text.startswith("Read “Is the house near the bus stop?”")
    assert agent_reply_send(agent=agent("tess@example.com"), lead=lead, body="Two blocks away!").status == Message.Status.QUEUED


def test_the_thread_asks_the_question_and_the_answer_is_a_form_post(brokerage, sms_outbox):
    lead = missed_call()
    message = text("stop by later?")
    client = signed_in(lead.assigned_agent.user.email)
    assert "Is this asking us to stop texting?" in client.get(f"/leads/{lead.pk}/").content.decode()
    response = client.post(f"/leads/{lead.pk}/revocation/", {"message": message.pk, "decision": "opt_out"}, **HTMX)
    assert response.status_code == 200 and "Opted out" in response.content.decode()
    assert client.post(f"/leads/{lead.pk}/revocation/", {"message": message.pk, "decision": "maybe"}, **HTMX).status_code == 400


# --- consent agents record ------------------------------------------------------------------------


def test_agents_record_express_consent_and_opt_outs_with_a_note(brokerage, sms_outbox):
    lead = missed_call()
    ann = agent(lead.assigned_agent.user.email)
    with pytest.raises(ActionRefused, match="how the caller gave"):
        consent_record_by_agent(actor=ann, lead=lead, action="opt_in", note="  ")
    event = consent_record_by_agent(actor=ann, lead=lead, action="opt_in", note="Asked for listings by text on the phone.")
    assert (event.kind, event.sender, event.note) == ("express_opt_in", "", "Asked for listings by text on the phone.")
    agent_reply_send(agent=ann, lead=lead, body="Here are three new listings")
    consent_record_by_agent(actor=ann, lead=lead, action="opt_out", note="Called to say no more texts.")
    send_queued()
    assert [m["body"][:18] for m in sms_outbox] == []  # the reply waiting in the outbox went nowhere
    assert Message.objects.get(kind=Message.Kind.REPLY).status == Message.Status.CANCELED
    with pytest.raises(ActionRefused, match="Opted out"):
        agent_reply_send(agent=ann, lead=lead, body="One more?")


def test_only_the_caller_can_undo_a_stop_to_a_line(brokerage, sms_outbox):
    lead = missed_call()
    text("STOP")
    with pytest.raises(ActionRefused, match="texting START"):
        consent_record_by_agent(actor=agent("tess@example.com"), lead=lead, action="opt_in", note="Says they want texts")


def test_do_not_contact_is_for_managers_and_only_they_lift_it(brokerage, sms_outbox):
    lead = missed_call()
    ann, tess = agent(lead.assigned_agent.user.email), agent("tess@example.com")
    with pytest.raises(ActionRefused, match="team leader or broker"):
        consent_record_by_agent(actor=ann, lead=lead, action="do_not_contact", note="Abusive")
    consent_record_by_agent(actor=tess, lead=lead, action="do_not_contact", note="Asked for no contact at all")
    assert text_gate(lead=lead, line=lead.line, kind=Message.Kind.REPLY, at=lead.created_at).rule is Rule.DO_NOT_CONTACT
    text("START")  # a keyword to one line does not take them off the brokerage's own list
    assert text_gate(lead=lead, line=lead.line, kind=Message.Kind.REPLY, at=lead.created_at).rule is Rule.DO_NOT_CONTACT
    with pytest.raises(ActionRefused, match="do-not-contact list"):
        consent_record_by_agent(actor=ann, lead=lead, action="opt_in", note="They want texts again")
    consent_record_by_agent(actor=tess, lead=lead, action="opt_in", note="Wrote in asking to be texted again")
    assert text_gate(lead=lead, line=lead.line, kind=Message.Kind.REPLY, at=lead.created_at).allowed


# --- quiet hours with the clock under control -----------------------------------------------------


def test_an_outreach_held_overnight_goes_at_eight_local_across_the_spring_forward(brokerage, sms_outbox):
    """Saturday 9:30 pm before the clocks go forward: the agent's follow-up waits for Sunday 8:00 am
    (EDT, 12:00 UTC, not 13:00), not a minute earlier, and goes then."""
    with time_machine.travel(dt.datetime(2026, 3, 6, 12, 0, tzinfo=EASTERN), tick=False):
        lead = missed_call()
        send_queued()
    sms_outbox.clear()
    with time_machine.travel(dt.datetime(2026, 3, 7, 21, 30, tzinfo=EASTERN), tick=False):
        reply = agent_reply_send(agent=agent(lead.assigned_agent.user.email), lead=lead, body="Still looking this weekend?")
        message_send(message_id=reply.pk)
    reply.refresh_from_db()
    assert reply.next_attempt_at == dt.datetime(2026, 3, 8, 12, 0, tzinfo=dt.UTC) and "Quiet hours" in reply.error_message
    with time_machine.travel(dt.datetime(2026, 3, 8, 7, 59, tzinfo=EASTERN), tick=False):
        outbox_sweep_task()
    assert sms_outbox == []
    with time_machine.travel(dt.datetime(2026, 3, 8, 8, 0, tzinfo=EASTERN), tick=False):
        outbox_sweep_task()
    assert [m["message_id"] for m in sms_outbox] == [reply.pk]


def test_a_held_textback_is_cancelled_when_the_caller_texts_first(brokerage, sms_outbox):
    Office.objects.update(quiet_hours_for_replies=True)
    with time_machine.travel(dt.datetime(2026, 11, 1, 22, 0, tzinfo=EASTERN), tick=False):  # the fall-back Sunday
        lead = missed_call()
        send_queued()
        textback = Message.objects.get(kind=Message.Kind.TEXTBACK)
        assert textback.next_attempt_at == dt.datetime(2026, 11, 2, 8, 0, tzinfo=EASTERN)
    Office.objects.update(quiet_hours_for_replies=False)
    with time_machine.travel(dt.datetime(2026, 11, 1, 23, 0, tzinfo=EASTERN), tick=False):
        text("hi, saw your sign, call me tomorrow")
        reply = agent_reply_send(agent=agent(lead.assigned_agent.user.email), lead=lead, body="Will do! What time suits?")
        message_send(message_id=reply.pk)
    textback.refresh_from_db()
    assert textback.status == Message.Status.CANCELED and "texted before it could go" in textback.error_message
    assert [m["message_id"] for m in sms_outbox] == [reply.pk]  # answering a fresh text goes at any hour


def test_the_daily_cap_counts_outreach_not_replies(brokerage, sms_outbox):
    Office.objects.update(daily_text_cap=2)
    with time_machine.travel(dt.datetime(2026, 11, 2, 10, 0, tzinfo=EASTERN), tick=False) as clock:
        lead = missed_call()
        send_queued()
        ann = agent(lead.assigned_agent.user.email)
        clock.shift(dt.timedelta(hours=1))  # an hour on, texting them is outreach
        for _ in range(3):
            message_send(message_id=agent_reply_send(agent=ann, lead=lead, body="Following up").pk)
            clock.shift(dt.timedelta(minutes=5))
    replies = list(Message.objects.filter(kind=Message.Kind.REPLY).order_by("id"))
    assert [m.status for m in replies] == ["sent", "sent", "queued"] and all(m.outreach for m in replies[:2])
    assert replies[2].next_attempt_at == dt.datetime(2026, 11, 3, 11, 0, tzinfo=EASTERN)  # 24 h after the first
    assert "At most 2 texts" in replies[2].error_message


def test_an_express_opt_in_never_lifts_a_stop_the_caller_texted_to_a_line(brokerage, sms_outbox):
    """STOP to the buyer line, then a text to the seller line (the thread now replies from there)
    and an agent records consent: the buyer line stays opted out until the caller texts START."""
    seller_line = line_by_number(number="+15555550110")
    lead = missed_call()
    text("STOP")
    inbound_sms_record(line=seller_line, message_sid=new_sid("SM"), from_number=CALLER, body="Selling too, actually", media_urls=[])
    consent_record_by_agent(actor=agent("tess@example.com"), lead=lead, action="opt_in", note="Said on the phone: text me")
    buyer_line = line_by_number(number=DOWNTOWN_BUYER_LINE)
    assert text_gate(lead=lead, line=buyer_line, kind=Message.Kind.REPLY, at=timezone.now()).rule is Rule.OPTED_OUT
    assert text_gate(lead=lead, line=seller_line, kind=Message.Kind.REPLY, at=timezone.now()).allowed


def test_only_a_manager_lifts_an_opt_out_recorded_for_the_brokerage(brokerage, sms_outbox):
    lead = missed_call()
    ann, tess = agent(lead.assigned_agent.user.email), agent("tess@example.com")
    consent_record_by_agent(actor=ann, lead=lead, action="opt_out", note="Asked on the phone to stop")
    with pytest.raises(ActionRefused, match="team leader or broker"):
        consent_record_by_agent(actor=ann, lead=lead, action="opt_in", note="Changed their mind")
    consent_record_by_agent(actor=tess, lead=lead, action="opt_in", note="Called back: wants texts again")
    assert text_gate(lead=lead, line=lead.line, kind=Message.Kind.REPLY, at=timezone.now()).allowed


def test_an_opt_out_confirmed_by_an_agent_hours_later_gets_no_confirmation_text(brokerage, sms_outbox):
    with time_machine.travel(dt.datetime(2026, 11, 24, 10, 0, tzinfo=EASTERN), tick=False) as clock:
        lead = missed_call()
        send_queued()
        message = text("stop by later?")
        clock.shift(dt.timedelta(hours=3))
        revocation_review(actor=agent("tess@example.com"), lead=lead, message_id=message.pk, opted_out=True)
    assert ConsentEvent.objects.filter(kind=ConsentEvent.Kind.OPT_OUT).count() == 1
    assert not Message.objects.filter(kind=Message.Kind.OPT_OUT_CONFIRMATION).exists()


def test_a_text_that_may_be_a_stop_releases_no_held_text(brokerage, sms_outbox):
    with time_machine.travel(dt.datetime(2026, 11, 24, 12, 0, tzinfo=EASTERN), tick=False):
        lead = missed_call()
        send_queued()
    with time_machine.travel(dt.datetime(2026, 11, 24, 23, 0, tzinfo=EASTERN), tick=False):
        held = agent_reply_send(agent=agent(lead.assigned_agent.user.email), lead=lead, body="New listing on Elm St!")
        message_send(message_id=held.pk)
        text("who is this? wrong number?")
        held.refresh_from_db()
        assert held.status == Message.Status.QUEUED and held.next_attempt_at == dt.datetime(2026, 11, 25, 8, 0, tzinfo=EASTERN)
        message_send(message_id=held.pk)
    held.refresh_from_db()
    assert held.status == Message.Status.QUEUED and len(sms_outbox) == 1  # the text-back only
