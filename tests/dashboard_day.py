"""A hand-built day of calls and texts for the dashboard's tests, made the way production makes
it: the real services, with the clock under control.

Downtown, Monday Nov 2 2026 (New York):
  A 10:00 missed; text-back 10:00:02, delivered; A texts 10:05; an agent answers 10:08; appointment.
  B 11:00 missed; text-back 11:00:01; nobody ever answers; escalates 11:11.
  C 11:50 texts STOP before ever being texted; 12:00 missed: the text-back is stopped by the gate.
  D 13:00 missed; text-back 13:00:03; calls again 13:20 and an agent picks up.
  E 14:00 missed; text-back 14:00:01; escalates 14:11; E texts 14:20; an agent answers 14:25.
"""

import datetime as dt
import zoneinfo

import pytest
import time_machine

from conftest import DOWNTOWN_BUYER_LINE, new_sid

NY = zoneinfo.ZoneInfo("America/New_York")
A, B, C, D, E = (f"+1555555{n}" for n in (1001, 1002, 1003, 1004, 1005))


def at(hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, 2, hour, minute, second, tzinfo=NY)


@pytest.fixture
def day(brokerage, sms_outbox):
    """The leads of the day by letter."""
    from inbox.services import agent_reply_send, lead_outcome_set
    from inbox.tests.conftest import agent
    from leads.models import Lead, Message
    from leads.services import (
        call_incoming_record, dial_outcome_record, inbound_sms_record, lead_deadline_pass, message_send,
        message_status_record, missed_call_record,
    )
    from routing.selectors import line_by_number

    line = line_by_number(number=DOWNTOWN_BUYER_LINE)
    tess = agent("tess@example.com")

    def missed(phone):
        missed_call_record(line=line, call_sid=new_sid("CA"), from_number=phone, reason="no_answer")
        return Lead.objects.get(phone=phone)

    def send_textback(lead):
        # (In a browser test the worker has already sent it, when the missed call committed.)
        message = lead.messages.get(kind=Message.Kind.TEXTBACK)
        message_send(message_id=message.pk)
        message.refresh_from_db()
        return message

    def text(phone, body):
        inbound_sms_record(line=line, message_sid=new_sid("SM"), from_number=phone, body=body, media_urls=[])

    def reply(lead):
        message_send(message_id=agent_reply_send(agent=tess, lead=lead, body="Happy to help!").pk)

    with time_machine.travel(at(10), tick=False) as clock:
        a = missed(A)
        clock.move_to(at(10, 0, 2))
        message_status_record(provider_sid=send_textback(a).provider_sid, status="delivered", error_code="")
        clock.move_to(at(10, 5))
        text(A, "Is it still available?")
        clock.move_to(at(10, 8))
        reply(a)
        clock.move_to(at(10, 30))
        lead_outcome_set(actor=tess, lead=a, outcome="appointment", appointment_at=at(17))

        clock.move_to(at(11))
        b = missed(B)
        clock.move_to(at(11, 0, 1))
        send_textback(b)
        clock.move_to(at(11, 11))
        assert lead_deadline_pass(lead_id=b.pk) is not None

        clock.move_to(at(11, 50))
        text(C, "STOP")
        clock.move_to(at(12))
        c = missed(C)
        assert send_textback(c).status == Message.Status.CANCELED

        clock.move_to(at(13))
        d = missed(D)
        clock.move_to(at(13, 0, 3))
        send_textback(d)
        clock.move_to(at(13, 20))
        call_sid = new_sid("CA")
        call_incoming_record(line=line, call_sid=call_sid, from_number=D, rang_agent_ids=[tess.pk], missed_reason="")
        dial_outcome_record(line=line, call_sid=call_sid, from_number=D, dial_status="completed", dial_call_sid=new_sid("CA"), dial_duration=90)

        clock.move_to(at(14))
        e = missed(E)
        clock.move_to(at(14, 0, 1))
        send_textback(e)
        clock.move_to(at(14, 11))
        assert lead_deadline_pass(lead_id=e.pk) is not None
        clock.move_to(at(14, 20))
        text(E, "Sorry, was driving. Can I see it Saturday?")
        clock.move_to(at(14, 25))
        reply(e)
    return {"a": a, "b": b, "c": c, "d": d, "e": e}


