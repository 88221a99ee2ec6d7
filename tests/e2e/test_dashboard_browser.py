"""The dashboard in a real browser, on the hand-built day (tests/dashboard_day.py): what a broker sees
on a laptop and on a phone. (The README's screenshots are taken at scale by bench/dashboard_screenshots.py.)"""

import pytest
from playwright.sync_api import expect

from .conftest import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
MONDAY = "period=custom&from=2026-11-02&to=2026-11-02"


def test_a_broker_reads_the_day_and_drills_into_the_recovered_leads(page, live, day, django_user_model):
    page.set_viewport_size({"width": 1280, "height": 1100})
    sign_in(page, live.url, django_user_model, "bree@example.com")
    page.goto(f"{live.url}/reports/dashboard/?{MONDAY}&by=lead_type")
    expect(page.locator(".headline .kpi").first).to_contain_text("5")
    expect(page.locator(".headline")).to_contain_text("60 %")
    expect(page.locator(".funnel")).to_contain_text("Reached a human")
    expect(page.locator(".charts svg")).to_have_count(2)
    page.locator(".funnel a", has_text="Reached a human").click()
    expect(page.locator("h1")).to_contain_text("Recovered")
    expect(page.locator("tbody tr")).to_have_count(3)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live.url}/reports/dashboard/?{MONDAY}")
    expect(page.locator(".headline")).to_be_visible()
    # Numbers first on a phone: the headline sits above the period and breakdown form.
    assert page.locator(".headline").bounding_box()["y"] < page.locator(".report-filters").bounding_box()["y"]


def test_the_live_tiles_count_a_missed_call_as_it_happens(page, live, brokerage, django_user_model):
    from conftest import DOWNTOWN_BUYER_LINE, new_sid
    from leads.services import missed_call_record
    from routing.selectors import line_by_number

    sign_in(page, live.url, django_user_model, "tess@example.com")
    page.goto(f"{live.url}/reports/dashboard/")
    expect(page.locator("#live-status")).to_have_text("Live")
    expect(page.locator("[data-tile=missed-today]")).to_have_text("0")
    missed_call_record(line=line_by_number(number=DOWNTOWN_BUYER_LINE), call_sid=new_sid("CA"), from_number="+15555550177", reason="no_answer")
    expect(page.locator("[data-tile=missed-today]")).to_have_text("1")
    expect(page.locator("[data-tile=waiting]")).to_have_text("1")
