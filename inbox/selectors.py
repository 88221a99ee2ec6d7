"""Reads for the agent inbox: the conversation list, a thread's timeline, what an agent may do.

Every read starts from `leads_visible_to`, so a page, an action and a live update can never
disagree about who sees a lead.
"""

import dataclasses
import datetime as dt

from django.core.paginator import Page, Paginator
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from compliance.gate import GateDecision
from compliance.models import ConsentEvent
from compliance.selectors import consent_deciding_event
from leads.models import Call, Lead, LeadEvent, LeadRead, Message, Qualification, ReplySnippet
from leads.qualification import QUESTION_LABELS, Question
from leads.selectors import leads_visible_to, text_gate
from leads.textback import placeholders_fill
from routing.models import Agent, TrackingNumber
from routing.selectors import LEAD_TAKING_ROLES

PAGE_SIZE = 50
_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)


@dataclasses.dataclass(frozen=True)
class InboxView:
    key: str
    label: str


# The list's filters, in the order the page shows them.
VIEWS = [
    InboxView("open", "All open"),
    InboxView("mine", "Mine"),
    InboxView("pool", "Unassigned"),
    InboxView("needs_reply", "Needs reply"),
    InboxView("escalated", "Escalated"),
    InboxView("call_back", "Call back"),
    InboxView("closed", "Closed"),
]
VIEW_KEYS = {view.key for view in VIEWS}
# Views whose counts the list's tabs show (cheap, indexed, and the ones agents act on).
COUNTED_VIEWS = ["mine", "pool", "needs_reply", "call_back"]


def agent_for_user(user) -> Agent | None:
    if not user.is_authenticated:
        return None
    return Agent.objects.select_related("office__brokerage", "user").filter(user=user, user__is_active=True).first()


def _view_filter(view: str, agent: Agent) -> Q:
    open_ = ~Q(status=Lead.Status.CLOSED)
    return {
        "open": open_,
        "mine": open_ & Q(assigned_agent=agent),
        "pool": open_ & Q(assigned_agent__isnull=True),
        "needs_reply": open_ & Q(awaiting_reply_since__isnull=False),
        # Escalated and still waiting: the ladder's step resets once someone answers.
        "escalated": open_ & Q(escalation_step__gt=0),
        # Numbers that cannot take texts (landlines): someone has to call.
        "call_back": open_ & Q(call_back_since__isnull=False),
        "closed": Q(status=Lead.Status.CLOSED),
    }[view]


def _search_filter(query: str) -> Q:
    query = query.strip()
    if not query:
        return Q()
    digits = "".join(ch for ch in query if ch.isdigit())
    match = Q(name__icontains=query) | Q(email__icontains=query)
    if len(digits) >= 3:
        match |= Q(phone__contains=digits)
    return match


def inbox_leads(*, agent: Agent, view: str, query: str = "") -> QuerySet[Lead]:
    """The leads one of the list's filters shows this agent, newest activity first."""
    return (
        leads_visible_to(agent)
        .filter(_view_filter(view if view in VIEW_KEYS else "open", agent))
        .filter(_search_filter(query))
        .order_by("-last_activity_at", "-id")
    )


def _with_row_details(leads: QuerySet[Lead], agent: Agent) -> QuerySet[Lead]:
    """Everything a list row shows, in the same query: last text, unread count, who has it."""
    last_message = Message.objects.filter(lead=OuterRef("pk"), to_number="").order_by("-created_at", "-id")
    read_at = LeadRead.objects.filter(lead=OuterRef("pk"), agent=agent).values("read_at")[:1]
    unread = (
        Message.objects.filter(lead=OuterRef("pk"), direction=Message.Direction.INBOUND, created_at__gt=OuterRef("read_at"))
        .order_by()
        .values("lead")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return leads.select_related("assigned_agent", "line", "office__brokerage").annotate(
        last_body=Subquery(last_message.values("body")[:1]),
        last_direction=Subquery(last_message.values("direction")[:1]),
        last_status=Subquery(last_message.values("status")[:1]),
        read_at=Coalesce(Subquery(read_at), Value(_EPOCH)),
        unread=Coalesce(Subquery(unread), 0),
    )


def inbox_page(*, agent: Agent, view: str, query: str = "", page: int = 1) -> Page:
    paginator = Paginator(_with_row_details(inbox_leads(agent=agent, view=view, query=query), agent), PAGE_SIZE)
    return paginator.get_page(page)


def inbox_row(*, agent: Agent, lead_id: int, view: str, query: str = "") -> Lead | None:
    """One list row as `view` shows it, or None when the lead does not belong in that view."""
    return _with_row_details(inbox_leads(agent=agent, view=view, query=query).filter(pk=lead_id), agent).first()


def inbox_counts(*, agent: Agent) -> dict[str, int]:
    visible = leads_visible_to(agent)
    return visible.aggregate(**{key: Count("pk", filter=_view_filter(key, agent)) for key in COUNTED_VIEWS})


def lead_for_agent(*, agent: Agent, lead_id: int) -> Lead | None:
    """The lead if this agent may see it; the same None for a lead that does not exist."""
    return leads_visible_to(agent).select_related("assigned_agent", "line", "office__brokerage").filter(pk=lead_id).first()


@dataclasses.dataclass(frozen=True)
class TimelineItem:
    at: dt.datetime
    kind: str  # "message", "alert", "call", "event" or "consent"
    item: object


# Consent events that change what we may send, or that the agent should know the caller asked.
_TIMELINE_CONSENT_KINDS = [
    ConsentEvent.Kind.OPT_OUT, ConsentEvent.Kind.OPT_IN, ConsentEvent.Kind.EXPRESS_OPT_IN, ConsentEvent.Kind.HELP,
]


def thread_timeline(*, lead: Lead) -> list[TimelineItem]:
    """Everything that happened with the lead, oldest first: texts both ways, calls, assignments,
    outcomes, notes and consent changes."""
    items = [
        TimelineItem(m.created_at, "alert" if m.to_number else "message", m)
        for m in lead.messages.select_related("agent").order_by("created_at", "id")
    ]
    items += [
        TimelineItem(c.created_at, "call", c)
        for c in Call.objects.filter(lead=lead).select_related("answered_by", "placed_by").order_by("created_at")
    ]
    items += [
        TimelineItem(e.created_at, "event", e)
        for e in LeadEvent.objects.filter(lead=lead).select_related("actor", "agent").order_by("created_at", "id")
    ]
    items += [
        TimelineItem(c.created_at, "consent", c)
        for c in ConsentEvent.objects.filter(phone=lead.phone, kind__in=_TIMELINE_CONSENT_KINDS).order_by("created_at", "id")
    ]
    return sorted(items, key=lambda i: i.at)


def qualification_asking(*, lead: Lead) -> str:
    """The question the script waits on, in words; empty when no questions are being asked."""
    current = Qualification.objects.filter(lead=lead, state=Qualification.State.ASKING).values_list("current", flat=True).first()
    return QUESTION_LABELS[Question(current)] if current else ""


def reply_line(*, lead: Lead) -> TrackingNumber:
    """Agents answer from the line the lead last texted, so the reply lands in the same thread
    on the caller's phone; otherwise from the line they first called."""
    last_inbound = lead.messages.filter(direction=Message.Direction.INBOUND).select_related("line").order_by("-created_at").first()
    return last_inbound.line if last_inbound else lead.line


def reply_gate(*, lead: Lead) -> GateDecision:
    """What the compliance gate would say to an agent's reply right now (it asks again at send time)."""
    return text_gate(lead=lead, line=reply_line(lead=lead), kind=Message.Kind.REPLY, at=timezone.now())


def consent_basis(*, lead: Lead) -> str:
    """Why we may text the lead, when nothing stops us: what the thread's badge says."""
    latest = consent_deciding_event(phone=lead.phone, senders=reply_line(lead=lead).senders)
    if latest is not None and latest.kind == ConsentEvent.Kind.EXPRESS_OPT_IN:
        return "Express consent"
    if latest is not None and latest.kind == ConsentEvent.Kind.OPT_IN:
        return "Opted back in"
    return "Implied: they reached out"


def leads_by_ids(lead_ids: list[int]) -> list[Lead]:
    """Leads in the order given (a report's), with what a list row shows."""
    found = Lead.objects.select_related("assigned_agent", "office", "line").in_bulk(lead_ids)
    return [found[pk] for pk in lead_ids if pk in found]


def transfer_targets(*, lead: Lead, exclude: Agent | None = None) -> list[Agent]:
    agents = Agent.objects.filter(office_id=lead.office_id, role__in=LEAD_TAKING_ROLES, user__is_active=True)
    if lead.assigned_agent_id:
        agents = agents.exclude(pk=lead.assigned_agent_id)
    return list(agents.order_by("name"))


def reply_snippets(*, lead: Lead, agent: Agent) -> list[tuple[str, str]]:
    """Canned replies for this lead's type, placeholders filled in, as (title, text)."""
    values = {"agent": agent.name, "brokerage": lead.office.brokerage.name, "listing": lead.line.listing or "the home"}
    snippets = ReplySnippet.objects.filter(Q(lead_type="") | Q(lead_type=lead.lead_type))
    return [(s.title, placeholders_fill(s.body, values)) for s in snippets]
