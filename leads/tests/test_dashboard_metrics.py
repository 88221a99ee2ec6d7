"""The dashboard's numbers on a hand-built day, every figure exact. The day is made the way
production makes it: the real services, with the clock under control.

Downtown, Monday Nov 2 2026 (New York):
  A 10:00 missed; text-back 10:00:02, delivered; A texts 10:05; an agent answers 10:08; appointment.
  B 11:00 missed; text-back 11:00:01; nobody ever answers; escalates 11:11.
  C 11:50 texts STOP before ever being texted; 12:00 missed: the text-back is stopped by the gate.
  D 13:00 missed; text-back 13:00:03; calls again 13:20 and an agent picks up.
  E 14:00 missed; text-back 14:00:01; escalates 14:11; E texts 14:20; an agent answers 14:25.
"""

import datetime as dt
import zoneinfo

import pytest
import time_machine

from conftest import DOWNTOWN_BUYER_LINE, new_sid
from inbox.services import agent_reply_send, lead_outcome_set
from inbox.tests.conftest import agent
from leads.metrics import dashboard, dashboard_lead_ids, percentile
from leads.models import Lead, Message
from leads.services import (
    call_incoming_record, dial_outcome_record, inbound_sms_record, lead_deadline_pass, message_send,
    message_status_record, missed_call_record,
)
from routing.selectors import line_by_number

pytestmark = pytest.mark.django_db
NY = zoneinfo.ZoneInfo("America/New_York")
A, B, C, D, E = (f"+1555555{n}" for n in (1001, 1002, 1003, 1004, 1005))


def at(hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, 2, hour, minute, second, tzinfo=NY)


@pytest.fixture
def day(brokerage, sms_outbox):
    line = line_by_number(number=DOWNTOWN_BUYER_LINE)
    tess = agent("tess@example.com")

    def missed(phone):
        missed_call_record(line=line, call_sid=new_sid("CA"), from_number=phone, reason="no_answer")
        return Lead.objects.get(phone=phone)

    def send_textback(lead):
        return message_send(message_id=lead.messages.get(kind=Message.Kind.TEXTBACK).pk)

    def text(phone, body):
        inbound_sms_record(line=line, message_sid=new_sid("SM"), from_number=phone, body=body, media_urls=[])

    def reply(lead):
        message_send(message_id=agent_reply_send(agent=tess, lead=lead, body="Happy to help!").pk)

    with time_machine.travel(at(10), tick=False) as clock:
        a = missed(A)
        clock.move_to(at(10, 0, 2))
        message_status_record(provider_sid=send_textback(a).provider_sid, status="delivered", error_code="")
        clock.move_to(at(10, 5))
        text(A, "Is it still available?")
        clock.move_to(at(10, 8))
        reply(a)
        clock.move_to(at(10, 30))
        lead_outcome_set(actor=tess, lead=a, outcome="appointment", appointment_at=at(17))

        clock.move_to(at(11))
        b = missed(B)
        clock.move_to(at(11, 0, 1))
        send_textback(b)
        clock.move_to(at(11, 11))
        assert lead_deadline_pass(lead_id=b.pk) is not None

        clock.move_to(at(11, 50))
        text(C, "STOP")
        clock.move_to(at(12))
        c = missed(C)
        assert send_textback(c).status == Message.Status.CANCELED

        clock.move_to(at(13))
        d = missed(D)
        clock.move_to(at(13, 0, 3))
        send_textback(d)
        clock.move_to(at(13, 20))
        call_sid = new_sid("CA")
        call_incoming_record(line=line, call_sid=call_sid, from_number=D, rang_agent_ids=[tess.pk], missed_reason="")
        dial_outcome_record(line=line, call_sid=call_sid, from_number=D, dial_status="completed", dial_call_sid=new_sid("CA"), dial_duration=90)

        clock.move_to(at(14))
        e = missed(E)
        clock.move_to(at(14, 0, 1))
        send_textback(e)
        clock.move_to(at(14, 11))
        assert lead_deadline_pass(lead_id=e.pk) is not None
        clock.move_to(at(14, 20))
        text(E, "Sorry, was driving. Can I see it Saturday?")
        clock.move_to(at(14, 25))
        reply(e)
    return {"a": a, "b": b, "c": c, "d": d, "e": e}


def monday(viewer_email="bree@example.com", **kwargs):
    return dashboard(viewer=agent(viewer_email), start=at(0), end=at(0) + dt.timedelta(days=1), **kwargs)


def test_it_counts_the_day_exactly(day):
    total = monday().total
    assert (total.inbound_calls, total.missed_calls, total.missed_rate) == (6, 5, 83.3)
    assert (total.textbacks_sent, total.textbacks_delivered, total.delivered_rate) == (4, 1, 25.0)
    assert (total.replied, total.reply_rate) == (2, 50.0)  # A and E; C's STOP came before the call
    assert sorted(total.speed_to_lead) == [1, 1, 2, 3]
    assert (total.speed_to_lead_p50, total.speed_to_lead_p90) == (1.5, 2.7)
    # A: reply 10:05 -> agent 10:08; D: missed 13:00 -> answered 13:20; E: reply 14:20 -> agent 14:25.
    assert sorted(total.response) == [180, 300, 1200] and total.never_answered == 2  # B and C
    assert (total.response_p50, total.response_p90) == (300, 1020)
    assert (total.recovered, total.recovery_rate) == (3, 60.0)  # A and E by text, D by phone
    assert (total.appointments, total.appointment_rate) == (1, 20.0)
    assert (total.opt_outs, total.landlines, total.escalations) == (0, 0, 2)


def test_it_splits_by_office_and_line_and_the_rows_add_up(day):
    by_office = monday(dimension="office")
    assert [(r.label, r.missed_calls, r.recovered) for r in by_office.rows] == [("Downtown", 5, 3)]
    by_type = monday(dimension="lead_type")
    assert [(r.label, r.inbound_calls) for r in by_type.rows] == [("Buyer", 6)]
    by_agent = monday(dimension="agent")
    assert sum(r.missed_calls for r in by_agent.rows) == 5 and sum(r.escalations for r in by_agent.rows) == 2


def test_business_hours_count_only_the_office_day(day):
    from routing.models import Office

    Office.objects.filter(name="Downtown").update(opens_at=dt.time(13, 10), closes_at=dt.time(18))
    total = monday().total
    # A's 3 minutes fell before opening; D's 20 minutes from 13:00 count from 13:10; E's in full.
    assert sorted(total.response_business) == [0, 300, 600]


def test_a_team_leader_reads_their_office_and_an_agent_their_own_card(day):
    lakeside = monday("bree@example.com", dimension="office", office_id=None)
    assert {r.label for r in lakeside.rows} == {"Downtown"}
    assert monday("dan@example.com", dimension="office").total.missed_calls == 0  # Lakeside's agent: none of theirs
    tess_view = monday("tess@example.com", dimension="office")
    assert tess_view.total.missed_calls == 5
    card = monday(day["a"].assigned_agent.user.email, dimension="office")
    assert card.dimension == "agent" and all(r.key == str(day["a"].assigned_agent.pk) for r in card.rows)


def test_a_period_outside_the_day_is_empty(day):
    later = dashboard(viewer=agent("bree@example.com"), start=at(0) + dt.timedelta(days=1), end=at(0) + dt.timedelta(days=2))
    assert later.total.missed_calls == 0 and later.total.missed_rate is None and later.rows == []


@pytest.mark.parametrize("values,pct,expected", [
    ([], 50, None), ([5], 90, 5), ([1, 2, 3, 4], 50, 2.5), ([1, 2, 3, 4], 90, 3.7), ([10, 1], 50, 5.5),
])
def test_percentiles_interpolate_like_percentile_cont(values, pct, expected):
    assert percentile(values, pct) == expected


@pytest.mark.parametrize("drill,expected", [
    ("missed", "edcba"), ("texted", "edba"), ("delivered", "a"), ("replied", "ea"), ("never_answered", "cb"),
    ("recovered", "eda"), ("appointment", "a"), ("opted_out", ""), ("landline", ""),
])
def test_the_drill_down_lists_the_leads_behind_each_number(day, drill, expected):
    ids = dashboard_lead_ids(viewer=agent("bree@example.com"), start=at(0), end=at(23), dimension="office", key="", drill=drill)
    assert ids == [day[name].pk for name in expected]


def test_the_trend_has_every_day_of_the_period(day):
    week = dashboard(viewer=agent("bree@example.com"), start=at(0) - dt.timedelta(days=2), end=at(0) + dt.timedelta(days=1), tz=NY)
    assert [(d.day, missed, recovered) for d, missed, recovered in week.days] == [(31, 0, 0), (1, 0, 0), (2, 5, 3)]
