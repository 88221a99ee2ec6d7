"""Shared fixtures: a brokerage with two offices whose agents must never see each other's leads,
signed Twilio webhooks, the in-memory SMS outbox and a listener for live events."""

import datetime as dt
import json
import uuid
from pathlib import Path
from urllib.parse import urlencode

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from twilio.request_validator import RequestValidator

from routing.brokerage_import import brokerage_import

_embedded_redis = None

# Shared fixtures that live in their own modules.
pytest_plugins = ["tests.dashboard_day"]


def pytest_configure(config):
    """Without REDIS_URL the suite runs on the embedded Redis, like `make run`."""
    global _embedded_redis
    from django.conf import settings

    from textback_site.embedded_redis import embedded_redis_needed, embedded_redis_start

    if embedded_redis_needed():
        _embedded_redis = embedded_redis_start(settings.EMBEDDED_REDIS_SOCKET)


def pytest_unconfigure(config):
    if _embedded_redis is not None:
        _embedded_redis.terminate()


BROKERAGE = {
    "brokerage": {"name": "Harbor & Oak Realty", "help_contact": "(555) 555-0199"},
    "offices": [
        {
            "name": "Downtown",
            "timezone": "America/New_York",
            "escalation_minutes": 10,
            "agents": [
                {"email": "ann@example.com", "name": "Ann Lee", "phone": "+15555550101", "role": "agent"},
                {"email": "ben@example.com", "name": "Ben Ortiz", "phone": "+15555550102", "role": "agent"},
                {"email": "tess@example.com", "name": "Tess Morgan", "phone": "+15555550104", "role": "team_leader"},
            ],
            "lines": [
                {"number": "+15555550100", "source": "Zillow", "lead_type": "buyer", "listing": "12 Oak St"},
                {"number": "+15555550110", "source": "Yard sign", "lead_type": "seller"},
            ],
        },
        {
            "name": "Lakeside",
            "timezone": "America/Chicago",
            "agents": [
                {"email": "dan@example.com", "name": "Dan Kim", "phone": "+15555550201", "role": "agent"},
                {"email": "bree@example.com", "name": "Bree Adams", "phone": "+15555550204", "role": "broker"},
            ],
            "lines": [{"number": "+15555550200", "source": "Website", "lead_type": "home_value"}],
        },
    ],
}

DOWNTOWN_BUYER_LINE = "+15555550100"
LAKESIDE_LINE = "+15555550200"
CALLER = "+15555551234"


@pytest.fixture
def brokerage(db):
    """Two offices open around the clock, so tests choose after-hours explicitly. SMS alerts to
    agents' own phones are off, so the outbox holds only texts to callers; the alert tests turn
    them on."""
    from routing.models import Agent, Office

    brokerage_import(BROKERAGE)
    Office.objects.update(business_days=list(range(7)), opens_at=dt.time(0, 0), closes_at=dt.time(23, 59, 59))
    Agent.objects.update(sms_alerts=False)
    return BROKERAGE


@pytest.fixture
def brokerage_file(tmp_path) -> Path:
    path = tmp_path / "brokerage.json"
    path.write_text(json.dumps(BROKERAGE))
    return path


def new_sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


class Twilio:
    """Posts webhooks the way Twilio does: form-encoded, signed over the full public URL."""

    def __init__(self, client, token: str, base_url: str):
        self.client, self.validator, self.base_url = client, RequestValidator(token), base_url

    def signature(self, path: str, params: dict) -> str:
        return self.validator.compute_signature(self.base_url + path, params)

    def post(self, path: str, params: dict, *, signature: str | None = None):
        sig = self.signature(path, params) if signature is None else signature
        return self.client.post(
            path, urlencode(params), content_type="application/x-www-form-urlencoded", HTTP_X_TWILIO_SIGNATURE=sig
        )

    def incoming_call(self, *, call_sid: str, caller: str = CALLER, line: str = DOWNTOWN_BUYER_LINE):
        return self.post("/twilio/voice/incoming/", {"CallSid": call_sid, "From": caller, "To": line, "CallStatus": "ringing", "Direction": "inbound"})

    def dial_status(self, *, call_sid: str, status: str = "no-answer", caller: str = CALLER, line: str = DOWNTOWN_BUYER_LINE):
        return self.post("/twilio/voice/dial-status/", {
            "CallSid": call_sid, "From": caller, "To": line, "DialCallStatus": status,
            "DialCallSid": new_sid("CA"), "DialCallDuration": "0" if status != "completed" else "42", "CallStatus": "in-progress",
        })

    def call_status(self, *, call_sid: str, status: str = "completed", caller: str = CALLER, line: str = DOWNTOWN_BUYER_LINE, **extra):
        return self.post("/twilio/voice/status/", {"CallSid": call_sid, "From": caller, "To": line, "CallStatus": status, "CallDuration": "20", **extra})

    def missed_call(self, *, caller: str = CALLER, line: str = DOWNTOWN_BUYER_LINE, call_sid: str | None = None) -> str:
        call_sid = call_sid or new_sid("CA")
        assert self.incoming_call(call_sid=call_sid, caller=caller, line=line).status_code == 200
        assert self.dial_status(call_sid=call_sid, caller=caller, line=line).status_code == 200
        return call_sid

    def sms(self, body: str, *, caller: str = CALLER, line: str = DOWNTOWN_BUYER_LINE, message_sid: str | None = None, **extra):
        return self.post("/twilio/sms/incoming/", {
            "MessageSid": message_sid or new_sid("SM"), "AccountSid": new_sid("AC"), "From": caller, "To": line,
            "Body": body, "NumMedia": "0", **extra,
        })

    def sms_status(self, *, message_sid: str, status: str, error_code: str = ""):
        params = {"MessageSid": message_sid, "MessageStatus": status}
        if error_code:
            params["ErrorCode"] = error_code
        return self.post("/twilio/sms/status/", params)


class HttpClient:
    """What `Twilio` posts with, over a real socket to a running server instead of the test client."""

    def __init__(self, base_url: str):
        import requests

        self.base_url, self.session = base_url, requests.Session()

    def post(self, path: str, data: str, *, content_type: str, HTTP_X_TWILIO_SIGNATURE: str):  # noqa: N803
        headers = {"Content-Type": content_type, "X-Twilio-Signature": HTTP_X_TWILIO_SIGNATURE}
        return self.session.post(self.base_url + path, data=data, headers=headers, timeout=10)


@pytest.fixture
def twilio(client, settings):
    return Twilio(client, settings.TWILIO_AUTH_TOKEN, settings.PUBLIC_BASE_URL)


@pytest.fixture
def sms_outbox():
    """Texts handed to the SMS backend, in order (the locmem backend the suite selects)."""
    from leads.sms import locmem

    locmem.outbox.clear()
    locmem.failures.clear()
    locmem.line_types.clear()
    locmem.lookups.clear()
    yield locmem.outbox
    locmem.outbox.clear()
    locmem.failures.clear()
    locmem.line_types.clear()
    locmem.lookups.clear()


@pytest.fixture
def queued_textback(brokerage, sms_outbox):
    """A missed call as the worker records it, its text-back in the outbox but not yet sent
    (the transaction's on-commit work, which would hand it to a worker, is not run)."""
    from leads.models import Message
    from leads.services import missed_call_record
    from routing.selectors import line_by_number

    missed_call_record(line=line_by_number(number=DOWNTOWN_BUYER_LINE), call_sid=new_sid("CA"), from_number=CALLER, reason="no_answer")
    message = Message.objects.get(kind=Message.Kind.TEXTBACK)
    assert message.status == Message.Status.QUEUED and sms_outbox == []
    return message


class LiveEvents:
    """Listens on channel-layer groups the way a websocket consumer would."""

    def __init__(self):
        self.layer = get_channel_layer()
        # A plain (not process-local "!") name: it is read straight from Redis, so each
        # async_to_sync call may run on its own event loop.
        self.channel = f"live-events-test-{uuid.uuid4().hex}"

    def join(self, *groups: str) -> "LiveEvents":
        for group in groups:
            async_to_sync(self.layer.group_add)(group, self.channel)
        return self

    def drain(self, timeout: float = 0.3) -> list[dict]:
        import asyncio

        from textback_site.events import BATCH

        async def collect():
            events = []
            while True:
                try:
                    message = await asyncio.wait_for(self.layer.receive(self.channel), timeout)
                except asyncio.TimeoutError:
                    return events
                events.extend(message["events"] if message["type"] == BATCH else [message])

        return async_to_sync(collect)()


@pytest.fixture
def live_events():
    return LiveEvents()
