"""Call back: the agent clicks, Twilio rings the agent's own phone from the lead's tracking number,
and once the agent answers our TwiML bridges them to the lead with that number as caller ID.

The lead sees the number they called, never the agent's mobile, and is dialled only once a human
is on the line. Like a text in the outbox, each call-back is an outbound Call row written before
Twilio hears of it. Its callbacks come to webhooks of their own: the inbound voice webhooks would
take an outbound call that nobody "answered" for a missed call and text the lead.
"""

import datetime as dt
import logging

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from leads.models import Call, Lead
from leads.selectors import leads_visible_to
from leads.services import CALL_ENDED_STATUSES, lead_event_publish, qualification_stop
from leads.voice import VoiceCallError, get_voice_backend
from routing.models import Agent

logger = logging.getLogger(__name__)

QUEUED = "queued"  # written, waiting for a worker
INITIATING = "initiating"  # a worker holds it and is asking Twilio to place it
FAILED = "failed"

# How far along a call-back is: Twilio's callbacks may arrive out of order, and a late one must
# never move a call back (nor one final status overwrite another).
_STATUS_RANK = {
    QUEUED: 0, INITIATING: 1, "initiated": 2, "ringing": 3, "in-progress": 4,
    **{status: 5 for status in CALL_ENDED_STATUSES},
}
# A worker reaching a call-back later than this drops it: the agent's phone ringing minutes after
# the click would surprise them, and they can simply click again.
PLACE_WITHIN = dt.timedelta(seconds=60)
# A second click while a call-back to the lead is still getting through is a double click, not a
# wish to ring two phones; after this long the first one is ringing the lead or over.
IN_FLIGHT_FOR = dt.timedelta(minutes=2)


class CallBackRefused(Exception):
    """The call-back cannot be placed; `reason` says why, for the agent. Nothing was written."""

    def __init__(self, reason: str, *, conflict: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.conflict = conflict  # another call-back to the lead is under way (HTTP 409), not bad input


def _locked(call_id: int) -> QuerySet[Call]:
    return (
        Call.objects.select_for_update(of=("self",)).select_related("lead__office", "line", "placed_by")
        .filter(pk=call_id, direction=Call.Direction.OUTBOUND)
    )


def _publish_status(call: Call) -> None:
    lead_event_publish(
        call.lead, {"type": "call.status", "call_id": call.pk, "status": call.call_status, "dial_status": call.dial_status}
    )


def call_back_get(*, call_id: int) -> Call | None:
    """The call-back a Twilio webhook names in its URL; None for any other call."""
    return Call.objects.select_related("lead").filter(pk=call_id, direction=Call.Direction.OUTBOUND).first()


def _refusal(*, agent: Agent, lead: Lead, now: dt.datetime) -> CallBackRefused | None:
    if not leads_visible_to(agent).filter(pk=lead.pk).exists():
        return CallBackRefused("This lead is not in your inbox.")
    if not agent.phone:
        return CallBackRefused("Your account has no phone number to ring; ask your broker to add one.")
    if not lead.line.active:
        return CallBackRefused(f"The line {lead.line.number} is switched off, so it cannot call the lead.")
    under_way = lead.calls.filter(direction=Call.Direction.OUTBOUND, created_at__gte=now - IN_FLIGHT_FOR).exclude(
        call_status__in=[*CALL_ENDED_STATUSES, FAILED]
    )
    if under_way.exists():
        return CallBackRefused("A call-back to this lead is already under way.", conflict=True)
    return None


def call_back_start(*, agent: Agent, lead: Lead) -> Call:
    """Record the agent's call-back and hand it to a worker, which asks Twilio to place it."""
    now = timezone.now()
    with transaction.atomic():
        lead = Lead.objects.select_for_update(of=("self",)).select_related("line", "office").get(pk=lead.pk)
        refused = _refusal(agent=agent, lead=lead, now=now)
        if refused is not None:
            raise refused
        call = Call.objects.create(
            direction=Call.Direction.OUTBOUND, placed_by=agent, line=lead.line, lead=lead,
            from_number=lead.line.number, call_status=QUEUED,
        )
        lead.last_activity_at = now
        lead.save(update_fields=["last_activity_at"])
        qualification_stop(lead=lead, now=now, reason="An agent called the caller.")
        lead_event_publish(lead, {"type": "call.placed", "call_id": call.pk, "agent_id": agent.pk})
        transaction.on_commit(lambda: _enqueue_place(call.pk))
    return call


def _enqueue_place(call_id: int) -> None:
    from leads.tasks import enqueue_call_back_place

    try:
        enqueue_call_back_place(call_id)
    except Exception:
        # No sweep places it later (a late ring would surprise the agent): say so at once.
        logger.exception("could not enqueue call-back %s", call_id)
        _call_back_fail(call_id=call_id, reason="Could not start the call; try again in a moment.")


def call_back_place(*, call_id: int) -> Call | None:
    """Ask the voice backend to place a queued call-back and store the SID it answers with.

    Safe to run twice: only the run that moves the call from queued to initiating talks to Twilio.
    """
    now = timezone.now()
    with transaction.atomic():
        call = _locked(call_id).filter(call_status=QUEUED, call_sid__isnull=True).first()
        if call is None:
            return Call.objects.filter(pk=call_id).first()
        if call.created_at < now - PLACE_WITHIN:
            _fail(call, "Not placed in time; click Call back again.", now)
            return call
        call.call_status = INITIATING
        call.save(update_fields=["call_status"])

    try:
        call_sid = get_voice_backend().place(call)
    except VoiceCallError as error:
        reason = error.reason if error.permanent else f"{error.reason} (try again in a moment)"
        return _call_back_fail(call_id=call.pk, reason=reason)
    except Exception as exc:  # a bug or an SDK surprise must not strand the call in "initiating"
        logger.exception("unexpected error placing call-back %s", call.pk)
        return _call_back_fail(call_id=call.pk, reason=f"Unexpected error: {exc}")

    with transaction.atomic():
        call = _locked(call.pk).get()
        call.call_sid = call_sid
        call.save(update_fields=["call_sid"])
        # The agent's phone is ringing: a human is reaching out, so the lead's wait for a reply
        # (and escalation) stops. A call-back that never left does not count.
        lead = Lead.objects.select_for_update(of=("self",)).select_related("office").get(pk=call.lead_id)
        lead.awaiting_reply_since = None
        lead.save(update_fields=["awaiting_reply_since"])
        _publish_status(call)
    return call


def _fail(call: Call, reason: str, now: dt.datetime) -> None:
    call.call_status, call.error_message, call.ended_at = FAILED, reason[:255], now
    call.save(update_fields=["call_status", "error_message", "ended_at"])
    _publish_status(call)


def _call_back_fail(*, call_id: int, reason: str) -> Call | None:
    """Fail a call-back Twilio never took; one whose SID a callback already delivered is under way."""
    with transaction.atomic():
        call = _locked(call_id).filter(call_sid__isnull=True, call_status__in=[QUEUED, INITIATING]).first()
        if call is None:
            return Call.objects.filter(pk=call_id).first()
        _fail(call, reason, timezone.now())
    return call


def call_back_status_record(*, call_id: int, call_sid: str, call_status: str, duration: int | None) -> Call | None:
    """Twilio's progress report on the agent's leg (initiated, ringing, in-progress, then how it ended).

    A replay, a late report and a status we do not know change nothing. A report can overtake
    the worker storing the SID, so it finds the call by the id in its URL and brings the SID along.
    """
    with transaction.atomic():
        call = _locked(call_id).first()
        if call is None:
            return None
        if call.call_sid not in (None, call_sid):
            logger.warning("status for call-back %s names %s, not its own %s; ignored", call_id, call_sid, call.call_sid)
            return call
        changed = []
        if call.call_sid is None:
            call.call_sid = call_sid
            changed.append("call_sid")
        rank = _STATUS_RANK.get(call_status)
        if rank is not None and rank > _STATUS_RANK.get(call.call_status, -1):
            call.call_status = call_status
            changed.append("call_status")
            if call_status in CALL_ENDED_STATUSES:
                call.ended_at = call.ended_at or timezone.now()
                call.call_duration = duration
                changed += ["ended_at", "call_duration"]
        if changed:
            call.save(update_fields=changed)
        if "call_status" in changed:
            _publish_status(call)
    return call


def call_back_dial_outcome_record(
    *, call_id: int, dial_status: str, dial_call_sid: str, dial_duration: int | None
) -> Call | None:
    """How the bridge to the lead ended (the <Dial action>); an answered one means the lead was reached."""
    now = timezone.now()
    with transaction.atomic():
        call = _locked(call_id).first()
        if call is None or call.dial_status:
            return call
        call.dial_status, call.dial_call_sid, call.dial_duration = dial_status, dial_call_sid, dial_duration
        call.save(update_fields=["dial_status", "dial_call_sid", "dial_duration"])
        if call.answered:
            lead = Lead.objects.select_for_update(of=("self",)).get(pk=call.lead_id)
            lead.last_activity_at = now
            fields = ["last_activity_at"]
            if lead.status == Lead.Status.NEW:
                lead.status = Lead.Status.CONTACTED
                fields.append("status")
            lead.save(update_fields=fields)
        _publish_status(call)
    return call
