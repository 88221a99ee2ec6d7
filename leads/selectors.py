"""Reads about leads, their calls and their texts."""

import dataclasses
import datetime as dt

from django.db.models import Q, QuerySet
from django.utils import timezone

from compliance.gate import CAP_PERIOD, ContactHistory, GateDecision, Purpose, TextingPolicy, gate_check
from leads.models import Call, Lead, Message, TwilioWebhook
from routing.models import Agent, Office, TrackingNumber
from routing.selectors import LeadFacts, ring_candidates


@dataclasses.dataclass(frozen=True)
class RingPlan:
    """Whose phones ring for an incoming call, or why nobody's do (then the call is missed)."""

    agents: list[Agent]
    missed_reason: str = ""


def lead_facts(lead: Lead, line: TrackingNumber) -> LeadFacts:
    """What routing may know of the lead: what they told us, else the listing of the line they reached."""
    return LeadFacts(
        office=line.office, line=line, phone=lead.phone, source=line.source, lead_type=lead.lead_type,
        zip_code=lead.zip_code or line.zip_code, city=lead.city or line.city, price=lead.price or line.price,
        language=lead.language,
    )


PURPOSE_BY_KIND = {
    Message.Kind.TEXTBACK: Purpose.TEXTBACK,
    Message.Kind.REPLY: Purpose.REPLY,
    Message.Kind.OPT_OUT_CONFIRMATION: Purpose.OPT_OUT_CONFIRMATION,
    Message.Kind.OPT_IN_CONFIRMATION: Purpose.OPT_IN_CONFIRMATION,
    Message.Kind.HELP_REPLY: Purpose.HELP_REPLY,
    Message.Kind.AGENT_ALERT: Purpose.AGENT_ALERT,
    Message.Kind.QUALIFICATION: Purpose.QUALIFICATION,
    Message.Kind.APPOINTMENT_CONFIRMATION: Purpose.APPOINTMENT_CONFIRMATION,
}


def texting_policy(office: Office) -> TextingPolicy:
    return TextingPolicy(
        timezone=office.timezone, quiet_start=office.quiet_hours_start, quiet_end=office.quiet_hours_end,
        quiet_hours_for_replies=office.quiet_hours_for_replies, daily_cap=office.daily_text_cap,
    )


def contact_history(*, lead: Lead, at: dt.datetime) -> ContactHistory:
    """When the caller last reached out (a call or a text), and the outreach texts of the last day."""
    last_text = lead.messages.filter(direction=Message.Direction.INBOUND).order_by("-created_at").values_list("created_at", flat=True)[:1]
    last_call = lead.calls.filter(direction=Call.Direction.INBOUND).order_by("-created_at").values_list("created_at", flat=True)[:1]
    # Counted from the moment a worker took each text, so one still with Twilio counts too.
    outreach = (
        lead.messages.filter(outreach=True, sending_at__gt=at - CAP_PERIOD)
        .exclude(status__in=[Message.Status.QUEUED, Message.Status.FAILED, Message.Status.CANCELED])
        .order_by("sending_at").values_list("sending_at", flat=True)
    )
    return ContactHistory(last_inbound_at=max([*last_text, *last_call], default=None), outreach_sent=tuple(outreach))


# Texts to the caller that answer them if they go soon after the caller reached out, and are
# outreach otherwise (a text-back retried long after an outage, an agent's follow-up days later).
_ANSWERS_OR_OUTREACH = {Purpose.TEXTBACK, Purpose.REPLY, Purpose.QUALIFICATION, Purpose.APPOINTMENT_CONFIRMATION}


def text_gate(*, lead: Lead, line: TrackingNumber, kind: str, at: dt.datetime, to_number: str = "", consent_event_id: int | None = None) -> GateDecision:
    """Ask the compliance gate about one text, with what only the leads app knows: the office's
    policy and the caller's recent contact."""
    purpose = PURPOSE_BY_KIND[kind]
    return gate_check(
        phone=to_number or lead.phone, senders=line.senders, purpose=purpose, at=at, policy=texting_policy(lead.office),
        history=contact_history(lead=lead, at=at) if purpose in _ANSWERS_OR_OUTREACH else ContactHistory(),
        consent_event_id=consent_event_id,
    )


def call_ring_plan(*, line: TrackingNumber, from_number: str | None, now: dt.datetime | None = None) -> RingPlan:
    """After hours nobody rings; a known caller rings their own agent; anyone else whoever the
    office's routing rules could give the lead to now."""
    now = now or timezone.now()
    if not line.office.is_open(now):
        return RingPlan(agents=[], missed_reason=Call.MissedReason.AFTER_HOURS)
    lead = Lead.objects.select_related("assigned_agent__user", "assigned_agent__office").filter(phone=from_number).first() if from_number else None
    facts = lead_facts(lead, line) if lead else LeadFacts(
        office=line.office, line=line, phone=from_number or "", source=line.source, lead_type=line.lead_type,
        zip_code=line.zip_code, city=line.city, price=line.price,
    )
    agents = ring_candidates(facts, current_agent=lead.assigned_agent if lead else None, at=now)
    return RingPlan(agents=agents, missed_reason="" if agents else Call.MissedReason.NOBODY_ON_DUTY)


def human_contact_exists(*, lead: Lead, since: dt.datetime | None = None) -> bool:
    """An agent texted the lead, or spoke with them (a call answered, a call-back placed), after
    `since` (ever, when None): the moment automatic texts and questions give way to a person."""
    after = Q(created_at__gt=since) if since else Q()
    answered = Q(direction=Call.Direction.OUTBOUND) | Q(dial_status__in=[Call.DialStatus.COMPLETED, Call.DialStatus.ANSWERED])
    return lead.messages.filter(after, sender=Message.Sender.AGENT, to_number="").exists() or lead.calls.filter(after, answered).exists()


def leads_due_ids(*, now: dt.datetime, limit: int = 5000) -> list[int]:
    """Leads whose escalation window or claim offer has run out, oldest first: one index range."""
    return list(
        Lead.objects.filter(escalation_due_at__lte=now).order_by("escalation_due_at").values_list("pk", flat=True)[:limit]
    )


def simulator_lines() -> list[TrackingNumber]:
    """The lines a simulated caller can dial: the active ones, as Twilio would only route those."""
    return list(TrackingNumber.objects.filter(active=True).select_related("office").order_by("office__name", "number"))


def simulator_thread(*, phone: str, line: TrackingNumber) -> list[Message]:
    """What the caller's handset shows for one line: a phone keeps one thread per sender number."""
    return list(
        # Alerts to agents ride on the lead's row but go to the agent's phone, not this one.
        Message.objects.filter(lead__phone=phone, line=line, to_number="")
        .select_related("lead", "line").order_by("created_at", "id")
    )


def simulator_agent_names(*, phones: list[str]) -> dict[str, str]:
    """Agents by the phone a <Dial> rings, so the simulator can say who is being rung."""
    return dict(Agent.objects.filter(phone__in=phones).order_by("id").values_list("phone", "name"))


def webhooks_stranded_ids(*, now: dt.datetime, stuck_after: dt.timedelta, max_attempts: int) -> list[int]:
    """Voice webhooks still unprocessed after a while: a lost task, a crash, or a failure to retry."""
    return list(
        TwilioWebhook.objects.filter(processed_at__isnull=True, received_at__lt=now - stuck_after, attempts__lt=max_attempts)
        .order_by("id")
        .values_list("pk", flat=True)[:1000]
    )


# --- who sees which leads: the one rule for pages, actions and live updates --------------------


def leads_visible_to(agent: Agent) -> QuerySet[Lead]:
    """Agents see their own leads and their office's unassigned pool; team leaders their office;
    brokers the whole brokerage. Pages, actions and websocket updates all filter through this."""
    leads = Lead.objects.all()
    if agent.role == Agent.Role.BROKER:
        return leads.filter(office__brokerage_id=agent.office.brokerage_id)
    if agent.role == Agent.Role.TEAM_LEADER:
        return leads.filter(office_id=agent.office_id)
    return leads.filter(Q(assigned_agent=agent) | Q(office_id=agent.office_id, assigned_agent__isnull=True))


def lead_live_groups(lead: Lead) -> list[str]:
    """The Channels groups that hear about a lead; each is joined only by people `leads_visible_to`
    lets see it: its open threads, its agent (or, while unassigned, its office's pool), its
    office's team leaders and the brokers."""
    owner = f"agent.{lead.assigned_agent_id}" if lead.assigned_agent_id else f"pool.{lead.office_id}"
    return [f"lead.{lead.pk}", owner, f"office.{lead.office_id}", f"brokerage.{lead.office.brokerage_id}"]


def agent_live_groups(agent: Agent) -> list[str]:
    """The groups an agent's inbox joins, mirroring `leads_visible_to` (threads join `lead.<id>`
    separately, after the same check)."""
    if agent.role == Agent.Role.BROKER:
        return [f"agent.{agent.pk}", f"brokerage.{agent.office.brokerage_id}"]
    if agent.role == Agent.Role.TEAM_LEADER:
        return [f"agent.{agent.pk}", f"office.{agent.office_id}"]
    return [f"agent.{agent.pk}", f"pool.{agent.office_id}"]
