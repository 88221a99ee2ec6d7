"""The follow-up sequence after a text-back nobody answered.

When a text-back leaves, its steps are written (`leads.services.follow_ups_schedule`): a call-back
task for the agent after the office's minutes (15 by default), then an email to the caller if we
have their address (60). A minute's sweep runs each step when it is due, unless the caller
replied or a human got in touch since the text-back; the compliance gate may defer a step to
the caller's daytime, or block it (an opt-out, the do-not-contact list; an email without express
consent). Every step that runs, waits or is stopped says so in the thread.
"""

import datetime as dt
import logging

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone

from compliance.gate import Purpose, Verdict, gate_check
from leads.models import FollowUp, Lead, LeadEvent, Message
from leads.selectors import human_contact_exists, texting_policy
from leads.services import lead_lock, lead_call_back_request, lead_event_publish

logger = logging.getLogger(__name__)

SWEEP_BATCH = 200
EMAIL_LEASE = dt.timedelta(minutes=5)  # longer than EMAIL_TIMEOUT: a step being sent is not run twice
EMAIL_ATTEMPTS = 5

_EMAIL = {
    "en": (
        "{brokerage}: following up on your call",
        "Hi{name},\n\nWe missed your call earlier and texted you at {phone}. {agent} would love to help: reply to this "
        "email, or text or call us at {line}.\n\n{brokerage}\n\nYou are getting this because you asked us to keep in touch. "
        "Not interested? Reply to let us know and we will not email you again.",
    ),
    "es": (
        "{brokerage}: seguimiento de su llamada",
        "Hola{name}:\n\nNo pudimos atender su llamada y le escribimos al {phone}. {agent} con gusto le ayuda: responda a "
        "este correo, o escribanos o llamenos al {line}.\n\n{brokerage}\n\nRecibe esto porque nos pidio mantenernos en "
        "contacto. Si no le interesa, respondanos y no le escribiremos mas.",
    ),
}


def follow_ups_due_ids(*, now: dt.datetime, limit: int = SWEEP_BATCH) -> list[int]:
    return list(
        FollowUp.objects.filter(status=FollowUp.Status.SCHEDULED, due_at__lte=now).order_by("due_at").values_list("pk", flat=True)[:limit]
    )


def follow_ups_run_due(*, now: dt.datetime | None = None) -> int:
    """The minute's sweep: run every step that is due. Returns how many were looked at."""
    ids = follow_ups_due_ids(now=now or timezone.now())
    for follow_up_id in ids:
        try:
            follow_up_run(follow_up_id=follow_up_id, now=now)
        except Exception:  # one bad step (a mail server down) must not hold up the others
            logger.exception("follow-up %s failed; it stays scheduled and is tried again next minute", follow_up_id)
    return len(ids)


def _overtaken(follow_up: FollowUp) -> str:
    """Why the sequence is beside the point now: the caller or a human got in touch after the text-back."""
    lead, since = follow_up.lead, follow_up.textback.created_at
    if lead.status == Lead.Status.CLOSED or lead.outcome:
        return "the lead has an outcome"
    if lead.messages.filter(direction=Message.Direction.INBOUND, created_at__gt=since).exists():
        return "the caller replied"
    if human_contact_exists(lead=lead, since=since):
        return "an agent reached them"
    return ""


def follow_up_run(*, follow_up_id: int, now: dt.datetime | None = None) -> FollowUp | None:
    """Run one due step, once: the step's row is locked, and only a scheduled, due step runs."""
    now = now or timezone.now()
    with transaction.atomic():
        lead_id = FollowUp.objects.filter(pk=follow_up_id).values_list("lead_id", flat=True).first()
        if lead_id is None:
            return None
        lead_lock(lead_id)  # the lead first, the order every path takes
        follow_up = (
            FollowUp.objects.select_for_update(of=("self",)).select_related("lead__office__brokerage", "lead__assigned_agent", "textback__line")
            .filter(pk=follow_up_id, status=FollowUp.Status.SCHEDULED, due_at__lte=now).first()
        )
        if follow_up is None:
            return None
        lead = follow_up.lead
        overtaken = _overtaken(follow_up)
        if overtaken:
            _sequence_cancel(follow_up, now=now, reason=overtaken)
            return follow_up
        purpose = Purpose.CALL_BACK_TASK if follow_up.step == FollowUp.Step.CALL_BACK else Purpose.FOLLOW_UP
        decision = gate_check(
            phone=lead.phone, senders=follow_up.textback.line.senders, purpose=purpose, at=now, policy=texting_policy(lead.office),
        )
        if decision.verdict is Verdict.DEFERRED:
            follow_up.due_at, follow_up.note = decision.until, decision.reason[:255]
            follow_up.save(update_fields=["due_at", "note"])
            _log(follow_up, f"waits: {decision.reason}")
            return follow_up
        if decision.verdict is Verdict.BLOCKED:
            _finish(follow_up, FollowUp.Status.SKIPPED, now=now, note=decision.reason)
            return follow_up
        if follow_up.step == FollowUp.Step.CALL_BACK:
            _call_back_task(follow_up, now=now)
            return follow_up
        email = _email_compose(follow_up, now=now)
        if email is None:
            return follow_up
        # Leased, not locked: nothing is held while the mail server answers. Should this process
        # die before recording the answer, the lease runs out and the email goes again: at least
        # once, never lost.
        follow_up.due_at, follow_up.note = now + EMAIL_LEASE, "Sending the email."
        follow_up.attempts += 1
        follow_up.save(update_fields=["due_at", "note", "attempts"])
    try:
        email.send()
    except Exception as exc:
        return _email_failed(follow_up_id=follow_up.pk, now=now, error=exc)
    with transaction.atomic():
        lead_lock(follow_up.lead_id)
        follow_up = FollowUp.objects.select_for_update(of=("self",)).select_related("lead").get(pk=follow_up.pk)
        _finish(follow_up, FollowUp.Status.DONE, now=now, note=f"Emailed {email.to[0]}.")
    return follow_up


def _log(follow_up: FollowUp, what: str) -> None:
    LeadEvent.objects.create(
        lead=follow_up.lead, kind=LeadEvent.Kind.FOLLOW_UP, text=f"{follow_up.get_step_display()} {what}",
        detail={"step": follow_up.step, "status": follow_up.status},
    )
    lead_event_publish(follow_up.lead, {"type": "lead.updated"}, outcomes=False)


def _finish(follow_up: FollowUp, status: str, *, now: dt.datetime, note: str) -> None:
    follow_up.status, follow_up.note, follow_up.done_at = status, note[:255], now
    follow_up.save(update_fields=["status", "note", "done_at"])
    _log(follow_up, {FollowUp.Status.DONE: "done", FollowUp.Status.SKIPPED: "skipped"}[status] + f": {note}")


def _sequence_cancel(follow_up: FollowUp, *, now: dt.datetime, reason: str) -> None:
    """The rest of this text-back's sequence goes too, with one line in the thread."""
    FollowUp.objects.filter(textback_id=follow_up.textback_id, status=FollowUp.Status.SCHEDULED).update(
        status=FollowUp.Status.CANCELED, note=f"Not needed: {reason}.", done_at=now,
    )
    LeadEvent.objects.create(
        lead=follow_up.lead, kind=LeadEvent.Kind.FOLLOW_UP, text=f"Follow-up stopped: {reason}.",
        detail={"step": follow_up.step, "status": FollowUp.Status.CANCELED},
    )
    lead_event_publish(follow_up.lead, {"type": "lead.updated"}, outcomes=False)


def _call_back_task(follow_up: FollowUp, *, now: dt.datetime) -> None:
    minutes = round((now - (follow_up.textback.sent_at or follow_up.textback.created_at)).total_seconds() / 60)
    reason = f"No reply to the text-back in {minutes} minutes."
    created = lead_call_back_request(
        lead=follow_up.lead, reason=reason, now=now, task="Follow-up: call them back.", title="Call back: the text-back got no reply",
    )
    follow_up.status, follow_up.done_at = FollowUp.Status.DONE, now
    follow_up.note = reason if created else "A call-back task was already open."
    follow_up.save(update_fields=["status", "note", "done_at"])


def _email_failed(*, follow_up_id: int, now: dt.datetime, error: Exception) -> FollowUp:
    """The mail server refused or timed out: try again later, a few times, then say so."""
    logger.warning("follow-up email %s failed: %s", follow_up_id, error)
    with transaction.atomic():
        lead_id = FollowUp.objects.filter(pk=follow_up_id).values_list("lead_id", flat=True).get()
        lead_lock(lead_id)
        follow_up = FollowUp.objects.select_for_update(of=("self",)).select_related("lead").get(pk=follow_up_id)
        if follow_up.attempts >= EMAIL_ATTEMPTS:
            _finish(follow_up, FollowUp.Status.SKIPPED, now=now, note=f"The mail server refused it {follow_up.attempts} times: {error}")
        else:
            follow_up.due_at = now + min(dt.timedelta(minutes=2 ** (follow_up.attempts - 1)), dt.timedelta(minutes=30))
            follow_up.note = f"Sending failed ({error}); trying again."[:255]
            follow_up.save(update_fields=["due_at", "note"])
    return follow_up


def _email_compose(follow_up: FollowUp, *, now: dt.datetime) -> EmailMessage | None:
    lead = follow_up.lead
    if not lead.email:
        _finish(follow_up, FollowUp.Status.SKIPPED, now=now, note="No email address for the caller.")
        return None
    language = lead.language if lead.language in _EMAIL else "en"
    subject, body = _EMAIL[language]
    brokerage = lead.office.brokerage.name
    agent = lead.assigned_agent.name if lead.assigned_agent else ("Un agente" if language == "es" else "An agent")
    values = {
        "brokerage": brokerage, "name": f" {lead.name.split()[0]}" if lead.name else "", "phone": lead.phone,
        "agent": agent, "line": follow_up.textback.line.number,
    }
    reply_to = [lead.assigned_agent.user.email] if lead.assigned_agent and lead.assigned_agent.user.email else None
    return EmailMessage(
        subject=subject.format(**values), body=body.format(**values), from_email=settings.DEFAULT_FROM_EMAIL,
        to=[lead.email], reply_to=reply_to,
    )
