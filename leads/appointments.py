"""Appointments an agent books with a lead: a confirmation text to the lead, an invite for the agent.

The text goes through the outbox and the gate like every other text, so an opted-out caller gets
nothing and a booking made at night, long after the caller was last in touch, waits for the
morning in the caller's zone. The invite is an iCalendar (RFC 5545) file written by hand: the
format is small, and one event per lead (a stable UID, a SEQUENCE that only grows) is all the
agent's calendar needs to move or cancel the same entry when the time changes.

The email leaves after the booking commits and never takes the booking down with it: a mail
server that is down costs the agent an invite (they can still download it from the thread), not
the appointment.
"""

import datetime as dt
import logging
from email.mime.text import MIMEText
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone

from leads.models import Lead, LeadEvent, Message
from leads.services import message_cancel, message_queue
from leads.signals import Milestone, lead_milestone
from leads.textback import gsm7_length, is_gsm7, plain_text
from routing.models import Agent, TrackingNumber

logger = logging.getLogger(__name__)

APPOINTMENT_LENGTH = dt.timedelta(hours=1)
# Two GSM-7 parts: room for a long brokerage name and address without a third billed part.
MAX_CONFIRMATION_LENGTH = 2 * 153

CONFIRMATION = {
    "en": "{brokerage}: you're booked with {agent} on {when}{where}. Reply here to change it. Reply STOP to opt out.",
    # Without accents that GSM-7 lacks (á, í, ó, ú): one of them would make the text UCS-2 and
    # double its parts, and Spanish readers are used to texts written this way.
    "es": "{brokerage}: su cita con {agent} es el {when}{where}. Responda aqui para cambiarla. Responda STOP para darse de baja.",
}
_WHERE = {"en": " at {place}", "es": " en {place}"}
_ES_DAYS = ("lunes", "martes", "miercoles", "jueves", "viernes", "sabado", "domingo")
_ES_MONTHS = ("ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sep", "oct", "nov", "dic")

_SUPERSEDED = "Rescheduled: a newer confirmation replaces this one."
_CANCELLED = "The appointment was cancelled."


# --- the services ---------------------------------------------------------------------------------


def appointment_booked(*, lead: Lead, line: TrackingNumber, actor: Agent, previous_at: dt.datetime | None, now: dt.datetime) -> Message:
    """A new appointment, or a new time for one: confirm it to the lead, invite the agent, tell the CRM.

    Runs inside the transaction that saved `lead.appointment_at`, with the lead locked; it is
    called only when the time changed, so saving the same time again texts nobody twice. A
    confirmation of the old time still waiting for the morning is cancelled: the lead would
    otherwise wake to two times.
    """
    agent = _agent(lead, actor)
    if previous_at is not None:
        _waiting_confirmations_cancel(lead, _SUPERSEDED)
    message = message_queue(
        lead=lead, line=line, kind=Message.Kind.APPOINTMENT_CONFIRMATION, body=confirmation_text(lead=lead, agent=agent), now=now,
    )
    _invite_email_on_commit(lead=lead, agent=agent, method="REQUEST", start=lead.appointment_at, now=now)
    lead_milestone.send(sender=Lead, lead=lead, milestone=Milestone.APPOINTMENT, at=now)
    return message


def appointment_cancelled(*, lead: Lead, actor: Agent, previous_at: dt.datetime, now: dt.datetime) -> None:
    """The outcome moved away from an appointment: the agent's calendar drops the event, and a
    confirmation that has not left yet never will. The lead is not texted: an outcome changes for
    many reasons (they called it off, the agent fixed a slip), and only the agent knows which."""
    _waiting_confirmations_cancel(lead, _CANCELLED)
    _invite_email_on_commit(lead=lead, agent=_agent(lead, actor), method="CANCEL", start=previous_at, now=now)


def _agent(lead: Lead, actor: Agent) -> Agent:
    """Whose appointment it is: the lead's agent; for a pool lead, whoever booked it."""
    return lead.assigned_agent or actor


def _waiting_confirmations_cancel(lead: Lead, reason: str) -> None:
    waiting = lead.messages.select_for_update().filter(
        kind=Message.Kind.APPOINTMENT_CONFIRMATION, status=Message.Status.QUEUED
    )
    for message in waiting:
        message_cancel(message, reason)


# --- the confirmation text ---------------------------------------------------------------------------


def _language(lead: Lead) -> str:
    return "es" if lead.language == "es" else "en"


def _when(local: dt.datetime, language: str) -> str:
    """The time as the caller reads it, in the office's zone (where the appointment is), named."""
    clock = f"{local:%-I:%M %p} {local.tzname()}"
    if language == "es":
        return f"{_ES_DAYS[local.weekday()]} {local.day} de {_ES_MONTHS[local.month - 1]} a las {clock}"
    return f"{local:%a, %b %-d} at {clock}"


def appointment_place(lead: Lead) -> str:
    """Where to meet: the property the caller told us about, else the listing of the line they called."""
    return lead.address or lead.line.listing


def confirmation_text(*, lead: Lead, agent: Agent) -> str:
    """The confirmation, at most two GSM-7 parts: a long address is shortened to fit."""
    language = _language(lead)
    local = timezone.localtime(lead.appointment_at, lead.office.tz)
    values = {"brokerage": lead.office.brokerage.name, "agent": agent.name, "when": _when(local, language)}

    def render(place: str) -> str:
        where = _WHERE[language].format(place=place) if place else ""
        return plain_text(CONFIRMATION[language].format(where=where, **values)).strip()

    place = plain_text(appointment_place(lead)).strip()
    body = render(place)
    overflow = gsm7_length(body) - MAX_CONFIRMATION_LENGTH
    if overflow > 0 and place and is_gsm7(body):
        body = render(place[:max(len(place) - overflow - 1, 8)].rstrip() + ".")
    return body


# --- the invite ------------------------------------------------------------------------------------


def appointment_sequence(lead: Lead) -> int:
    """RFC 5545's SEQUENCE, derived rather than stored: each booking, new time and cancellation is
    an outcome on the lead's timeline (recorded before the invite is written), so counting them
    gives a number that grows with every change, a cancellation's above the invite it cancels
    and a booking after it above the cancellation. Other outcomes push it up too, which calendars
    do not mind: they keep whichever version is highest."""
    return max(lead.events.filter(kind=LeadEvent.Kind.OUTCOME).count() - 1, 0)


def thread_url(lead: Lead) -> str:
    return f"{settings.PUBLIC_BASE_URL}/leads/{lead.pk}/"


def _description(lead: Lead) -> str:
    """What the agent wants in front of them before the meeting: who, how to reach them, and what
    they told us so far."""
    facts = [("Phone", lead.phone), ("Email", lead.email), ("Type", lead.get_lead_type_display()), ("Source", lead.source)]
    if lead.price:
        facts.append(("Price", f"${lead.price:,}"))
    facts += [("ZIP code", lead.zip_code), ("City", lead.city), ("Address", lead.address)]
    if lead.timeline_months is not None:
        months = lead.timeline_months
        facts.append(("Moving", "now" if months == 0 else f"in {months} month{'s' if months != 1 else ''}"))
    if lead.financing:
        facts.append(("Financing", lead.get_financing_display()))
    if lead.rating:
        facts.append(("Rating", lead.get_rating_display()))
    facts.append(("Conversation", thread_url(lead)))
    return "\n".join(f"{label}: {value}" for label, value in facts if value)


def appointment_ics(
    *, lead: Lead, method: str = "REQUEST", agent: Agent | None = None, start: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> str:
    """The lead's appointment as an iCalendar invite (METHOD REQUEST) or its cancellation (CANCEL).

    `agent` organises and attends (default: the lead's agent); `start` is the appointment's time
    (default: the one on the lead; a cancellation passes the time being cancelled). Times are in
    UTC, so no VTIMEZONE is needed and every calendar shows the agent's own local time.
    """
    if method not in ("REQUEST", "CANCEL"):
        raise ValueError(f"method must be REQUEST or CANCEL, not {method!r}")
    start = start or lead.appointment_at
    if start is None:
        raise ValueError("The lead has no appointment.")
    agent = agent or lead.assigned_agent
    cancel = method == "CANCEL"
    lines = [
        "BEGIN:VCALENDAR",
        "PRODID:-//Textback//Appointments//EN",
        "VERSION:2.0",
        "CALSCALE:GREGORIAN",
        f"METHOD:{method}",
        "BEGIN:VEVENT",
        f"UID:lead-{lead.pk}-appointment@{urlsplit(settings.PUBLIC_BASE_URL).hostname}",
        f"SEQUENCE:{appointment_sequence(lead)}",
        f"DTSTAMP:{_utc(now or timezone.now())}",
        f"DTSTART:{_utc(start)}",
        f"DTEND:{_utc(start + APPOINTMENT_LENGTH)}",
        f"SUMMARY:{_text(f'Appointment: {lead}')}",
        f"DESCRIPTION:{_text(_description(lead))}",
    ]
    if place := appointment_place(lead):
        lines.append(f"LOCATION:{_text(place)}")
    lines.append(f"URL:{thread_url(lead)}")
    if agent is not None and agent.user.email:
        name = _param(agent.name)
        lines += [
            f"ORGANIZER;CN={name}:mailto:{agent.user.email}",
            f"ATTENDEE;CN={name};ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED:mailto:{agent.user.email}",
        ]
    lines += [f"STATUS:{'CANCELLED' if cancel else 'CONFIRMED'}", "END:VEVENT", "END:VCALENDAR"]
    return "".join(_fold(line) + "\r\n" for line in lines)


def _utc(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def _text(value: str) -> str:
    """RFC 5545 TEXT: backslash first, so the escapes added after it are not escaped again."""
    value = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return value.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")


def _param(value: str) -> str:
    """A quoted parameter value: it may hold , ; and : but never a double quote or a control character."""
    return '"' + "".join(ch for ch in value if ch != '"' and ch.isprintable()) + '"'


def _fold(line: str) -> str:
    """Lines of at most 75 octets, continued after CRLF and one space, never inside a UTF-8 character."""
    parts, current, size = [], "", 0
    for ch in line:
        octets = len(ch.encode())
        if size + octets > 75:
            parts.append(current)
            current, size = " ", 1
        current += ch
        size += octets
    parts.append(current)
    return "\r\n".join(parts)


# --- the email ---------------------------------------------------------------------------------------


def _invite_email_on_commit(*, lead: Lead, agent: Agent, method: str, start: dt.datetime, now: dt.datetime) -> None:
    """Write the invite now, from what this transaction saved, and mail it once that is committed."""
    to = agent.user.email
    if not to:
        logger.warning("no email address for agent %s: no invite for lead %s", agent.pk, lead.pk)
        return
    ics = appointment_ics(lead=lead, method=method, agent=agent, start=start, now=now)
    local = timezone.localtime(start, lead.office.tz)
    when = f"{local:%a %b %-d, %-I:%M %p} {local.tzname()}"
    if method == "CANCEL":
        subject = f"Cancelled: appointment with {lead}, {when}"
        intro = f"The appointment with {lead} on {when} is cancelled. Open the attached invite to take it off your calendar."
    else:
        subject = f"Appointment with {lead}, {when}"
        intro = f"You're booked with {lead} on {when}. Open the attached invite to put it on your calendar."
    body = f"{intro}\n\n{_description(lead)}\n"
    transaction.on_commit(lambda: _invite_send(to=to, subject=subject, body=body, ics=ics, method=method, lead_id=lead.pk))


def _invite_send(*, to: str, subject: str, body: str, ics: str, method: str, lead_id: int) -> None:
    """Mail one invite; a failure is logged for the operator, never raised into the request that booked."""
    invite = MIMEText(ics, "calendar", "utf-8")  # base64, so the CRLF line ends arrive as written
    invite.set_param("method", method)
    invite.add_header("Content-Disposition", "attachment", filename="invite.ics")
    email = EmailMessage(subject=subject, body=body, to=[to])
    email.attach(invite)
    try:
        email.send()
    except Exception:
        logger.exception("could not email the %s invite for lead %s to %s", method, lead_id, to)
