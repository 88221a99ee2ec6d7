"""The dashboard pages: who may read what, the CSV and the drill-down say the same as the page."""

import csv
import datetime as dt
import io

import pytest
import time_machine

from inbox.tests.conftest import agent, signed_in
from tests.dashboard_day import A, at

pytestmark = pytest.mark.django_db

MONDAY = {"period": "custom", "from": "2026-11-02", "to": "2026-11-02"}


def page(email, **params):
    return signed_in(email).get("/reports/dashboard/", {**MONDAY, **params})


def test_a_broker_reads_every_office_with_the_funnel_and_the_charts(day):
    response = page("bree@example.com")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Missed calls" in html and "Reached a human" in html and "<svg" in html
    assert ">Downtown<" in html and "Lakeside" in html  # the office picker


def test_a_team_leader_cannot_read_another_offices_numbers(day):
    lakeside = agent("dan@example.com").office
    assert page("tess@example.com", office=str(lakeside.pk)).status_code == 404
    response = signed_in("tess@example.com").get("/reports/dashboard/leads/", {**MONDAY, "office": str(lakeside.pk)})
    assert response.status_code == 404


def test_an_agent_sees_only_their_own_card(day):
    owner = day["a"].assigned_agent
    html = page(owner.user.email, by="office").content.decode()
    assert "Your numbers" in html and 'name="by"' not in html
    rows = list(csv.reader(io.StringIO(page(owner.user.email, format="csv").content.decode())))
    assert rows[0][0] == "Agent" and {r[0] for r in rows[1:-1]} == {owner.name} and rows[-1][0] == "All"


def test_the_csv_has_the_same_rows_as_the_page(day):
    response = page("bree@example.com", by="lead_type", format="csv")
    assert response["Content-Type"].startswith("text/csv") and "2026-11-02-to-2026-11-02" in response["Content-Disposition"]
    header, buyer, total = list(csv.reader(io.StringIO(response.content.decode())))
    assert header[:4] == ["Lead type", "Inbound calls", "Missed calls", "Missed %"]
    assert buyer[:3] == ["Buyer", "6", "5"] and total[0] == "All" and total[header.index("Recovered")] == "3"


def test_the_drill_down_lists_the_leads_behind_a_number(day):
    response = signed_in("bree@example.com").get("/reports/dashboard/leads/", {**MONDAY, "show": "recovered", "label": "All"})
    html = response.content.decode()
    assert response.status_code == 200 and "3 leads" in html
    assert html.index(day["e"].phone) < html.index(day["d"].phone) < html.index(A)
    assert signed_in("bree@example.com").get("/reports/dashboard/leads/", {"show": "nonsense"}).status_code == 404


def test_an_empty_period_says_so(day):
    html = page("bree@example.com", **{"from": "2026-10-01", "to": "2026-10-02"}).content.decode()
    assert "No calls in this period." in html


def test_the_trend_reads_per_day_or_per_week(day):
    html = page("bree@example.com").content.decode()
    assert "Missed calls and recovered, per day" in html and "trend=week" in html
    html = page("bree@example.com", trend="week").content.decode()
    assert "Missed calls and recovered, per week (from Monday)" in html and "trend=day" in html
    # Ninety points make a poor line: a long period starts per week.
    assert "per week (from Monday)" in page("bree@example.com", **{"from": "2026-09-01", "to": "2026-11-30"}).content.decode()


def test_each_row_shows_its_recovery_against_the_previous_period(day):
    from conftest import DOWNTOWN_BUYER_LINE, new_sid
    from leads.services import missed_call_record
    from routing.selectors import line_by_number

    with time_machine.travel(at(10) + dt.timedelta(days=1), tick=False):  # Tuesday: one call, not recovered
        missed_call_record(line=line_by_number(number=DOWNTOWN_BUYER_LINE), call_sid=new_sid("CA"), from_number="+15555550188", reason="no_answer")
    html = page("bree@example.com", **{"from": "2026-11-03", "to": "2026-11-03"}).content.decode()
    downtown = html[html.index("<th scope=\"row\">Downtown</th>"):]
    assert "▼ 60 pts" in downtown[:downtown.index("</tr>")]  # 0 % against Monday's 60 %


def test_the_live_tiles_count_only_what_the_viewer_may_read(brokerage, sms_outbox):
    from conftest import DOWNTOWN_BUYER_LINE, new_sid
    from leads.metrics import live_tiles
    from leads.services import missed_call_record
    from routing.selectors import line_by_number

    missed_call_record(line=line_by_number(number=DOWNTOWN_BUYER_LINE), call_sid=new_sid("CA"), from_number="+15555550177", reason="no_answer")
    assert live_tiles(viewer=agent("tess@example.com")).missed_today == 1  # Downtown's team leader
    assert live_tiles(viewer=agent("bree@example.com")).waiting == 1  # the broker sees every office
    lakeside = live_tiles(viewer=agent("dan@example.com"))  # an agent of the other office
    assert (lakeside.missed_today, lakeside.waiting, lakeside.oldest_waiting_since) == (0, 0, None)
