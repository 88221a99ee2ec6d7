"""Twilio's webhooks: check the signature, parse, call one service, answer fast."""

import functools
import logging
import re

from django.conf import settings
from django.http import HttpResponse, HttpResponseBadRequest, HttpResponseForbidden, HttpResponseNotFound
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

from leads import services
from leads.call_back import call_back_dial_outcome_record, call_back_get, call_back_status_record
from leads.forms import (
    DialStatusForm, SmsIncomingForm, SmsStatusForm, VoiceIncomingForm, VoiceStatusForm, e164_or_none,
)
from leads.models import Call, TwilioWebhook
from leads.selectors import call_ring_plan
from routing.selectors import line_by_number, line_for_inbound_text

logger = logging.getLogger(__name__)


def twilio_signed(view):
    """403 unless X-Twilio-Signature matches the URL Twilio called, rebuilt from PUBLIC_BASE_URL
    (behind a proxy the request's own host and scheme are not what Twilio signed)."""

    @csrf_exempt
    @require_POST
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        signature = request.headers.get("X-Twilio-Signature", "")
        url = settings.PUBLIC_BASE_URL + request.get_full_path()
        if not signature or not RequestValidator(settings.TWILIO_AUTH_TOKEN).validate(url, request.POST, signature):
            logger.warning("rejected %s: bad or missing Twilio signature", request.path)
            return HttpResponseForbidden("Invalid Twilio signature.", content_type="text/plain")
        return view(request, *args, **kwargs)

    return wrapper


def _bad_request(form) -> HttpResponse:
    fields = "; ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items())
    logger.warning("rejected webhook: %s", fields)
    return HttpResponseBadRequest(f"Invalid webhook parameters: {fields}", content_type="text/plain")


def _no_line(number: str) -> HttpResponse:
    logger.warning("webhook for %s, which is not an active tracking line", number)
    return HttpResponseNotFound(f"{number} is not an active tracking line.", content_type="text/plain")


def _twiml(response) -> HttpResponse:
    return HttpResponse(str(response), content_type="text/xml")


def _voicemail(response: VoiceResponse, line) -> VoiceResponse:
    status_url = settings.PUBLIC_BASE_URL + reverse("twilio-voice-status")
    response.say(
        f"Sorry we missed your call to {line.office.brokerage.name}. We are texting you right now. "
        "You can also leave a message after the tone."
    )
    # The <Record> action posts the recording with the call's own parameters, From and To included.
    response.record(max_length=120, play_beep=True, action=status_url)
    return response


def voice_webhook(form_class):
    """Signature, parameters and line for a voice webhook; the view receives them parsed, with
    the caller's number in E.164, or None for a withheld caller ID."""

    def decorate(view):
        @twilio_signed
        @functools.wraps(view)
        def wrapper(request):
            form = form_class(request.POST)
            if not form.is_valid():
                return _bad_request(form)
            data = form.cleaned_data
            line = line_by_number(number=data["To"])
            if line is None:
                return _no_line(data["To"])
            return view(request, data=data, line=line, caller=e164_or_none(data["From"]))

        return wrapper

    return decorate


@voice_webhook(VoiceIncomingForm)
def voice_incoming(request, *, data: dict, line, caller: str | None):
    plan = call_ring_plan(line=line, from_number=caller)
    if caller is not None:  # a withheld number cannot be texted back or kept as a lead
        services.twilio_webhook_accept(
            kind=TwilioWebhook.Kind.CALL_INCOMING, dedupe_key=f"incoming:{data['CallSid']}", line=line,
            call_sid=data["CallSid"],
            params={
                "call_sid": data["CallSid"], "from_number": caller,
                "rang_agent_ids": [a.pk for a in plan.agents], "missed_reason": plan.missed_reason,
            },
            urgent=bool(plan.missed_reason),  # a miss before any ring is texted now; a ring waits for its outcome
        )
    response = VoiceResponse()
    if not plan.agents:
        return _twiml(_voicemail(response, line))
    dial = response.dial(
        timeout=line.ring_seconds, action=settings.PUBLIC_BASE_URL + reverse("twilio-voice-dial-status"),
        method="POST", answer_on_bridge=True,
    )
    for agent in plan.agents:
        dial.number(agent.phone)
    return _twiml(response)


@voice_webhook(DialStatusForm)
def voice_dial_status(request, *, data: dict, line, caller: str | None):
    status = data["DialCallStatus"]
    if caller is None:
        logger.info("call %s from a withheld number ended %s; nothing to text", data["CallSid"], status)
    else:
        services.twilio_webhook_accept(
            kind=TwilioWebhook.Kind.DIAL_STATUS, dedupe_key=f"dial:{data['CallSid']}", line=line, call_sid=data["CallSid"],
            params={
                "call_sid": data["CallSid"], "from_number": caller, "dial_status": status,
                "dial_call_sid": data["DialCallSid"], "dial_duration": data["DialCallDuration"],
            },
        )
    response = VoiceResponse()
    if status in Call.MISSED_DIAL_STATUSES:
        return _twiml(_voicemail(response, line))
    response.hangup()
    return _twiml(response)


@voice_webhook(VoiceStatusForm)
def voice_status(request, *, data: dict, line, caller: str | None):
    """Call status callbacks, and the voicemail recording when it is ready."""
    if caller is not None:
        services.twilio_webhook_accept(
            kind=TwilioWebhook.Kind.CALL_STATUS, line=line, call_sid=data["CallSid"],
            dedupe_key=f"status:{data['CallSid']}:{data['CallStatus']}:{data['RecordingUrl']}",
            params={
                "call_sid": data["CallSid"], "from_number": caller, "call_status": data["CallStatus"],
                "duration": data["CallDuration"], "recording_url": data["RecordingUrl"],
                "recording_duration": data["RecordingDuration"],
            },
        )
    return _twiml(VoiceResponse())


_CALL_ID = re.compile(r"[1-9][0-9]{0,17}")


def call_back_webhook(form_class):
    """Signature and parameters for a call-back webhook, and the call's id, which rides in the
    query string of every URL we hand Twilio for it (`?call=<pk>`)."""

    def decorate(view):
        @twilio_signed
        @functools.wraps(view)
        def wrapper(request):
            form = form_class(request.POST)
            if not form.is_valid():
                return _bad_request(form)
            call_id = request.GET.get("call", "")
            if not _CALL_ID.fullmatch(call_id):
                logger.warning("rejected %s: no call id in its query string", request.path)
                return HttpResponseBadRequest(
                    "Invalid webhook parameters: call: a call id is required in the query string.", content_type="text/plain"
                )
            return view(request, data=form.cleaned_data, call_id=int(call_id))

        return wrapper

    return decorate


@call_back_webhook(VoiceIncomingForm)
def voice_call_back_connect(request, *, data: dict, call_id: int):
    """The agent answered their phone: say who they are calling, then dial the lead from the
    tracking number. Twilio needs TwiML whatever happens, so a call we cannot connect hangs up."""
    call = call_back_get(call_id=call_id)
    response = VoiceResponse()
    if call is None or call.call_sid not in (None, data["CallSid"]):
        logger.warning("call-back %s (Twilio call %s) cannot be connected", call_id, data["CallSid"])
        response.say("Sorry, this call cannot be connected. Goodbye.")
        response.hangup()
        return _twiml(response)
    response.say(f"Connecting you to {call.lead.name or 'your lead'}.")
    dial = response.dial(
        caller_id=call.from_number, method="POST",
        action=settings.PUBLIC_BASE_URL + reverse("twilio-voice-call-back-dial-status") + f"?call={call.pk}",
    )
    dial.number(call.lead.phone)
    return _twiml(response)


@call_back_webhook(DialStatusForm)
def voice_call_back_dial_status(request, *, data: dict, call_id: int):
    status = data["DialCallStatus"]
    call = call_back_dial_outcome_record(
        call_id=call_id, dial_status=status, dial_call_sid=data["DialCallSid"], dial_duration=data["DialCallDuration"]
    )
    response = VoiceResponse()
    if call is not None and status in Call.MISSED_DIAL_STATUSES:
        response.say(f"{call.lead.name or 'Your lead'} did not answer. Goodbye.")
    response.hangup()
    return _twiml(response)


@call_back_webhook(VoiceStatusForm)
def voice_call_back_status(request, *, data: dict, call_id: int):
    """Progress of the agent's leg; these never reach voice_status, which would count a miss."""
    call_back_status_record(call_id=call_id, call_sid=data["CallSid"], call_status=data["CallStatus"], duration=data["CallDuration"])
    return HttpResponse(status=204)


@twilio_signed
def sms_incoming(request):
    form = SmsIncomingForm(request.POST)
    if not form.is_valid():
        return _bad_request(form)
    data = form.cleaned_data
    line = line_for_inbound_text(number=data["To"], messaging_service_sid=data["MessagingServiceSid"])
    if line is None:
        return _no_line(data["To"])
    services.inbound_sms_record(
        line=line, message_sid=data["MessageSid"], from_number=data["From"], body=data["Body"],
        media_urls=form.media_urls(request.POST), opt_out_type=data["OptOutType"],
    )
    return _twiml(MessagingResponse())


@twilio_signed
def sms_status(request):
    form = SmsStatusForm(request.POST)
    if not form.is_valid():
        return _bad_request(form)
    data = form.cleaned_data
    services.message_status_record(provider_sid=data["MessageSid"], status=data["MessageStatus"], error_code=data["ErrorCode"])
    return HttpResponse(status=204)
