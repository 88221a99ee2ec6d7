"""Reads about lines, rules and who can take a lead now."""

import dataclasses
import datetime as dt

from django.db.models import Count, Q

from routing.models import Agent, Office, RoutingRule, TrackingNumber

# Brokers manage; agents and team leaders take leads.
LEAD_TAKING_ROLES = [Agent.Role.AGENT, Agent.Role.TEAM_LEADER]


def line_by_number(*, number: str) -> TrackingNumber | None:
    return TrackingNumber.objects.select_related("office__brokerage", "listing_agent__user").filter(number=number, active=True).first()


def line_for_inbound_text(*, number: str, messaging_service_sid: str = "") -> TrackingNumber | None:
    """The line a caller's text belongs to. Retired lines still own their consent records (a
    STOP to an old number must still be honoured), and a Messaging Service may deliver from a
    pooled number that is not itself a line."""
    lines = TrackingNumber.objects.select_related("office__brokerage", "listing_agent__user")
    line = lines.filter(number=number).first()
    if line is None and messaging_service_sid:
        line = lines.filter(messaging_service_sid=messaging_service_sid).order_by("-active", "id").first()
    return line


def agent_phone_is_known(*, phone: str) -> bool:
    """Is this one of the brokerage's own agents (answering an alert), not a caller?"""
    return Agent.objects.filter(phone=phone, user__is_active=True).exists()


# --- availability -------------------------------------------------------------------------------


def agent_sticky_refusal(agent: Agent) -> str:
    """Why a repeat caller cannot go back to their agent ("" if they can): only absence breaks
    the bond, not a full plate or the hour."""
    if not agent.user.is_active:
        return "no longer with the brokerage"
    if agent.paused:
        return "paused"
    if not agent.on_duty:
        return "off duty"
    return ""


def agent_unavailable_reason(agent: Agent, *, at: dt.datetime, waiting: int) -> str:
    """Why this agent cannot take a new lead now ("" if they can). `waiting` is how many of their
    leads wait for their reply (see `agents_waiting`)."""
    refusal = agent_sticky_refusal(agent)
    if refusal:
        return refusal
    if not agent.works_at(at):
        return f"outside their hours ({agent.works_from:%H:%M}–{agent.works_until:%H:%M})"
    if agent.max_waiting_leads is not None and waiting >= agent.max_waiting_leads:
        return f"at capacity ({waiting} of {agent.max_waiting_leads} leads waiting for their reply)"
    return ""


def agents_waiting(agent_ids: list[int]) -> dict[int, int]:
    """How many leads wait for each agent's reply: the measure of capacity."""
    rows = (
        Agent.objects.filter(pk__in=agent_ids, max_waiting_leads__isnull=False)
        .annotate(waiting=Count("leads", filter=Q(leads__awaiting_reply_since__isnull=False)))
        .values_list("pk", "waiting")
    )
    return dict(rows)


@dataclasses.dataclass
class Availability:
    """Who of a set of agents can take a lead now, and why each other one cannot."""

    available: list[tuple[Agent, int]]  # (agent, weight)
    skipped: list[tuple[str, str]]  # (agent's name, reason)


def availability(pool: list[tuple[Agent, int]], *, at: dt.datetime, exclude: set[int] = frozenset()) -> Availability:
    waiting = agents_waiting([a.pk for a, _ in pool if a.max_waiting_leads is not None])
    result = Availability(available=[], skipped=[])
    for agent, weight in pool:
        if agent.pk in exclude:
            continue
        reason = agent_unavailable_reason(agent, at=at, waiting=waiting.get(agent.pk, 0))
        if reason:
            result.skipped.append((agent.name, reason))
        else:
            result.available.append((agent, weight))
    return result


def agents_on_duty(*, office: Office) -> list[Agent]:
    return list(
        Agent.objects.filter(office=office, on_duty=True, paused=False, role__in=LEAD_TAKING_ROLES, user__is_active=True)
        .select_related("user", "office").order_by("id")
    )


def team_leaders(*, office: Office) -> list[Agent]:
    return list(
        Agent.objects.filter(office=office, role=Agent.Role.TEAM_LEADER, user__is_active=True)
        .select_related("user", "office").order_by("id")
    )


def brokers_for(*, office: Office) -> list[Agent]:
    """The brokerage's brokers, this office's own first."""
    brokers = Agent.objects.filter(
        office__brokerage_id=office.brokerage_id, role=Agent.Role.BROKER, user__is_active=True
    ).select_related("user", "office")
    return sorted(brokers, key=lambda b: (b.office_id != office.pk, b.pk))


# --- rules --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LeadFacts:
    """What routing may know of a lead: its line, and what the lead or the line's listing told us."""

    office: Office
    line: TrackingNumber
    phone: str
    source: str
    lead_type: str
    zip_code: str = ""
    city: str = ""
    price: int | None = None
    language: str = ""

    @property
    def area_code(self) -> str:
        return self.phone[2:5] if self.phone.startswith("+1") else ""


def _listed(values: list[str], value: str) -> bool:
    return not values or value.strip().casefold() in {v.strip().casefold() for v in values}


def _in_window(window: str, office: Office, at: dt.datetime) -> bool:
    if window == RoutingRule.TimeWindow.BUSINESS_HOURS:
        return office.is_open(at)
    if window == RoutingRule.TimeWindow.AFTER_HOURS:
        return not office.is_open(at)
    weekday = at.astimezone(office.tz).weekday()
    if window == RoutingRule.TimeWindow.WEEKDAYS:
        return weekday < 5
    if window == RoutingRule.TimeWindow.WEEKENDS:
        return weekday >= 5
    return True


def rule_matches(rule: RoutingRule, facts: LeadFacts, *, at: dt.datetime) -> bool:
    """Every condition the rule sets holds (an unset one holds for anything; a set one needs the
    fact: a rule for ZIP 33101 does not take a lead whose ZIP we do not know)."""
    if rule.is_catch_all:
        return True
    line_ids = {line.pk for line in rule.lines.all()}
    in_band = (rule.price_min is None and rule.price_max is None) or (
        facts.price is not None
        and (rule.price_min is None or facts.price >= rule.price_min)
        and (rule.price_max is None or facts.price <= rule.price_max)
    )
    return (
        (not line_ids or facts.line.pk in line_ids)
        and _listed(rule.sources, facts.source)
        and _listed(rule.lead_types, facts.lead_type)
        and _listed(rule.zip_codes, facts.zip_code)
        and _listed(rule.cities, facts.city)
        and _listed(rule.area_codes, facts.area_code)
        and _listed(rule.languages, facts.language)
        and in_band
        and _in_window(rule.time_window, facts.office, at)
    )


def office_rules(*, office: Office) -> list[RoutingRule]:
    """The office's active rules in the order they are tried, the catch-all last."""
    return list(
        RoutingRule.objects.filter(office=office, active=True).select_related("office", "agent__user", "fallback_agent__user", "fallback_rule")
        .prefetch_related("lines").order_by("is_catch_all", "position", "id")
    )


def rule_for(facts: LeadFacts, *, at: dt.datetime) -> RoutingRule:
    for rule in office_rules(office=facts.office):
        if rule_matches(rule, facts, at=at):
            return rule
    raise RoutingRule.DoesNotExist(f"{facts.office} has no catch-all rule")


def rule_pool(rule: RoutingRule) -> list[tuple[Agent, int]]:
    """The rule's pool with each agent's weight in it; an empty pool is the office's agents and
    team leaders, each with their own weight."""
    members = list(rule.members.select_related("agent__user", "agent__office").order_by("agent_id"))
    if members:
        return [(m.agent, m.weight or m.agent.weight) for m in members]
    agents = Agent.objects.filter(office_id=rule.office_id, role__in=LEAD_TAKING_ROLES, user__is_active=True)
    return [(a, a.weight) for a in agents.select_related("user", "office").order_by("id")]


def ring_candidates(facts: LeadFacts, *, current_agent: Agent | None, at: dt.datetime) -> list[Agent]:
    """Whose phones ring for a call: the caller's own agent if present, else everyone the
    matching rule could give the lead to now (the whole office for a pond)."""
    if current_agent is not None and not agent_sticky_refusal(current_agent):
        return [current_agent]
    rule = rule_for(facts, at=at)
    if rule.strategy == RoutingRule.Strategy.AGENT and rule.agent:
        pool = [(rule.agent, 1)]
    elif rule.strategy == RoutingRule.Strategy.LISTING_AGENT and facts.line.listing_agent:
        pool = [(facts.line.listing_agent, 1)]
    elif rule.strategy == RoutingRule.Strategy.POND:
        pool = [(a, 1) for a in agents_on_duty(office=facts.office)]
    else:
        pool = rule_pool(rule)
    agents = [agent for agent, _ in availability(pool, at=at).available]
    return agents or agents_on_duty(office=facts.office)


def speaker_available(*, facts: LeadFacts, at: dt.datetime) -> bool:
    """Whether the pool that would take the lead now has someone available who speaks its language."""
    available = availability(rule_pool(rule_for(facts, at=at)), at=at).available
    return any(facts.language in agent.languages for agent, _ in available)
