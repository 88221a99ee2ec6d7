"""The follow-up sequence after an unanswered text-back: a call-back task at 15 minutes, an email
at 60 when the caller gave express consent and an address; cancelled by any reply or human
contact; deferred to the caller's daytime; each step in the thread."""

import datetime as dt

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from compliance.models import ConsentEvent
from compliance.services import consent_record
from conftest import CALLER, DOWNTOWN_BUYER_LINE, new_sid
from inbox.services import agent_reply_send
from inbox.tests.conftest import agent
from leads.follow_ups import follow_ups_run_due
from leads.models import FollowUp, Lead, LeadEvent, Message, Playbook
from leads.services import inbound_sms_record, message_send, missed_call_record
from leads.tasks import follow_ups_task
from routing.selectors import line_by_number

pytestmark = pytest.mark.django_db
# A Tuesday, 10:00 in New York (the caller's 555 number falls back to the office's zone).
MORNING = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)


def missed_call_texted_back(at: dt.datetime = MORNING, caller: str = CALLER) -> Lead:
    with time_machine.travel(at, tick=False):
        missed_call_record(line=line_by_number(number=DOWNTOWN_BUYER_LINE), call_sid=new_sid("CA"), from_number=caller, reason="no_answer")
        for pk in Message.objects.filter(status=Message.Status.QUEUED).values_list("pk", flat=True):
            message_send(message_id=pk)
    return Lead.objects.get(phone=caller)


def run_at(at: dt.datetime) -> int:
    with time_machine.travel(at, tick=False):
        return follow_ups_task()


def steps(lead: Lead) -> list[tuple[str, str]]:
    return list(lead.follow_ups.order_by("due_at").values_list("step", "status"))


def express_consent(email: str = "casey@example.com") -> None:
    Lead.objects.filter(phone=CALLER).update(email=email, name="Casey Jones")
    consent_record(
        phone=CALLER, sender=DOWNTOWN_BUYER_LINE, kind=ConsentEvent.Kind.EXPRESS_OPT_IN, source=ConsentEvent.Source.AGENT,
        note="Asked us to keep in touch by email and text",
    )


def test_an_unanswered_text_back_becomes_a_call_back_task_then_an_email(brokerage, sms_outbox):
    lead = missed_call_texted_back()
    express_consent()
    assert steps(lead) == [("call_back", "scheduled"), ("email", "scheduled")]
    assert run_at(MORNING + dt.timedelta(minutes=14)) == 0  # not due yet
    run_at(MORNING + dt.timedelta(minutes=15))
    lead.refresh_from_db()
    assert lead.call_back_since is not None and lead.call_back_reason == "No reply to the text-back in 15 minutes."
    assert steps(lead) == [("call_back", "done"), ("email", "scheduled")]
    run_at(MORNING + dt.timedelta(minutes=60))
    assert steps(lead) == [("call_back", "done"), ("email", "done")]
    [email] = mail.outbox
    assert email.to == ["casey@example.com"] and email.subject == "Harbor & Oak Realty: following up on your call"
    assert email.body.startswith("Hi Casey,") and DOWNTOWN_BUYER_LINE in email.body and "Ann Lee would love to help" in email.body
    assert email.reply_to == ["ann@example.com"]
    timeline = list(LeadEvent.objects.filter(lead=lead, kind__in=["follow_up", "call_back"]).values_list("text", flat=True))
    assert timeline == [
        "Follow-up: call them back. No reply to the text-back in 15 minutes.",
        "Email done: Emailed casey@example.com.",
    ]
    run_at(MORNING + dt.timedelta(minutes=61))
    assert len(mail.outbox) == 1  # once


def test_a_reply_cancels_the_rest_of_the_sequence(brokerage, sms_outbox):
    lead = missed_call_texted_back()
    with time_machine.travel(MORNING + dt.timedelta(minutes=5), tick=False):
        inbound_sms_record(line=line_by_number(number=DOWNTOWN_BUYER_LINE), message_sid=new_sid("SM"), from_number=CALLER, body="Hi!", media_urls=[])
    run_at(MORNING + dt.timedelta(minutes=15))
    assert steps(lead) == [("call_back", "canceled"), ("email", "canceled")]
    assert Lead.objects.get(pk=lead.pk).call_back_since is None
    assert LeadEvent.objects.get(lead=lead, kind="follow_up").text == "Follow-up stopped: the caller replied."


def test_an_agent_reply_cancels_the_sequence(brokerage, sms_outbox):
    lead = missed_call_texted_back()
    with time_machine.travel(MORNING + dt.timedelta(minutes=3), tick=False):
        agent_reply_send(agent=agent("ann@example.com"), lead=lead, body="Hi, Ann here. When suits you?")
    run_at(MORNING + dt.timedelta(minutes=15))
    assert steps(lead) == [("call_back", "canceled"), ("email", "canceled")]


def test_no_email_without_express_consent_or_an_address(brokerage, sms_outbox):
    lead = missed_call_texted_back()
    Lead.objects.filter(pk=lead.pk).update(email="casey@example.com")
    run_at(MORNING + dt.timedelta(minutes=60))
    assert steps(lead) == [("call_back", "done"), ("email", "skipped")]
    assert "express consent" in lead.follow_ups.get(step="email").note and mail.outbox == []

    FollowUp.objects.filter(lead=lead, step="email").update(status="scheduled", done_at=None)
    express_consent(email="")
    run_at(MORNING + dt.timedelta(minutes=61))
    assert lead.follow_ups.get(step="email").note == "No email address for the caller." and mail.outbox == []


def test_an_opted_out_caller_gets_no_call_back_task(brokerage, sms_outbox):
    lead = missed_call_texted_back()
    consent_record(phone=CALLER, sender=DOWNTOWN_BUYER_LINE, kind=ConsentEvent.Kind.OPT_OUT, source=ConsentEvent.Source.AGENT, note="asked")
    run_at(MORNING + dt.timedelta(minutes=15))
    assert steps(lead)[0] == ("call_back", "skipped") and Lead.objects.get(pk=lead.pk).call_back_since is None


def test_steps_due_at_night_wait_for_the_callers_morning(brokerage, sms_outbox):
    evening = dt.datetime(2026, 11, 25, 1, 50, tzinfo=dt.UTC)  # 8:50 pm in New York
    lead = missed_call_texted_back(at=evening)
    run_at(evening + dt.timedelta(minutes=15))  # 9:05 pm: outside calling hours
    follow_up = lead.follow_ups.get(step="call_back")
    assert follow_up.status == "scheduled" and follow_up.due_at == dt.datetime(2026, 11, 25, 13, 0, tzinfo=dt.UTC)
    assert "Quiet hours" in follow_up.note
    assert Lead.objects.get(pk=lead.pk).call_back_since is None
    run_at(dt.datetime(2026, 11, 25, 13, 0, tzinfo=dt.UTC))  # 8:00 am
    assert Lead.objects.get(pk=lead.pk).call_back_since is not None


def test_an_office_can_turn_the_sequence_off_or_change_its_minutes(brokerage, sms_outbox):
    office = line_by_number(number=DOWNTOWN_BUYER_LINE).office
    Playbook.objects.create(office=office, follow_up_enabled=False)
    assert steps(missed_call_texted_back()) == []
    Playbook.objects.filter(office=office).update(follow_up_enabled=True, call_back_after_minutes=5, email_after_minutes=30)
    lead = missed_call_texted_back(caller="+15555551299")
    assert [f.due_at - f.textback.queued_at for f in lead.follow_ups.order_by("due_at")] == [dt.timedelta(minutes=5), dt.timedelta(minutes=30)]


def test_a_failing_mail_server_leaves_the_step_for_the_next_sweep(brokerage, sms_outbox, settings):
    lead = missed_call_texted_back()
    express_consent()
    settings.EMAIL_BACKEND = "tests.failing_mail.FailingBackend"
    run_at(MORNING + dt.timedelta(minutes=60))
    assert lead.follow_ups.get(step="email").status == "scheduled"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert follow_ups_run_due(now=MORNING + dt.timedelta(minutes=61)) == 1
    assert lead.follow_ups.get(step="email").status == "done" and len(mail.outbox) == 1


def test_only_a_text_back_that_left_starts_a_sequence(brokerage, sms_outbox):
    consent_record(phone=CALLER, sender=DOWNTOWN_BUYER_LINE, kind=ConsentEvent.Kind.OPT_OUT, source=ConsentEvent.Source.AGENT, note="asked")
    lead = missed_call_texted_back()
    assert lead.messages.get(kind="textback").status == "canceled" and steps(lead) == []
    assert timezone.now()


def test_a_text_back_held_for_the_night_gives_the_caller_the_same_minutes_in_the_morning(brokerage, sms_outbox):
    from routing.models import Office

    Office.objects.update(quiet_hours_for_replies=True)
    night = dt.datetime(2026, 11, 25, 3, 0, tzinfo=dt.UTC)  # 10 pm in New York
    lead = missed_call_texted_back(at=night)
    assert lead.messages.get(kind="textback").status == "queued" and steps(lead) == []
    morning = dt.datetime(2026, 11, 25, 13, 0, tzinfo=dt.UTC)  # 8:00 am: the sweep sends it
    with time_machine.travel(morning, tick=False):
        message_send(message_id=lead.messages.get(kind="textback").pk)
    assert [f.due_at for f in lead.follow_ups.order_by("due_at")] == [morning + dt.timedelta(minutes=15), morning + dt.timedelta(minutes=60)]
