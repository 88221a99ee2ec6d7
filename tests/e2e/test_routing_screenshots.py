"""Routing as a broker sets it up and as an agent meets it, in a real browser, from data made the
way production makes it: the demo brokerage, rules saved as the admin saves them, and a lead
routed by the real missed-call service.

Every run checks what the pages say; `TEXTBACK_SCREENSHOTS=1` also refreshes the images in docs/.
"""

import json
import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from conftest import new_sid
from leads.models import Lead, LeadEvent
from leads.services import inbound_sms_record, missed_call_record
from routing.brokerage_import import brokerage_import
from routing.models import Agent, Office, PoolMember, RoutingRule, TrackingNumber
from routing.selectors import line_by_number

from .conftest import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
OAK_ST_LINE = "+15555550100"
CALLER = "+15555550147"


def shoot(page, name: str, **options) -> None:
    if os.environ.get("TEXTBACK_SCREENSHOTS"):
        page.screenshot(path=DOCS / name, **options)


def agent(email: str) -> Agent:
    return Agent.objects.select_related("office").get(user__email=email)


@pytest.fixture
def demo_rules(live) -> dict[str, RoutingRule]:
    """The demo brokerage with the rules a Downtown broker would write on day one."""
    brokerage_import(json.loads((ROOT / "demo" / "brokerage.json").read_text()))
    downtown, lakeside = Office.objects.get(name="Downtown"), Office.objects.get(name="Lakeside")
    ann, ben, cara = agent("ann@harborandoak.example"), agent("ben@harborandoak.example"), agent("cara@harborandoak.example")
    oak_st = TrackingNumber.objects.get(number=OAK_ST_LINE)
    oak_st.listing_agent = cara
    oak_st.save(update_fields=["listing_agent"])

    spanish = RoutingRule.objects.create(
        office=downtown, name="Spanish speakers", position=10, languages=["es"], sources=["Zillow", "Realtor.com"],
        lead_types=["buyer", "seller"], strategy=RoutingRule.Strategy.ROUND_ROBIN, fallback=RoutingRule.Fallback.TEAM_LEADER,
    )
    PoolMember.objects.create(rule=spanish, agent=ann, weight=2)
    PoolMember.objects.create(rule=spanish, agent=ben, weight=1)
    luxury = RoutingRule.objects.create(
        office=downtown, name="Luxury $1M+", position=20, price_min=1_000_000,
        strategy=RoutingRule.Strategy.FIRST_TO_CLAIM, claim_timeout_minutes=5, fallback=RoutingRule.Fallback.TEAM_LEADER,
    )
    PoolMember.objects.create(rule=luxury, agent=ann)
    PoolMember.objects.create(rule=luxury, agent=cara)
    listing = RoutingRule.objects.create(
        office=downtown, name="Listing lines", position=30,
        strategy=RoutingRule.Strategy.LISTING_AGENT, fallback=RoutingRule.Fallback.TEAM_LEADER,
    )
    listing.lines.add(oak_st)
    RoutingRule.objects.create(
        office=lakeside, name="Korean speakers", position=10, languages=["ko"],
        strategy=RoutingRule.Strategy.AGENT, agent=agent("dan@harborandoak.example"), fallback=RoutingRule.Fallback.POND,
    )
    return {"spanish": spanish, "luxury": luxury, "listing": listing}


def test_screenshots_of_routing_rules_in_admin(page, live, demo_rules, django_user_model):
    sign_in(page, live.url, django_user_model, "bree@harborandoak.example")
    page.goto(f"{live.url}/admin/")  # shows, and so clears, the "signed in" message
    expect(page.locator("#content-main")).to_contain_text("Routing rules")

    page.goto(f"{live.url}/admin/routing/routingrule/")
    expect(page.locator(".messagelist")).to_have_count(0)
    results = page.locator("#result_list")
    expect(results).to_contain_text("Spanish speakers")
    rows = [row.inner_text() for row in results.locator("tbody tr").all()]
    assert [row.split("\t")[1] for row in rows] == [
        "Spanish speakers", "Luxury $1M+", "Listing lines", "Everyone else", "Korean speakers", "Everyone else",
    ]
    expect(results).to_contain_text("source Zillow, Realtor.com; type buyer, seller; language es")
    expect(results).to_contain_text("price $1,000,000–any")
    expect(results).to_contain_text("5 min to claim; else the office's team leader")
    expect(results).to_contain_text("line +15555550100")
    expect(results).to_contain_text("Every lead no rule above took")
    expect(results.locator("td.field-position", has_text="last")).to_have_count(2)
    expect(results.locator("input[name$='-position']")).to_have_count(4)
    shoot(page, "admin-routing-rules.png")

    page.goto(f"{live.url}/admin/routing/routingrule/{demo_rules['spanish'].pk}/change/")
    expect(page.locator("#id_languages")).to_have_value("es")
    expect(page.locator("#id_sources")).to_have_value("Zillow, Realtor.com")
    expect(page.locator("#id_lead_types input:checked")).to_have_count(2)
    pool = page.locator("#members-group")
    expect(pool).to_contain_text("Pool (no members: every agent and team leader of the office")
    members = [
        (pool.locator(f"#id_members-{i}-agent option:checked").inner_text(), pool.locator(f"#id_members-{i}-weight").input_value())
        for i in range(2)
    ]
    assert members == [("Ann Lee (Downtown)", "2"), ("Ben Ortiz (Downtown)", "1")]
    shoot(page, "admin-routing-rule-edit.png", full_page=True)

    office = Office.objects.get(name="Downtown")
    page.goto(f"{live.url}/admin/routing/office/{office.pk}/change/")
    ladder = page.locator("fieldset", has=page.locator("h2", has_text="Escalation ladder"))
    expect(ladder).to_contain_text("goes to the next agent of its pool")
    expect(ladder.locator("#id_escalation_minutes")).to_have_value("10")
    expect(ladder.locator("#id_escalation_final")).to_be_visible()
    expect(page.locator("#routing_rules-group")).to_contain_text("Listing lines")
    # From the fieldset before the ladder, so no heading is cut in half at the top.
    ladder.evaluate("el => window.scrollTo(0, el.previousElementSibling.getBoundingClientRect().top + window.scrollY - 16)")
    shoot(page, "admin-office-escalation.png")


def test_screenshot_of_why_a_lead_was_routed(page, live, demo_rules, django_user_model):
    cara = agent("cara@harborandoak.example")
    Agent.objects.filter(pk=cara.pk).update(on_duty=False)
    line = line_by_number(number=OAK_ST_LINE)
    missed_call_record(line=line, call_sid=new_sid("CA"), from_number=CALLER, reason="no_answer")
    Lead.objects.filter(phone=CALLER).update(name="Priya Shah")
    inbound_sms_record(
        line=line, message_sid=new_sid("SM"), from_number=CALLER, media_urls=[],
        body="Hi, I just called about 12 Oak St. Is it still available? Could we see it this weekend?",
    )
    lead = Lead.objects.select_related("assigned_agent").get(phone=CALLER)
    event = LeadEvent.objects.get(lead=lead, kind=LeadEvent.Kind.ASSIGNED)
    assert lead.assigned_agent.name == "Tess Morgan" and event.rule == demo_rules["listing"]
    assert event.detail["skipped"] == [{"agent": "Cara Singh", "reason": "off duty"}]

    # The socket's first frame re-renders the open thread (a tab catching up); a details element
    # opened before it would be replaced by a closed one.
    page.add_init_script("document.addEventListener('htmx:wsAfterMessage', () => { window.liveFrames = (window.liveFrames || 0) + 1; });")
    sign_in(page, live.url, django_user_model, "tess@harborandoak.example")
    page.goto(f"{live.url}/leads/{lead.pk}/")
    expect(page.locator("#live-status")).to_have_text("Live")
    page.wait_for_function("window.liveFrames >= 1")
    why = page.locator("details.routing-why").first
    expect(why.locator("summary")).to_have_text("Why was this routed to me?")
    why.locator("summary").click()
    expect(why).to_have_attribute("open", "")
    expect(why).to_contain_text("Rule Listing lines, then the office's team leader")
    expect(why).to_contain_text("Fallback: the listing agent is not available")
    expect(why).to_contain_text("Skipped Cara Singh: off duty")
    why.scroll_into_view_if_needed()
    shoot(page, "inbox-routing-why.png")

