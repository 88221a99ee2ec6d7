"""The numbers dashboards and reports show, computed in one place (reads only).

Every figure here is counted from what happened and when (calls, texts, the lead timeline
`LeadEvent`), not from running counters such as `RoundRobinTurn`, because a report is always about
a period. What followed each missed call is defined once, in `missed_call_outcomes_compute`; the
services store its answers (`MissedCallOutcome`) so a dashboard sums rows, and the dashboard
computes the answers not stored yet, so its figures are never behind.
"""

import dataclasses
import datetime as dt
import zoneinfo
from collections import defaultdict
from collections.abc import Mapping

from django.db.models import Aggregate, CharField, Count, Exists, F, Min, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import TruncDate
from django.utils import timezone

from compliance.models import ConsentEvent, NumberProfile
from leads.models import Call, Lead, LeadEvent, Message, MissedCallOutcome, OutcomeRefreshDue
from routing.models import Agent, LeadType, Office, PoolMember, RoutingRule, TrackingNumber
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


# --- the dashboard: how fast and how well missed calls are recovered -----------------------------
#
# Definitions (the README's "Dashboard metrics" table says the same in words). A period is [start,
# end). Every figure about a missed call belongs to that call's line (so to its office, lead source
# and lead type) and to the agent the call's lead is assigned to now.
#
# - inbound calls / missed calls: calls the caller made in the period; missed rate = missed / inbound.
# - text-backs sent: text-backs of those missed calls that reached Twilio; delivered rate =
#   delivered / sent; undelivered reasons: the error codes of those that did not arrive.
# - speed to lead: from the moment the miss was recorded (the text-back queued) to Twilio taking it.
# - reply rate: texted missed calls whose caller texted back afterwards / texted missed calls.
# - response time: from the missed call to the first human touch after it (an agent's text, or a
#   call an agent placed or answered), or from the caller's first text if that came before the
#   touch. Also counted on the office's business-hours clock. Calls no human ever followed up
#   count in "never answered", not in the times.
# - escalations: escalation steps taken in the period, by the agent the lead left.
# - recovered: missed calls whose caller reached a human afterwards — a two-way text conversation
#   (they texted and an agent texted) or an answered call; recovery rate = recovered / missed.
#   Appointments: missed calls whose lead has an appointment booked after the miss.
# - opt-out rate: missed calls whose caller opted out afterwards / missed calls.
# - landline rate: missed calls from numbers known to be landlines / missed calls.

DIMENSIONS = {
    "office": "Office", "agent": "Agent", "line": "Line", "source": "Lead source", "lead_type": "Lead type",
}
_HUMAN_TEXT_STATUSES = ["sent", "delivered", "undelivered", "read"]


@dataclasses.dataclass
class MetricRow:
    key: str
    label: str
    inbound_calls: int = 0
    missed_calls: int = 0
    textbacks_sent: int = 0
    textbacks_delivered: int = 0
    undelivered: dict[str, int] = dataclasses.field(default_factory=dict)
    replied: int = 0
    never_answered: int = 0
    recovered: int = 0
    appointments: int = 0
    opt_outs: int = 0
    landlines: int = 0
    escalations: int = 0
    speed_to_lead: list[float] = dataclasses.field(default_factory=list, repr=False)
    response: list[float] = dataclasses.field(default_factory=list, repr=False)
    response_business: list[float] = dataclasses.field(default_factory=list, repr=False)

    def sort_times(self) -> None:
        """Once the row is complete: the percentiles then read sorted lists (each is asked for several times)."""
        for times in (self.speed_to_lead, self.response, self.response_business):
            times.sort()

    @staticmethod
    def _rate(part: int, whole: int) -> float | None:
        return round(100 * part / whole, 1) if whole else None

    @property
    def missed_rate(self) -> float | None:
        return self._rate(self.missed_calls, self.inbound_calls)

    @property
    def delivered_rate(self) -> float | None:
        return self._rate(self.textbacks_delivered, self.textbacks_sent)

    @property
    def reply_rate(self) -> float | None:
        return self._rate(self.replied, self.textbacks_sent)

    @property
    def recovery_rate(self) -> float | None:
        return self._rate(self.recovered, self.missed_calls)

    @property
    def appointment_rate(self) -> float | None:
        return self._rate(self.appointments, self.missed_calls)

    @property
    def opt_out_rate(self) -> float | None:
        return self._rate(self.opt_outs, self.missed_calls)

    @property
    def landline_rate(self) -> float | None:
        return self._rate(self.landlines, self.missed_calls)

    @property
    def speed_to_lead_p50(self) -> float | None:
        return percentile(self.speed_to_lead, 50)

    @property
    def speed_to_lead_p90(self) -> float | None:
        return percentile(self.speed_to_lead, 90)

    @property
    def response_p50(self) -> float | None:
        return percentile(self.response, 50)

    @property
    def response_p90(self) -> float | None:
        return percentile(self.response, 90)

    @property
    def response_business_p50(self) -> float | None:
        return percentile(self.response_business, 50)


def percentile(values: list[float], pct: float) -> float | None:
    """Linear interpolation between closest ranks (what spreadsheets and PostgreSQL's
    percentile_cont give), so the dashboard's median matches a broker's own check."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low, high = int(rank), min(int(rank) + 1, len(ordered) - 1)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (rank - low), 3)


@dataclasses.dataclass(frozen=True)
class Dashboard:
    dimension: str
    total: MetricRow
    rows: list[MetricRow]
    days: list[tuple[dt.date, int, int]]  # (day, missed calls, of which recovered), in the viewer's zone

    @property
    def weeks(self) -> list[tuple[dt.date, int, int]]:
        """The same trend by week, each from its Monday (the period's first and last week may be partial)."""
        weeks: dict[dt.date, list[int]] = {}
        for day, missed, recovered in self.days:
            week = weeks.setdefault(day - dt.timedelta(days=day.weekday()), [0, 0])
            week[0] += missed
            week[1] += recovered
        return [(monday, missed, recovered) for monday, (missed, recovered) in weeks.items()]


def _dimension_for(viewer: Agent, dimension: str) -> str:
    """An agent reads their own card, so their dimension is always the agent; anything unknown is by office."""
    if viewer.role == Agent.Role.AGENT:
        return "agent"
    return dimension if dimension in DIMENSIONS else "office"


@dataclasses.dataclass(frozen=True)
class _Scope:
    """What one viewer may count over [start, end): the inbound calls, the missed calls' outcomes
    and the escalations, and the brokerage's lines by id (most dimensions are the line's)."""

    calls: QuerySet[Call]
    outcomes: QuerySet[MissedCallOutcome]  # those still current: not of a lead marked due
    escalations: QuerySet[LeadEvent]
    lines: dict[int, TrackingNumber]


def _scoped(viewer: Agent, start: dt.datetime, end: dt.datetime, office_id: int | None) -> _Scope:
    """Team leaders count their office, brokers every office (or the one chosen), agents the calls
    whose lead is theirs. Calls and outcomes are selected by line id, so counting them by office,
    line, source or lead type needs no join at all."""
    # Every line, not only the brokerage's: a lead moved between brokerages keeps its first line.
    lines = {line.pk: line for line in TrackingNumber.objects.select_related("office")}
    if viewer.role == Agent.Role.AGENT:
        scope, events = Q(lead__assigned_agent=viewer), Q(previous_agent=viewer)
    else:
        offices = report_offices(viewer=viewer)
        if office_id is not None:
            offices = offices.filter(pk=office_id)
        office_ids = set(offices.values_list("pk", flat=True))
        scope = Q(line_id__in=[pk for pk, line in lines.items() if line.office_id in office_ids])
        events = Q(lead__office_id__in=office_ids)
    return _Scope(
        calls=Call.objects.filter(scope, direction=Call.Direction.INBOUND, created_at__gte=start, created_at__lt=end),
        outcomes=MissedCallOutcome.objects.filter(scope, missed_at__gte=start, missed_at__lt=end).exclude(lead_id__in=_DUE),
        escalations=LeadEvent.objects.filter(events, kind=LeadEvent.Kind.ESCALATED, created_at__gte=start, created_at__lt=end),
        lines=lines,
    )


# Leads whose stored outcomes a change has overtaken (OutcomeRefreshDue), as a subquery.
_DUE = OutcomeRefreshDue.objects.values("lead_id")
# Up to this many due leads are looked up by id (a minute's changes: the calls index finds them at
# once); more, as when the worker has stopped, by the subquery.
_DUE_BY_ID = 2_000


def _due_leads() -> list[int] | QuerySet:
    due = list(_DUE.values_list("lead_id", flat=True)[:_DUE_BY_ID + 1])
    return due if len(due) <= _DUE_BY_ID else _DUE


# How each dimension is read off a line: (key, label).
_LINE_KEYS = {
    "office": lambda line: (line.office_id, line.office.name),
    "line": lambda line: (line.pk, line.number),
    "source": lambda line: (line.source, line.source),
    "lead_type": lambda line: (line.lead_type, line.lead_type),
}


def _grouped(
    rows: QuerySet, scope: _Scope, dimension: str, *fields: str, line: str = "line_id",
    agent: tuple[str, str] = ("lead__assigned_agent_id", "lead__assigned_agent__name"), **aggregates,
) -> list[tuple]:
    """(key, label, *fields, *aggregates) tuples: grouped by the dimension (and `fields`) when
    there are aggregates, one per row otherwise. The database groups by `line` for every
    dimension but the agent (`agent`: the key and label fields); the lines are mapped here, so a
    key may come back once per line and callers add them up."""
    by_agent = dimension == "agent"
    values = rows.values_list(*(agent if by_agent else (line,)), *fields)
    values = list((values.annotate(**aggregates) if aggregates else values).order_by())
    if by_agent:
        return values
    key_of = {pk: _LINE_KEYS[dimension](line) for pk, line in scope.lines.items()}
    return [key_of[value[0]] + value[1:] for value in values]


def dashboard(
    *, viewer: Agent, start: dt.datetime, end: dt.datetime, dimension: str = "office", office_id: int | None = None,
    tz: zoneinfo.ZoneInfo | None = None,
) -> Dashboard:
    """The viewer's numbers for [start, end), one row per value of `dimension`, the total, and the
    day-by-day trend. An agent reads their own card: the dimension is then the agent.

    The database sums the stored outcomes (a few grouped queries, whatever the period). Missed
    calls whose outcome is not stored yet, or whose lead changed since it was (marked due, stored
    within the minute), are computed and counted here: the figures are never behind.
    """
    dimension = _dimension_for(viewer, dimension)
    tz = tz or viewer.office.tz
    scope = _scoped(viewer, start, end, office_id)
    rows: dict[str, MetricRow] = {}
    total = MetricRow(key="", label="All")

    def row(key, label) -> MetricRow:
        key = "" if key is None else str(key)
        if dimension == "lead_type" and key:
            label = LeadType(key).label
        return rows.setdefault(key, MetricRow(key=key, label=label or "—"))

    missed_calls = 0
    for key, label, inbound, missed in _grouped(
        scope.calls, scope, dimension, n=Count("pk"), missed=Count("pk", filter=Q(missed=True)),
    ):
        row(key, label).inbound_calls += inbound
        total.inbound_calls += inbound
        missed_calls += missed
    for key, label, n in _grouped(
        scope.escalations, scope, dimension, line="lead__line_id", agent=("previous_agent_id", "previous_agent__name"), n=Count("pk"),
    ):
        row(key, label).escalations += n
        total.escalations += n
    for key, label, code, *sums, speeds, responses, business in _grouped(
        scope.outcomes, scope, dimension, "undelivered_code", **_OUTCOME_SUMS,
        speeds=_Joined("speed_to_lead"), responses=_Joined("response"), business=_Joined("response_business"),
    ):
        speeds, responses, business = _floats(speeds), _floats(responses), _floats(business)
        for each in (row(key, label), total):
            for field, n in zip(_OUTCOME_SUMS, sums):
                setattr(each, field, getattr(each, field) + n)
            if code:
                each.undelivered[code] = each.undelivered.get(code, 0) + sums[0]
            each.speed_to_lead += speeds
            each.response += responses
            each.response_business += business
    days: dict[dt.date, list[int]] = defaultdict(lambda: [0, 0])
    for day, missed, recovered in scope.outcomes.values_list(TruncDate("missed_at", tzinfo=tz)).annotate(
        n=Count("pk"), recovered=Count("pk", filter=Q(recovered=True)),
    ).order_by():
        days[day] = [missed, recovered]
    # The due leads' missed calls are computed here, and so are any whose outcome was never stored
    # (looked for only when the counts say some are missing).
    computed = _missed_calls(scope.calls.filter(lead_id__in=_due_leads()), dimension)  # none due: no query
    if total.missed_calls + len(computed) != missed_calls:
        computed += _missed_calls(scope.calls.filter(outcome__isnull=True).exclude(lead_id__in=_DUE), dimension)
    for missed in computed:
        for each in (row(missed.key, missed.label), total):
            missed.count_into(each)
        day = days[missed.at.astimezone(tz).date()]
        day[0] += 1
        day[1] += missed.recovered
    for each in (total, *rows.values()):
        each.sort_times()
    trend = [(day, *days.get(day, (0, 0))) for day in _each_day(start.astimezone(tz).date(), (end - dt.timedelta(microseconds=1)).astimezone(tz).date())]
    return Dashboard(dimension=dimension, total=total, rows=sorted(rows.values(), key=lambda r: (r.label == "—", r.label)), days=trend)


# What the database sums per row from the stored outcomes, by MetricRow field. (A delivered
# text-back or a reply implies a text-back went, so none of these needs another condition.)
_OUTCOME_SUMS = {
    "missed_calls": Count("pk"),
    "textbacks_sent": Count("speed_to_lead"),
    "textbacks_delivered": Count("pk", filter=Q(delivered=True)),
    "replied": Count("pk", filter=Q(replied=True)),
    "never_answered": Count("pk", filter=Q(response__isnull=True)),
    "recovered": Count("pk", filter=Q(recovered=True)),
    "appointments": Count("pk", filter=Q(appointment=True)),
    "opt_outs": Count("pk", filter=Q(opted_out=True)),
    "landlines": Count("pk", filter=Q(landline=True)),
}


class _Joined(Aggregate):
    """A group's non-empty values as one comma-separated text: the percentiles need every time,
    and thousands of numbers in one value cost far less to fetch than a row each."""

    function = "GROUP_CONCAT"  # SQLite's; PostgreSQL's is STRING_AGG over text
    output_field = CharField()

    def as_sqlite(self, compiler, connection, **extra_context):
        # SQLite writes a REAL with 15 digits; 17 give back the very float stored.
        template = "%(function)s(CASE WHEN %(expressions)s IS NULL THEN NULL ELSE printf('%%%%.17g', %(expressions)s) END)"
        return self.as_sql(compiler, connection, template=template, **extra_context)

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, function="STRING_AGG", template="%(function)s(%(expressions)s::text, ',')", **extra_context)


def _floats(joined: str | None) -> list[float]:
    return [float(value) for value in joined.split(",")] if joined else []


def leaderboard(rows: list[MetricRow]) -> list[MetricRow]:
    """Agents ranked as a team leader ranks them: most missed calls recovered first, then the
    quickest to answer; those with no missed call at all last."""
    infinity = float("inf")
    return sorted(rows, key=lambda r: (
        r.recovery_rate is None, -(r.recovery_rate or 0), r.response_p50 if r.response_p50 is not None else infinity, r.label,
    ))


def _each_day(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


@dataclasses.dataclass(frozen=True)
class LiveTiles:
    missed_today: int
    waiting: int
    oldest_waiting_since: dt.datetime | None


def live_tiles(*, viewer: Agent, now: dt.datetime | None = None) -> LiveTiles:
    """What a team leader watches all day: today's missed calls (since midnight in the viewer's
    office), the leads waiting for a human now, and since when the oldest has waited."""
    now = now or timezone.now()
    midnight = dt.datetime.combine(now.astimezone(viewer.office.tz).date(), dt.time(0), viewer.office.tz)
    calls = _scoped(viewer, midnight, now + dt.timedelta(seconds=1), None).calls
    waiting = Lead.objects.filter(awaiting_reply_since__isnull=False).exclude(status=Lead.Status.CLOSED)
    if viewer.role == Agent.Role.AGENT:
        waiting = waiting.filter(assigned_agent=viewer)
    else:
        waiting = waiting.filter(office__in=report_offices(viewer=viewer))
    stats = waiting.aggregate(n=Count("pk"), oldest=Min("awaiting_reply_since"))
    return LiveTiles(missed_today=calls.filter(missed=True).count(), waiting=stats["n"], oldest_waiting_since=stats["oldest"])


# What the drill-down can list: the missed calls behind a number on the dashboard.
DRILL_DOWNS = {
    "missed": "Missed calls", "texted": "Texted back", "delivered": "Text-back delivered", "replied": "Caller replied",
    "never_answered": "Never answered by a human", "recovered": "Recovered", "appointment": "Appointment booked",
    "opted_out": "Opted out", "landline": "Landline",
}


def dashboard_lead_ids(
    *, viewer: Agent, start: dt.datetime, end: dt.datetime, dimension: str, key: str, drill: str, office_id: int | None = None,
) -> list[int]:
    """The leads behind one number of the dashboard (a row's or the total's, `key` ""), newest
    missed call first: the same facts and the same scope, so the list always adds up to the number."""
    dimension = _dimension_for(viewer, dimension)
    calls = _scoped(viewer, start, end, office_id).calls
    if key:
        calls = calls.filter(**{_CALL_KEYS[dimension][0]: key})
    wanted = [o for o in _missed_calls(calls, dimension) if drill == "missed" or getattr(o, drill, False)]
    return list(dict.fromkeys(o.lead_id for o in sorted(wanted, key=lambda o: o.at, reverse=True)))


# How the drill-down reads each dimension off a call: (key, label), the label None where the key
# is its own label.
_CALL_KEYS = {
    "office": ("line__office_id", "line__office__name"),
    "agent": ("lead__assigned_agent_id", "lead__assigned_agent__name"),
    "line": ("line_id", "line__number"),
    "source": ("line__source", None),
    "lead_type": ("line__lead_type", None),
}


# The facts stored per missed call (leads.models.MissedCallOutcome), in the order they are read.
OUTCOME_FIELDS = (
    "speed_to_lead", "delivered", "undelivered_code", "replied", "response", "response_business",
    "recovered", "appointment", "opted_out", "landline",
)


@dataclasses.dataclass(frozen=True, slots=True)
class MissedCall:
    """One missed call as the dashboard counts it (and the drill-down lists it): where it belongs
    in the dimension, when it was missed, and what followed it."""

    lead_id: int
    key: object
    label: str
    at: dt.datetime
    speed_to_lead: float | None  # seconds, when a text-back reached Twilio
    delivered: bool
    undelivered_code: str
    replied: bool
    response: float | None  # seconds to the first human touch, None if none came
    response_business: float | None
    recovered: bool
    appointment: bool
    opted_out: bool
    landline: bool

    @property
    def texted(self) -> bool:
        return self.speed_to_lead is not None

    @property
    def never_answered(self) -> bool:
        return self.response is None

    def count_into(self, row: MetricRow) -> None:
        row.missed_calls += 1
        if self.texted:
            row.textbacks_sent += 1
            row.speed_to_lead.append(self.speed_to_lead)
            row.textbacks_delivered += self.delivered
            row.replied += self.replied
        if self.undelivered_code:
            row.undelivered[self.undelivered_code] = row.undelivered.get(self.undelivered_code, 0) + 1
        if self.never_answered:
            row.never_answered += 1
        else:
            row.response.append(self.response)
            row.response_business.append(self.response_business)
        row.recovered += self.recovered
        row.appointments += self.appointment
        row.opt_outs += self.opted_out
        row.landlines += self.landline


def _missed_calls(calls: QuerySet[Call], dimension: str) -> list[MissedCall]:
    """Every missed call among `calls` with its outcome: the stored one, or, for a call whose
    outcome is not stored yet or whose lead changed since (see OutcomeRefreshDue), computed on the
    spot, so a figure is never behind."""
    key, label = _CALL_KEYS[dimension]
    rows = list(calls.filter(missed=True).values_list(
        "pk", "lead_id", key, label or key, "created_at", "outcome__call", *(f"outcome__{f}" for f in OUTCOME_FIELDS),
    ).order_by())
    due = set(OutcomeRefreshDue.objects.filter(lead_id__in={row[1] for row in rows}).values_list("lead_id", flat=True)) if rows else set()
    missing = {row[0] for row in rows if row[5] is None or row[1] in due}
    computed = missed_call_outcomes_compute(Call.objects.filter(pk__in=missing)) if missing else {}
    return [
        MissedCall(*row[1:5], *(row[6:] if row[0] not in missing else (computed[row[0]][f] for f in OUTCOME_FIELDS)))
        for row in rows
    ]


def missed_call_outcomes_compute(missed: QuerySet[Call]) -> dict[int, dict]:
    """What followed each of the `missed` calls, by call id: the one definition of every outcome
    the dashboard counts (see the README's "Dashboard metrics"). One query, each fact a subquery
    on an indexed (lead, created_at) range, plus the offices' hours for the business clock."""
    facts = _missed_call_facts(missed)
    offices = {office.pk: office for office in Office.objects.filter(pk__in={f["office_id"] for f in facts})}
    return {fact["pk"]: _outcome(fact, offices[fact["office_id"]]) for fact in facts}


def _outcome(fact: dict, office: Office) -> dict:
    """The call's outcome (OUTCOME_FIELDS), and the call's own time, lead and line."""
    answered = min((t for t in (fact["first_human_text_at"], fact["first_human_call_at"]) if t), default=None)
    # The caller waits from the miss; if they texted before a human got to them, from that text.
    reply = fact["first_reply_at"]
    clock_from = reply if reply and answered and reply <= answered else fact["created_at"]
    sent = fact["textback_sent_at"]
    return {
        "missed_at": fact["created_at"], "lead_id": fact["lead_id"], "line_id": fact["line_id"],
        "speed_to_lead": (sent - fact["textback_queued_at"]).total_seconds() if sent else None,
        "delivered": bool(sent and fact["textback_delivered_at"]), "undelivered_code": fact["textback_error"] or "",
        "replied": bool(sent and fact["first_reply_at"]),
        "response": (answered - clock_from).total_seconds() if answered else None,
        "response_business": office.business_seconds_between(clock_from, answered) if answered else None,
        "recovered": bool((fact["first_reply_at"] and fact["first_human_text_at"]) or fact["first_human_call_at"]),
        "appointment": fact["appointment"], "opted_out": fact["opted_out"], "landline": fact["landline"],
    }


def _missed_call_facts(missed: QuerySet[Call]) -> list[dict]:
    """One row per missed call with the times and flags its outcome is derived from."""
    after = {"lead": OuterRef("lead"), "created_at__gte": OuterRef("created_at")}
    textback = Message.objects.filter(call=OuterRef("pk"), kind=Message.Kind.TEXTBACK)
    first_text = Message.objects.filter(direction=Message.Direction.INBOUND, **after).order_by("created_at")
    human_texts = Message.objects.filter(kind=Message.Kind.REPLY, status__in=_HUMAN_TEXT_STATUSES, **after)
    human_calls = Call.objects.filter(
        Q(direction=Call.Direction.OUTBOUND, call_status__in=["in-progress", "completed"])
        | Q(direction=Call.Direction.INBOUND, dial_status__in=[Call.DialStatus.COMPLETED, Call.DialStatus.ANSWERED]),
        lead=OuterRef("lead"), created_at__gt=OuterRef("created_at"),
    )
    return list(
        missed.filter(missed=True, direction=Call.Direction.INBOUND).annotate(
            office_id=F("line__office_id"),
            textback_queued_at=Subquery(textback.values("queued_at")[:1]),
            textback_sent_at=Subquery(textback.values("sent_at")[:1]),
            textback_delivered_at=Subquery(textback.values("delivered_at")[:1]),
            textback_error=Subquery(textback.filter(status__in=["undelivered", "failed"]).values("error_code")[:1]),
            first_reply_at=Subquery(first_text.values("created_at")[:1]),
            first_human_text_at=Subquery(human_texts.order_by("created_at").values("created_at")[:1]),
            first_human_call_at=Subquery(human_calls.order_by("created_at").values("created_at")[:1]),
            appointment=Exists(LeadEvent.objects.filter(
                kind=LeadEvent.Kind.OUTCOME, text__startswith=Lead.Outcome.APPOINTMENT.label, **after
            )),
            opted_out=Exists(ConsentEvent.objects.filter(
                phone=OuterRef("from_number"), kind=ConsentEvent.Kind.OPT_OUT, created_at__gte=OuterRef("created_at")
            )),
            landline=Exists(NumberProfile.objects.filter(phone=OuterRef("from_number"), line_type=NumberProfile.LineType.LANDLINE)),
        ).values(
            "pk", "created_at", "lead_id", "line_id", "office_id", "textback_queued_at", "textback_sent_at",
            "textback_delivered_at", "textback_error", "first_reply_at", "first_human_text_at", "first_human_call_at",
            "appointment", "opted_out", "landline",
        ).order_by()
    )
