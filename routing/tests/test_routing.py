"""Who gets a lead: rules in order, their conditions and targets, availability, sticky callers,
first to claim, and the reasons recorded for each decision."""

import datetime as dt

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.utils import timezone

from conftest import CALLER, DOWNTOWN_BUYER_LINE, new_sid
from leads.models import Lead, LeadEvent, Message
from leads.selectors import call_ring_plan
from leads.services import lead_deadline_pass, missed_call_record
from inbox.services import lead_claim
from routing.models import Agent, Office, PoolMember, RoutingRule, TrackingNumber
from routing.selectors import line_by_number

pytestmark = pytest.mark.django_db

SELLER_LINE = "+15555550110"


def agent(name: str) -> Agent:
    return Agent.objects.select_related("user", "office").get(user__email=f"{name}@example.com")


def miss(phone: str = CALLER, line: str = DOWNTOWN_BUYER_LINE) -> Lead:
    missed_call_record(line=line_by_number(number=line), call_sid=new_sid("CA"), from_number=phone, reason="no_answer")
    return Lead.objects.select_related("assigned_agent").get(phone=phone)


def routed(lead: Lead) -> LeadEvent:
    return lead.events.filter(kind__in=[LeadEvent.Kind.ASSIGNED, LeadEvent.Kind.OFFERED]).latest("id")


def downtown() -> Office:
    return Office.objects.get(name="Downtown")


def rule(**fields) -> RoutingRule:
    members = fields.pop("members", {})
    lines = fields.pop("lines", [])
    r = RoutingRule.objects.create(office=fields.pop("office", None) or downtown(), name=fields.pop("name", "Rule"), **fields)
    r.lines.set(TrackingNumber.objects.filter(number__in=lines))
    for name, weight in members.items():
        PoolMember.objects.create(rule=r, agent=agent(name), weight=weight)
    return r


# --- rules and their conditions ------------------------------------------------------------------


def test_it_gives_every_office_a_catch_all_that_routes_round_robin(brokerage):
    assert RoutingRule.objects.filter(is_catch_all=True).count() == Office.objects.count() == 2
    leads = [miss(f"+1555555{n:04d}") for n in range(3)]
    assert [lead.assigned_agent.name for lead in leads] == ["Ann Lee", "Ben Ortiz", "Tess Morgan"]
    assert routed(leads[0]).rule.is_catch_all and routed(leads[0]).detail["strategy"] == "round_robin"


def test_it_uses_the_first_matching_rule_in_position_order(brokerage):
    rule(name="Sellers", position=20, lead_types=["seller"], strategy=RoutingRule.Strategy.AGENT, agent=agent("ben"))
    rule(name="Yard signs", position=10, sources=["yard sign"], strategy=RoutingRule.Strategy.AGENT, agent=agent("tess"))
    lead = miss(line=SELLER_LINE)
    assert lead.assigned_agent.name == "Tess Morgan"  # the source rule sits above the lead-type rule
    assert routed(lead).rule.name == "Yard signs" and lead.routing_rule.name == "Yard signs"
    assert miss("+15555550999").assigned_agent.name == "Ann Lee"  # a buyer from Zillow: neither rule, the catch-all


def test_it_skips_inactive_rules(brokerage):
    rule(name="Off", sources=["Zillow"], strategy=RoutingRule.Strategy.AGENT, agent=agent("ben"), active=False)
    assert miss().assigned_agent.name == "Ann Lee"


@pytest.mark.parametrize(
    "conditions, facts, matches",
    [
        ({"zip_codes": ["33101", "33109"]}, {"zip_code": "33109"}, True),
        ({"zip_codes": ["33101"]}, {"zip_code": "10001"}, False),
        ({"zip_codes": ["33101"]}, {}, False),  # a territory rule needs to know where the lead is
        ({"cities": ["Miami Beach"]}, {"city": "miami beach "}, True),
        ({"price_min": 1_000_000}, {"price": 1_250_000}, True),
        ({"price_min": 1_000_000}, {"price": 450_000}, False),
        ({"price_max": 500_000}, {}, False),
        ({"languages": ["es"]}, {"language": "es"}, True),
        ({"languages": ["es"]}, {"language": "en"}, False),
    ],
)
def test_it_matches_what_the_lead_told_us(brokerage, conditions, facts, matches):
    rule(name="Special", strategy=RoutingRule.Strategy.AGENT, agent=agent("ben"), **conditions)
    Lead.objects.create(phone=CALLER, office=downtown(), line=line_by_number(number=DOWNTOWN_BUYER_LINE), **facts)
    lead = miss()
    assert (lead.assigned_agent.name == "Ben Ortiz") is matches


def test_it_falls_back_on_the_lines_listing_for_territory_and_price(brokerage):
    TrackingNumber.objects.filter(number=DOWNTOWN_BUYER_LINE).update(zip_code="33139", city="Miami Beach", price=1_900_000)
    rule(name="Beach luxury", zip_codes=["33139"], price_min=1_000_000, strategy=RoutingRule.Strategy.AGENT, agent=agent("ben"))
    assert miss().assigned_agent.name == "Ben Ortiz"


def test_it_matches_the_callers_area_code_and_the_line(brokerage):
    rule(name="212 callers", area_codes=["212"], strategy=RoutingRule.Strategy.AGENT, agent=agent("ben"))
    rule(name="Seller line", position=20, lines=[SELLER_LINE], strategy=RoutingRule.Strategy.AGENT, agent=agent("tess"))
    assert miss("+12125550123").assigned_agent.name == "Ben Ortiz"
    assert miss("+13055550123", line=SELLER_LINE).assigned_agent.name == "Tess Morgan"


def test_it_routes_by_time_window_in_the_offices_clock(brokerage):
    Office.objects.filter(name="Downtown").update(business_days=[0, 1, 2, 3, 4], opens_at=dt.time(9), closes_at=dt.time(17))
    rule(name="After hours", time_window=RoutingRule.TimeWindow.AFTER_HOURS, strategy=RoutingRule.Strategy.AGENT, agent=agent("tess"))
    wednesday_noon_ny = dt.datetime(2026, 11, 25, 17, 0, tzinfo=dt.UTC)
    with time_machine.travel(wednesday_noon_ny, tick=False):
        assert miss("+15555550001").assigned_agent.name == "Ann Lee"
    with time_machine.travel(wednesday_noon_ny + dt.timedelta(hours=6), tick=False):  # 6 pm in New York
        assert miss("+15555550002").assigned_agent.name == "Tess Morgan"


# --- targets ---------------------------------------------------------------------------------------


def test_it_gives_a_listing_lines_leads_to_the_listing_agent(brokerage):
    TrackingNumber.objects.filter(number=DOWNTOWN_BUYER_LINE).update(listing_agent=agent("ben"))
    rule(name="My listing, my lead", strategy=RoutingRule.Strategy.LISTING_AGENT)
    lead = miss()
    assert lead.assigned_agent.name == "Ben Ortiz" and routed(lead).detail["target"] == "the listing agent"


def test_it_leaves_a_pond_lead_for_anyone_in_the_office_to_claim(brokerage):
    rule(name="Pond", strategy=RoutingRule.Strategy.POND)
    lead = miss()
    assert lead.assigned_agent is None and routed(lead).detail["target"] == "the office pond"
    assert lead.awaiting_reply_since is not None and lead.escalation_due_at is not None


def test_it_splits_a_pool_by_its_weights(brokerage):
    rule(name="Zillow", sources=["Zillow"], members={"ann": 2, "ben": 1})
    names = [miss(f"+1555555{n:04d}").assigned_agent.name for n in range(6)]
    assert sorted(names) == ["Ann Lee"] * 4 + ["Ben Ortiz"] * 2
    assert names[:3].count("Ann Lee") == 2  # interleaved, not in blocks


# --- availability and the reasons ---------------------------------------------------------------


def test_it_skips_unavailable_agents_and_records_why(brokerage):
    ann, ben, tess = agent("ann"), agent("ben"), agent("tess")
    Agent.objects.filter(pk=ann.pk).update(on_duty=False)
    Agent.objects.filter(pk=ben.pk).update(paused=True)
    lead = miss()
    assert lead.assigned_agent == tess
    skipped = routed(lead).detail["skipped"]
    assert skipped == [{"agent": "Ann Lee", "reason": "off duty"}, {"agent": "Ben Ortiz", "reason": "paused"}]


def test_it_skips_agents_at_capacity_and_outside_their_hours(brokerage):
    Agent.objects.filter(user__email="ann@example.com").update(max_waiting_leads=1)
    Agent.objects.filter(user__email="ben@example.com").update(works_from=dt.time(9), works_until=dt.time(10))
    first = miss("+15555550001")
    with time_machine.travel(dt.datetime(2026, 11, 25, 20, 0, tzinfo=dt.UTC), tick=False):  # 3 pm in New York
        second = miss("+15555550002")
    assert first.assigned_agent.name == "Ann Lee" and second.assigned_agent.name == "Tess Morgan"
    reasons = {s["agent"]: s["reason"] for s in routed(second).detail["skipped"]}
    assert reasons == {"Ann Lee": "at capacity (1 of 1 leads waiting for their reply)", "Ben Ortiz": "outside their hours (09:00–10:00)"}


def test_it_falls_back_when_the_target_is_away_and_says_so(brokerage):
    Agent.objects.filter(user__email="ben@example.com").update(on_duty=False)
    rule(name="Ben's", sources=["Zillow"], strategy=RoutingRule.Strategy.AGENT, agent=agent("ben"),
         fallback=RoutingRule.Fallback.TEAM_LEADER)
    lead = miss()
    assert lead.assigned_agent.name == "Tess Morgan"
    detail = routed(lead).detail
    assert detail["fallback"] == "the agent is not available" and detail["skipped"] == [{"agent": "Ben Ortiz", "reason": "off duty"}]


def test_it_falls_back_to_another_rules_pool(brokerage):
    other = rule(name="Backup", position=50, sources=["nowhere"], members={"tess": 1})
    rule(name="Ben's", sources=["Zillow"], strategy=RoutingRule.Strategy.AGENT, agent=agent("ben"),
         fallback=RoutingRule.Fallback.RULE, fallback_rule=other)
    Agent.objects.filter(user__email="ben@example.com").update(paused=True)
    lead = miss()
    assert lead.assigned_agent.name == "Tess Morgan" and routed(lead).detail["target"] == "the pool of “Backup”"


def test_it_puts_the_lead_in_the_pond_when_nobody_at_all_can_take_it(brokerage):
    Agent.objects.filter(office__name="Downtown").update(on_duty=False)
    lead = miss()
    assert lead.assigned_agent is None
    detail = routed(lead).detail
    assert detail["target"] == "the office pond" and len(detail["skipped"]) == 3


# --- sticky ----------------------------------------------------------------------------------------


def test_a_repeat_caller_goes_back_to_their_agent_even_when_they_are_busy(brokerage):
    first = miss()
    Agent.objects.filter(pk=first.assigned_agent_id).update(max_waiting_leads=1)
    Lead.objects.filter(pk=first.pk).update(awaiting_reply_since=None)  # the agent answered
    again = miss()
    assert again.assigned_agent == first.assigned_agent
    assert again.events.filter(kind=LeadEvent.Kind.ASSIGNED).count() == 1  # nothing to re-decide


@pytest.mark.parametrize("absence", [{"on_duty": False}, {"paused": True}])
def test_a_repeat_caller_whose_agent_is_away_is_routed_afresh(brokerage, absence):
    first = miss()
    Agent.objects.filter(pk=first.assigned_agent_id).update(**absence)
    Lead.objects.filter(pk=first.pk).update(awaiting_reply_since=None)
    again = miss()
    assert again.assigned_agent not in (None, first.assigned_agent)
    assert routed(again).detail["skipped"][0]["reason"].endswith("(the caller's agent)")


def test_a_repeat_caller_whose_agent_left_is_routed_afresh(brokerage):
    first = miss()
    get_user_model().objects.filter(agent=first.assigned_agent).update(is_active=False)
    Lead.objects.filter(pk=first.pk).update(awaiting_reply_since=None)
    assert miss().assigned_agent not in (None, first.assigned_agent)


# --- first to claim ---------------------------------------------------------------------------------


def test_first_to_claim_offers_the_lead_to_the_pool_and_alerts_each(brokerage, live_events, django_capture_on_commit_callbacks):
    Agent.objects.update(sms_alerts=True)
    rule(name="Luxury", sources=["Zillow"], strategy=RoutingRule.Strategy.FIRST_TO_CLAIM, members={"ann": 1, "ben": 1}, claim_timeout_minutes=5)
    live_events.join(f"pool.{downtown().pk}")
    with django_capture_on_commit_callbacks(execute=True):
        lead = miss()
    assert lead.assigned_agent is None and lead.claim_deadline is not None
    assert lead.escalation_due_at == lead.claim_deadline
    assert routed(lead).kind == LeadEvent.Kind.OFFERED and routed(lead).detail["offered_to"] == ["Ann Lee", "Ben Ortiz"]
    alerts = Message.objects.filter(kind=Message.Kind.AGENT_ALERT).values_list("to_number", flat=True)
    assert sorted(alerts) == [agent("ann").phone, agent("ben").phone]
    offer = next(e for e in live_events.drain() if e["type"] == "lead.assigned")
    assert offer["alert"]["agent_ids"] == [agent("ann").pk, agent("ben").pk]


def test_the_first_claim_wins_and_ends_the_offer(brokerage):
    rule(name="Luxury", sources=["Zillow"], strategy=RoutingRule.Strategy.FIRST_TO_CLAIM, members={"ann": 1, "ben": 1})
    lead = miss()
    lead_claim(agent=agent("ben"), lead=lead)
    lead.refresh_from_db()
    assert lead.assigned_agent.name == "Ben Ortiz" and lead.claim_deadline is None
    assert lead.events.get(kind=LeadEvent.Kind.CLAIMED).rule.name == "Luxury"  # the offer it answered
    assert lead.escalation_due_at == lead.assigned_at + dt.timedelta(minutes=10)  # Ben's own window starts
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=6)):
        assert lead_deadline_pass(lead_id=lead.pk) is None  # the offer's deadline is gone


def test_an_unclaimed_offer_goes_to_the_rules_fallback(brokerage):
    rule(name="Luxury", sources=["Zillow"], strategy=RoutingRule.Strategy.FIRST_TO_CLAIM, members={"ann": 1, "ben": 1},
         claim_timeout_minutes=5, fallback=RoutingRule.Fallback.TEAM_LEADER)
    lead = miss()
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=4)):
        assert lead_deadline_pass(lead_id=lead.pk) is None
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=5, seconds=1)):
        event = lead_deadline_pass(lead_id=lead.pk)
    lead.refresh_from_db()
    assert lead.assigned_agent.name == "Tess Morgan" and lead.claim_deadline is None
    assert event.kind == LeadEvent.Kind.ASSIGNED and event.detail["fallback"] == "nobody claimed it within 5 min"


# --- ringing -----------------------------------------------------------------------------------------


def test_calls_ring_whom_the_rules_would_give_the_lead_to(brokerage):
    line = line_by_number(number=DOWNTOWN_BUYER_LINE)
    rule(name="Zillow", sources=["Zillow"], members={"ben": 1, "tess": 1})
    assert [a.name for a in call_ring_plan(line=line, from_number=CALLER).agents] == ["Ben Ortiz", "Tess Morgan"]
    Agent.objects.filter(user__email="ben@example.com").update(on_duty=False)
    assert [a.name for a in call_ring_plan(line=line, from_number=CALLER).agents] == ["Tess Morgan"]


def test_a_repeat_caller_rings_only_their_agent(brokerage):
    lead = miss()
    plan = call_ring_plan(line=line_by_number(number=DOWNTOWN_BUYER_LINE), from_number=CALLER)
    assert plan.agents == [lead.assigned_agent]


def test_a_lead_who_writes_spanish_goes_to_the_spanish_speakers_of_the_pool(brokerage):
    rule(name="Buyers", strategy="round_robin", members={"ann": 1, "ben": 1})
    Agent.objects.filter(user__email="ben@example.com").update(languages=["en", "es"])
    Lead.objects.create(phone="+15555551301", office=downtown(), line=line_by_number(number=DOWNTOWN_BUYER_LINE), language="es")
    lead = miss("+15555551301")
    assert lead.assigned_agent == agent("ben")
    assert {"agent": "Ann Lee", "reason": "does not speak es"} in routed(lead).detail["skipped"]
    # Round-robin among the speakers: Ben again, while an English caller takes the usual turn.
    Lead.objects.create(phone="+15555551302", office=downtown(), line=line_by_number(number=DOWNTOWN_BUYER_LINE), language="es")
    assert miss("+15555551302").assigned_agent == agent("ben")


def test_with_no_speaker_available_a_spanish_lead_still_gets_an_agent(brokerage):
    rule(name="Buyers", strategy="round_robin", members={"ann": 1, "ben": 1})
    Agent.objects.filter(user__email="ben@example.com").update(languages=["en", "es"], on_duty=False)
    Lead.objects.create(phone="+15555551303", office=downtown(), line=line_by_number(number=DOWNTOWN_BUYER_LINE), language="es")
    assert miss("+15555551303").assigned_agent == agent("ann")
