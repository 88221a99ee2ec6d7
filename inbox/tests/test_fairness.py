"""The fairness report: each pool's actual shares against its weights, and escalations suffered,
for team leaders (their office) and brokers (every office), never for agents."""

import datetime as dt
import zoneinfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conftest import LAKESIDE_LINE
from inbox.tests.conftest import agent, lead_for, signed_in
from leads.metrics import ReportPeriod, fairness_report
from leads.models import LeadEvent
from routing.models import Agent, Office, PoolMember, RoutingRule
from routing.selectors import rule_pool

pytestmark = pytest.mark.django_db

START = dt.datetime(2025, 5, 1, tzinfo=dt.UTC)
END = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
INSIDE = dt.datetime(2025, 5, 15, 12, tzinfo=dt.UTC)
BEFORE = dt.datetime(2025, 4, 20, tzinfo=dt.UTC)
AFTER = dt.datetime(2025, 6, 3, tzinfo=dt.UTC)

_phones = iter(range(5555553000, 5555559999))


def new_lead(line=None):
    return lead_for(phone=f"+1{next(_phones)}", **({"line": line} if line else {}))


def event(kind, *, at, agent_email=None, previous_email=None, rule=None, line=None):
    """A timeline event as the router or the escalation ladder records it, back-dated to `at`."""
    made = LeadEvent.objects.create(
        lead=new_lead(line), kind=kind, rule=rule,
        agent=agent(agent_email) if agent_email else None,
        previous_agent=agent(previous_email) if previous_email else None,
    )
    LeadEvent.objects.filter(pk=made.pk).update(created_at=at)
    return made


def assigned(email, rule, *, at=INSIDE, line=None):
    return event(LeadEvent.Kind.ASSIGNED, at=at, agent_email=email, rule=rule, line=line)


def escalated(from_email, *, at=INSIDE, to_email=None, rule=None, line=None):
    return event(LeadEvent.Kind.ESCALATED, at=at, agent_email=to_email, previous_email=from_email, rule=rule, line=line)


def downtown():
    return Office.objects.get(name="Downtown")


def lakeside():
    return Office.objects.get(name="Lakeside")


def catch_all(office):
    return RoutingRule.objects.get(office=office, is_catch_all=True)


@pytest.fixture
def buyers(brokerage):
    """Downtown's buyer pool: Ann weighs 3 (75%), Ben 1 (25%)."""
    rule = RoutingRule.objects.create(office=downtown(), name="Buyers", position=10)
    PoolMember.objects.create(rule=rule, agent=agent("ann@example.com"), weight=3)
    PoolMember.objects.create(rule=rule, agent=agent("ben@example.com"))  # the agent's own weight, 1
    return rule


@pytest.fixture
def history(buyers):
    """May 2025 in both offices, with events on either side of the month and events that are not
    routed assignments."""
    everyone = catch_all(downtown())
    assigned("ann@example.com", buyers)
    assigned("ann@example.com", buyers, at=START)  # the first instant is in
    assigned("ben@example.com", buyers)
    assigned("tess@example.com", buyers)  # the rule's fallback: Tess is not in the pool
    for _ in range(3):
        assigned("ann@example.com", buyers, at=BEFORE)
    assigned("ben@example.com", buyers, at=END)  # the end is out
    assigned("ben@example.com", buyers, at=AFTER)
    for email in ["ann@example.com", "ben@example.com", "tess@example.com"]:
        assigned(email, everyone)
    # Not the rule's doing: claims, transfers, hand assignments, offers to the pool.
    event(LeadEvent.Kind.CLAIMED, at=INSIDE, agent_email="ben@example.com")
    event(LeadEvent.Kind.TRANSFERRED, at=INSIDE, agent_email="ben@example.com", previous_email="ann@example.com")
    event(LeadEvent.Kind.ASSIGNED, at=INSIDE, agent_email="ben@example.com")
    event(LeadEvent.Kind.OFFERED, at=INSIDE, rule=buyers)
    # Escalations: Ann loses two leads (from two rules), Ben one in May and one in April.
    escalated("ann@example.com", to_email="ben@example.com", rule=buyers)
    escalated("ann@example.com", to_email="tess@example.com", rule=everyone)
    escalated("ben@example.com", to_email="tess@example.com", rule=buyers)
    escalated("ben@example.com", to_email="tess@example.com", rule=buyers, at=BEFORE)
    escalated(None, to_email="tess@example.com", rule=everyone)  # from the pond: nobody lost it
    # Lakeside: Dan alone in its catch-all.
    assigned("dan@example.com", catch_all(lakeside()), line=LAKESIDE_LINE)
    assigned("dan@example.com", catch_all(lakeside()), line=LAKESIDE_LINE)
    escalated("dan@example.com", to_email="bree@example.com", line=LAKESIDE_LINE)
    return buyers


def table(pool):
    return {
        row.agent.name: (row.weight, round(row.configured_share, 1), row.assignments,
                         None if row.actual_share is None else round(row.actual_share, 1),
                         None if row.difference is None else round(row.difference, 1), row.flagged)
        for row in pool.rows
    }


def report_for(email, **kwargs):
    return fairness_report(viewer=agent(email), start=START, end=END, **kwargs)


def test_it_compares_each_agents_routed_share_in_the_period_with_their_weight(history):
    office = report_for("tess@example.com")[0]
    buyers, everyone = office.pools
    assert (buyers.rule.name, buyers.assignments, buyers.weighted) == ("Buyers", 4, True)
    assert table(buyers) == {
        #              weight, configured, routed, actual, difference, flagged
        "Ann Lee": (3, 75.0, 2, 50.0, -25.0, True),
        "Ben Ortiz": (1, 25.0, 1, 25.0, 0.0, False),
        "Tess Morgan": (None, 0.0, 1, 25.0, 25.0, True),
    }
    assert [row.in_pool for row in buyers.rows] == [True, True, False]
    assert everyone.rule.is_catch_all and everyone.assignments == 3
    assert table(everyone) == {
        "Ann Lee": (1, 33.3, 1, 33.3, 0.0, False),
        "Ben Ortiz": (1, 33.3, 1, 33.3, 0.0, False),
        "Tess Morgan": (1, 33.3, 1, 33.3, 0.0, False),
    }


def test_it_counts_an_escalation_against_the_agent_who_lost_the_lead_once_per_office(history):
    office = report_for("tess@example.com")[0]
    escalations = {row.agent.name: (row.escalations, row.assignments) for row in office.escalations}
    # Ann's two escalations came through two rules; they are counted once each, in the office.
    assert escalations == {"Ann Lee": (2, 3), "Ben Ortiz": (1, 2), "Tess Morgan": (0, 2)}
    assert [row.agent.name for row in office.escalations][0] == "Ann Lee"
    assert office.escalation_count == 3


def test_it_reports_each_office_on_its_own(history):
    report = report_for("bree@example.com")
    assert [office.office.name for office in report] == ["Downtown", "Lakeside"]
    lakeside_report = report[1]
    assert [pool.rule.name for pool in lakeside_report.pools] == ["Everyone else"]
    assert table(lakeside_report.pools[0]) == {"Dan Kim": (1, 100.0, 2, 100.0, 0.0, False)}
    assert {row.agent.name: row.escalations for row in lakeside_report.escalations} == {"Dan Kim": 1}


def test_it_uses_the_same_pools_as_routing(history):
    """An empty pool is the office's agents and team leaders, each with their own weight."""
    Agent.objects.filter(user__email="ben@example.com").update(weight=4)
    for office in report_for("bree@example.com"):
        for pool in office.pools:
            expected = [(member.pk, weight) for member, weight in rule_pool(pool.rule)]
            assert [(row.agent.pk, row.weight) for row in pool.rows if row.in_pool] == expected


def test_it_shows_retired_rules_only_for_the_leads_they_routed(history):
    quiet = RoutingRule.objects.create(office=downtown(), name="Old sellers", position=20, active=False)
    PoolMember.objects.create(rule=quiet, agent=agent("ben@example.com"))
    RoutingRule.objects.filter(pk=history.pk).update(active=False)
    names = [pool.rule.name for pool in report_for("tess@example.com")[0].pools]
    assert names == ["Buyers", "Everyone else"]


def test_it_flags_nobody_in_a_rule_that_does_not_share_by_weight(history):
    RoutingRule.objects.filter(pk=history.pk).update(strategy=RoutingRule.Strategy.FIRST_TO_CLAIM)
    buyers = report_for("tess@example.com")[0].pools[0]
    assert not buyers.weighted and not any(row.flagged for row in buyers.rows)


def test_it_leaves_shares_blank_for_a_pool_that_routed_nothing(buyers):
    office = report_for("tess@example.com")[0]
    assert office.assignments == 0
    assert table(office.pools[0])["Ann Lee"] == (3, 75.0, 0, None, None, False)


def test_it_reports_nothing_to_agents(history):
    assert report_for("ann@example.com") == []


def test_it_reports_only_offices_the_viewer_may_read(history):
    assert report_for("tess@example.com", office_id=lakeside().pk) == []
    assert [office.office.name for office in report_for("bree@example.com", office_id=lakeside().pk)] == ["Lakeside"]


def test_it_takes_a_fixed_number_of_queries_whatever_the_number_of_events(history, django_assert_max_num_queries):
    viewer = agent("bree@example.com")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            fairness_report(viewer=viewer, start=START, end=END)
        return len(captured)

    before = queries()
    extra = RoutingRule.objects.create(office=lakeside(), name="Sellers", position=5)
    PoolMember.objects.create(rule=extra, agent=agent("dan@example.com"), weight=2)
    for _ in range(10):
        assigned("ann@example.com", history)
        assigned("dan@example.com", extra, line=LAKESIDE_LINE)
        escalated("ben@example.com")
    assert queries() == before
    with django_assert_max_num_queries(7):
        fairness_report(viewer=viewer, start=START, end=END)


# --- the period ----------------------------------------------------------------------------------

NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
NOW = dt.datetime(2025, 6, 10, 15, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    "params,days", [({}, 30), ({"period": "7"}, 7), ({"period": "90"}, 90), ({"period": "12"}, 30), ({"period": "x"}, 30)]
)
def test_it_reads_the_last_n_days(params, days):
    period = ReportPeriod.from_params(params, tz=NEW_YORK, now=NOW)
    assert (period.start, period.end, period.days) == (NOW - dt.timedelta(days=days), NOW, days)


def test_it_reads_whole_days_in_the_readers_time_zone_both_ends_included():
    period = ReportPeriod.from_params({"period": "custom", "from": "2025-05-01", "to": "2025-05-31"}, tz=NEW_YORK, now=NOW)
    assert period.start == dt.datetime(2025, 5, 1, 4, tzinfo=dt.UTC)
    assert period.end == dt.datetime(2025, 6, 1, 4, tzinfo=dt.UTC)
    assert (period.days, period.first_day, period.last_day) == (None, dt.date(2025, 5, 1), dt.date(2025, 5, 31))
    assert ReportPeriod.from_params({"from": "2025-05-31", "to": "2025-05-01"}, tz=NEW_YORK, now=NOW) == period


def test_it_lets_a_preset_win_over_dates_left_in_the_form():
    period = ReportPeriod.from_params({"period": "7", "from": "2025-01-01", "to": "2025-01-31"}, tz=NEW_YORK, now=NOW)
    assert period.days == 7


@pytest.mark.parametrize("params", [{"from": "yesterday"}, {"from": "0001-01-01"}, {"to": "9999-12-31"}])
def test_it_ignores_dates_it_cannot_use(params):
    assert ReportPeriod.from_params(params, tz=NEW_YORK, now=NOW).days == 30


# --- the page ------------------------------------------------------------------------------------


@pytest.fixture
def recent(buyers):
    """Eight days ago in Downtown and Lakeside: Ann got three of Buyers' four leads, Ben one."""
    week_ago = timezone.now() - dt.timedelta(days=8)
    for email in ["ann@example.com", "ann@example.com", "ann@example.com", "ben@example.com"]:
        assigned(email, buyers, at=week_ago)
    assigned("ben@example.com", buyers, at=timezone.now() - dt.timedelta(days=60))
    assigned("dan@example.com", catch_all(lakeside()), at=week_ago, line=LAKESIDE_LINE)
    escalated("ben@example.com", at=week_ago)
    return buyers


def test_it_shows_a_team_leader_their_office(recent):
    response = signed_in("tess@example.com").get("/reports/fairness/")
    assert response.status_code == 200
    [office] = response.context["report"]
    assert office.office.name == "Downtown" and office.pools[0].assignments == 4
    page = response.content.decode()
    assert "Buyers" in page and "Ann Lee" in page and "Lakeside" not in page and "Dan Kim" not in page
    assert 'id="report-office"' not in page  # one office: nothing to choose


def test_it_keeps_other_offices_from_a_team_leader_even_when_asked(recent):
    response = signed_in("tess@example.com").get("/reports/fairness/", {"office": lakeside().pk})
    assert response.status_code == 404
    assert b"Dan Kim" not in response.content


def test_it_shows_a_broker_every_office_and_one_when_chosen(recent):
    bree = signed_in("bree@example.com")
    response = bree.get("/reports/fairness/")
    assert [office.office.name for office in response.context["report"]] == ["Downtown", "Lakeside"]
    assert b'id="report-office"' in response.content and b"Dan Kim" in response.content
    response = bree.get("/reports/fairness/", {"office": lakeside().pk})
    assert [office.office.name for office in response.context["report"]] == ["Lakeside"]
    assert b"Ann Lee" not in response.content


@pytest.mark.parametrize("office", ["999999", "x"])
def test_it_answers_404_for_an_office_that_is_not_there(recent, office):
    assert signed_in("bree@example.com").get("/reports/fairness/", {"office": office}).status_code == 404


def test_it_refuses_agents(recent):
    response = signed_in("ann@example.com").get("/reports/fairness/")
    assert response.status_code == 403
    assert b"Buyers" not in response.content


def test_it_sends_strangers_to_the_login_page(recent, client):
    response = client.get("/reports/fairness/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_it_highlights_agents_far_off_their_share(recent):
    page = signed_in("tess@example.com").get("/reports/fairness/").content.decode()
    # Ann: 75% configured, 75% actual; Ben: 25% and 25%: nobody is off...
    assert 'class="is-off"' not in page
    assigned("ben@example.com", recent, at=timezone.now() - dt.timedelta(days=1))
    page = signed_in("tess@example.com").get("/reports/fairness/").content.decode()
    # ...then Ben's fifth lead: Ann 60% (-15 points), Ben 40% (+15 points).
    assert page.count('class="is-off"') == 2
    assert "-15.0 pts" in page and "+15.0 pts" in page


def test_it_counts_the_chosen_period(recent):
    tess = signed_in("tess@example.com")
    assert tess.get("/reports/fairness/", {"period": "7"}).context["report"][0].assignments == 0
    assert tess.get("/reports/fairness/", {"period": "90"}).context["report"][0].assignments == 5
    today = timezone.localdate(timezone=downtown().tz)
    response = tess.get("/reports/fairness/", {"from": (today - dt.timedelta(days=10)).isoformat(), "to": today.isoformat()})
    assert response.context["report"][0].assignments == 4
    assert response.context["period"].days is None


def test_it_says_so_when_nothing_was_routed(buyers):
    response = signed_in("bree@example.com").get("/reports/fairness/")
    assert response.status_code == 200
    assert b"No leads were routed in this period." in response.content
    assert b"<table" not in response.content


def test_it_renders_the_page_in_a_fixed_number_of_queries(recent, django_assert_max_num_queries):
    bree = signed_in("bree@example.com")
    bree.get("/reports/fairness/")
    for _ in range(20):
        assigned("ann@example.com", recent, at=timezone.now() - dt.timedelta(days=2))
        escalated("ann@example.com", at=timezone.now() - dt.timedelta(days=2))
    with django_assert_max_num_queries(12):
        assert bree.get("/reports/fairness/").status_code == 200


def test_it_links_the_report_from_the_inbox_for_team_leaders_and_brokers_only(brokerage):
    for email, linked in [("ann@example.com", False), ("tess@example.com", True), ("bree@example.com", True)]:
        page = signed_in(email).get("/").content.decode()
        assert ('href="/reports/fairness/"' in page) is linked, email
