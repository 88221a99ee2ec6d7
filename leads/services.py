"""Writes for the core loop: calls, leads, the outbox and Twilio's status reports.

Each service runs in one transaction and publishes live events only after it commits. Twilio
retries webhooks and may send two copies at once, so every service is idempotent: unique
constraints on SIDs decide races, and rows are locked before they are read-then-written.
The call services join their caller's transaction without a savepoint (nothing catches their
errors half-way), which keeps the missed-call path a few round trips shorter.
"""

import contextvars
import datetime as dt
import functools
import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.module_loading import import_string
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from compliance.gate import Rule, Verdict
from compliance.keywords import Keyword, Revocation, keyword_classify, revocation_classify
from compliance.models import ConsentEvent, NumberProfile
from compliance.selectors import consent_is_opted_out
from compliance.services import consent_record, number_line_type_set
from leads.metrics import OUTCOME_FIELDS, missed_call_outcomes_compute
from leads.models import (
    Call, FollowUp, Lead, LeadEvent, Message, MessageStatusEvent, MissedCallOutcome, OutcomeRefreshDue, Playbook, Qualification,
    TextbackTemplate, TwilioWebhook,
)
from leads.qualification import (
    QUESTION_LABELS, VOLUNTEERED, Intent, Qualifier, Question, Rating, answer_as_json, answer_summary, answers_as_values,
    detect_language, intent_rating, lead_fields, next_question, question_text, thanks_text,
)
from leads.signals import Milestone, lead_milestone
from leads.selectors import human_contact_exists, lead_facts, lead_live_groups, text_gate
from leads.sms import PERMANENT_ERROR_CODES, SmsSendError, get_sms_backend
from leads.textback import DEFAULTS_BY_LANGUAGE, segment_count, textback_render
from routing.models import Agent, TrackingNumber
from routing.selectors import agent_phone_is_known, speaker_available
from routing.services import (
    STICKY, RoutingDecision, claim_timeout_route, escalation_step_next, lead_route, office_catch_all,
)
from textback_site.events import publish_on_commit

logger = logging.getLogger(__name__)

_ANSWERED = [Call.DialStatus.COMPLETED, Call.DialStatus.ANSWERED]
_REACHED_AN_AGENT = "The caller reached an agent before the text-back left."
CALL_ENDED_STATUSES = {"completed", "busy", "no-answer", "failed", "canceled"}


# --- live events ------------------------------------------------------------------------------


def lead_event_publish(lead: Lead, event: dict, *, also: list[str] = (), outcomes: bool = True) -> None:
    """Tell everyone entitled to see the lead (and the groups in `also`, e.g. the agent it just
    left) about a change, once the transaction commits.

    Who is entitled is read from the lead when the transaction commits, so the events of a lead
    created and assigned in one transaction all go to its agent, not to the whole office pool.

    A change the inbox shows is a change the dashboard may count: unless the event cannot change
    what followed the lead's missed calls (`outcomes` False, or a neutral kind), the lead is marked
    due in this same transaction. Only the mark (one small upsert) is written on this path; the
    minute's `missed_call_outcomes_catch_up` does the refresh, many leads at a time.
    """
    publish_on_commit(lambda: dict.fromkeys([*lead_live_groups(lead), *also]), {**event, "lead_id": lead.pk})
    if outcomes and event["type"] not in _OUTCOME_NEUTRAL_EVENTS:
        missed_call_outcomes_mark_due(lead_ids=[lead.pk])


def _publish_message(message: Message, event_type: str) -> None:
    event = {"type": event_type, "message_id": message.pk, "status": message.status, "direction": message.direction}
    if message.to_number:
        # An alert to the agent's own phone shows only in the lead's open thread, not in any list.
        publish_on_commit(f"lead.{message.lead_id}", {**event, "lead_id": message.lead_id})
        return
    # A text queued changes nothing a dashboard counts until it is sent.
    lead_event_publish(message.lead, event, outcomes=not (event_type == "message.created" and message.is_outbound))


# --- what followed each missed call, for the dashboards ---------------------------------------

# Live events that change nothing a missed call's outcome is made of.
_OUTCOME_NEUTRAL_EVENTS = {"lead.created", "lead.assigned", "lead.read", "call.placed", "call.voicemail"}


def missed_call_outcomes_mark_due(*, lead_ids: list[int]) -> None:
    """Mark these leads' missed-call outcomes due a refresh (also for changes made outside the
    leads' own paths: a broker correcting a line type, or an office's hours)."""
    now = timezone.now()
    OutcomeRefreshDue.objects.bulk_create(
        [OutcomeRefreshDue(lead_id=lead_id, since=now) for lead_id in sorted(lead_ids)],
        update_conflicts=True, unique_fields=["lead"], update_fields=["since"], batch_size=1000,
    )


# Leads a catch-up run stores at most: the minute's task stays well inside the worker's timeout
# even after an upgrade marks every lead with history.
CATCH_UP_BATCH, CATCH_UP_BATCHES = 100, 50


def missed_call_outcomes_catch_up(*, batch: int = CATCH_UP_BATCH, batches: int = CATCH_UP_BATCHES) -> int:
    """Store the outcomes of the leads marked due, `batch` leads per transaction; how many leads.

    No lead is locked, so no live path ever waits for this. A mark is removed only if its `since`
    is still the one read: a change committed since (or still in flight, whose upsert holds the
    mark) keeps its lead due, and the next run stores it again.
    """
    done, after = 0, 0
    for _ in range(batches):
        with transaction.atomic():
            due = dict(OutcomeRefreshDue.objects.filter(lead_id__gt=after).order_by("lead_id").values_list("lead_id", "since")[:batch])
            if not due:
                break
            after = max(due)
            missed_call_outcomes_refresh(lead_ids=list(due))
            unchanged = Q()
            for lead_id, since in due.items():
                unchanged |= Q(lead_id=lead_id, since=since)
            OutcomeRefreshDue.objects.filter(unchanged).delete()
        done += len(due)
    return done


def missed_call_outcomes_refresh(*, lead_ids: list[int]) -> int:
    """Recompute and store the outcome of every missed call of these leads.

    Nothing is locked: what a change commits while this runs has marked its lead due again, and
    the catch-up stores it after. Rows are written in call order, so two refreshes of the same
    leads cannot deadlock on them.
    """
    with transaction.atomic():
        computed = missed_call_outcomes_compute(Call.objects.filter(lead_id__in=lead_ids))
        MissedCallOutcome.objects.bulk_create(
            [MissedCallOutcome(call_id=call_id, **computed[call_id]) for call_id in sorted(computed)],
            update_conflicts=True, unique_fields=["call"], update_fields=[*OUTCOME_FIELDS, "refreshed_at"],
        )
        # A call a broker has since marked as answered after all is no longer a missed call.
        MissedCallOutcome.objects.filter(lead_id__in=lead_ids).exclude(call_id__in=list(computed)).delete()
    return len(computed)


def missed_call_outcomes_rebuild(*, batch: int = 500) -> int:
    """Recompute and store the outcome of every missed call, a batch of leads at a time, marks
    aside: for a database loaded in bulk (bench/seed_scale.py)."""
    lead_ids = list(Call.objects.filter(missed=True).order_by("lead_id").values_list("lead_id", flat=True).distinct())
    return sum(missed_call_outcomes_refresh(lead_ids=lead_ids[i:i + batch]) for i in range(0, len(lead_ids), batch))


# --- leads ------------------------------------------------------------------------------------


def _lead_locked(*, phone: str, line: TrackingNumber) -> tuple[Lead, bool]:
    """Find or create the lead for a phone number, its row locked for this transaction."""
    locked = Lead.objects.select_for_update(of=("self",)).select_related("assigned_agent__user", "office__brokerage")
    lead = locked.filter(phone=phone).first()
    if lead is not None:
        return lead, False
    try:
        with transaction.atomic():
            lead = Lead.objects.create(
                phone=phone, office=line.office, line=line, lead_type=line.lead_type, source=line.source
            )
    except IntegrityError:
        # Another request created this lead a moment ago; its insert settled the race.
        return locked.get(phone=phone), False
    lead_event_publish(lead, {"type": "lead.created"})
    return lead, True


def _routing_record(lead: Lead, decision: RoutingDecision, now: dt.datetime, *, previous_groups: list[str]) -> tuple[list[str], list[Agent]]:
    """Put a routing decision on the lead and its timeline, with its why, and tell everyone.

    Returns the fields changed (for the caller's single save) and the agents to alert by SMS, which
    the caller queues after what the caller is owed, so the caller's text leaves first.
    """
    previous = lead.assigned_agent
    lead.assigned_agent, lead.assigned_at = decision.agent, now if decision.agent else None
    lead.routing_rule, lead.claim_deadline = decision.rule, decision.claim_deadline
    kind = LeadEvent.Kind.OFFERED if decision.offered_to else LeadEvent.Kind.ASSIGNED
    LeadEvent.objects.create(
        lead=lead, kind=kind, agent=decision.agent, previous_agent=previous, rule=decision.rule,
        text=decision.summary, detail=decision.detail(),
    )
    event = {"type": "lead.assigned", "agent_id": decision.agent.pk if decision.agent else None}
    if decision.offered_to:
        event["alert"] = {"agent_ids": [a.pk for a in decision.offered_to], "title": "New lead: first to claim gets it"}
    lead_event_publish(lead, event, also=previous_groups)
    alerted = decision.offered_to or ([decision.agent] if decision.agent else [])
    return ["assigned_agent", "assigned_at", "routing_rule", "claim_deadline"], alerted


def _lead_waiting(lead: Lead, line: TrackingNumber, now: dt.datetime, *, is_new: bool) -> tuple[list[str], list[Agent]]:
    """The lead now waits for a human (a missed call, a text): route it unless its agent is there
    for it (or it is on offer to a pool), and start its clock.

    Returns the fields changed, for the caller's single save, and the agents to alert.
    """
    changed, alerted = [], []
    # On offer to a pool, or already waiting in the pond: the claim deadline or escalation decides next.
    waiting_unassigned = lead.claim_deadline is not None or (lead.assigned_agent_id is None and lead.awaiting_reply_since)
    if not waiting_unassigned:
        decision = lead_route(facts=lead_facts(lead, line), current_agent=lead.assigned_agent, at=now)
        if decision.strategy != STICKY:
            # Whoever saw it before (its old agent, or the office's pool) sees it leave; a lead created
            # in this transaction was never seen unassigned, and is announced to its agent only.
            changed, alerted = _routing_record(lead, decision, now, previous_groups=[] if is_new else lead_live_groups(lead))
    if lead.awaiting_reply_since is None:
        lead.awaiting_reply_since = now
        changed.append("awaiting_reply_since")
    return changed, alerted


def lead_assign(
    *, lead: Lead, agent: Agent | None, actor: Agent | None = None, kind: str = LeadEvent.Kind.ASSIGNED, reason: str = ""
) -> Lead:
    """Hand a lead to an agent (or back to the office pool), on record, telling both sides live.

    The new agent is alerted in the inbox and, if they asked for it, by SMS.
    """
    now = timezone.now()
    with transaction.atomic():
        lead = Lead.objects.select_for_update(of=("self",)).select_related("office", "line", "routing_rule").get(pk=lead.pk)
        if lead.assigned_agent_id == (agent.pk if agent else None):
            return lead
        previous_groups, previous = lead_live_groups(lead), lead.assigned_agent
        offered_by = lead.routing_rule if lead.claim_deadline else None  # a claim answers that rule's offer
        lead.assigned_agent, lead.assigned_at = agent, now if agent else None
        lead.claim_deadline = None  # claimed, or handed over: the offer is over
        lead.save(update_fields=["assigned_agent", "assigned_at", "claim_deadline"])
        if agent is None:
            kind = LeadEvent.Kind.RETURNED_TO_POOL
        LeadEvent.objects.create(
            lead=lead, kind=kind, actor=actor, agent=agent, previous_agent=previous, rule=offered_by, text=reason
        )
        if agent is not None and agent != actor:
            _agent_alert_queue(lead=lead, line=lead.line, agent=agent, now=now)
        lead_event_publish(
            lead, {"type": "lead.assigned", "agent_id": agent.pk if agent else None, "actor_id": actor.pk if actor else None},
            also=previous_groups,
        )
    return lead


AGENT_ALERT = "Textback: new {lead_type} lead for you, {who} via {source}. Reply in your inbox: {url}"
ESCALATION_ALERT = "Textback: {who} ({lead_type}, via {source}) has waited {minutes} min for a reply. {what} {url}"


def _agent_alert_queue(
    *, lead: Lead, line: TrackingNumber, agent: Agent, now: dt.datetime, template: str = AGENT_ALERT, **fields
) -> Message | None:
    """Text the agent's own phone about a lead just handed to them, through the same outbox
    (and gate) as every other text."""
    if not agent.sms_alerts:
        return None
    body = template.format(
        lead_type=lead.get_lead_type_display().lower(), who=lead.name or lead.phone, source=line.source,
        url=f"{settings.PUBLIC_BASE_URL}/leads/{lead.pk}/", **fields,
    )
    return message_queue(lead=lead, line=line, kind=Message.Kind.AGENT_ALERT, body=body, now=now, to_number=agent.phone)


def _lead_touch(lead: Lead, now: dt.datetime, status: str | None = None, changed: list[str] = ()) -> None:
    lead.last_activity_at = now
    fields = ["last_activity_at", *changed]
    if status and lead.status != status:
        lead.status = status
        fields.append("status")
    lead.save(update_fields=fields)


# --- calls ------------------------------------------------------------------------------------


def call_incoming_record(
    *, line: TrackingNumber, call_sid: str, from_number: str, rang_agent_ids: list[int], missed_reason: str
) -> Call:
    """Record a call as it rang: who was rung, or why nobody was (then it is already missed)."""
    now = timezone.now()
    with transaction.atomic(savepoint=False):
        lead, _ = _lead_locked(phone=from_number, line=line)
        call = _call_locked(call_sid=call_sid, line=line, lead=lead, from_number=from_number)
        _lead_touch(lead, now)
        if rang_agent_ids:
            call.rang_agents.add(*rang_agent_ids)
    if missed_reason:
        return missed_call_record(line=line, call_sid=call_sid, from_number=from_number, reason=missed_reason)
    return call


def _call_locked(*, call_sid: str, line: TrackingNumber, lead: Lead, from_number: str) -> Call:
    """The call row for a CallSid, created if this is the first we hear of it, and locked."""
    call = Call.objects.select_for_update().filter(call_sid=call_sid).first()
    if call is not None:
        return call
    try:
        with transaction.atomic():
            return Call.objects.create(call_sid=call_sid, line=line, lead=lead, from_number=from_number)
    except IntegrityError:
        return Call.objects.select_for_update().get(call_sid=call_sid)


def missed_call_record(
    *, line: TrackingNumber, call_sid: str, from_number: str, reason: str, dial_status: str = "", dial_call_sid: str = ""
) -> Call:
    """A call nobody answered: find or create the lead, route it, and queue the text-back."""
    now = timezone.now()
    with transaction.atomic(savepoint=False):
        lead, is_new = _lead_locked(phone=from_number, line=line)
        call = _call_locked(call_sid=call_sid, line=line, lead=lead, from_number=from_number)
        if call.missed or call.answered:
            return call  # a replay, or the backstop after dial-status already decided
        call.missed, call.missed_reason = True, reason
        call.dial_status = dial_status or call.dial_status
        call.dial_call_sid = dial_call_sid or call.dial_call_sid
        call.save(update_fields=["missed", "missed_reason", "dial_status", "dial_call_sid"])
        changed, alerted = _lead_waiting(lead, line, now, is_new=is_new)
        # A closed lead calling again is a lead again (and gets its text-back).
        _lead_touch(lead, now, Lead.Status.NEW if lead.status == Lead.Status.CLOSED else None, changed=changed)
        _textback_queue(lead=lead, line=line, call=call, now=now)
        for agent in alerted:
            _agent_alert_queue(lead=lead, line=line, agent=agent, now=now)
        lead_event_publish(lead, {"type": "call.missed", "call_id": call.pk})
        lead_milestone.send(sender=Lead, lead=lead, milestone=Milestone.MISSED_CALL, at=now)
        _implied_consent_record(line=line, phone=from_number, call_sid=call_sid)
    return call


def _implied_consent_record(*, line: TrackingNumber, phone: str, call_sid: str) -> None:
    """A call is implied consent to be answered, recorded once its outcome (missed, answered) is
    known, last in that transaction: the ledger's head stays locked until the commit."""
    consent_record(
        phone=phone, sender=line.sender, kind=ConsentEvent.Kind.IMPLIED_CALL, source=ConsentEvent.Source.CALL,
        source_ref=call_sid,
    )


def call_answered_record(
    *, line: TrackingNumber, call_sid: str, from_number: str, dial_status: str, dial_call_sid: str, dial_duration: int | None
) -> Call:
    """An agent picked up: a text-back still waiting for this caller would now be noise."""
    now = timezone.now()
    with transaction.atomic(savepoint=False):
        lead, _ = _lead_locked(phone=from_number, line=line)
        call = _call_locked(call_sid=call_sid, line=line, lead=lead, from_number=from_number)
        if call.answered or call.missed:
            return call
        call.dial_status, call.dial_call_sid, call.dial_duration = dial_status, dial_call_sid, dial_duration
        changed = []
        rang = list(call.rang_agents.all())
        if len(rang) == 1:  # with several phones ringing, Twilio does not say which one answered
            call.answered_by = rang[0]
            if lead.assigned_agent_id is None:
                lead.assigned_agent, lead.assigned_at = rang[0], now
                changed = ["assigned_agent", "assigned_at"]
        call.save()
        if lead.awaiting_reply_since is not None:  # a human has them on the phone now
            lead.awaiting_reply_since = None
            changed.append("awaiting_reply_since")
        if lead.call_back_since is not None:
            lead.call_back_since, lead.call_back_reason = None, ""
            changed += ["call_back_since", "call_back_reason"]
        _lead_touch(lead, now, Lead.Status.CONTACTED if lead.status == Lead.Status.NEW else None, changed=changed)
        for message in lead.messages.select_for_update().filter(kind=Message.Kind.TEXTBACK, status=Message.Status.QUEUED):
            message_cancel(message, _REACHED_AN_AGENT)
        qualification_stop(lead=lead, now=now, reason="An agent spoke with the caller.")
        lead_event_publish(lead, {"type": "call.answered", "call_id": call.pk})
        _implied_consent_record(line=line, phone=from_number, call_sid=call_sid)
    return call


def call_status_record(*, line: TrackingNumber, call_sid: str, from_number: str, call_status: str, duration: int | None) -> Call:
    """Twilio's final word on a call; the backstop for a miss that dial-status never reported."""
    with transaction.atomic(savepoint=False):
        lead, _ = _lead_locked(phone=from_number, line=line)
        call = _call_locked(call_sid=call_sid, line=line, lead=lead, from_number=from_number)
        if call.call_status != call_status or call.call_duration != duration:
            call.call_status, call.call_duration = call_status, duration
            if call_status in CALL_ENDED_STATUSES:
                call.ended_at = call.ended_at or timezone.now()
            call.save(update_fields=["call_status", "call_duration", "ended_at"])
        reached_nobody = call_status in CALL_ENDED_STATUSES and not (
            call.missed or call.answered
        )
    if reached_nobody:
        return missed_call_record(line=line, call_sid=call_sid, from_number=from_number, reason=Call.MissedReason.NO_DIAL_OUTCOME)
    return call


def voicemail_record(*, call_sid: str, recording_url: str, duration: int | None) -> Call | None:
    with transaction.atomic(savepoint=False):
        call = Call.objects.select_for_update(of=("self",)).select_related("lead__office").filter(call_sid=call_sid).first()
        if call is None or call.recording_url == recording_url:
            return call
        call.recording_url, call.recording_duration = recording_url, duration
        call.save(update_fields=["recording_url", "recording_duration"])
        lead_event_publish(call.lead, {"type": "call.voicemail", "call_id": call.pk})
    return call


# --- the text-back ----------------------------------------------------------------------------


def _textback_skip_reason(lead: Lead, now: dt.datetime) -> str:
    window = dt.timedelta(hours=lead.office.textback_window_hours)
    # A text-back that never left (stopped by a rule, or failed after every retry) does not count.
    recent = lead.messages.filter(kind=Message.Kind.TEXTBACK, created_at__gte=now - window).exclude(
        status__in=[Message.Status.CANCELED, Message.Status.FAILED]
    )
    if recent.exists():
        return f"Already texted back within {lead.office.textback_window_hours} h."
    if lead.status == Lead.Status.ENGAGED:
        return "The caller already has an open conversation."
    return ""


def _textback_queue(*, lead: Lead, line: TrackingNumber, call: Call, now: dt.datetime) -> Message | None:
    skip_reason = _textback_skip_reason(lead, now)
    if skip_reason:
        call.textback_skipped = skip_reason
        call.save(update_fields=["textback_skipped"])
        return None
    language = lead.language if lead.language in DEFAULTS_BY_LANGUAGE else "en"
    template = TextbackTemplate.objects.filter(lead_type=line.lead_type, language=language).values_list("body", flat=True).first()
    body = textback_render(
        template=template or DEFAULTS_BY_LANGUAGE[language][line.lead_type],
        brokerage=line.office.brokerage.name,
        listing=line.listing or ("una casa" if language == "es" else ""),
        agent=lead.assigned_agent.name if lead.assigned_agent else "",
        office=line.office.name,
    )
    return message_queue(lead=lead, line=line, kind=Message.Kind.TEXTBACK, body=body, call=call, now=now)


# --- the outbox -------------------------------------------------------------------------------


def message_queue(
    *, lead: Lead, line: TrackingNumber, kind: str, body: str, now: dt.datetime,
    call: Call | None = None, agent: Agent | None = None, consent_event: ConsentEvent | None = None,
    to_number: str = "", not_before: dt.datetime | None = None, waiting_because: str = "",
) -> Message:
    """Record an outbound text, then hand it to a worker once the transaction commits (the
    worker sends it then, or from `not_before` on, asking the gate again either way)."""
    message = Message.objects.create(
        lead=lead, line=line, direction=Message.Direction.OUTBOUND, kind=kind, to_number=to_number,
        sender=Message.Sender.AGENT if agent else Message.Sender.SYSTEM, agent=agent, call=call,
        consent_event=consent_event, body=body, segments=segment_count(body),
        status=Message.Status.QUEUED, queued_at=now, next_attempt_at=not_before or now, error_message=waiting_because[:255],
    )
    transaction.on_commit(lambda: _enqueue_send(message.pk))
    _publish_message(message, "message.created")
    return message


# Set while a worker applies voice webhooks: a text-back that work queues is sent by that same
# worker right after the commit, sparing the speed-to-lead path a second trip through the queue.
_send_in_this_worker: contextvars.ContextVar[bool] = contextvars.ContextVar("send_in_this_worker", default=False)


def _enqueue_send(message_id: int) -> None:
    if _send_in_this_worker.get():
        try:
            message_send(message_id=message_id)
            return
        except Exception:  # e.g. the database blinked: let a fresh task try again
            logger.exception("sending message %s in the applying worker failed; queueing it", message_id)
    from leads.tasks import enqueue_message_send

    try:
        enqueue_message_send(message_id)
    except Exception:
        # The row is safe in the outbox; the sweep hands it to a worker when the broker is back.
        logger.exception("could not enqueue message %s; the outbox sweep will retry", message_id)


def message_cancel(message: Message, reason: str) -> None:
    message.status, message.error_message, message.next_attempt_at = Message.Status.CANCELED, reason[:255], None
    message.save(update_fields=["status", "error_message", "next_attempt_at", "updated_at"])
    _publish_message(message, "message.status")


def _textback_overtaken(message: Message) -> str:
    """Why a text-back should no longer go: the caller reached a human after the missed call."""
    if message.kind != Message.Kind.TEXTBACK or message.call is None:
        return ""
    if message.lead.calls.filter(created_at__gte=message.call.created_at, dial_status__in=_ANSWERED).exists():
        return _REACHED_AN_AGENT
    return ""


def _backoff(attempts: int) -> dt.timedelta:
    return dt.timedelta(seconds=min(15 * 2 ** (attempts - 1), 15 * 60))


def message_send(*, message_id: int) -> Message | None:
    """Send one queued text: ask the gate, call the provider, record what happened.

    Safe to run twice for the same message: only the run that moves it from queued to
    sending talks to the provider.
    """
    waiting = (
        Message.objects.filter(pk=message_id, direction=Message.Direction.OUTBOUND, status=Message.Status.QUEUED)
        .annotate(line_type_known=Exists(NumberProfile.objects.filter(phone=OuterRef("lead__phone"))))
        .values_list("lead_id", "lead__phone", "to_number", "line_type_known").first()
    )
    if waiting is None:
        return None
    lead_id, phone, to_number, line_type_known = waiting
    if not to_number and not line_type_known:
        _line_type_learn(phone=phone)
    now = timezone.now()
    with transaction.atomic():
        # The lead first, then its text, the order every path takes: a lead's texts go out one at
        # a time, so the daily cap counts what the others just sent.
        lead_lock(lead_id)
        message = (
            Message.objects.select_for_update(of=("self",))
            .select_related("lead__office", "line", "call")
            .filter(pk=message_id, direction=Message.Direction.OUTBOUND, status=Message.Status.QUEUED)
            .first()
        )
        if message is None or (message.next_attempt_at and message.next_attempt_at > now):
            return message
        decision = text_gate(
            lead=message.lead, line=message.line, kind=message.kind, at=now, to_number=message.to_number,
            consent_event_id=message.consent_event_id,
        )
        if decision.verdict is Verdict.DEFERRED:
            # Not now, but later: it stays in the outbox and the sweep sends it when it is due.
            message.next_attempt_at, message.error_message = decision.until, decision.reason[:255]
            message.save(update_fields=["next_attempt_at", "error_message", "updated_at"])
            _publish_message(message, "message.status")
            return message
        stop_reason = decision.reason if not decision.allowed else _textback_overtaken(message)
        if stop_reason:
            message_cancel(message, stop_reason)
            if decision.rule is Rule.LANDLINE and not message.to_number:
                lead_call_back_request(lead=message.lead, reason="The number is a landline: it cannot take texts.", now=now)
            return message
        message.status, message.sending_at, message.outreach = Message.Status.SENDING, now, decision.outreach
        message.attempts += 1
        message.save(update_fields=["status", "sending_at", "outreach", "attempts", "updated_at"])

    try:
        provider_sid = get_sms_backend().send(message)
    except SmsSendError as error:
        return _message_send_failed(message_id=message.pk, lead_id=lead_id, error=error)
    except Exception as exc:  # a bug or an SDK surprise must not strand the row in "sending"
        logger.exception("unexpected error sending message %s", message.pk)
        error = SmsSendError(f"Unexpected error: {exc}", permanent=False)
        return _message_send_failed(message_id=message.pk, lead_id=lead_id, error=error)

    with transaction.atomic():
        lead_lock(lead_id)
        message = Message.objects.select_for_update(of=("self",)).select_related("lead__office", "line").get(pk=message.pk)
        message.provider_sid = provider_sid
        message.error_message = ""
        _message_status_advance(message, Message.Status.SENT, timezone.now())
        message.save()
        if message.kind == Message.Kind.TEXTBACK:
            follow_ups_schedule(textback=message)
        if not message.to_number:  # a text to the lead, not an alert to its agent
            # Conditional updates never undo a newer change.
            Lead.objects.filter(pk=lead_id, status=Lead.Status.NEW).update(status=Lead.Status.CONTACTED)
            Lead.objects.filter(pk=lead_id, last_activity_at__lt=message.sent_at).update(last_activity_at=message.sent_at)
        # Twilio's status callbacks can arrive before we stored the SID; apply them now.
        for event in MessageStatusEvent.objects.filter(provider_sid=provider_sid, message__isnull=True):
            event.message = message
            event.save(update_fields=["message"])
            _message_status_apply(message, event.status, event.error_code, event.received_at)
        _publish_message(message, "message.status")
    return message


def follow_ups_schedule(*, textback: Message) -> None:
    """A text-back left: write the office's follow-up steps now, each due some minutes after it
    left (a text-back held for the night gives the caller the same minutes in the morning), so
    that a restart loses none; the sweep runs or cancels them when they are due."""
    playbook = _playbook(textback.lead.office)
    if not playbook.follow_up_enabled:
        return
    FollowUp.objects.bulk_create([
        FollowUp(lead_id=textback.lead_id, textback=textback, step=step, due_at=textback.sent_at + dt.timedelta(minutes=minutes))
        for step, minutes in (
            (FollowUp.Step.CALL_BACK, playbook.call_back_after_minutes), (FollowUp.Step.EMAIL, playbook.email_after_minutes),
        )
    ], ignore_conflicts=True)  # a text-back is sent once, but a replayed run must not fail


def lead_lock(lead_id: int) -> None:
    """Lock the lead's row until the transaction ends: every path that changes a lead's texts
    locks the lead first."""
    list(Lead.objects.select_for_update().filter(pk=lead_id).values_list("pk", flat=True))


def _line_type_learn(*, phone: str) -> None:
    """Before the first text to a number, ask the carrier network what kind of line it is (once:
    the answer is kept). A lookup that fails is not kept, and does not hold the text: Twilio
    reports a landline with error 30006, which teaches us the same thing."""
    line_type = get_sms_backend().line_type(phone)
    if line_type is not None:
        number_line_type_set(phone=phone, line_type=line_type, source="Twilio Lookup")


def lead_call_back_request(
    *, lead: Lead, reason: str, now: dt.datetime, task: str = "Call back instead of texting.",
    title: str = "Call back: this number cannot take texts",
) -> bool:
    """A call-back task appears in the inbox, once: the caller cannot take texts, or the
    follow-up sequence found the text-back unanswered."""
    if not Lead.objects.filter(pk=lead.pk, call_back_since__isnull=True).update(call_back_since=now, call_back_reason=reason[:255]):
        return False
    lead.call_back_since, lead.call_back_reason = now, reason[:255]
    LeadEvent.objects.create(lead=lead, kind=LeadEvent.Kind.CALL_BACK, text=f"{task} {reason}")
    alert = {"agent_ids": [lead.assigned_agent_id] if lead.assigned_agent_id else [], "title": title}
    lead_event_publish(lead, {"type": "lead.updated", "alert": alert})
    return True


def _message_send_failed(*, message_id: int, lead_id: int, error: SmsSendError) -> Message:
    now = timezone.now()
    with transaction.atomic():
        lead_lock(lead_id)
        message = Message.objects.select_for_update(of=("self",)).select_related("lead__office", "line").get(pk=message_id)
        message.error_code = str(error.code or "")
        message.error_message = error.reason[:255]
        if error.permanent or message.attempts >= settings.OUTBOX_MAX_ATTEMPTS:
            message.status, message.next_attempt_at = Message.Status.FAILED, None
            _compliance_act_on_error(message, error.code)
        else:
            message.status, message.next_attempt_at = Message.Status.QUEUED, now + _backoff(message.attempts)
        message.save()
        _publish_message(message, "message.status")
    return message


def _compliance_act_on_error(message: Message, code: int | str | None) -> None:
    """Carrier verdicts that change what we may send to this number from now on."""
    code = int(code) if code and str(code).isdigit() else None
    if code == 21610:
        consent_record(
            phone=message.recipient, sender=message.line.sender, kind=ConsentEvent.Kind.OPT_OUT,
            source=ConsentEvent.Source.CARRIER, source_ref=message.provider_sid or f"message:{message.pk}",
        )
    elif code == 30006:
        number_line_type_set(phone=message.recipient, line_type=NumberProfile.LineType.LANDLINE, source="carrier error 30006")
        if not message.to_number:
            lead_call_back_request(
                lead=message.lead, reason="The carrier reported a landline (error 30006): the text did not arrive.",
                now=timezone.now(),
            )


# --- status callbacks -------------------------------------------------------------------------


def _message_status_advance(message: Message, status: str, at: dt.datetime) -> bool:
    if Message.STATUS_RANK.get(status, -1) <= Message.STATUS_RANK[message.status]:
        return False
    message.status = status
    if status == Message.Status.SENT:
        message.sent_at = message.sent_at or at
    elif status in (Message.Status.DELIVERED, Message.Status.READ):
        message.sent_at = message.sent_at or at
        message.delivered_at = message.delivered_at or at
    message.next_attempt_at = None
    return True


def _message_status_apply(message: Message, status: str, error_code: str, at: dt.datetime) -> None:
    if not _message_status_advance(message, status, at):
        return
    if error_code:
        message.error_code = error_code
        message.error_message = PERMANENT_ERROR_CODES.get(int(error_code), f"Twilio error {error_code}") if error_code.isdigit() else error_code
    message.save(update_fields=[
        "status", "sent_at", "delivered_at", "next_attempt_at", "error_code", "error_message", "updated_at",
    ])
    if status in (Message.Status.FAILED, Message.Status.UNDELIVERED):
        _compliance_act_on_error(message, error_code)


def _message_by_sid_locked(provider_sid: str) -> Message | None:
    """The text a status callback is about, locked after its lead (a callback may record an opt-out
    or a call-back task on the lead)."""
    lead_id = (
        Message.objects.filter(provider_sid=provider_sid, direction=Message.Direction.OUTBOUND)
        .values_list("lead_id", flat=True).first()
    )
    if lead_id is None:
        return None
    lead_lock(lead_id)
    return (
        Message.objects.select_for_update(of=("self",)).select_related("lead__office", "line")
        .filter(provider_sid=provider_sid, direction=Message.Direction.OUTBOUND).first()
    )


def message_status_record(*, provider_sid: str, status: str, error_code: str) -> MessageStatusEvent | None:
    """Record a status callback once; a replay of the same (SID, status) changes nothing."""
    now = timezone.now()
    with transaction.atomic():
        try:
            with transaction.atomic():
                event = MessageStatusEvent.objects.create(provider_sid=provider_sid, status=status, error_code=error_code)
        except IntegrityError:
            return None
        message = _message_by_sid_locked(provider_sid)
        if message is None:
            return event  # the worker has not stored the SID yet; it applies this when it does
        event.message = message
        event.save(update_fields=["message"])
        before = message.status
        _message_status_apply(message, status, error_code, now)
        if message.status != before:
            _publish_message(message, "message.status")
    return event


# --- inbound texts ----------------------------------------------------------------------------

HELP_REPLY = "{brokerage}: real estate team texting about your inquiry. Help: {contact}. Msg & data rates may apply. Reply STOP to opt out."
OPT_OUT_CONFIRMATION = "{brokerage}: you are unsubscribed and will get no more texts from this number. Reply START to resubscribe."
OPT_IN_CONFIRMATION = "{brokerage}: you are resubscribed to texts from this number. Msg & data rates may apply. Reply STOP to opt out."


def inbound_sms_record(
    *, line: TrackingNumber, message_sid: str, from_number: str, body: str,
    media_urls: list[str], opt_out_type: str = "",
) -> Message | None:
    """A text from a caller: compliance keywords first, then the thread.

    An agent answering the alert texted to their own phone is not a lead: only their STOP or
    START is recorded (so the gate honours it for their alerts); nothing else is kept.
    """
    now = timezone.now()
    if agent_phone_is_known(phone=from_number):
        keyword = keyword_classify(body, opt_out_type)
        if keyword in (Keyword.OPT_OUT, Keyword.OPT_IN):
            kind = ConsentEvent.Kind.OPT_OUT if keyword is Keyword.OPT_OUT else ConsentEvent.Kind.OPT_IN
            consent_record(
                phone=from_number, sender=line.sender, kind=kind, source=ConsentEvent.Source.KEYWORD,
                source_ref=message_sid, raw_text=body,
            )
        return None
    with transaction.atomic():
        existing = Message.objects.filter(provider_sid=message_sid).first()
        if existing:
            return existing
        lead, is_new = _lead_locked(phone=from_number, line=line)
        try:
            with transaction.atomic():
                message = Message.objects.create(
                    lead=lead, line=line, direction=Message.Direction.INBOUND, kind=Message.Kind.INBOUND,
                    sender=Message.Sender.LEAD, body=body, segments=segment_count(body) if body else 0,
                    num_media=len(media_urls), media_urls=media_urls, status=Message.Status.RECEIVED,
                    provider_sid=message_sid,
                )
        except IntegrityError:
            return Message.objects.get(provider_sid=message_sid)  # a concurrent copy got there first
        keyword = keyword_classify(body, opt_out_type)
        if keyword is Keyword.OPT_IN and not consent_is_opted_out(phone=from_number, senders=line.senders):
            keyword = None  # "Yes" from someone who never opted out is an answer, not a resubscribe
        revocation = revocation_classify(body) if keyword is None else None
        if revocation is Revocation.AMBIGUOUS:
            message.revocation_check = Message.RevocationCheck.PENDING
            message.save(update_fields=["revocation_check"])
        _publish_message(message, "message.created")
        brokerage = line.office.brokerage
        common = {"phone": from_number, "sender": line.sender, "source_ref": message_sid, "raw_text": body}
        if keyword is Keyword.OPT_OUT or revocation is Revocation.CLEAR:
            source = ConsentEvent.Source.TEXT if revocation else ConsentEvent.Source.KEYWORD
            # Twilio answers its keywords itself (its default handling, or Advanced Opt-Out's
            # wording) and then blocks the line, so a confirmation of ours would fail with 21610:
            # we confirm only the revocations in words, which Twilio does not see.
            opt_out_record(lead=lead, line=line, now=now, confirm=revocation is Revocation.CLEAR, source=source, **common)
        elif keyword is Keyword.OPT_IN:
            event, _ = consent_record(kind=ConsentEvent.Kind.OPT_IN, source=ConsentEvent.Source.KEYWORD, **common)
            if not opt_out_type:
                message_queue(
                    lead=lead, line=line, kind=Message.Kind.OPT_IN_CONFIRMATION, consent_event=event, now=now,
                    body=OPT_IN_CONFIRMATION.format(brokerage=brokerage.name),
                )
            _lead_touch(lead, now)
        elif keyword is Keyword.HELP:
            consent_record(kind=ConsentEvent.Kind.HELP, source=ConsentEvent.Source.KEYWORD, **common)
            if not opt_out_type:
                message_queue(
                    lead=lead, line=line, kind=Message.Kind.HELP_REPLY, now=now,
                    body=HELP_REPLY.format(brokerage=brokerage.name, contact=brokerage.help_contact or line.number),
                )
            _lead_touch(lead, now)
        else:
            changed, alerted = _lead_waiting(lead, line, now, is_new=is_new)
            _lead_touch(lead, now, Lead.Status.ENGAGED, changed=changed)
            for agent in alerted:
                _agent_alert_queue(lead=lead, line=line, agent=agent, now=now)
            if revocation is None:  # a text that may be a "stop" releases nothing until an agent reads it
                # The reply may route the lead again (a Spanish writer): the routing rule is locked
                # before any message row, the order every path takes.
                caller_text_read(lead=lead, line=line, body=body, now=now)
                held_texts_settle(lead, now, because="The caller texted before it could go.")
            if revocation is Revocation.AMBIGUOUS:
                qualification_stop(lead=lead, now=now, reason="The caller's text may be asking us to stop.", alert=False)
                lead_event_publish(lead, {"type": "lead.updated", "alert": {
                    "agent_ids": [lead.assigned_agent_id] if lead.assigned_agent_id else [],
                    "title": "This text may be asking us to stop: please confirm",
                }})
            consent_record(
                phone=from_number, sender=line.sender, kind=ConsentEvent.Kind.IMPLIED_TEXT,
                source=ConsentEvent.Source.TEXT, source_ref=message_sid, raw_text=body,
            )
    return message


def opt_out_record(*, lead: Lead, line: TrackingNumber, now: dt.datetime, confirm: bool, **consent) -> ConsentEvent:
    """Record an opt-out (`consent`: phone, sender, source...) and honour it at once: nothing
    still waiting in the outbox for the lead goes, and (when `confirm`) one confirmation with no
    marketing follows, which the gate lets through within five minutes only. Someone already
    opted out from this line is not confirmed again: one "stop" after another gets one answer.

    The outbox rows are locked before the ledger's head, the order every path takes.
    """
    for pending in lead.messages.select_for_update().filter(
        direction=Message.Direction.OUTBOUND, status=Message.Status.QUEUED, to_number=""
    ):
        message_cancel(pending, "Opted out: the caller asked us to stop texting.")
    confirm = confirm and not consent_is_opted_out(phone=lead.phone, senders=line.senders)
    qualification_stop(lead=lead, now=now, reason="The caller opted out.", alert=False)
    event, _ = consent_record(kind=ConsentEvent.Kind.OPT_OUT, **consent)
    if confirm:
        message_queue(
            lead=lead, line=line, kind=Message.Kind.OPT_OUT_CONFIRMATION, consent_event=event, now=now,
            body=OPT_OUT_CONFIRMATION.format(brokerage=line.office.brokerage.name),
        )
    _lead_touch(lead, now)
    return event


def held_texts_settle(lead: Lead, now: dt.datetime, *, because: str) -> None:
    """The caller (or a human) got in touch while texts waited for quiet hours or a cap to pass:
    an automatic text-back is now beside the point and is cancelled; an agent's reply or an
    appointment's confirmation now answers the caller, so it is asked about again at once."""
    held = lead.messages.select_for_update().filter(
        kind__in=[Message.Kind.TEXTBACK, Message.Kind.REPLY, Message.Kind.APPOINTMENT_CONFIRMATION],
        status=Message.Status.QUEUED, next_attempt_at__gt=now,
    )
    for message in held:
        if message.kind in (Message.Kind.REPLY, Message.Kind.APPOINTMENT_CONFIRMATION):
            message.next_attempt_at = now
            message.save(update_fields=["next_attempt_at", "updated_at"])
            transaction.on_commit(lambda pk=message.pk: _enqueue_send(pk))
        else:
            message_cancel(message, because)


# --- qualification over SMS -------------------------------------------------------------------


@functools.cache
def qualifier() -> Qualifier:
    """Who reads the callers' answers: `settings.QUALIFIER`, the rule-based reader by default."""
    return import_string(settings.QUALIFIER)()


def _playbook(office) -> Playbook:
    try:
        return office.playbook
    except Playbook.DoesNotExist:
        return Playbook(office=office)  # an office nobody configured gets the defaults


def caller_text_read(*, lead: Lead, line: TrackingNumber, body: str, now: dt.datetime) -> None:
    """What a caller's text (not a keyword, not a possible "stop") tells us, the lead locked: the
    language they write in (and so who should answer them), then the qualification script: start
    the office's questions when this answers the text-back and no human has answered yet, or read
    it as the answer to the question asked, then ask the next one, or finish.

    Each question is asked once, and once more in other words if the answer is unclear; then the
    script moves on. A request for a person ends it at once. All of it runs in a savepoint: if a
    reader fails (a plugged-in qualifier, say), the caller's text is kept and the script waits.
    """
    try:
        with transaction.atomic():
            _language_learn(lead, line, body, now)
            _qualification_advance(lead=lead, line=line, body=body, now=now)
    except Exception:
        logger.exception("reading a text to lead %s failed; the text is kept", lead.pk)
        lead.refresh_from_db()


def _qualification_advance(*, lead: Lead, line: TrackingNumber, body: str, now: dt.datetime) -> None:
    try:
        qualification = lead.qualification
    except Qualification.DoesNotExist:
        qualification = _qualification_start(lead=lead, line=line, body=body, now=now)
        if qualification is None:
            return
        volunteering = True  # the first reply may already say what they want ("buying, around 450k")
    else:
        if qualification.state != Qualification.State.ASKING:
            return
        if qualifier().wants_a_person(body):
            qualification_stop(lead=lead, now=now, reason="The caller asked for a person.")
            return
        if lead.messages.filter(kind=Message.Kind.QUALIFICATION, status=Message.Status.QUEUED).exists():
            return  # the question has not reached them yet (held for quiet hours): this text answers something else
        qualification.language = lead.language or qualification.language
        question = Question(qualification.current)
        value = qualifier().read(question, body, today=timezone.localdate(now, lead.office.tz))
        if value is None and not qualification.clarifying:
            qualification.clarifying = True
            qualification.save(update_fields=["clarifying", "language"])
            _qualification_ask(qualification, lead=lead, line=line, now=now)
            return
        if value is None:
            qualification.unclear.append(question.value)
            qualification.replies[question.value] = body
        else:
            _qualification_answer(qualification, lead, question, value, body)
        volunteering = question is Question.INTENT and value is not None
    if volunteering:  # answers to questions not asked yet are not asked
        for question in VOLUNTEERED:
            if question.value in qualification.questions and question.value not in qualification.answers:
                value = qualifier().read_volunteered(question, body)
                if value is not None:
                    _qualification_answer(qualification, lead, question, value, body)
    following = next_question(qualification.questions, qualification.answers, qualification.unclear)
    if following is None:
        _qualification_finish(qualification, lead=lead, line=line, now=now)
        return
    qualification.current, qualification.clarifying = following.value, False
    qualification.save()
    _qualification_ask(qualification, lead=lead, line=line, now=now)


def _qualification_start(*, lead: Lead, line: TrackingNumber, body: str, now: dt.datetime) -> Qualification | None:
    playbook = _playbook(lead.office)
    if not (playbook.qualification_enabled and playbook.questions):
        return None
    # The caller answers a text-back that reached Twilio, not one still held in the outbox.
    answered_textback = lead.messages.filter(kind=Message.Kind.TEXTBACK).exclude(
        status__in=[Message.Status.QUEUED, Message.Status.CANCELED, Message.Status.FAILED]
    ).exists()
    if not answered_textback or human_contact_exists(lead=lead):
        return None
    qualification = Qualification(
        lead=lead, questions=list(playbook.questions), language=lead.language or "en", started_at=now,
    )
    if qualifier().wants_a_person(body):
        # Asked for a person before any question: the script never starts, and never will.
        qualification.state, qualification.stop_reason, qualification.finished_at = (
            Qualification.State.STOPPED, "The caller asked for a person.", now,
        )
        qualification.save()
        _person_requested_alert(lead)
        return None
    return qualification


def _language_learn(lead: Lead, line: TrackingNumber, body: str, now: dt.datetime) -> None:
    """The language of a reply that reads clearly as English or Spanish becomes the lead's (the
    questions, the text-back next time, the CRM); a caller writing in a language their agent does
    not speak goes, before any human has answered, to an agent who does."""
    language = detect_language(body)
    if not language or language == lead.language:
        return
    lead.language = language
    lead.save(update_fields=["language"])
    if not human_contact_exists(lead=lead):
        _route_to_a_speaker(lead, line, now)


def _route_to_a_speaker(lead: Lead, line: TrackingNumber, now: dt.datetime) -> None:
    """Before any human has answered, a lead is routed again for its language, when its agent
    does not speak it and the office's routing finds someone who does."""
    agent = lead.assigned_agent
    if lead.language == "en" or agent is None or lead.language in agent.languages or lead.claim_deadline is not None:
        return
    facts = lead_facts(lead, line)
    if not speaker_available(facts=facts, at=now):
        return  # routing would only hand the lead to another agent who cannot read it, spending a turn
    decision = lead_route(facts=facts, current_agent=None, at=now)
    if decision.agent is None or lead.language not in decision.agent.languages:
        return
    changed, alerted = _routing_record(lead, decision, now, previous_groups=lead_live_groups(lead))
    lead.save(update_fields=changed)
    for speaker in alerted:
        _agent_alert_queue(lead=lead, line=line, agent=speaker, now=now)


def _qualification_answer(qualification: Qualification, lead: Lead, question: Question, value: object, body: str) -> None:
    qualification.answers[question.value] = answer_as_json(value)
    qualification.replies[question.value] = body
    fields = lead_fields(question, value)
    if question is Question.INTENT and lead.lead_type == "home_value" and value != Intent.BUY:
        fields = {}  # asking what their home is worth already says "selling": keep the finer type
    for name, field_value in fields.items():
        setattr(lead, name, field_value)
    if fields:
        lead.save(update_fields=list(fields))


def _qualification_ask(qualification: Qualification, *, lead: Lead, line: TrackingNumber, now: dt.datetime) -> Message:
    body = question_text(
        Question(qualification.current), language=qualification.language,
        intent=qualification.answers.get(Question.INTENT.value), clarifying=qualification.clarifying,
    )
    return message_queue(lead=lead, line=line, kind=Message.Kind.QUALIFICATION, body=body, now=now)


def qualification_summary(qualification: Qualification) -> list[tuple[str, str]]:
    """(label, answer) for each question answered, in the script's order."""
    values = answers_as_values(qualification.answers)
    return [
        (QUESTION_LABELS[Question(key)], answer_summary(Question(key), values[Question(key)]))
        for key in qualification.questions if Question(key) in values
    ]


def _qualification_finish(qualification: Qualification, *, lead: Lead, line: TrackingNumber, now: dt.datetime) -> None:
    qualification.state, qualification.current, qualification.finished_at = Qualification.State.DONE, "", now
    qualification.save()
    agent_name = lead.assigned_agent.name if lead.assigned_agent else ""
    message_queue(
        lead=lead, line=line, kind=Message.Kind.QUALIFICATION, now=now,
        body=thanks_text(language=qualification.language, agent_name=agent_name),
    )
    _qualification_summarise(qualification, lead=lead, now=now)


def _qualification_summarise(qualification: Qualification, *, lead: Lead, now: dt.datetime, alert: bool = True) -> None:
    """Rate the lead from what it said, put the summary card in the thread, alert the agent to a
    hot lead, and tell the CRM."""
    rating = intent_rating(answers_as_values(qualification.answers))
    lead.rating = rating.value
    lead.save(update_fields=["rating"])
    summary = qualification_summary(qualification)
    LeadEvent.objects.create(
        lead=lead, kind=LeadEvent.Kind.QUALIFIED,
        text=" · ".join([Lead.Rating(rating.value).label, *(answer for _, answer in summary)]),
        detail={
            "rating": rating.value, "answers": summary, "state": qualification.state,
            "stop_reason": qualification.stop_reason,
            "unclear": [QUESTION_LABELS[Question(key)] for key in qualification.unclear],
        },
    )
    event = {"type": "lead.updated"}
    if rating is Rating.HOT and alert:
        who = lead.name or lead.phone
        event["alert"] = {
            "agent_ids": _alert_agent_ids(lead), "title": f"Hot lead: {who} · " + " · ".join(answer for _, answer in summary),
        }
    lead_event_publish(lead, event)
    lead_milestone.send(sender=Lead, lead=lead, milestone=Milestone.QUALIFIED, at=now)


def _alert_agent_ids(lead: Lead) -> list[int]:
    """The lead's agent; a lead in the office pool alerts the office's agents."""
    if lead.assigned_agent_id:
        return [lead.assigned_agent_id]
    return list(Agent.objects.filter(office_id=lead.office_id).values_list("pk", flat=True))


def _person_requested_alert(lead: Lead) -> None:
    lead_event_publish(lead, {"type": "lead.updated", "alert": {
        "agent_ids": _alert_agent_ids(lead), "title": f"{lead.name or lead.phone} asks to talk to a person",
    }})


def qualification_stop(*, lead: Lead, now: dt.datetime, reason: str, alert: bool = True) -> bool:
    """A human took over (a reply, a call, an outcome), or the caller asked for one or opted out:
    no more questions, at once, and none still waiting in the outbox. What was learnt stays,
    summarised; `alert` False keeps a hot rating from alerting (a caller who just opted out)."""
    qualification = Qualification.objects.filter(lead=lead, state=Qualification.State.ASKING).first()
    if qualification is None:
        return False
    for pending in lead.messages.select_for_update().filter(kind=Message.Kind.QUALIFICATION, status=Message.Status.QUEUED):
        message_cancel(pending, f"The questions stopped: {reason[0].lower()}{reason[1:]}")
    qualification.state, qualification.stop_reason = Qualification.State.STOPPED, reason[:120]
    qualification.current, qualification.finished_at = "", now
    qualification.save()
    if reason == "The caller asked for a person.":
        _person_requested_alert(lead)
    if qualification.answers:
        _qualification_summarise(qualification, lead=lead, now=now, alert=alert)
    return True


# --- the voice webhook inbox -------------------------------------------------------------------


def twilio_webhook_accept(
    *, kind: str, dedupe_key: str, line: TrackingNumber, call_sid: str, params: dict, urgent: bool = True
) -> None:
    """Store a voice webhook (one insert) and, if `urgent`, hand it to a worker once committed.

    A retry of the same webhook hits the unique key and changes nothing. A webhook that is not
    urgent (a call that is still ringing) is applied with the next webhook of its call, which
    Twilio always sends, or by the sweep.
    """
    try:
        with transaction.atomic():
            webhook = TwilioWebhook.objects.create(kind=kind, dedupe_key=dedupe_key, line=line, call_sid=call_sid, params=params)
    except IntegrityError:
        return
    if urgent:
        transaction.on_commit(lambda: _enqueue_webhook(webhook.pk))


def _enqueue_webhook(webhook_id: int) -> None:
    from leads.tasks import enqueue_webhook_process

    try:
        enqueue_webhook_process(webhook_id)
    except Exception:
        logger.exception("could not enqueue webhook %s; the sweep will retry", webhook_id)


def dial_outcome_record(
    *, line: TrackingNumber, call_sid: str, from_number: str, dial_status: str, dial_call_sid: str, dial_duration: int | None
) -> Call:
    """Twilio's <Dial action>: busy, no-answer, failed and canceled are misses; the rest were answered."""
    if dial_status in Call.MISSED_DIAL_STATUSES:
        return missed_call_record(
            line=line, call_sid=call_sid, from_number=from_number, reason=Call.MissedReason.NO_ANSWER,
            dial_status=dial_status, dial_call_sid=dial_call_sid,
        )
    return call_answered_record(
        line=line, call_sid=call_sid, from_number=from_number, dial_status=dial_status,
        dial_call_sid=dial_call_sid, dial_duration=dial_duration,
    )


def call_progress_record(
    *, line: TrackingNumber, call_sid: str, from_number: str, call_status: str, duration: int | None,
    recording_url: str, recording_duration: int | None,
) -> Call:
    """A status callback, which may carry the voicemail recording (the <Record> action posts here)."""
    if recording_url:
        voicemail_record(call_sid=call_sid, recording_url=recording_url, duration=recording_duration)
    return call_status_record(line=line, call_sid=call_sid, from_number=from_number, call_status=call_status, duration=duration)


_WEBHOOK_HANDLERS = {
    TwilioWebhook.Kind.CALL_INCOMING: call_incoming_record,
    TwilioWebhook.Kind.DIAL_STATUS: dial_outcome_record,
    TwilioWebhook.Kind.CALL_STATUS: call_progress_record,
}


def twilio_webhook_process(*, webhook_id: int) -> int:
    """Apply every pending webhook of this webhook's call, oldest first, in one transaction.

    In order, because the status callback's backstop ("ended without a dial outcome") must not
    run before a dial outcome that arrived earlier; several workers may race for the same call,
    and the row locks make the loser find nothing left to do. A webhook that fails is rolled
    back alone (to its savepoint) and left for the sweep to retry, so it cannot hold back the
    text-back its call's other webhooks owe the caller; the services are idempotent, so a late
    retry out of order does no harm.
    """
    call_sid = TwilioWebhook.objects.filter(pk=webhook_id).values_list("call_sid", flat=True).first()
    if call_sid is None:
        return 0
    token = _send_in_this_worker.set(True)
    try:
        with transaction.atomic():
            pending = list(
                TwilioWebhook.objects.select_for_update(of=("self",))
                .select_related("line__office__brokerage")
                .filter(call_sid=call_sid, processed_at__isnull=True)
                .order_by("id")
            )
            applied = []
            for webhook in pending:
                try:
                    with transaction.atomic():
                        _WEBHOOK_HANDLERS[webhook.kind](line=webhook.line, **webhook.params)
                except Exception as exc:
                    _webhook_failed(webhook, exc)
                else:
                    applied.append(webhook.pk)
            TwilioWebhook.objects.filter(pk__in=applied).update(processed_at=timezone.now())
    finally:
        _send_in_this_worker.reset(token)
    return len(applied)


def _webhook_failed(webhook: TwilioWebhook, exc: Exception) -> None:
    webhook.attempts += 1
    webhook.last_error = repr(exc)[:2000]
    webhook.save(update_fields=["attempts", "last_error"])
    if webhook.attempts >= settings.OUTBOX_MAX_ATTEMPTS:
        logger.error("giving up on %s webhook of call %s after %d failures", webhook.kind, webhook.call_sid, webhook.attempts, exc_info=exc)
    else:
        logger.warning("%s webhook of call %s failed; the sweep will retry it", webhook.kind, webhook.call_sid, exc_info=exc)


# --- the sweep --------------------------------------------------------------------------------


def status_events_reconcile(*, before: dt.datetime) -> int:
    """Apply status callbacks that raced the worker storing the SID.

    The callback's transaction and the worker's can commit at the same moment, each unable to
    see the other's row; whatever is left unattached is applied here.
    """
    applied = 0
    for event in MessageStatusEvent.objects.filter(message__isnull=True, received_at__lt=before).order_by("id")[:1000]:
        with transaction.atomic():
            message = _message_by_sid_locked(event.provider_sid)
            if message is None:
                continue
            MessageStatusEvent.objects.filter(pk=event.pk).update(message=message)
            before_status = message.status
            _message_status_apply(message, event.status, event.error_code, event.received_at)
            if message.status != before_status:
                _publish_message(message, "message.status")
            applied += 1
    return applied


def outbox_due_ids(*, now: dt.datetime, stuck_after: dt.timedelta) -> list[int]:
    """Outbound rows a worker should (re)try: due retries, and rows a crash or lost task left behind."""
    with transaction.atomic():
        stale_sending_ids = list(
            Message.objects.select_for_update(skip_locked=True)
            .filter(status=Message.Status.SENDING, sending_at__lt=now - stuck_after)
            .values_list("pk", flat=True)
        )
        # A worker died between claiming a row and recording the result; the text may or may
        # not have left. Twilio has no idempotency key for messages, so retrying is the choice
        # that loses nothing (at worst the caller receives it twice after a crash).
        Message.objects.filter(pk__in=stale_sending_ids).update(status=Message.Status.QUEUED, next_attempt_at=now)
        return list(
            Message.objects.filter(status=Message.Status.QUEUED)
            .filter(Q(next_attempt_at__lte=now) | Q(next_attempt_at__isnull=True))
            .filter(Q(attempts__gt=0) | Q(queued_at__lt=now - stuck_after))
            .values_list("pk", flat=True)[:1000]
        )


# Raw voice webhook payloads are kept this long after they were applied: long enough to debug a
# call, while the Call row keeps its facts for good.
WEBHOOK_PAYLOADS_KEPT = dt.timedelta(days=30)


def records_prune(*, now: dt.datetime) -> int:
    """The one prune: applied webhook payloads. Leads, calls, texts and the consent ledger are the
    brokerage's four-year record and are never pruned (on PostgreSQL a trigger refuses to delete a
    text or call younger than four years, and any consent event, whatever the code asks)."""
    deleted, _ = TwilioWebhook.objects.filter(processed_at__lt=now - WEBHOOK_PAYLOADS_KEPT).delete()
    return deleted


# --- claim offers and the escalation ladder ------------------------------------------------------


def lead_deadline_pass(*, lead_id: int, now: dt.datetime | None = None) -> LeadEvent | None:
    """A lead's window ran out: an offer nobody claimed goes to its rule's fallback; a lead nobody
    answered climbs the next rung of its office's ladder.

    Safe with several workers at once: the lead is locked (others skip it rather than queue
    behind), and it must still be due under the lock, so each step happens once. A reply, a call
    or a claim that got in first has moved or cleared the deadline, and nothing happens.
    """
    now = now or timezone.now()
    with transaction.atomic():
        lead = (
            Lead.objects.select_for_update(of=("self",), skip_locked=True)
            .select_related("office__brokerage", "line__listing_agent__user", "assigned_agent__user", "routing_rule")
            .filter(pk=lead_id, escalation_due_at__lte=now).first()
        )
        if lead is None:
            return None
        if lead.claim_deadline is not None:
            return _claim_offer_expire(lead, now)
        return _lead_escalate(lead, now)


def _claim_offer_expire(lead: Lead, now: dt.datetime) -> LeadEvent:
    rule = lead.routing_rule or office_catch_all(office=lead.office)
    decision = claim_timeout_route(rule=rule, facts=lead_facts(lead, lead.line), at=now)
    changed, alerted = _routing_record(lead, decision, now, previous_groups=lead_live_groups(lead))
    lead.escalated_at = now  # the window starts again for whoever has it now
    lead.save(update_fields=[*changed, "escalated_at"])
    for agent in alerted:
        _agent_alert_queue(lead=lead, line=lead.line, agent=agent, now=now)
    return lead.events.order_by("-id").first()


def _lead_escalate(lead: Lead, now: dt.datetime) -> LeadEvent:
    office = lead.office
    step = escalation_step_next(
        office=office, rule=lead.routing_rule, step=lead.escalation_step, current_agent=lead.assigned_agent, at=now,
        language=lead.language,
    )
    previous, previous_groups = lead.assigned_agent, lead_live_groups(lead)
    minutes = int((now - lead.awaiting_reply_since).total_seconds() // 60)
    lead.escalation_step, lead.escalated_at = step.step, now
    fields = ["escalation_step", "escalated_at"]
    if step.reassign:
        lead.assigned_agent, lead.assigned_at = step.agent, now if step.agent else None
        fields += ["assigned_agent", "assigned_at"]
    lead.save(update_fields=fields)
    who = step.agent.name if step.agent else "the office pond"
    if step.reassign:
        text = f"No reply for {minutes} min: escalated to the {step.rung}, {who}." if step.agent else f"No reply for {minutes} min: escalated to {who}."
        what = "It is yours now." if step.agent else "It is in the office pond: first to claim it gets it."
    else:
        text = f"Still no reply after {minutes} min; {who} has it. Alerted " + ", ".join(a.name for a in step.alerted) + "."
        what = f"{who} has it; please make sure someone answers."
    event = LeadEvent.objects.create(
        lead=lead, kind=LeadEvent.Kind.ESCALATED, agent=step.agent if step.reassign else None, previous_agent=previous,
        rule=lead.routing_rule, text=text, detail=step.detail(),
    )
    for agent in step.alerted:
        _agent_alert_queue(
            lead=lead, line=lead.line, agent=agent, now=now, template=ESCALATION_ALERT, minutes=minutes, what=what
        )
    lead_event_publish(
        lead,
        {
            "type": "lead.assigned" if step.reassign else "lead.updated", "agent_id": lead.assigned_agent_id,
            "alert": {"agent_ids": [a.pk for a in step.alerted], "title": f"Escalated: waiting {minutes} min for a reply"},
        },
        also=previous_groups if step.reassign else [],
    )
    return event
