"""An appointment booked in the thread: a confirmation text to the lead (through the outbox and
the gate), an .ics invite emailed to the agent, a download link, and a moment for the CRM."""

import datetime as dt
import re

import pytest
import time_machine
from django.core.mail.backends.base import BaseEmailBackend

from compliance.models import ConsentEvent
from compliance.services import consent_record
from conftest import CALLER, LAKESIDE_LINE
from inbox.tests.conftest import lead_for, signed_in
from leads.appointments import appointment_ics
from leads.models import Lead, Message
from leads.services import message_send
from leads.signals import Milestone, lead_milestone
from leads.textback import is_gsm7, segment_count

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
LA_CALLER = "+13102223344"  # a Los Angeles number: the caller's zone is not the office's


def book(lead: Lead, when: str, *, by: str = "ann@example.com", outcome: str = "appointment"):
    """The agent saves the outcome form (the time is the office's wall clock, as the form takes it)."""
    data = {"outcome": outcome, "appointment_at": when} if outcome == "appointment" else {"outcome": outcome}
    response = signed_in(by).post(f"/leads/{lead.pk}/outcome/", data, **HTMX)
    assert response.status_code == 200, response.content
    lead.refresh_from_db()
    return response


def confirmations(lead: Lead) -> list[Message]:
    return list(lead.messages.filter(kind=Message.Kind.APPOINTMENT_CONFIRMATION).order_by("id"))


def unfold(ics: str) -> list[str]:
    """RFC 5545's content lines, checking the physical ones on the way: CRLF, at most 75 octets."""
    assert ics.endswith("\r\n")
    physical = ics[:-2].split("\r\n")
    assert all("\n" not in line and "\r" not in line for line in physical)
    assert all(len(line.encode()) <= 75 for line in physical), [line for line in physical if len(line.encode()) > 75]
    lines: list[str] = []
    for line in physical:
        if line.startswith(" "):
            lines[-1] += line[1:]
        else:
            lines.append(line)
    return lines


_CONTENT_LINE = re.compile(r'^([A-Z-]+)((?:;[A-Z-]+=(?:"[^"]*"|[^";:,]*))*):(.*)$')


def properties(ics: str) -> dict[str, str]:
    """Name -> value (parameters dropped) of each content line of the one event."""
    found = {}
    for line in unfold(ics):
        match = _CONTENT_LINE.match(line)
        assert match, line
        found.setdefault(match[1], match[3])
    return found


def untext(value: str) -> str:
    return re.sub(r"\\([\\;,nN])", lambda m: "\n" if m[1] in "nN" else m[1], value)


def invite(email) -> tuple[str, str]:
    """(METHOD parameter, calendar text) of the invite attached to a sent email."""
    parts = [part for part in email.message().walk() if part.get_content_type() == "text/calendar"]
    assert len(parts) == 1
    assert parts[0].get_filename() == "invite.ics" and parts[0].get("Content-Disposition").startswith("attachment")
    return parts[0].get_param("method"), parts[0].get_payload(decode=True).decode()


# --- the confirmation text ------------------------------------------------------------------------


def test_it_confirms_a_booking_to_the_lead_in_the_offices_time(brokerage, sms_outbox, django_capture_on_commit_callbacks):
    lead = lead_for(phone=CALLER, agent_email="ann@example.com", name="Casey Buyer")
    with django_capture_on_commit_callbacks(execute=True):
        book(lead, "2026-12-01T15:00")
    [message] = confirmations(lead)
    assert message.status == Message.Status.SENT
    body = "Harbor & Oak Realty: you're booked with Ann Lee on Tue, Dec 1 at 3:00 PM EST at 12 Oak St. Reply here to change it. Reply STOP to opt out."
    assert sms_outbox == [{"sid": message.provider_sid, "to": CALLER, "from": lead.line.number, "body": body, "message_id": message.pk}]
    assert is_gsm7(body) and segment_count(body) == 1


def test_it_sends_nothing_when_the_same_time_is_saved_again(brokerage, sms_outbox, mailoutbox, django_capture_on_commit_callbacks):
    lead = lead_for(phone=CALLER, agent_email="ann@example.com")
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            book(lead, "2026-12-01T15:00")
    assert len(confirmations(lead)) == 1 and len(sms_outbox) == 1 and len(mailoutbox) == 1


def test_it_confirms_a_new_time_with_a_higher_sequence(brokerage, sms_outbox, mailoutbox, django_capture_on_commit_callbacks):
    lead = lead_for(phone=CALLER, agent_email="ann@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        book(lead, "2026-12-01T15:00")
    with django_capture_on_commit_callbacks(execute=True):
        book(lead, "2026-12-02T10:30")
    assert [m.status for m in confirmations(lead)] == [Message.Status.SENT, Message.Status.SENT]
    assert "on Wed, Dec 2 at 10:30 AM EST" in sms_outbox[1]["body"]
    first, second = (properties(invite(email)[1]) for email in mailoutbox)
    assert first["UID"] == second["UID"] == f"lead-{lead.pk}-appointment@testserver"
    assert int(second["SEQUENCE"]) > int(first["SEQUENCE"])
    assert second["DTSTART"] == "20261202T153000Z"


def test_it_texts_an_opted_out_caller_nothing_and_the_thread_says_why(brokerage, sms_outbox, django_capture_on_commit_callbacks):
    lead = lead_for(phone=CALLER, agent_email="ann@example.com")
    consent_record(phone=CALLER, sender="", kind=ConsentEvent.Kind.OPT_OUT, source=ConsentEvent.Source.AGENT, note="asked on the phone")
    with django_capture_on_commit_callbacks(execute=True):
        book(lead, "2026-12-01T15:00")
    [message] = confirmations(lead)
    assert message.status == Message.Status.CANCELED and message.error_message.startswith("Opted out:")
    assert sms_outbox == []
    page = signed_in("ann@example.com").get(f"/leads/{lead.pk}/").content.decode()
    assert f'id="msg-{message.pk}"' in page and "Not sent" in page and message.error_message in page


def test_it_defers_a_booking_at_night_to_the_morning_in_the_callers_zone(brokerage, sms_outbox, django_capture_on_commit_callbacks):
    with time_machine.travel(dt.datetime(2026, 1, 13, 23, 0, tzinfo=dt.UTC), tick=False):  # 6 pm in New York
        lead = lead_for(phone=LA_CALLER, agent_email="ann@example.com")
    # 1:30 am in New York, 10:30 pm in Los Angeles: hours after the caller's call, so not an answer to it.
    with time_machine.travel(dt.datetime(2026, 1, 14, 6, 30, tzinfo=dt.UTC), tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            book(lead, "2026-01-15T10:00")
    [message] = confirmations(lead)
    assert message.status == Message.Status.QUEUED and sms_outbox == []
    assert message.next_attempt_at == dt.datetime(2026, 1, 14, 16, 0, tzinfo=dt.UTC)  # 8:00 am in Los Angeles
    assert "America/Los_Angeles" in message.error_message
    with time_machine.travel(message.next_attempt_at, tick=False):
        message_send(message_id=message.pk)
    message.refresh_from_db()
    assert message.status == Message.Status.SENT and "Thu, Jan 15 at 10:00 AM EST" in sms_outbox[0]["body"]


def test_it_drops_a_waiting_confirmation_when_the_time_changes(brokerage, sms_outbox, django_capture_on_commit_callbacks):
    with time_machine.travel(dt.datetime(2026, 1, 13, 23, 0, tzinfo=dt.UTC), tick=False):
        lead = lead_for(phone=LA_CALLER, agent_email="ann@example.com")
    with time_machine.travel(dt.datetime(2026, 1, 14, 6, 30, tzinfo=dt.UTC), tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            book(lead, "2026-01-15T10:00")
        with django_capture_on_commit_callbacks(execute=True):
            book(lead, "2026-01-15T14:00")
    old, new = confirmations(lead)
    assert old.status == Message.Status.CANCELED and old.error_message.startswith("Rescheduled")
    assert new.status == Message.Status.QUEUED and "2:00 PM" in new.body

    with time_machine.travel(dt.datetime(2026, 1, 14, 6, 40, tzinfo=dt.UTC), tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            book(lead, "", outcome="qualified")
    new.refresh_from_db()
    assert new.status == Message.Status.CANCELED and new.error_message == "The appointment was cancelled."


def test_it_confirms_in_spanish_at_the_callers_address(brokerage, sms_outbox, django_capture_on_commit_callbacks):
    lead = lead_for(phone=CALLER, agent_email="ann@example.com", language="es", address="48 Elm Ave")
    with django_capture_on_commit_callbacks(execute=True):
        book(lead, "2026-12-05T11:00")
    body = sms_outbox[0]["body"]
    assert body == (
        "Harbor & Oak Realty: su cita con Ann Lee es el sabado 5 de dic a las 11:00 AM EST en 48 Elm Ave. "
        "Responda aqui para cambiarla. Responda STOP para darse de baja."
    )
    assert is_gsm7(body) and segment_count(body) == 1


def test_it_keeps_a_long_address_within_two_texts(brokerage, sms_outbox, django_capture_on_commit_callbacks):
    lead = lead_for(phone=CALLER, agent_email="ann@example.com", address="1234 Very Long Boulevard Name " * 6)
    with django_capture_on_commit_callbacks(execute=True):
        book(lead, "2026-12-05T11:00")
    body = sms_outbox[0]["body"]
    assert is_gsm7(body) and segment_count(body) == 2 and body.endswith("Reply STOP to opt out.")


# --- the invite ---------------------------------------------------------------------------------------


def test_it_writes_an_ics_that_parses_line_by_line(brokerage):
    lead = lead_for(
        phone=CALLER, agent_email="ann@example.com", name="Zoë O'Neil; Jr, the 2nd", address="48 Elm Ave, Apt 2\nback door",
        price=450_000, zip_code="33139", city="Miami Beach", timeline_months=3, financing="pre_approved", rating="hot",
    )
    book(lead, "2026-07-04T09:30")  # daylight saving time in New York: 13:30 UTC
    ics = appointment_ics(lead=lead)
    lines = unfold(ics)
    assert lines[:5] == ["BEGIN:VCALENDAR", "PRODID:-//Textback//Appointments//EN", "VERSION:2.0", "CALSCALE:GREGORIAN", "METHOD:REQUEST"]
    assert lines[-3:] == ["STATUS:CONFIRMED", "END:VEVENT", "END:VCALENDAR"]
    assert len(ics.split("\r\n")) > len(lines)  # the description was long enough to fold
    event = properties(ics)
    assert (event["DTSTART"], event["DTEND"]) == ("20260704T133000Z", "20260704T143000Z")
    assert re.fullmatch(r"\d{8}T\d{6}Z", event["DTSTAMP"])
    assert event["SEQUENCE"] == "0" and event["UID"] == f"lead-{lead.pk}-appointment@testserver"
    assert event["SUMMARY"] == "Appointment: Zoë O'Neil\\; Jr\\, the 2nd"
    assert event["LOCATION"] == "48 Elm Ave\\, Apt 2\\nback door"
    assert untext(event["DESCRIPTION"]).split("\n") == [
        f"Phone: {CALLER}", "Type: Buyer", "Source: Zillow", "Price: $450,000", "ZIP code: 33139", "City: Miami Beach",
        "Address: 48 Elm Ave, Apt 2", "back door", "Moving: in 3 months", "Financing: Pre-approved", "Rating: Hot",
        f"Conversation: http://testserver/leads/{lead.pk}/",
    ]
    assert 'ORGANIZER;CN="Ann Lee":mailto:ann@example.com' in lines
    assert event["ATTENDEE"] == "mailto:ann@example.com"


def test_it_emails_the_invite_to_the_leads_agent(brokerage, sms_outbox, mailoutbox, django_capture_on_commit_callbacks):
    lead = lead_for(phone=CALLER, agent_email="ann@example.com", name="Casey Buyer")
    with django_capture_on_commit_callbacks(execute=True):
        book(lead, "2026-12-01T15:00", by="tess@example.com")  # the team leader books for Ann
    [email] = mailoutbox
    assert email.to == ["ann@example.com"] and email.subject == "Appointment with Casey Buyer, Tue Dec 1, 3:00 PM EST"
    method, ics = invite(email)
    assert method == "REQUEST" and properties(ics)["DTSTART"] == "20261201T200000Z"
    assert f"http://testserver/leads/{lead.pk}/" in email.body


def test_it_emails_whoever_booked_a_pool_lead(brokerage, sms_outbox, mailoutbox, django_capture_on_commit_callbacks):
    lead = lead_for(phone=CALLER)
    with django_capture_on_commit_callbacks(execute=True):
        book(lead, "2026-12-01T15:00", by="tess@example.com")
    assert [email.to for email in mailoutbox] == [["tess@example.com"]]
    assert "you're booked with Tess Morgan" in sms_outbox[0]["body"]


def test_it_emails_a_cancellation_when_the_outcome_moves_on(brokerage, sms_outbox, mailoutbox, django_capture_on_commit_callbacks):
    lead = lead_for(phone=CALLER, agent_email="ann@example.com")
    for when, outcome in [("2026-12-01T15:00", "appointment"), ("", "qualified"), ("2026-12-03T15:00", "appointment")]:
        with django_capture_on_commit_callbacks(execute=True):  # each save commits, and its text leaves, before the next
            book(lead, when, outcome=outcome)
    assert lead.appointment_at is not None and len(sms_outbox) == 2  # no text for the cancellation
    booked, cancelled, rebooked = mailoutbox
    assert cancelled.subject.startswith("Cancelled: appointment with")
    method, ics = invite(cancelled)
    event = properties(ics)
    assert method == "CANCEL" and "METHOD:CANCEL" in unfold(ics) and event["STATUS"] == "CANCELLED"
    assert event["DTSTART"] == "20261201T200000Z" and event["UID"] == properties(invite(booked)[1])["UID"]
    sequences = [int(properties(invite(email)[1])["SEQUENCE"]) for email in (booked, cancelled, rebooked)]
    assert sequences == sorted(set(sequences))


class DownMailServer(BaseEmailBackend):
    def send_messages(self, email_messages):
        raise ConnectionRefusedError("the mail server is down")


def test_a_failed_email_never_undoes_the_booking(brokerage, sms_outbox, settings, caplog, django_capture_on_commit_callbacks):
    settings.EMAIL_BACKEND = f"{__name__}.DownMailServer"
    lead = lead_for(phone=CALLER, agent_email="ann@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        book(lead, "2026-12-01T15:00")
    assert lead.outcome == "appointment" and lead.appointment_at is not None
    assert [m.status for m in confirmations(lead)] == [Message.Status.SENT]
    assert any("could not email the REQUEST invite" in record.message for record in caplog.records)


# --- the download link ------------------------------------------------------------------------------


def test_it_offers_the_invite_for_download_to_those_who_see_the_lead(brokerage, django_capture_on_commit_callbacks):
    lead = lead_for(phone=CALLER, agent_email="ann@example.com")
    other = lead_for(phone="+15555551237", line=LAKESIDE_LINE, agent_email="dan@example.com")
    url = f"/leads/{lead.pk}/appointment.ics"
    ann = signed_in("ann@example.com")
    assert ann.get(url).status_code == 404  # no appointment yet
    book(lead, "2026-12-01T15:00")
    assert url in ann.get(f"/leads/{lead.pk}/").content.decode()  # the thread's link
    response = ann.get(url)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/calendar")
    assert response["Content-Disposition"] == f'attachment; filename="appointment-{lead.pk}.ics"'
    assert properties(response.content.decode())["DTSTART"] == "20261201T200000Z"
    assert signed_in("dan@example.com").get(url).status_code == 404  # another office's agent
    assert signed_in("ben@example.com").get(url).status_code == 404  # Ann's lead, not Ben's
    assert signed_in("tess@example.com").get(url).status_code == 200  # her office's team leader
    assert ann.get(f"/leads/{other.pk}/appointment.ics").status_code == 404


# --- the CRM's moment --------------------------------------------------------------------------------


def test_it_announces_each_booking_once(brokerage, sms_outbox, django_capture_on_commit_callbacks):
    heard = []

    def receiver(sender, lead, milestone, at, **kwargs):
        if milestone == Milestone.APPOINTMENT:
            heard.append((lead.pk, lead.appointment_at))

    lead_milestone.connect(receiver)
    try:
        lead = lead_for(phone=CALLER, agent_email="ann@example.com")
        book(lead, "2026-12-01T15:00")
        book(lead, "2026-12-01T15:00")
        assert heard == [(lead.pk, dt.datetime(2026, 12, 1, 20, 0, tzinfo=dt.UTC))]
        book(lead, "2026-12-02T15:00")
        book(lead, "", outcome="qualified")
    finally:
        lead_milestone.disconnect(receiver)
    assert [at for _, at in heard] == [dt.datetime(2026, 12, 1, 20, 0, tzinfo=dt.UTC), dt.datetime(2026, 12, 2, 20, 0, tzinfo=dt.UTC)]
