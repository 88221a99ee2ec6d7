"""Call back: the agent's phone rings from the lead's tracking number, then Twilio bridges to the lead."""

import datetime as dt
from xml.etree import ElementTree

import pytest
import time_machine
from django.utils import timezone

from conftest import CALLER, DOWNTOWN_BUYER_LINE, new_sid
from leads.call_back import PLACE_WITHIN, CallBackRefused, call_back_place, call_back_start
from leads.models import Call, Lead, Message, TwilioWebhook
from leads.services import missed_call_record
from leads.voice import VoiceCallError, locmem
from routing.models import Agent, TrackingNumber
from routing.selectors import line_by_number
from tests.fake_twilio import CALL_DURATION, DIAL_DURATION, FakeTwilio

ACCOUNT_SID = "AC" + "5f" * 16
CONNECT = "/twilio/voice/call-back/connect/"
DIAL_STATUS = "/twilio/voice/call-back/dial-status/"
STATUS = "/twilio/voice/call-back/status/"


@pytest.fixture
def voice_calls():
    """Call-backs handed to the voice backend, in order (the locmem backend the suite selects)."""
    locmem.calls.clear()
    locmem.failures.clear()
    yield locmem.calls
    locmem.calls.clear()
    locmem.failures.clear()


@pytest.fixture
def lead(brokerage, voice_calls) -> Lead:
    """A caller we missed, routed to an agent and waiting for a human."""
    missed_call_record(line=line_by_number(number=DOWNTOWN_BUYER_LINE), call_sid=new_sid("CA"), from_number=CALLER, reason="no_answer")
    Lead.objects.update(name="Maria Lopez")
    lead = Lead.objects.select_related("assigned_agent", "line").get()
    assert lead.awaiting_reply_since is not None and lead.assigned_agent is not None
    return lead


@pytest.fixture
def placed(lead, django_capture_on_commit_callbacks) -> Call:
    """A call-back the worker has handed to Twilio: the agent's phone is about to ring."""
    with django_capture_on_commit_callbacks(execute=True):
        call = call_back_start(agent=lead.assigned_agent, lead=lead)
    call.refresh_from_db()
    assert call.call_sid is not None
    return call


def _status(twilio, call: Call, status: str, *, call_sid: str | None = None, duration: int | None = None):
    params = {"CallSid": call_sid or call.call_sid, "From": call.from_number, "To": call.placed_by.phone, "CallStatus": status}
    if duration is not None:
        params["CallDuration"] = str(duration)
    return twilio.post(f"{STATUS}?call={call.pk}", params)


def _connect(twilio, call_id: int, call_sid: str, **overrides):
    params = {"CallSid": call_sid, "From": DOWNTOWN_BUYER_LINE, "To": "+15555550101", "CallStatus": "in-progress", **overrides}
    return twilio.post(f"{CONNECT}?call={call_id}", params)


def _dial_status(twilio, call: Call, status: str = "completed"):
    return twilio.post(f"{DIAL_STATUS}?call={call.pk}", {
        "CallSid": call.call_sid, "From": call.from_number, "To": call.placed_by.phone, "CallStatus": "in-progress",
        "DialCallStatus": status, "DialCallSid": new_sid("CA"), "DialCallDuration": "42" if status == "completed" else "0",
    })


def _nothing_written(lead: Lead) -> bool:
    before = (lead.awaiting_reply_since, lead.last_activity_at)
    lead.refresh_from_db()
    return not Call.objects.filter(direction=Call.Direction.OUTBOUND).exists() and (
        lead.awaiting_reply_since, lead.last_activity_at
    ) == before


# --- starting and placing ---------------------------------------------------------------------


def test_it_rings_the_agents_phone_from_the_leads_tracking_number(placed, lead, voice_calls):
    agent = lead.assigned_agent
    assert voice_calls == [{"sid": placed.call_sid, "to": agent.phone, "from": DOWNTOWN_BUYER_LINE, "lead": CALLER, "call_id": placed.pk}]
    assert placed.direction == Call.Direction.OUTBOUND and placed.placed_by == agent
    assert placed.lead == lead and placed.line.number == DOWNTOWN_BUYER_LINE and placed.from_number == DOWNTOWN_BUYER_LINE
    assert placed.call_status == "initiating" and not placed.missed and placed.error_message == ""


def test_it_stops_the_leads_wait_for_a_reply_and_tells_the_inbox(lead, voice_calls, live_events, django_capture_on_commit_callbacks):
    live_events.join(f"lead.{lead.pk}", f"agent.{lead.assigned_agent_id}")
    before = lead.last_activity_at
    with django_capture_on_commit_callbacks(execute=True):
        call = call_back_start(agent=lead.assigned_agent, lead=lead)
    lead.refresh_from_db()
    assert lead.awaiting_reply_since is None and lead.last_activity_at > before
    events = live_events.drain()
    assert [e["type"] for e in events] == ["call.placed", "call.placed", "call.status", "call.status"]  # one per group
    assert {"type": "call.placed", "call_id": call.pk, "lead_id": lead.pk}.items() <= events[0].items()
    assert {"call_id": call.pk, "status": "initiating"}.items() <= events[-1].items()


def test_it_refuses_an_agent_without_a_phone_and_writes_nothing(lead):
    Agent.objects.filter(pk=lead.assigned_agent_id).update(phone="")
    with pytest.raises(CallBackRefused, match="no phone number"):
        call_back_start(agent=Agent.objects.get(pk=lead.assigned_agent_id), lead=lead)
    assert _nothing_written(lead)


def test_it_refuses_a_switched_off_line_and_writes_nothing(lead):
    TrackingNumber.objects.filter(number=DOWNTOWN_BUYER_LINE).update(active=False)
    with pytest.raises(CallBackRefused, match="switched off"):
        call_back_start(agent=lead.assigned_agent, lead=lead)
    assert _nothing_written(lead)


def test_it_refuses_an_agent_from_another_office_and_writes_nothing(lead):
    with pytest.raises(CallBackRefused, match="not in your inbox"):
        call_back_start(agent=Agent.objects.get(name="Dan Kim"), lead=lead)
    assert _nothing_written(lead)


def test_a_double_click_rings_the_agent_once(placed, lead, voice_calls):
    with pytest.raises(CallBackRefused) as refused:
        call_back_start(agent=lead.assigned_agent, lead=lead)
    assert refused.value.conflict
    assert Call.objects.filter(direction=Call.Direction.OUTBOUND).count() == 1 and len(voice_calls) == 1


def test_it_calls_again_once_the_last_call_back_is_over(placed, lead, twilio, voice_calls, django_capture_on_commit_callbacks):
    assert _status(twilio, placed, "completed", duration=20).status_code == 204
    with django_capture_on_commit_callbacks(execute=True):
        call_back_start(agent=lead.assigned_agent, lead=lead)
    assert len(voice_calls) == 2


def test_it_places_a_call_back_once_however_often_its_task_runs(lead, voice_calls):
    call = call_back_start(agent=lead.assigned_agent, lead=lead)  # its on-commit task never runs here
    assert Call.objects.get(pk=call.pk).call_status == "queued" and voice_calls == []
    call_back_place(call_id=call.pk)
    call_back_place(call_id=call.pk)
    assert len(voice_calls) == 1
    assert Call.objects.get(pk=call.pk).call_sid == voice_calls[0]["sid"]


def test_a_provider_failure_marks_the_call_failed_with_a_readable_reason(lead, voice_calls, django_capture_on_commit_callbacks):
    locmem.failures.append(VoiceCallError("The agent's phone number cannot be reached", code=21214, permanent=True))
    with django_capture_on_commit_callbacks(execute=True):
        call = call_back_start(agent=lead.assigned_agent, lead=lead)
    call.refresh_from_db()
    assert call.call_status == "failed" and call.call_sid is None and call.ended_at is not None
    assert call.error_message == "The agent's phone number cannot be reached" and voice_calls == []
    lead.refresh_from_db()
    assert lead.awaiting_reply_since is not None  # nobody reached out: the lead still waits


def test_a_temporary_failure_tells_the_agent_to_try_again(lead, voice_calls, django_capture_on_commit_callbacks):
    locmem.failures.append(VoiceCallError("Twilio unreachable: connection refused", permanent=False))
    with django_capture_on_commit_callbacks(execute=True):
        call = call_back_start(agent=lead.assigned_agent, lead=lead)
    call.refresh_from_db()
    assert call.call_status == "failed" and call.error_message == "Twilio unreachable: connection refused (try again in a moment)"
    with django_capture_on_commit_callbacks(execute=True):
        call_back_start(agent=lead.assigned_agent, lead=lead)  # a failed call-back does not block the next click
    assert len(voice_calls) == 1


def test_it_does_not_ring_the_agent_long_after_the_click(lead, voice_calls):
    call = call_back_start(agent=lead.assigned_agent, lead=lead)
    with time_machine.travel(timezone.now() + PLACE_WITHIN + dt.timedelta(seconds=1)):
        call_back_place(call_id=call.pk)
    call.refresh_from_db()
    assert voice_calls == [] and call.call_status == "failed" and "click Call back again" in call.error_message


def test_it_fails_the_call_at_once_when_no_worker_can_be_reached(lead, voice_calls, monkeypatch, django_capture_on_commit_callbacks):
    def broker_down(call_id):
        raise ConnectionError("broker down")

    monkeypatch.setattr("leads.tasks.enqueue_call_back_place", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        call = call_back_start(agent=lead.assigned_agent, lead=lead)
    call.refresh_from_db()
    assert call.call_status == "failed" and "try again" in call.error_message and voice_calls == []


# --- the bridge -------------------------------------------------------------------------------


def test_the_connect_twiml_dials_the_lead_with_the_line_as_caller_id(placed, twilio):
    response = _connect(twilio, placed.pk, placed.call_sid)
    assert response.status_code == 200 and response["Content-Type"] == "text/xml"
    root = ElementTree.fromstring(response.content)
    assert [child.tag for child in root] == ["Say", "Dial"]
    assert root.find("Say").text == "Connecting you to Maria Lopez."
    dial = root.find("Dial")
    assert dial.get("callerId") == DOWNTOWN_BUYER_LINE
    assert dial.get("action") == f"http://testserver{DIAL_STATUS}?call={placed.pk}"
    assert dial.find("Number").text == CALLER


def test_the_connect_twiml_names_no_one_for_a_lead_without_a_name(placed, twilio):
    Lead.objects.update(name="")
    root = ElementTree.fromstring(_connect(twilio, placed.pk, placed.call_sid).content)
    assert root.find("Say").text == "Connecting you to your lead."


@pytest.mark.parametrize("which", ["unknown", "inbound", "another call's sid"])
def test_a_call_we_cannot_connect_hears_so_and_hangs_up(placed, twilio, which):
    inbound = Call.objects.get(direction=Call.Direction.INBOUND)
    call_id, call_sid = {
        "unknown": (placed.pk + 1000, new_sid("CA")),
        "inbound": (inbound.pk, inbound.call_sid),
        "another call's sid": (placed.pk, new_sid("CA")),
    }[which]
    response = _connect(twilio, call_id, call_sid)
    assert response.status_code == 200
    root = ElementTree.fromstring(response.content)
    assert [child.tag for child in root] == ["Say", "Hangup"] and "cannot be connected" in root.find("Say").text


def test_the_dial_outcome_records_that_the_lead_was_reached(placed, lead, twilio):
    response = _dial_status(twilio, placed, "completed")
    assert response.status_code == 200
    assert [child.tag for child in ElementTree.fromstring(response.content)] == ["Hangup"]
    placed.refresh_from_db()
    lead.refresh_from_db()
    assert placed.dial_status == "completed" and placed.dial_duration == 42 and placed.dial_call_sid.startswith("CA")
    assert placed.answered and lead.status == Lead.Status.CONTACTED


def test_the_agent_hears_when_the_lead_did_not_answer_and_a_replay_changes_nothing(placed, lead, twilio):
    response = _dial_status(twilio, placed, "no-answer")
    assert ElementTree.fromstring(response.content).find("Say").text == "Maria Lopez did not answer. Goodbye."
    first = Call.objects.get(pk=placed.pk)
    _dial_status(twilio, placed, "completed")
    again = Call.objects.get(pk=placed.pk)
    assert (again.dial_status, again.dial_call_sid) == ("no-answer", first.dial_call_sid)
    lead.refresh_from_db()
    assert lead.status == Lead.Status.NEW


# --- status callbacks -------------------------------------------------------------------------


def test_status_callbacks_follow_the_agents_leg_to_its_end(placed, twilio):
    for status in ["initiated", "ringing", "in-progress"]:
        assert _status(twilio, placed, status).status_code == 204
        placed.refresh_from_db()
        assert placed.call_status == status and placed.ended_at is None
    assert _status(twilio, placed, "completed", duration=63).status_code == 204
    placed.refresh_from_db()
    assert placed.call_status == "completed" and placed.call_duration == 63 and placed.ended_at is not None


def test_an_unsigned_status_callback_is_refused_and_changes_nothing(placed, twilio):
    params = {"CallSid": placed.call_sid, "From": DOWNTOWN_BUYER_LINE, "To": placed.placed_by.phone, "CallStatus": "completed"}
    response = twilio.post(f"{STATUS}?call={placed.pk}", params, signature="bogus")
    assert response.status_code == 403
    assert Call.objects.get(pk=placed.pk).call_status == "initiating"


@pytest.mark.parametrize("params, field", [
    ({"From": DOWNTOWN_BUYER_LINE, "To": "+15555550101", "CallStatus": "completed"}, "CallSid"),
    ({"CallSid": "CAnope", "From": DOWNTOWN_BUYER_LINE, "To": "+15555550101", "CallStatus": "completed"}, "CallSid"),
    ({"CallSid": new_sid("CA"), "From": DOWNTOWN_BUYER_LINE, "To": "+15555550101", "CallStatus": "completed", "CallDuration": "-1"}, "CallDuration"),
])
def test_a_status_callback_with_a_bad_field_is_a_400_naming_it(placed, twilio, params, field):
    response = twilio.post(f"{STATUS}?call={placed.pk}", params)
    assert response.status_code == 400 and field in response.content.decode()
    assert Call.objects.get(pk=placed.pk).call_status == "initiating"


@pytest.mark.parametrize("path", [STATUS, CONNECT, DIAL_STATUS, f"{STATUS}?call=", f"{STATUS}?call=abc", f"{STATUS}?call=99999999999999999999"])
def test_a_call_back_webhook_without_a_call_id_is_a_400_naming_it(placed, twilio, path):
    params = {"CallSid": placed.call_sid, "From": DOWNTOWN_BUYER_LINE, "To": "+15555550101", "CallStatus": "completed", "DialCallStatus": "completed"}
    response = twilio.post(path, params)
    assert response.status_code == 400 and "call:" in response.content.decode()


def test_a_replayed_status_callback_is_a_no_op(placed, twilio, live_events, django_capture_on_commit_callbacks):
    assert _status(twilio, placed, "completed", duration=63).status_code == 204
    ended_at = Call.objects.get(pk=placed.pk).ended_at
    live_events.join(f"lead.{placed.lead_id}")
    with django_capture_on_commit_callbacks(execute=True):
        assert _status(twilio, placed, "completed", duration=63).status_code == 204
    call = Call.objects.get(pk=placed.pk)
    assert (call.call_status, call.call_duration, call.ended_at) == ("completed", 63, ended_at)
    assert live_events.drain() == []


def test_a_late_status_callback_never_moves_a_call_backwards(placed, twilio):
    _status(twilio, placed, "in-progress")
    _status(twilio, placed, "ringing")
    assert Call.objects.get(pk=placed.pk).call_status == "in-progress"
    _status(twilio, placed, "busy")
    _status(twilio, placed, "completed", duration=5)
    call = Call.objects.get(pk=placed.pk)
    assert call.call_status == "busy" and call.call_duration is None


def test_a_status_callback_that_overtakes_the_worker_brings_the_sid(lead, twilio, voice_calls):
    call = call_back_start(agent=lead.assigned_agent, lead=lead)
    Call.objects.filter(pk=call.pk).update(call_status="initiating")  # the worker is talking to Twilio
    sid = new_sid("CA")
    assert _status(twilio, call, "initiated", call_sid=sid).status_code == 204
    call.refresh_from_db()
    assert call.call_sid == sid and call.call_status == "initiated"


def test_a_status_callback_for_another_calls_sid_changes_nothing(placed, twilio):
    assert _status(twilio, placed, "completed", call_sid=new_sid("CA"), duration=9).status_code == 204
    call = Call.objects.get(pk=placed.pk)
    assert call.call_status == "initiating" and call.call_duration is None


def test_the_inbound_call_path_never_sees_a_call_back(placed, lead, twilio):
    inbound_webhooks = TwilioWebhook.objects.count()
    textbacks = Message.objects.filter(kind=Message.Kind.TEXTBACK).count()
    _status(twilio, placed, "ringing")
    _dial_status(twilio, placed, "no-answer")
    _status(twilio, placed, "completed", duration=30)
    placed.refresh_from_db()
    assert not placed.missed and placed.missed_reason == "" and placed.textback_skipped == ""
    assert TwilioWebhook.objects.count() == inbound_webhooks
    assert Message.objects.filter(kind=Message.Kind.TEXTBACK).count() == textbacks


# --- through the real Twilio SDK --------------------------------------------------------------


@pytest.fixture
def fake_twilio(settings):
    with FakeTwilio(auth_token=settings.TWILIO_AUTH_TOKEN, callbacks="manual", callback_threads=1) as fake:
        settings.VOICE_BACKEND = "leads.voice.twilio.TwilioBackend"
        settings.TWILIO_ACCOUNT_SID = ACCOUNT_SID
        settings.TWILIO_API_BASE_URL = fake.url
        yield fake


def test_it_asks_twilio_to_ring_the_agent_and_fetch_our_twiml(lead, fake_twilio, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        call = call_back_start(agent=lead.assigned_agent, lead=lead)
    [sent] = fake_twilio.calls
    assert sent["account_sid"] == ACCOUNT_SID
    assert sent["to"] == lead.assigned_agent.phone and sent["from"] == DOWNTOWN_BUYER_LINE
    assert sent["url"] == f"http://testserver{CONNECT}?call={call.pk}" and sent["method"] == "POST"
    assert sent["status_callback"] == f"http://testserver{STATUS}?call={call.pk}"
    assert sent["status_callback_events"] == ["initiated", "ringing", "answered", "completed"]
    assert sent["timeout"] == str(lead.line.ring_seconds)
    call.refresh_from_db()
    assert call.call_sid == sent["sid"] and call.call_status == "initiating"


def test_it_fails_the_call_with_twilios_reason_when_twilio_refuses(lead, fake_twilio, django_capture_on_commit_callbacks):
    fake_twilio.fail_next(status=400, code=21215, api="calls")
    with django_capture_on_commit_callbacks(execute=True):
        call = call_back_start(agent=lead.assigned_agent, lead=lead)
    [attempt] = fake_twilio.rejected_calls
    assert attempt["to"] == lead.assigned_agent.phone and attempt["http_status"] == 400
    call.refresh_from_db()
    assert call.call_status == "failed" and call.call_sid is None
    assert call.error_message == "Calling the agent's phone is not allowed by the Twilio account's geographic permissions"
    assert fake_twilio.calls == []


@pytest.mark.django_db(transaction=True)
def test_it_bridges_the_agent_to_the_lead_end_to_end(lead, fake_twilio, live_server, settings):
    settings.PUBLIC_BASE_URL = live_server.url
    call = call_back_start(agent=lead.assigned_agent, lead=lead)  # autocommit: the worker runs at once

    assert fake_twilio.release_callbacks() == 1
    assert fake_twilio.wait_callbacks(6, timeout=10)
    posted = [(c["event"], c["status"], c["http_status"]) for c in fake_twilio.callbacks]
    assert posted == [
        ("status", "initiated", 204), ("status", "ringing", 204), ("status", "in-progress", 204),
        ("url", "in-progress", 200), ("action", "completed", 200), ("status", "completed", 204),
    ]
    dial = ElementTree.fromstring(fake_twilio.calls[0]["twiml"]).find("Dial")
    assert dial.get("callerId") == DOWNTOWN_BUYER_LINE and dial.find("Number").text == CALLER
    call.refresh_from_db()
    assert call.call_status == "completed" and call.call_duration == CALL_DURATION and call.ended_at is not None
    assert call.dial_status == "completed" and call.dial_duration == DIAL_DURATION and not call.missed
    lead.refresh_from_db()
    assert lead.status == Lead.Status.CONTACTED and lead.awaiting_reply_since is None
    assert not TwilioWebhook.objects.exists()
