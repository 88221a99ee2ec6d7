"""The numbers dashboards and reports show, computed in one place (reads only).

Every figure here is counted from the lead timeline (`LeadEvent`), not from running counters such
as `RoundRobinTurn`, because only the timeline knows *when* something happened and a report is
always about a period.
"""

import dataclasses
import datetime as dt
import zoneinfo
from collections import defaultdict
from collections.abc import Mapping

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from leads.models import LeadEvent
from routing.models import Agent, Office, PoolMember, RoutingRule
from routing.selectors import LEAD_TAKING_ROLES

# --- the period a report covers -----------------------------------------------------------------

PERIOD_DAYS = (7, 30, 90)
DEFAULT_PERIOD_DAYS = 30
CUSTOM = "custom"


@dataclasses.dataclass(frozen=True)
class ReportPeriod:
    """[start, end) of a report: the last N days up to now, or whole calendar days chosen by the
    reader. Dates are read in the reader's time zone, since "May 3" means their May 3."""

    start: dt.datetime
    end: dt.datetime
    days: int | None  # the preset chosen, None for a from/to range
    first_day: dt.date
    last_day: dt.date

    @classmethod
    def from_params(cls, params: Mapping[str, str], *, tz: zoneinfo.ZoneInfo, now: dt.datetime | None = None) -> "ReportPeriod":
        """`period`: 7, 30 or 90 days (anything else means 30), or "custom" for `from` and/or `to`
        (YYYY-MM-DD, both days included), which also apply when `period` is absent. A form that
        keeps its dates filled in can so switch back to a preset. A reversed range is swapped rather
        than refused: the reader's intent is plain."""
        now = now or timezone.now()
        today = now.astimezone(tz).date()
        preset = params.get("period", CUSTOM)
        first, last = (_date(params.get("from")), _date(params.get("to"))) if preset == CUSTOM else (None, None)
        if first or last:
            last = last or today
            first = first or last - dt.timedelta(days=DEFAULT_PERIOD_DAYS - 1)
            first, last = min(first, last), max(first, last)
            start = dt.datetime.combine(first, dt.time(0), tz)
            end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(0), tz)
            return cls(start=start, end=end, days=None, first_day=first, last_day=last)
        days = int(preset) if preset.isdecimal() and int(preset) in PERIOD_DAYS else DEFAULT_PERIOD_DAYS
        start = now - dt.timedelta(days=days)
        return cls(start=start, end=now, days=days, first_day=start.astimezone(tz).date(), last_day=today)


# Dates outside these are typos (and would overflow the arithmetic at the ends of the calendar).
EARLIEST_DATE, LATEST_DATE = dt.date(2000, 1, 1), dt.date(2999, 12, 31)


def _date(value: str | None) -> dt.date | None:
    try:
        date = dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None
    return date if date and EARLIEST_DATE <= date <= LATEST_DATE else None


# --- who may read office reports ----------------------------------------------------------------


def report_offices(*, viewer: Agent) -> QuerySet[Office]:
    """The offices whose numbers the viewer may read, mirroring `leads_visible_to`: a team leader
    their own office, a broker every office of the brokerage, an agent none (an agent's report
    would show colleagues' numbers)."""
    if viewer.role == Agent.Role.BROKER:
        return Office.objects.filter(brokerage_id=viewer.office.brokerage_id).order_by("name")
    if viewer.role == Agent.Role.TEAM_LEADER:
        return Office.objects.filter(pk=viewer.office_id)
    return Office.objects.none()


# --- fairness: did the pools share leads the way their weights say? ------------------------------

# Points an agent's actual share may stray from the configured one before the report flags it.
FAIRNESS_TOLERANCE_POINTS = 10


@dataclasses.dataclass(frozen=True)
class FairnessRow:
    """One agent in one pool. `weight` is None for an agent outside the pool who still got leads
    through the rule (its fallback, or a member removed during the period); their configured
    share is 0, so everything they got shows as difference."""

    agent: Agent
    weight: int | None
    configured_share: float  # % of the pool's total weight
    assignments: int  # routed assignments by this rule in the period
    actual_share: float | None  # % of the rule's routed assignments; None when it routed none
    difference: float | None  # percentage points, actual minus configured
    flagged: bool  # a weighted pool, and more than FAIRNESS_TOLERANCE_POINTS off

    @property
    def in_pool(self) -> bool:
        return self.weight is not None


@dataclasses.dataclass(frozen=True)
class PoolFairness:
    """One routing rule's pool. Only a weighted round-robin rule promises shares by weight; for
    other strategies the configured shares are shown for reference and nobody is flagged."""

    rule: RoutingRule
    weighted: bool
    assignments: int
    rows: tuple[FairnessRow, ...]


@dataclasses.dataclass(frozen=True)
class AgentEscalations:
    """Leads that escalated away from an agent in one office, with the leads routed to them there
    (every rule together) for scale."""

    agent: Agent
    escalations: int
    assignments: int


@dataclasses.dataclass(frozen=True)
class OfficeFairness:
    """An office's pools, and its escalations once per agent.

    Escalations are counted per office, not per pool: an escalation belongs to a lead, and a lead
    may have reached the agent through any rule (or by hand), so splitting them across pools
    would either guess or count one escalation several times.
    """

    office: Office
    pools: tuple[PoolFairness, ...]
    escalations: tuple[AgentEscalations, ...]

    @property
    def assignments(self) -> int:
        return sum(pool.assignments for pool in self.pools)

    @property
    def escalation_count(self) -> int:
        return sum(row.escalations for row in self.escalations)


def fairness_report(*, viewer: Agent, start: dt.datetime, end: dt.datetime, office_id: int | None = None) -> list[OfficeFairness]:
    """Per office the viewer may read (or just `office_id`, if they may read it), per routing rule
    with a pool or with routed assignments in [start, end): each agent's configured weight and
    share against what they actually got, and per agent the escalations they suffered.

    A routed assignment is an `assigned` event the rule decided, to an agent (claims, transfers and
    repeat callers going back to their agent are not the rule's doing). An escalation suffered is an
    `escalated` event of one of the office's leads whose previous agent is that agent; the ladder's
    "still waiting" re-alerts after its last rung count too, since each is another window the lead
    waited in that agent's hands.

    A fixed number of queries, whatever the number of rules, agents and events.
    """
    offices = report_offices(viewer=viewer)
    if office_id is not None:
        offices = offices.filter(pk=office_id)
    offices = list(offices.order_by("name"))
    if not offices:
        return []
    office_ids = [office.pk for office in offices]
    events = LeadEvent.objects.filter(created_at__gte=start, created_at__lt=end)

    assigned: dict[int, dict[int, int]] = defaultdict(dict)  # rule -> agent -> count
    for rule_id, agent_id, count in (
        events.filter(kind=LeadEvent.Kind.ASSIGNED, rule__office_id__in=office_ids, agent__isnull=False)
        .values("rule_id", "agent_id").annotate(n=Count("id")).values_list("rule_id", "agent_id", "n").order_by()
    ):
        assigned[rule_id][agent_id] = count

    escalated: dict[int, dict[int, int]] = defaultdict(dict)  # office -> agent -> count
    for lead_office_id, agent_id, count in (
        events.filter(kind=LeadEvent.Kind.ESCALATED, lead__office_id__in=office_ids, previous_agent__isnull=False)
        .values("lead__office_id", "previous_agent_id").annotate(n=Count("id"))
        .values_list("lead__office_id", "previous_agent_id", "n").order_by()
    ):
        escalated[lead_office_id][agent_id] = count

    # Active rules, and retired ones that still routed leads in the period.
    rules = list(RoutingRule.objects.filter(Q(active=True) | Q(pk__in=list(assigned)), office_id__in=office_ids))
    pools = _pools(rules)
    agents = {agent.pk: agent for pool in pools.values() for agent, _ in pool}
    wanted = {a for counts in assigned.values() for a in counts} | {a for counts in escalated.values() for a in counts}
    missing = wanted - agents.keys()
    if missing:
        agents.update((agent.pk, agent) for agent in Agent.objects.filter(pk__in=missing))

    rules.sort(key=lambda rule: (rule.office_id, rule.is_catch_all, rule.position, rule.pk))
    by_office: dict[int, list[PoolFairness]] = defaultdict(list)
    for rule in rules:
        pool, counts = pools[rule.pk], assigned.get(rule.pk, {})
        if pool or counts:
            by_office[rule.office_id].append(_pool_fairness(rule, pool, counts, agents))

    report = []
    for office in offices:
        office_pools = by_office.get(office.pk, [])
        report.append(OfficeFairness(
            office=office, pools=tuple(office_pools),
            escalations=_office_escalations(office_pools, escalated.get(office.pk, {}), agents),
        ))
    return report


def _pools(rules: list[RoutingRule]) -> dict[int, list[tuple[Agent, int]]]:
    """`routing.selectors.rule_pool` for many rules in two queries: the members with their
    weights, and for a rule without members its office's agents and team leaders."""
    pools: dict[int, list[tuple[Agent, int]]] = {rule.pk: [] for rule in rules}
    for member in PoolMember.objects.filter(rule__in=rules).select_related("agent").order_by("rule_id", "agent_id"):
        pools[member.rule_id].append((member.agent, member.weight or member.agent.weight))
    memberless = {rule.office_id for rule in rules if not pools[rule.pk]}
    default: dict[int, list[tuple[Agent, int]]] = defaultdict(list)
    for agent in (
        Agent.objects.filter(office_id__in=memberless, role__in=LEAD_TAKING_ROLES, user__is_active=True).order_by("id")
    ):
        default[agent.office_id].append((agent, agent.weight))
    for rule in rules:
        if not pools[rule.pk]:
            pools[rule.pk] = default[rule.office_id]
    return pools


def _pool_fairness(
    rule: RoutingRule, pool: list[tuple[Agent, int]], counts: dict[int, int], agents: dict[int, Agent]
) -> PoolFairness:
    weighted = rule.strategy == RoutingRule.Strategy.ROUND_ROBIN
    total_weight = sum(weight for _, weight in pool)
    total = sum(counts.values())
    members = {agent.pk for agent, _ in pool}
    outsiders = sorted((agents[agent_id] for agent_id in counts.keys() - members), key=lambda a: (a.name, a.pk))
    rows = []
    for agent, weight in [*pool, *((agent, None) for agent in outsiders)]:
        configured = 100 * weight / total_weight if weight else 0.0
        got = counts.get(agent.pk, 0)
        actual = 100 * got / total if total else None
        difference = actual - configured if actual is not None else None
        rows.append(FairnessRow(
            agent=agent, weight=weight, configured_share=configured, assignments=got, actual_share=actual,
            difference=difference,
            flagged=weighted and difference is not None and abs(difference) > FAIRNESS_TOLERANCE_POINTS,
        ))
    return PoolFairness(rule=rule, weighted=weighted, assignments=total, rows=tuple(rows))


def _office_escalations(
    pools: list[PoolFairness], escalated: dict[int, int], agents: dict[int, Agent]
) -> tuple[AgentEscalations, ...]:
    """Everyone in the office's pools or who suffered an escalation there, most escalations first."""
    routed: dict[int, int] = defaultdict(int)
    for pool in pools:
        for row in pool.rows:
            routed[row.agent.pk] += row.assignments
    people = routed.keys() | escalated.keys()
    rows = [AgentEscalations(agent=agents[pk], escalations=escalated.get(pk, 0), assignments=routed.get(pk, 0)) for pk in people]
    return tuple(sorted(rows, key=lambda row: (-row.escalations, row.agent.name, row.agent.pk)))
