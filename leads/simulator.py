"""The built-in phone simulator: in demo mode a staff member plays the caller.

It stands in for Twilio, never for our own code: every action builds the form parameters Twilio
would send, signs them with the auth token and POSTs them over HTTP to the public webhook URLs,
so a demo takes the exact path a real call takes, signature check included. It keeps no state
of its own: the call in progress travels in the phone's hidden fields, and the conversation is
read back from the database.
"""

import dataclasses
import datetime as dt
import functools
import time
import uuid
import xml.etree.ElementTree as ElementTree

import requests
from django import forms
from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import trigger_client_event
from twilio.request_validator import RequestValidator

from leads.forms import PhoneField, SidField
from leads.models import Message
from leads.selectors import simulator_agent_names, simulator_lines, simulator_thread
from routing.selectors import line_by_number

DEFAULT_CALLER = "+15555551234"
API_VERSION = "2010-04-01"  # the version Twilio names in every webhook it posts
# Twilio waits this long for a webhook's answer before it gives up on it.
WEBHOOK_TIMEOUT_SECONDS = 15
# How long the simulated agent talks when they pick up.
ANSWERED_TALK_SECONDS = 45
# What the phone's thread listens for to refresh at once instead of at its next poll.
THREAD_REFRESH_EVENT = "thread-refresh"
# The request parameters worth a glance in the log; the rest is one click away.
_HEADLINE_PARAMS = ("From", "To", "CallStatus", "DialCallStatus", "DialCallDuration", "CallDuration", "MessageStatus", "Body")

# One tap each on the phone: the words carriers and the FCC make every sender honour.
KEYWORDS = ("STOP", "START", "HELP")

TEMPLATE = "simulator/page.html"


def new_sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


# --- talking to the webhooks as Twilio ----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Twiml:
    """What a TwiML answer makes Twilio do, as far as the caller would notice."""

    ring: tuple[str, ...] = ()
    ring_seconds: int | None = None
    say: str = ""
    records: bool = False
    hangs_up: bool = False
    replies: tuple[str, ...] = ()
    pretty: str = ""


def twiml_read(body: str) -> Twiml | None:
    """None when the body is not TwiML at all."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return None
    if root.tag != "Response":
        return None
    dial = root.find("Dial")
    # Twilio rings for 30 s when <Dial> names no timeout.
    timeout = dial.get("timeout", "30") if dial is not None else ""
    ElementTree.indent(root)
    return Twiml(
        ring=tuple((number.text or "").strip() for number in dial.iter("Number")) if dial is not None else (),
        ring_seconds=int(timeout) if timeout.isdigit() else None,
        say=" ".join((say.text or "").strip() for say in root.iter("Say")),
        records=root.find("Record") is not None,
        hangs_up=root.find("Hangup") is not None,
        replies=tuple((message.text or "").strip() for message in root.iter("Message")),
        pretty=ElementTree.tostring(root, encoding="unicode"),
    )


def twiml_in_words(twiml: Twiml) -> str:
    if twiml.ring:
        names = simulator_agent_names(phones=list(twiml.ring))
        who = ", ".join(names.get(number, number) for number in twiml.ring)
        return f"Ringing {who} for {twiml.ring_seconds} s" if twiml.ring_seconds else f"Ringing {who}"
    if twiml.say:
        return f"{'Voicemail' if twiml.records else 'Says'}: {twiml.say}"
    if twiml.replies:
        return "Replies: " + " / ".join(twiml.replies)
    if twiml.hangs_up:
        return "Hangs up"
    return "Empty TwiML: nothing more for Twilio to do"


@dataclasses.dataclass(frozen=True)
class Exchange:
    """One webhook posted the way Twilio posts it, and what our endpoint answered."""

    path: str
    params: dict[str, str]
    signature: str
    status_code: int | None  # None: no answer at all (refused, timed out)
    body: str
    at: dt.datetime
    twiml: Twiml | None = None
    summary: str = ""

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def headline(self) -> list[tuple[str, str]]:
        return [(name, self.params[name]) for name in _HEADLINE_PARAMS if name in self.params]

    @property
    def shown_body(self) -> str:
        return self.twiml.pretty if self.twiml else self.body


def webhook_post(url_name: str, params: dict[str, str]) -> Exchange:
    path = reverse(url_name)
    url = settings.PUBLIC_BASE_URL + path
    signature = RequestValidator(settings.TWILIO_AUTH_TOKEN).compute_signature(url, params)
    common = {"path": path, "params": params, "signature": signature, "at": timezone.now()}
    try:
        # Twilio does not follow redirects for webhooks, so a redirect is shown as the failure it is.
        response = requests.post(
            url, data=params, headers={"X-Twilio-Signature": signature},
            timeout=WEBHOOK_TIMEOUT_SECONDS, allow_redirects=False,
        )
    except requests.RequestException as error:
        return Exchange(**common, status_code=None, body=str(error), summary=f"No answer from {url}")
    body = response.text
    if not 200 <= response.status_code < 300:
        return Exchange(
            **common, status_code=response.status_code, body=body,
            summary=f"HTTP {response.status_code}: {body.strip()[:300] or '(empty body)'}",
        )
    twiml = twiml_read(body) if body.strip() else None
    if twiml is not None:
        summary = twiml_in_words(twiml)
    else:
        summary = "Accepted (no content)" if not body.strip() else "Answered, but not with TwiML"
    return Exchange(**common, status_code=response.status_code, body=body, twiml=twiml, summary=summary)


def _call_params(call: dict, **extra: str) -> dict[str, str]:
    return {
        "AccountSid": settings.TWILIO_ACCOUNT_SID, "ApiVersion": API_VERSION, "CallSid": call["sid"],
        "From": call["caller"], "Caller": call["caller"], "To": call["line"], "Called": call["line"],
        "Direction": "inbound", **extra,
    }


# --- forms: what the phone's fields carry ---------------------------------------------------------


class PhoneForm(forms.Form):
    """Whose handset this is and which line it talks to."""

    line = forms.CharField(max_length=16)
    caller = PhoneField()

    def clean_line(self):
        line = line_by_number(number=self.cleaned_data["line"])
        if line is None:
            raise forms.ValidationError("Pick one of the active tracking lines.")
        return line


class CallForm(forms.Form):
    """A call in progress, carried between clicks in the call panel's hidden fields. The line
    need not still be active: Twilio would keep posting, and the webhook decides."""

    sid = SidField("CA")
    line = PhoneField()
    caller = PhoneField()
    started = forms.FloatField(min_value=0)


class TextForm(PhoneForm):
    body = forms.CharField(max_length=1600)


# --- views --------------------------------------------------------------------------------------


def simulator_view(view):
    """Demo mode only: with real Twilio credentials, real phones do this. Staff only: it
    creates leads and texts as any caller."""
    staff_view = staff_member_required(view)

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not settings.DEMO_MODE:
            raise Http404("The phone simulator exists only in demo mode.")
        return staff_view(request, *args, **kwargs)

    return wrapper


def _with_refresh(response: HttpResponse) -> HttpResponse:
    """The webhooks may have queued texts; the phone should look now, not at its next poll."""
    return trigger_client_event(response, THREAD_REFRESH_EVENT)


def _thread_context(form: PhoneForm) -> dict:
    """The phone's conversation, and a fingerprint of it so an unchanged thread is not resent."""
    if not form.is_valid():
        return {"phone": form, "texts": [], "seen": f"invalid:{form['line'].value()}:{form['caller'].value()}"}
    line, caller = form.cleaned_data["line"], form.cleaned_data["caller"]
    texts = simulator_thread(phone=caller, line=line)
    seen = f"{caller}:{line.number}:" + ",".join(f"{text.pk}.{text.status}" for text in texts)
    return {"phone": form, "line": line, "caller": caller, "texts": texts, "seen": seen}


@simulator_view
@require_GET
def page(request):
    lines = simulator_lines()
    defaults = {"line": lines[0].number if lines else "", "caller": DEFAULT_CALLER}
    form = PhoneForm(request.GET or defaults)
    return render(request, TEMPLATE, {
        "lines": lines, "keywords": KEYWORDS, "call": {"state": "idle"}, **_thread_context(form),
    })


@simulator_view
@require_POST
def thread(request):
    """The phone's poll. The phone is also the carrier: a text it now shows as sent has reached
    the handset, so it reports delivery through the status webhook, as Twilio would."""
    context = _thread_context(PhoneForm(request.POST))
    exchanges = [
        webhook_post("twilio-sms-status", {
            "AccountSid": settings.TWILIO_ACCOUNT_SID, "ApiVersion": API_VERSION, "MessageSid": text.provider_sid,
            "SmsSid": text.provider_sid, "MessageStatus": "delivered", "SmsStatus": "delivered",
            "From": text.line.number, "To": text.lead.phone,
        })
        for text in context["texts"]
        if text.is_outbound and text.status == Message.Status.SENT and text.provider_sid
    ]
    if not exchanges and request.POST.get("seen") == context["seen"]:
        return HttpResponse(status=204)  # htmx leaves the thread alone, so a reader's scroll stays put
    return render(request, f"{TEMPLATE}#thread", {**context, "exchanges": exchanges})


@simulator_view
@require_POST
def call_start(request):
    form = PhoneForm(request.POST)
    if not form.is_valid():
        return render(request, f"{TEMPLATE}#call-panel", {"call": {"state": "idle", "errors": form.errors}})
    call = {"sid": new_sid("CA"), "line": form.cleaned_data["line"].number, "caller": form.cleaned_data["caller"],
            "started": time.time()}
    exchange = webhook_post("twilio-voice-incoming", _call_params(call, CallStatus="ringing"))
    if not exchange.ok:
        state = "failed"
    elif exchange.twiml and exchange.twiml.ring:
        state = "ringing"
    else:
        state = "listening"
    return _with_refresh(render(request, f"{TEMPLATE}#call-panel", {
        "call": {**call, "state": state, "steps": [exchange]}, "exchanges": [exchange],
    }))


def _call_end(request, *, headline: str, dial_params: dict[str, str] | None, talk_seconds: int = 0) -> HttpResponse:
    """Post the dial outcome (if the call was ringing agents), then the final call status."""
    form = CallForm(request.POST)
    if not form.is_valid():
        return render(request, f"{TEMPLATE}#call-panel", {"call": {"state": "lost"}})
    call = form.cleaned_data
    exchanges = []
    if dial_params is not None:
        exchanges.append(webhook_post("twilio-voice-dial-status", _call_params(
            call, CallStatus="in-progress", DialCallSid=new_sid("CA"), **dial_params,
        )))
    duration = max(1, round(time.time() - call["started"])) + talk_seconds
    exchanges.append(webhook_post("twilio-voice-status", _call_params(
        call, CallStatus="completed", CallDuration=str(duration),
    )))
    return _with_refresh(render(request, f"{TEMPLATE}#call-panel", {
        "call": {**call, "state": "ended", "headline": headline, "duration": duration, "steps": exchanges},
        "exchanges": exchanges,
    }))


@simulator_view
@require_POST
def call_ring_out(request):
    return _call_end(request, headline="Nobody answered", dial_params={"DialCallStatus": "no-answer", "DialCallDuration": "0"})


@simulator_view
@require_POST
def call_answer(request):
    return _call_end(
        request, headline=f"An agent answered and talked {ANSWERED_TALK_SECONDS} s",
        dial_params={"DialCallStatus": "completed", "DialCallDuration": str(ANSWERED_TALK_SECONDS)},
        talk_seconds=ANSWERED_TALK_SECONDS,
    )


@simulator_view
@require_POST
def call_hang_up(request):
    return _call_end(request, headline="You hung up", dial_params=None)


@simulator_view
@require_POST
def text_send(request):
    form = TextForm(request.POST)
    if not form.is_valid():
        return render(request, f"{TEMPLATE}#compose-status", {"text_form": form})
    line, caller = form.cleaned_data["line"], form.cleaned_data["caller"]
    sid = new_sid("SM")
    params = {
        "AccountSid": settings.TWILIO_ACCOUNT_SID, "ApiVersion": API_VERSION, "MessageSid": sid, "SmsSid": sid,
        "SmsMessageSid": sid, "From": caller, "To": line.number, "Body": form.cleaned_data["body"],
        "NumMedia": "0", "NumSegments": "1", "SmsStatus": "received",
    }
    if line.messaging_service_sid:
        params["MessagingServiceSid"] = line.messaging_service_sid
    exchange = webhook_post("twilio-sms-incoming", params)
    return _with_refresh(render(request, f"{TEMPLATE}#compose-status", {"exchange": exchange, "exchanges": [exchange]}))
