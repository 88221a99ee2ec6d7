import datetime as dt
import zoneinfo

import pytest
import time_machine
from django.utils import timezone

from compliance.models import ConsentEvent, NumberProfile
from conftest import CALLER, DOWNTOWN_BUYER_LINE, new_sid
from leads.models import Message, MessageStatusEvent
from leads.services import message_send, message_status_record
from leads.sms import SmsSendError
from leads.sms import locmem
from leads.tasks import outbox_sweep_task

pytestmark = pytest.mark.django_db


def test_it_writes_the_row_before_calling_the_provider(queued_textback, sms_outbox):
    assert queued_textback.queued_at is not None and queued_textback.provider_sid is None
    message_send(message_id=queued_textback.pk)
    queued_textback.refresh_from_db()
    assert queued_textback.status == Message.Status.SENT and queued_textback.attempts == 1
    assert sms_outbox[0]["message_id"] == queued_textback.pk


def test_it_sends_a_message_once_however_often_its_task_runs(queued_textback, sms_outbox):
    for _ in range(3):
        message_send(message_id=queued_textback.pk)
    assert len(sms_outbox) == 1


def test_it_retries_a_temporary_failure_with_backoff(queued_textback, sms_outbox):
    locmem.failures.append(SmsSendError("Twilio answered HTTP 503", permanent=False))
    message_send(message_id=queued_textback.pk)
    queued_textback.refresh_from_db()
    assert queued_textback.status == Message.Status.QUEUED and queued_textback.attempts == 1
    assert queued_textback.next_attempt_at > timezone.now() and "503" in queued_textback.error_message
    # Not due yet: running the task early does nothing.
    message_send(message_id=queued_textback.pk)
    assert sms_outbox == []
    with time_machine.travel(timezone.now() + dt.timedelta(seconds=20)):
        assert outbox_sweep_task() == 1
    queued_textback.refresh_from_db()
    assert queued_textback.status == Message.Status.SENT and queued_textback.attempts == 2 and len(sms_outbox) == 1


def test_it_gives_up_after_the_last_attempt(queued_textback, sms_outbox, settings):
    settings.OUTBOX_MAX_ATTEMPTS = 2
    for _ in range(2):
        locmem.failures.append(SmsSendError("timeout", permanent=False))
    message_send(message_id=queued_textback.pk)
    Message.objects.update(next_attempt_at=timezone.now())
    message_send(message_id=queued_textback.pk)
    queued_textback.refresh_from_db()
    assert queued_textback.status == Message.Status.FAILED and queued_textback.attempts == 2


def test_it_fails_a_permanent_error_with_a_readable_reason(queued_textback, sms_outbox):
    locmem.failures.append(SmsSendError("Invalid phone number", code=21211, permanent=True))
    message_send(message_id=queued_textback.pk)
    queued_textback.refresh_from_db()
    assert queued_textback.status == Message.Status.FAILED
    assert queued_textback.error_code == "21211" and queued_textback.error_message == "Invalid phone number"


def test_a_21610_from_the_provider_records_an_opt_out(queued_textback, sms_outbox):
    locmem.failures.append(SmsSendError("The recipient replied STOP to this number", code=21610, permanent=True))
    message_send(message_id=queued_textback.pk)
    event = ConsentEvent.objects.get(kind=ConsentEvent.Kind.OPT_OUT)
    assert event.source == ConsentEvent.Source.CARRIER and event.phone == CALLER and event.sender == DOWNTOWN_BUYER_LINE


def test_status_callbacks_advance_and_never_go_backwards(queued_textback, django_capture_on_commit_callbacks):
    message_send(message_id=queued_textback.pk)
    sid = Message.objects.get().provider_sid
    message_status_record(provider_sid=sid, status="delivered", error_code="")
    message_status_record(provider_sid=sid, status="sent", error_code="")  # arrives late
    message = Message.objects.get()
    assert message.status == Message.Status.DELIVERED and message.delivered_at is not None


def test_callbacks_that_beat_the_worker_are_applied_when_the_sid_is_stored(queued_textback, monkeypatch):
    # Twilio can post "delivered" before our worker has written the SID it got back.
    sid = "SM" + "a" * 32

    def send_and_get_called_back(self, message):
        message_status_record(provider_sid=sid, status="delivered", error_code="")
        return sid

    monkeypatch.setattr(locmem.LocmemBackend, "send", send_and_get_called_back)
    message_send(message_id=queued_textback.pk)
    message = Message.objects.get()
    assert message.status == Message.Status.DELIVERED
    assert MessageStatusEvent.objects.get(provider_sid=sid).message == message


def test_an_undelivered_30006_marks_the_number_as_a_landline(queued_textback, twilio, sms_outbox, django_capture_on_commit_callbacks):
    message_send(message_id=queued_textback.pk)
    sid = Message.objects.get().provider_sid
    with django_capture_on_commit_callbacks(execute=True):
        twilio.sms_status(message_sid=sid, status="undelivered", error_code="30006")
    message = Message.objects.get()
    assert message.status == Message.Status.UNDELIVERED and message.error_code == "30006"
    assert "Landline" in message.error_message
    assert NumberProfile.objects.get(phone=CALLER).line_type == NumberProfile.LineType.LANDLINE


def test_the_sweep_requeues_rows_a_crashed_worker_left_behind(queued_textback, sms_outbox, settings):
    Message.objects.update(status=Message.Status.SENDING, sending_at=timezone.now() - dt.timedelta(minutes=10), attempts=1)
    assert outbox_sweep_task() == 1
    assert Message.objects.get().status == Message.Status.SENT and len(sms_outbox) == 1


def test_the_sweep_picks_up_a_row_whose_task_was_lost(queued_textback, sms_outbox):
    assert outbox_sweep_task() == 0  # just queued: its task is on its way
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=5)):
        assert outbox_sweep_task() == 1
    assert len(sms_outbox) == 1


def test_the_sweep_leaves_finished_and_fresh_rows_alone(queued_textback, sms_outbox):
    message_send(message_id=queued_textback.pk)
    with time_machine.travel(timezone.now() + dt.timedelta(hours=1)):
        assert outbox_sweep_task() == 0
    assert len(sms_outbox) == 1


def test_a_text_held_by_quiet_hours_waits_in_the_outbox_and_goes_at_eight(brokerage, sms_outbox):
    """The broker holds even text-backs at night; the caller (a fictional 555 number, so the
    office's New York clock applies) gets it at 8:00 am, not before and not never."""
    from leads.services import missed_call_record
    from routing.models import Office
    from routing.selectors import line_by_number

    Office.objects.update(quiet_hours_for_replies=True)
    eastern = zoneinfo.ZoneInfo("America/New_York")
    with time_machine.travel(dt.datetime(2026, 11, 24, 23, 30, tzinfo=eastern), tick=False):
        missed_call_record(line=line_by_number(number=DOWNTOWN_BUYER_LINE), call_sid=new_sid("CA"), from_number=CALLER, reason="no_answer")
        textback = Message.objects.get(kind=Message.Kind.TEXTBACK)
        message_send(message_id=textback.pk)
    textback.refresh_from_db()
    eight = dt.datetime(2026, 11, 25, 8, 0, tzinfo=eastern)
    assert textback.status == Message.Status.QUEUED and textback.next_attempt_at == eight
    assert "Quiet hours" in textback.error_message and sms_outbox == [] and textback.attempts == 0
    with time_machine.travel(eight - dt.timedelta(minutes=1), tick=False):
        outbox_sweep_task()
    assert sms_outbox == []
    with time_machine.travel(eight, tick=False):
        outbox_sweep_task()
    assert [m["message_id"] for m in sms_outbox] == [textback.pk]
