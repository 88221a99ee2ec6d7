"""What agents do with a lead from the inbox: claim, reply, transfer, record an outcome, note.

Callers have already checked that the agent may see the lead (`leads_visible_to`); these
services check what depends on the lead's current state, under its row lock, and refuse with
a reason a person can read. Every change is on the lead's timeline and published live.
"""

import datetime as dt
import re

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from compliance.gate import CONFIRMATION_WITHIN, Verdict
from compliance.models import ConsentEvent
from compliance.selectors import consent_deciding_event, do_not_contact_event
from compliance.services import consent_record
from inbox.selectors import reply_gate, reply_line
from leads.appointments import appointment_booked, appointment_cancelled
from leads.models import Lead, LeadEvent, LeadRead, Message
from leads.selectors import leads_visible_to
from leads.services import held_texts_settle, lead_assign, lead_event_publish, message_queue, opt_out_record, qualification_stop
from routing.models import Agent, LeadType
from routing.selectors import LEAD_TAKING_ROLES
from textback_site.events import publish_on_commit

MAX_REPLY_LENGTH = 1600  # Twilio's limit for one message body


class ActionRefused(Exception):
    """The action cannot be done as asked; `reason` says why, for the agent."""

    def __init__(self, reason: str, *, conflict: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.conflict = conflict  # someone else changed the lead first (HTTP 409), not bad input (400)


def _lead_locked(lead: Lead, agent: Agent) -> Lead:
    """The lead, locked, if the agent may still see it: between the page check and this lock,
    a colleague may have claimed it (then the agent must not reply, close or transfer it)."""
    locked = (
        leads_visible_to(agent).select_for_update(of=("self",)).select_related("office__brokerage", "line", "assigned_agent")
        .filter(pk=lead.pk).first()
    )
    if locked is None:
        raise ActionRefused("This lead has just left your inbox (someone else took it).", conflict=True)
    return locked


def _publish_updated(lead: Lead) -> None:
    lead_event_publish(lead, {"type": "lead.updated"})


def lead_claim(*, agent: Agent, lead: Lead) -> Lead:
    """Take an unassigned lead. Two agents claiming at once: the first wins, the second is told who."""
    if agent.role not in LEAD_TAKING_ROLES:
        raise ActionRefused("Brokers hand leads to agents with Transfer rather than claiming them.")
    with transaction.atomic():
        lead = _lead_locked(lead, agent)
        if lead.assigned_agent_id == agent.pk:
            return lead
        if lead.assigned_agent_id is not None:
            raise ActionRefused(f"{lead.assigned_agent.name} already has this lead.", conflict=True)
        return lead_assign(lead=lead, agent=agent, actor=agent, kind=LeadEvent.Kind.CLAIMED)


def lead_transfer(*, actor: Agent, lead: Lead, to_agent: Agent | None, reason: str) -> Lead:
    """Hand the lead to another agent of its office, or back to the office pool, saying why."""
    reason = reason.strip()
    if not reason:
        raise ActionRefused("Say why you are transferring the lead, so the next agent knows.")
    if to_agent is not None and (to_agent.office_id != lead.office_id or to_agent.role not in LEAD_TAKING_ROLES):
        raise ActionRefused("Leads go to agents and team leaders of the lead's office.")
    if to_agent is not None and not to_agent.user.is_active:
        raise ActionRefused(f"{to_agent.name} can no longer sign in.")
    with transaction.atomic():
        lead = _lead_locked(lead, actor)
        if lead.assigned_agent_id == (to_agent.pk if to_agent else None):
            raise ActionRefused(f"The lead is already with {to_agent.name}." if to_agent else "The lead is already unassigned.")
        return lead_assign(lead=lead, agent=to_agent, actor=actor, kind=LeadEvent.Kind.TRANSFERRED, reason=reason[:500])


def lead_outcome_set(*, actor: Agent, lead: Lead, outcome: str, appointment_at: dt.datetime | None = None) -> Lead:
    """Record how the conversation went; a closing outcome takes the lead out of the open lists.

    A new appointment time is confirmed to the lead and sent to the agent's calendar in the same
    transaction; saving the same time again sends nothing, and leaving the appointment outcome
    cancels the calendar event.
    """
    if outcome not in Lead.Outcome.values or outcome == Lead.Outcome.NONE:
        raise ActionRefused("Choose an outcome.")
    if outcome == Lead.Outcome.APPOINTMENT and appointment_at is None:
        raise ActionRefused("Give the appointment's date and time.")
    now = timezone.now()
    with transaction.atomic():
        lead = _lead_locked(lead, actor)
        previous_at = lead.appointment_at
        lead.outcome = outcome
        lead.appointment_at = appointment_at if outcome == Lead.Outcome.APPOINTMENT else None
        fields = ["outcome", "appointment_at"]
        if outcome in Lead.CLOSING_OUTCOMES:
            lead.status, lead.awaiting_reply_since = Lead.Status.CLOSED, None
            fields += ["status", "awaiting_reply_since"]
        elif lead.status == Lead.Status.CLOSED:
            lead.status = Lead.Status.ENGAGED
            fields.append("status")
        lead.save(update_fields=fields)
        qualification_stop(lead=lead, now=now, reason="An agent set the outcome.")
        text = lead.get_outcome_display()
        if lead.appointment_at:
            local = timezone.localtime(lead.appointment_at, lead.office.tz)
            text += f": {local:%a %b %-d, %-I:%M %p} {local.tzname()}"
        LeadEvent.objects.create(lead=lead, kind=LeadEvent.Kind.OUTCOME, actor=actor, text=text)
        if lead.appointment_at and lead.appointment_at != previous_at:
            # From the line the lead last texted, as an agent's reply would go: the same thread on their phone.
            appointment_booked(lead=lead, line=reply_line(lead=lead), actor=actor, previous_at=previous_at, now=now)
        elif previous_at and not lead.appointment_at:
            appointment_cancelled(lead=lead, actor=actor, previous_at=previous_at, now=now)
        _publish_updated(lead)
    return lead


def lead_note_add(*, actor: Agent, lead: Lead, text: str) -> LeadEvent:
    """An internal note: on the timeline for the team, never texted to the lead."""
    text = text.strip()
    if not text:
        raise ActionRefused("Write the note first.")
    with transaction.atomic():
        lead = _lead_locked(lead, actor)
        note = LeadEvent.objects.create(lead=lead, kind=LeadEvent.Kind.NOTE, actor=actor, text=text[:4000])
        _publish_updated(lead)
    return note


_PRICE = re.compile(r"\$?\s*(\d+(?:\.\d+)?)\s*([km]?)", re.IGNORECASE)


def _price(text: str) -> int | None:
    """Dollars as agents type them: 450000, $450,000, 450k, 1.2m. Blank: unknown."""
    text = text.replace(",", "").strip()
    if not text:
        return None
    match = _PRICE.fullmatch(text)
    if not match:
        raise ActionRefused(f"{text!r} is not a price; write it like 450000, $450,000 or 450k.")
    amount = float(match[1]) * {"": 1, "k": 1_000, "m": 1_000_000}[match[2].lower()]
    if not 1 <= amount <= 10**9:
        raise ActionRefused("Give a price between $1 and $1,000,000,000.")
    return round(amount)


def lead_details_update(
    *, actor: Agent, lead: Lead, name: str, email: str, lead_type: str,
    zip_code: str | None = None, city: str | None = None, price: str | None = None, language: str | None = None,
) -> Lead:
    """What the lead told us: their name and email, what they want, and where, how much and in
    which language (routing rules read these). Fields passed as None stay as they are."""
    name, email = name.strip()[:120], email.strip()
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise ActionRefused(f"{email!r} is not an email address.")
    if lead_type not in LeadType.values:
        raise ActionRefused("Choose buyer, seller, home value or general.")
    new = {"name": name, "email": email, "lead_type": lead_type}
    if zip_code is not None:
        new["zip_code"] = zip_code.strip()
        if new["zip_code"] and not re.fullmatch(r"\d{5}(-\d{4})?", new["zip_code"]):
            raise ActionRefused(f"{new['zip_code']!r} is not a ZIP code such as 33139.")
    if city is not None:
        new["city"] = city.strip()[:80]
    if price is not None:
        new["price"] = _price(price)
    if language is not None:
        new["language"] = language.strip().lower()
        if new["language"] and not re.fullmatch(r"[a-z]{2,3}", new["language"]):
            raise ActionRefused("Give the language as a code such as en or es.")
    with transaction.atomic():
        lead = _lead_locked(lead, actor)
        labels = {"name": "name", "email": "email", "lead_type": "type", "zip_code": "ZIP", "city": "city", "price": "price", "language": "language"}
        changed = [field for field, value in new.items() if getattr(lead, field) != value]
        if not changed:
            return lead
        for field in changed:
            setattr(lead, field, new[field])
        lead.save(update_fields=changed)
        text = ", ".join(f"{labels[f]} {new[f] if new[f] not in ('', None) else '—'}" for f in changed)
        LeadEvent.objects.create(lead=lead, kind=LeadEvent.Kind.EDITED, actor=actor, text=f"Set {text}.")
        _publish_updated(lead)
    return lead


def agent_reply_send(*, agent: Agent, lead: Lead, body: str) -> Message:
    """Queue an agent's text to the lead. The gate is asked now, to tell the agent at once, and
    again when the worker sends; a deferred reply waits in the outbox until it may go.

    Replying to an unassigned lead claims it: whoever answers owns the conversation.
    """
    body = body.strip()
    if not body:
        raise ActionRefused("Write a message first.")
    if len(body) > MAX_REPLY_LENGTH:
        raise ActionRefused(f"Keep it under {MAX_REPLY_LENGTH} characters.")
    decision = reply_gate(lead=lead)
    if decision.verdict is Verdict.BLOCKED:
        raise ActionRefused(decision.reason)
    now = timezone.now()
    with transaction.atomic():
        lead = _lead_locked(lead, agent)
        if lead.assigned_agent_id is None and agent.role in LEAD_TAKING_ROLES:
            lead = lead_assign(lead=lead, agent=agent, actor=agent, kind=LeadEvent.Kind.CLAIMED, reason="Replied first.")
        held_texts_settle(lead, now, because="An agent replied first.")
        qualification_stop(lead=lead, now=now, reason="An agent replied.")
        deferred = decision.verdict is Verdict.DEFERRED
        message = message_queue(
            lead=lead, line=reply_line(lead=lead), kind=Message.Kind.REPLY, body=body, now=now, agent=agent,
            not_before=decision.until if deferred else None, waiting_because=decision.reason if deferred else "",
        )
        lead.awaiting_reply_since, lead.last_activity_at = None, now
        fields = ["awaiting_reply_since", "last_activity_at"]
        if lead.status in (Lead.Status.NEW, Lead.Status.CLOSED):
            lead.status = Lead.Status.CONTACTED
            fields.append("status")
        lead.save(update_fields=fields)
        _publish_updated(lead)
        _read_mark(agent=agent, lead_id=lead.pk, at=now)
    return message


def lead_mark_read(*, agent: Agent, lead_id: int) -> None:
    _read_mark(agent=agent, lead_id=lead_id, at=timezone.now())


def _read_mark(*, agent: Agent, lead_id: int, at: dt.datetime) -> None:
    """Unread counts are per agent: their other tabs update their badge too."""
    LeadRead.objects.update_or_create(agent=agent, lead_id=lead_id, defaults={"read_at": at})
    publish_on_commit(f"agent.{agent.pk}", {"type": "lead.read", "lead_id": lead_id})


def agent_duty_set(*, agent: Agent, on_duty: bool) -> Agent:
    """Off duty: no new leads and no ringing; the agent's open leads stay theirs."""
    if agent.on_duty != on_duty:
        agent.on_duty = on_duty
        agent.save(update_fields=["on_duty"])
    return agent


# --- consent ------------------------------------------------------------------------------------


class ConsentAction:
    EXPRESS_OPT_IN = "opt_in"
    OPT_OUT = "opt_out"
    DO_NOT_CONTACT = "do_not_contact"
    CHOICES = [EXPRESS_OPT_IN, OPT_OUT, DO_NOT_CONTACT]


def _actor_label(agent: Agent) -> str:
    # Named as they are today: the ledger must still say who it was after the account is gone.
    return f"{agent.name} <{agent.user.email}>"


def consent_record_by_agent(*, actor: Agent, lead: Lead, action: str, note: str) -> ConsentEvent:
    """An agent records what the caller said about texts (on the phone, in person, by email).

    These apply brokerage-wide. Lifting an opt-out (or taking a number off the do-not-contact
    list) with an express opt-in is for team leaders and brokers. An opt-out the caller texted to
    a line can only be undone by the caller texting START to it: the carrier blocks that line
    until then, whatever we record.
    """
    note = note.strip()
    if action not in ConsentAction.CHOICES:
        raise ActionRefused("Choose express opt-in, opt-out or do not contact.")
    if not note:
        raise ActionRefused("Say how the caller gave or withdrew consent, and when; the note is kept as proof.")
    manager = actor.role != Agent.Role.AGENT
    if action == ConsentAction.DO_NOT_CONTACT and not manager:
        raise ActionRefused("Only a team leader or broker can put a number on the do-not-contact list.")
    now = timezone.now()
    with transaction.atomic():
        lead = _lead_locked(lead, actor)
        line = reply_line(lead=lead)
        common = {"phone": lead.phone, "sender": "", "actor": _actor_label(actor), "note": note}
        if action == ConsentAction.EXPRESS_OPT_IN:
            deciding = consent_deciding_event(phone=lead.phone, senders=line.senders)
            if deciding is not None and deciding.kind == ConsentEvent.Kind.OPT_OUT:
                if deciding.sender:
                    raise ActionRefused(f"They asked {line.number} to stop texting; only they can undo that, by texting START to it.")
                if not manager:
                    raise ActionRefused("They opted out; a team leader or broker can record that they want texts again.")
            if do_not_contact_event(phone=lead.phone) and not manager:
                raise ActionRefused("The number is on the do-not-contact list; a team leader or broker can take it off.")
            event, _ = consent_record(kind=ConsentEvent.Kind.EXPRESS_OPT_IN, source=ConsentEvent.Source.AGENT, **common)
        else:
            source = ConsentEvent.Source.INTERNAL_DNC if action == ConsentAction.DO_NOT_CONTACT else ConsentEvent.Source.AGENT
            event = opt_out_record(lead=lead, line=line, now=now, confirm=False, source=source, **common)
        _publish_updated(lead)
    return event


def revocation_review(*, actor: Agent, lead: Lead, message_id: int, opted_out: bool) -> Message:
    """An agent reads a text the system could not be sure about ("stop" in a longer sentence) and
    says whether it asks us to stop texting. If it does, it is honoured as if it had been clear:
    opted out at once, with the one confirmation text if the caller's text is under five minutes
    old (later, an unexpected text would be worse than none)."""
    now = timezone.now()
    with transaction.atomic():
        lead = _lead_locked(lead, actor)
        message = (
            lead.messages.select_for_update().select_related("line__office__brokerage")
            .filter(pk=message_id, revocation_check=Message.RevocationCheck.PENDING).first()
        )
        if message is None:
            raise ActionRefused("Someone already answered this.", conflict=True)
        if opted_out:
            # The one confirmation may follow within five minutes of the caller's text, not of the click.
            opt_out_record(
                lead=lead, line=message.line, now=now, confirm=now - message.created_at <= CONFIRMATION_WITHIN,
                phone=lead.phone, sender=message.line.sender,
                source=ConsentEvent.Source.TEXT, source_ref=message.provider_sid or f"message:{message.pk}",
                raw_text=message.body, actor=_actor_label(actor), note="Confirmed by an agent as a request to stop texting.",
            )
            message.revocation_check = Message.RevocationCheck.OPTED_OUT
            if lead.awaiting_reply_since is not None:  # nothing to answer: the text was a goodbye
                lead.awaiting_reply_since = None
                lead.save(update_fields=["awaiting_reply_since"])
        else:
            message.revocation_check = Message.RevocationCheck.DISMISSED
            LeadEvent.objects.create(
                lead=lead, kind=LeadEvent.Kind.CONSENT, actor=actor,
                text=f"Read “{message.body[:120]}” as not asking us to stop texting.",
            )
        message.save(update_fields=["revocation_check", "updated_at"])
        _publish_updated(lead)
    return message


def lead_call_back_done(*, actor: Agent, lead: Lead) -> Lead:
    """The agent called the lead back (or tried enough): the task leaves the Call back list."""
    with transaction.atomic():
        lead = _lead_locked(lead, actor)
        if lead.call_back_since is None:
            return lead
        lead.call_back_since, lead.call_back_reason = None, ""
        lead.save(update_fields=["call_back_since", "call_back_reason"])
        LeadEvent.objects.create(lead=lead, kind=LeadEvent.Kind.CALL_BACK, actor=actor, text="Call-back done.")
        _publish_updated(lead)
    return lead
