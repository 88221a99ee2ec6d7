"""The escalation ladder under a controlled clock: the window, each rung, the business-hours
pause, what stops it, and two sweepers at once."""

import datetime as dt
import threading

import pytest
import time_machine
from django.db import connection

from conftest import CALLER, DOWNTOWN_BUYER_LINE, new_sid
from inbox.services import agent_reply_send
from leads.models import Lead, LeadEvent, Message
from leads.services import inbound_sms_record, lead_deadline_pass, missed_call_record
from leads.tasks import escalation_sweep_task
from routing.models import Agent, Office, PoolMember, RoutingRule
from routing.selectors import line_by_number

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)  # a Wednesday, 10 am in New York


def agent(name: str) -> Agent:
    return Agent.objects.select_related("user", "office").get(user__email=f"{name}@example.com")


def miss(at: dt.datetime = T0, phone: str = CALLER) -> Lead:
    with time_machine.travel(at, tick=False):
        missed_call_record(line=line_by_number(number=DOWNTOWN_BUYER_LINE), call_sid=new_sid("CA"), from_number=phone, reason="no_answer")
    return Lead.objects.select_related("assigned_agent").get(phone=phone)


def sweep(at: dt.datetime) -> int:
    with time_machine.travel(at, tick=False):
        return escalation_sweep_task()


def escalations(lead: Lead) -> list[LeadEvent]:
    return list(lead.events.filter(kind=LeadEvent.Kind.ESCALATED).select_related("agent", "previous_agent").order_by("id"))


def minutes(n: float) -> dt.timedelta:
    return dt.timedelta(minutes=n)


def test_it_waits_the_offices_window_before_escalating(brokerage):
    lead = miss()
    assert lead.assigned_agent.name == "Ann Lee" and lead.escalation_due_at == T0 + minutes(10)
    assert sweep(T0 + minutes(9, )) == 0
    assert sweep(T0 + minutes(10)) == 1
    lead.refresh_from_db()
    assert lead.assigned_agent.name == "Ben Ortiz" and lead.escalation_step == 1 and lead.escalated_at == T0 + minutes(10)
    (step,) = escalations(lead)
    assert step.previous_agent.name == "Ann Lee" and step.agent.name == "Ben Ortiz"
    assert step.detail["rung"] == "next agent in the pool" and step.text.startswith("No reply for 10 min")


def test_it_climbs_every_rung_and_never_stops_while_the_lead_waits(brokerage, live_events, django_capture_on_commit_callbacks):
    Agent.objects.update(sms_alerts=True)
    lead = miss()
    with time_machine.travel(T0, tick=False):  # Channels forgets group members after a day of the clock
        live_events.join(f"office.{lead.office_id}")
    toasts = []
    for n in range(1, 6):
        with django_capture_on_commit_callbacks(execute=True):
            assert sweep(T0 + minutes(10 * n)) == 1
        toasts.append([e["alert"] for e in live_events.drain() if "alert" in e])
    lead.refresh_from_db()
    steps = escalations(lead)
    assert [(e.detail["rung"], e.agent.name if e.agent else None) for e in steps] == [
        ("next agent in the pool", "Ben Ortiz"),
        ("team leader", "Tess Morgan"),
        ("broker", "Bree Adams"),
        ("still waiting", None),
        ("still waiting", None),
    ]
    assert lead.assigned_agent.name == "Bree Adams" and lead.escalation_step == 5
    assert lead.escalation_due_at == T0 + minutes(60)  # and the clock keeps running
    assert steps[3].detail["alerted"] == ["Tess Morgan"]  # the broker has it; the team leader hears again
    alerted = list(Message.objects.filter(kind=Message.Kind.AGENT_ALERT).order_by("id").values_list("to_number", "body"))
    assert [number for number, _ in alerted] == [
        agent(name).phone for name in ("ann", "ben", "tess", "bree", "tess", "tess")
    ]
    assert "has waited 20 min for a reply" in alerted[2][1]
    assert toasts[0] == [{"agent_ids": [agent("ben").pk], "title": "Escalated: waiting 10 min for a reply"}]
    assert toasts[4] == [{"agent_ids": [agent("tess").pk], "title": "Escalated: waiting 50 min for a reply"}]


def test_the_last_rung_can_be_the_office_pond(brokerage):
    Office.objects.filter(name="Downtown").update(escalation_final="pond", escalation_agent_steps=0)
    lead = miss()
    sweep(T0 + minutes(10))
    sweep(T0 + minutes(20))
    lead.refresh_from_db()
    assert [e.detail["rung"] for e in escalations(lead)] == ["team leader", "office pond"]
    assert lead.assigned_agent is None and escalations(lead)[1].detail["alerted"] == ["Ann Lee", "Ben Ortiz", "Tess Morgan"]


def test_a_rung_with_nobody_is_skipped_with_the_reason(brokerage):
    catch_all = RoutingRule.objects.get(office__name="Downtown", is_catch_all=True)
    for name in ("ann", "ben"):
        PoolMember.objects.create(rule=catch_all, agent=agent(name))
    Agent.objects.filter(user__email="ben@example.com").update(on_duty=False)
    lead = miss()
    sweep(T0 + minutes(10))
    (step,) = escalations(lead)
    assert step.detail["rung"] == "team leader" and step.agent.name == "Tess Morgan"
    assert {"agent": "Ben Ortiz", "reason": "off duty"} in step.detail["skipped"]


def test_an_agents_reply_stops_the_ladder(brokerage):
    lead = miss()
    sweep(T0 + minutes(10))
    lead.refresh_from_db()
    with time_machine.travel(T0 + minutes(12), tick=False):
        agent_reply_send(agent=lead.assigned_agent, lead=lead, body="Hi! This is Ben. When can we talk?")
    lead.refresh_from_db()
    assert lead.escalation_due_at is None and lead.escalation_step == 0
    assert sweep(T0 + minutes(60)) == 0 and len(escalations(lead)) == 1


def test_a_new_unanswered_text_starts_a_fresh_window(brokerage):
    lead = miss()
    with time_machine.travel(T0 + minutes(2), tick=False):
        agent_reply_send(agent=lead.assigned_agent, lead=lead, body="Hi, Ann here!")
    with time_machine.travel(T0 + minutes(30), tick=False):
        inbound_sms_record(line=line_by_number(number=DOWNTOWN_BUYER_LINE), message_sid=new_sid("SM"), from_number=CALLER,
                           body="Can I see it Saturday?", media_urls=[])
    lead.refresh_from_db()
    assert lead.assigned_agent.name == "Ann Lee" and lead.escalation_due_at == T0 + minutes(40)
    assert sweep(T0 + minutes(39)) == 0 and sweep(T0 + minutes(40)) == 1


def test_more_texts_while_waiting_do_not_move_the_deadline(brokerage):
    lead = miss()
    with time_machine.travel(T0 + minutes(5), tick=False):
        inbound_sms_record(line=line_by_number(number=DOWNTOWN_BUYER_LINE), message_sid=new_sid("SM"), from_number=CALLER,
                           body="Hello?", media_urls=[])
    lead.refresh_from_db()
    assert lead.escalation_due_at == T0 + minutes(10)


def test_the_clock_can_pause_outside_business_hours(brokerage):
    Office.objects.filter(name="Downtown").update(
        business_days=[0, 1, 2, 3, 4], opens_at=dt.time(9), closes_at=dt.time(17), escalation_business_hours_only=True,
    )
    friday_455_pm = dt.datetime(2026, 11, 27, 21, 55, tzinfo=dt.UTC)  # 4:55 pm in New York
    lead = miss(at=friday_455_pm)
    monday_905_am = dt.datetime(2026, 11, 30, 14, 5, tzinfo=dt.UTC)
    assert lead.escalation_due_at == monday_905_am  # 5 minutes on Friday, 5 on Monday morning
    assert sweep(monday_905_am - minutes(1)) == 0 and sweep(monday_905_am) == 1


def test_the_clock_runs_around_the_clock_by_default(brokerage):
    Office.objects.filter(name="Downtown").update(business_days=[0, 1, 2, 3, 4], opens_at=dt.time(9), closes_at=dt.time(17))
    friday_455_pm = dt.datetime(2026, 11, 27, 21, 55, tzinfo=dt.UTC)
    assert miss(at=friday_455_pm).escalation_due_at == friday_455_pm + minutes(10)


def test_a_step_happens_once_however_often_it_is_asked_for(brokerage):
    lead = miss()
    with time_machine.travel(T0 + minutes(10), tick=False):
        assert lead_deadline_pass(lead_id=lead.pk) is not None
        assert lead_deadline_pass(lead_id=lead.pk) is None  # a second worker, or a second sweep's task
    assert len(escalations(lead)) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="real row-level concurrency needs PostgreSQL")
def test_two_sweepers_at_once_escalate_each_lead_once(brokerage):
    leads = [miss(phone=f"+1555557{n:04d}") for n in range(12)]
    barrier, errors = threading.Barrier(2), []

    def sweeper():
        from django.db import connections

        try:
            barrier.wait()
            sweep(T0 + minutes(10))
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sweeper) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert LeadEvent.objects.filter(kind=LeadEvent.Kind.ESCALATED).count() == len(leads)
    assert sorted(Lead.objects.values_list("escalation_step", flat=True)) == [1] * len(leads)


def test_the_sweep_hands_due_leads_to_the_workers_in_batches(brokerage, monkeypatch):
    import leads.tasks

    due = [miss(phone=f"+1555558{n:04d}") for n in range(7)]
    batches = []
    monkeypatch.setattr(leads.tasks, "DEADLINE_BATCH", 3)
    monkeypatch.setattr(leads.tasks, "enqueue_lead_deadlines", batches.append)
    assert sweep(T0 + minutes(10)) == 7
    assert [len(batch) for batch in batches] == [3, 3, 1]
    assert sorted(i for batch in batches for i in batch) == sorted(lead.pk for lead in due)


def test_one_leads_failure_does_not_hold_up_the_rest_of_its_batch(brokerage, monkeypatch):
    import leads.tasks

    first, second = miss(phone="+15555580001"), miss(phone="+15555580002")
    real = leads.tasks.lead_deadline_pass

    def flaky(*, lead_id):
        if lead_id == first.pk:
            raise RuntimeError("database blinked")
        return real(lead_id=lead_id)

    monkeypatch.setattr(leads.tasks, "lead_deadline_pass", flaky)
    with time_machine.travel(T0 + minutes(10), tick=False):
        leads.tasks.lead_deadlines_task([first.pk, second.pk])
    assert len(escalations(first)) == 0 and len(escalations(second)) == 1
    assert Lead.objects.get(pk=first.pk).escalation_due_at == T0 + minutes(10)  # still due: the next sweep retries it
