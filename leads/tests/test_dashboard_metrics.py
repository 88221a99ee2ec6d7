"""The dashboard's numbers on the hand-built day (tests/dashboard_day.py), every figure exact."""

import datetime as dt

import pytest

from inbox.tests.conftest import agent
from leads.metrics import dashboard, dashboard_lead_ids, percentile
from tests.dashboard_day import NY, at

pytestmark = pytest.mark.django_db


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


def test_the_weekly_trend_adds_up_each_week_from_monday(day):
    fortnight = dashboard(viewer=agent("bree@example.com"), start=at(0) - dt.timedelta(days=5), end=at(0) + dt.timedelta(days=9), tz=NY)
    # Wed Oct 28 .. Tue Nov 10: the first and last weeks are partial, each labelled by its Monday.
    assert [(d.month, d.day, missed, recovered) for d, missed, recovered in fortnight.weeks] == [
        (10, 26, 0, 0), (11, 2, 5, 3), (11, 9, 0, 0),
    ]


def test_the_leaderboard_ranks_recovery_first_then_speed():
    from leads.metrics import MetricRow, leaderboard

    def agent_row(label, missed, recovered, response):
        return MetricRow(key=label, label=label, missed_calls=missed, recovered=recovered, response=response)

    rows = [
        agent_row("Ann", 4, 2, [600]), agent_row("Ben", 4, 3, [900]), agent_row("Cara", 2, 1, [60]),
        agent_row("Dan", 0, 0, []), agent_row("Eve", 4, 3, [300]),
    ]
    assert [r.label for r in leaderboard(rows)] == ["Eve", "Ben", "Cara", "Ann", "Dan"]


def test_an_agent_who_texts_before_the_caller_replies_answered_them(brokerage, sms_outbox):
    """Missed 9:00; the agent texts 9:04 unprompted; the caller answers 9:30: a 4-minute response."""
    import time_machine

    from conftest import DOWNTOWN_BUYER_LINE, new_sid
    from inbox.services import agent_reply_send
    from leads.models import Lead
    from leads.services import inbound_sms_record, message_send, missed_call_record
    from routing.selectors import line_by_number

    line = line_by_number(number=DOWNTOWN_BUYER_LINE)
    with time_machine.travel(at(9), tick=False) as clock:
        missed_call_record(line=line, call_sid=new_sid("CA"), from_number="+15555551009", reason="no_answer")
        lead = Lead.objects.get(phone="+15555551009")
        clock.move_to(at(9, 4))
        message_send(message_id=agent_reply_send(agent=agent("tess@example.com"), lead=lead, body="Hi! Saw your call").pk)
        clock.move_to(at(9, 30))
        inbound_sms_record(line=line, message_sid=new_sid("SM"), from_number=lead.phone, body="Yes! Still for sale?", media_urls=[])
    total = dashboard(viewer=agent("bree@example.com"), start=at(0), end=at(23)).total
    assert total.response == [240] and total.never_answered == 0 and total.recovered == 1
