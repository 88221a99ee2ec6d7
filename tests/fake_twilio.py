"""A loopback fake of the slice of Twilio's REST API that Textback uses.

The app's Twilio client rewrites the scheme and host of every SDK URL to TWILIO_API_BASE_URL,
so the real SDK builds and sends every request and this fake only answers: Messages.create
(201 with a message resource, or a scripted Twilio error), Message fetch, Lookups v2 line
type, Calls.create (201 with a call resource, or a scripted error), and, when asked, signed
callbacks posted from background threads the way Twilio posts them: for a text, status
callbacks (sent, then delivered) to its StatusCallback; for a call, as if its callee answered,
the progress callbacks it asked for (initiated, ringing, in-progress) to its StatusCallback, a
fetch of its TwiML from its Url, the <Dial action> of that TwiML (DialCallStatus completed), then
"completed" with CallDuration (Twilio always posts that one).

In-process (tests):

    with FakeTwilio(callbacks="manual") as fake:
        settings.TWILIO_API_BASE_URL = fake.url
        ...
        fake.release_callbacks(); fake.wait_callbacks(2)
        fake.calls[0]["twiml"]   # what our connect webhook answered

Out of process (benchmarks): ``python -m tests.fake_twilio --port 8765 --callbacks auto``,
then the control API:

    GET  /_fake/health                  {"ok": true}
    GET  /_fake/messages                accepted messages, each with received_ns (time.time_ns())
    GET  /_fake/wait?to=+1555...&timeout=5[&nth=2]   block until the (nth) message to that number arrived
    GET  /_fake/calls                   accepted calls (with the TwiML their Url answered) and rejected ones
    GET  /_fake/callbacks               callbacks posted and the HTTP status they got
    GET  /_fake/stats                   counts only (cheap to poll)
    POST /_fake/reset                   forget everything, drop scripted failures
    POST /_fake/fail    {"count": 1, "status": 400, "code": 21610, "message": "...", "api": "messages"|"calls"}
    POST /_fake/config  {"callbacks": "auto"|"manual"|"off", "callback_delay": 0.0}
    POST /_fake/release                 post the held callbacks (manual mode)

Timestamps: ``received_ns`` is ``time.time_ns()`` so another process on the same machine can
compare it with its own clock; ``received_monotonic`` is only meaningful in this process.
"""

from __future__ import annotations

import argparse
import base64
import collections
import dataclasses
import email.utils
import json
import queue
import re
import signal
import socket
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlencode, urlsplit
from xml.etree import ElementTree

import requests
from twilio.request_validator import RequestValidator

API_VERSION = "2010-04-01"
_MESSAGES = re.compile(rf"^/{API_VERSION}/Accounts/(?P<account>AC[0-9a-fA-F]{{32}})/Messages\.json$")
_MESSAGE = re.compile(rf"^/{API_VERSION}/Accounts/(?P<account>AC[0-9a-fA-F]{{32}})/Messages/(?P<sid>(SM|MM)[0-9a-fA-F]{{32}})\.json$")
_CALLS = re.compile(rf"^/{API_VERSION}/Accounts/(?P<account>AC[0-9a-fA-F]{{32}})/Calls\.json$")
_LOOKUP = re.compile(r"^/v2/PhoneNumbers/(?P<number>[^/]+)$")

# Characters of the GSM 03.38 basic set and its extension, enough to count segments like Twilio.
_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ ÆæßÉ!\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXT = set("^{}\\[~]|€\f")

_DEFAULT_ERRORS = {
    400: (21211, "The 'To' number is not a valid phone number."),
    401: (20003, "Authenticate"),
    404: (20404, "The requested resource was not found"),
    429: (20429, "Too Many Requests"),
    500: (20500, "An internal server error has occurred"),
    503: (20503, "Service unavailable"),
}
_ERROR_MESSAGES = {
    21211: "The 'To' number is not a valid phone number.",
    21408: "Permission to send an SMS has not been enabled for the region indicated by the 'To' number.",
    21610: "Attempt to send to unsubscribed recipient",
    21612: "The 'To' phone number is not currently reachable via SMS.",
    21614: "'To' number is not a valid mobile number",
}
# How long a call the fake "answers" lasts, and how long its <Dial> to the lead was connected.
CALL_DURATION, DIAL_DURATION = 34, 30
_APIS = ("messages", "calls")


def num_segments(body: str) -> int:
    """How many SMS segments Twilio bills for this body (GSM-7: 160/153, else UCS-2: 70/67)."""
    if not body:
        return 1
    if all(c in _GSM7 or c in _GSM7_EXT for c in body):
        length = sum(2 if c in _GSM7_EXT else 1 for c in body)
        single, multi = 160, 153
    else:
        length = sum(2 if ord(c) > 0xFFFF else 1 for c in body)
        single, multi = 70, 67
    return 1 if length <= single else -(-length // multi)


def _rfc2822_now() -> str:
    return email.utils.format_datetime(datetime.now(timezone.utc).replace(microsecond=0))


def twilio_error(status: int, code: int | None = None, message: str | None = None) -> dict:
    """The legacy error body Twilio's 2010 API answers with (what the SDK turns into TwilioRestException)."""
    default_code, default_message = _DEFAULT_ERRORS.get(status, (status, f"HTTP {status}"))
    code = code or default_code
    return {
        "code": code,
        "message": message or _ERROR_MESSAGES.get(code) or default_message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


@dataclasses.dataclass
class Failure:
    """A scripted answer for the next Messages.create or Calls.create: an HTTP error, a dropped
    connection, or a delay."""

    status: int = 400  # 0 drops the connection without an answer
    code: int | None = None
    message: str | None = None
    delay: float = 0.0


class FakeTwilio:
    """Twilio's REST API on 127.0.0.1, answering in a background thread.

    callbacks: "off" (default) posts nothing; "auto" posts sent then delivered for every accepted
    message after ``callback_delay`` seconds; "manual" holds them until ``release_callbacks()``,
    so a test decides when they land (an in-memory SQLite test database is one connection shared
    by the live server's threads, so callbacks must not overlap the request that sent the text).
    """

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, auth_token: str | None = None,
        callbacks: str = "off", callback_delay: float = 0.0, callback_threads: int = 4,
        callback_statuses: tuple[str, ...] = ("sent", "delivered"),
    ):
        if callbacks not in {"off", "auto", "manual"}:
            raise ValueError(f"callbacks must be off, auto or manual, not {callbacks!r}")
        self.host, self.port = host, port
        self.auth_token = auth_token
        self.callbacks_mode = callbacks
        self.callback_delay = callback_delay
        self.callback_statuses = tuple(callback_statuses)
        self._callback_threads = callback_threads
        self._lock = threading.Condition()
        self._messages: list[dict] = []
        self._rejected: list[dict] = []
        self._calls: list[dict] = []
        self._rejected_calls: list[dict] = []
        self._callbacks: list[dict] = []
        self._by_sid: dict[str, dict] = {}
        self._by_to: dict[str, list[dict]] = collections.defaultdict(list)
        self._failures: dict[str, collections.deque[Failure]] = {api: collections.deque() for api in _APIS}
        self._outcomes: dict[str, tuple[tuple[str, ...], str]] = {}
        self._line_types: dict[str, str] = {}
        self._held: list[dict] = []
        self._pending_callbacks = 0
        self._jobs: queue.Queue = queue.Queue()
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    # --- lifecycle --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "FakeTwilio":
        fake = self

        class Handler(_Handler):
            pass

        Handler.fake = fake
        self._server = _Server((self.host, self.port), Handler)
        self.port = self._server.server_address[1]
        serve = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="fake-twilio", daemon=True)
        serve.start()
        self._threads = [serve]
        for i in range(self._callback_threads):
            worker = threading.Thread(target=self._callback_worker, name=f"fake-twilio-callbacks-{i}", daemon=True)
            worker.start()
            self._threads.append(worker)
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        for _ in range(self._callback_threads):
            self._jobs.put(None)
        for thread in self._threads:
            thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> "FakeTwilio":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- scripting --------------------------------------------------------------------------

    def fail_next(
        self, count: int = 1, *, status: int = 400, code: int | None = None, message: str | None = None,
        delay: float = 0.0, api: str = "messages",
    ) -> None:
        """The next ``count`` Messages.create (or, with ``api="calls"``, Calls.create) answer HTTP
        ``status`` with Twilio's error JSON (``status=0``: the connection is dropped without an answer)."""
        if api not in _APIS:
            raise ValueError(f"api must be messages or calls, not {api!r}")
        with self._lock:
            self._failures[api].extend(Failure(status, code, message, delay) for _ in range(count))

    def set_outcome(self, to: str, statuses: tuple[str, ...] | list[str], error_code: str = "") -> None:
        """Status callbacks for texts to ``to``, e.g. ("sent", "undelivered") with "30003"."""
        with self._lock:
            self._outcomes[to] = (tuple(statuses), error_code)

    def set_line_type(self, number: str, line_type: str) -> None:
        with self._lock:
            self._line_types[number] = line_type

    def reset(self) -> None:
        with self._lock:
            self._messages.clear()
            self._rejected.clear()
            self._calls.clear()
            self._rejected_calls.clear()
            self._callbacks.clear()
            self._by_sid.clear()
            self._by_to.clear()
            for failures in self._failures.values():
                failures.clear()
            self._outcomes.clear()
            self._line_types.clear()
            self._held.clear()
            self._lock.notify_all()

    def configure(self, *, callbacks: str | None = None, callback_delay: float | None = None) -> None:
        with self._lock:
            if callbacks is not None:
                if callbacks not in {"off", "auto", "manual"}:
                    raise ValueError(callbacks)
                self.callbacks_mode = callbacks
            if callback_delay is not None:
                self.callback_delay = float(callback_delay)

    def release_callbacks(self) -> int:
        """Post the callbacks held in manual mode (in the background); returns how many messages and calls."""
        with self._lock:
            held, self._held = self._held, []
            self._pending_callbacks += len(held)
        for job in held:
            self._jobs.put(job)
        return len(held)

    # --- reading ----------------------------------------------------------------------------

    def _copy(self, records: list[dict]) -> list[dict]:
        with self._lock:
            return [dict(r) for r in records]

    @property
    def messages(self) -> list[dict]:
        return self._copy(self._messages)

    @property
    def rejected(self) -> list[dict]:
        return self._copy(self._rejected)

    @property
    def calls(self) -> list[dict]:
        return self._copy(self._calls)

    @property
    def rejected_calls(self) -> list[dict]:
        return self._copy(self._rejected_calls)

    @property
    def callbacks(self) -> list[dict]:
        return self._copy(self._callbacks)

    def stats(self) -> dict:
        with self._lock:
            return {
                "messages": len(self._messages), "rejected": len(self._rejected), "callbacks": len(self._callbacks),
                "calls": len(self._calls), "rejected_calls": len(self._rejected_calls),
                "callbacks_pending": self._pending_callbacks + self._jobs.qsize(), "held": len(self._held),
                "callback_errors": sum(1 for c in self._callbacks if not c["http_status"] or c["http_status"] >= 500),
            }

    def wait_for(self, predicate, timeout: float = 5.0):
        """Block until ``predicate(fake)`` is truthy (re-checked on every change); returns its value or None."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                value = predicate(self)
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._lock.wait(remaining)

    def wait_message(self, to: str, timeout: float = 5.0, nth: int = 1) -> dict | None:
        """The ``nth`` message to ``to`` (the first by default), waiting up to ``timeout`` seconds for it."""
        found = self.wait_for(lambda f: len(f._by_to.get(to, ())) >= nth and f._by_to[to], timeout)
        return dict(found[nth - 1]) if found else None

    def wait_messages(self, count: int, timeout: float = 5.0) -> bool:
        return bool(self.wait_for(lambda f: len(f._messages) >= count, timeout))

    def wait_callbacks(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until ``count`` callbacks have been posted and answered (or failed)."""
        return bool(self.wait_for(lambda f: len(f._callbacks) >= count, timeout))

    # --- the API ----------------------------------------------------------------------------

    def _message_create(self, account_sid: str, password: str, raw: dict[str, list[str]]) -> tuple[int, dict]:
        now_ns, now_mono = time.time_ns(), time.monotonic()
        form = {k: v[-1] for k, v in raw.items()}
        to, from_ = form.get("To", ""), form.get("From", "")
        service, body = form.get("MessagingServiceSid", ""), form.get("Body", "")
        media = raw.get("MediaUrl", [])
        attempt = {"to": to, "from": from_ or None, "body": body, "received_ns": now_ns, "received_monotonic": now_mono}
        with self._lock:
            failure = self._failures["messages"].popleft() if self._failures["messages"] else None
        if failure is not None:
            return self._fail(failure, attempt, self._rejected)
        error = None
        if not to:
            error = twilio_error(400, 21604, "A 'To' phone number is required.")
        elif not (from_ or service):
            error = twilio_error(400, 21603, "A 'From' phone number is required.")
        elif not (body or media):
            error = twilio_error(400, 21602, "Message body is required.")
        elif not re.fullmatch(r"\+[1-9]\d{6,14}", to):
            error = twilio_error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if error:
            with self._lock:
                self._rejected.append({**attempt, "http_status": 400, "code": error["code"]})
                self._lock.notify_all()
            return 400, error
        sid = "SM" + uuid.uuid4().hex
        created = _rfc2822_now()
        uri = f"/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}.json"
        resource = {
            "account_sid": account_sid, "api_version": API_VERSION, "body": body,
            "date_created": created, "date_sent": None, "date_updated": created,
            "direction": "outbound-api", "error_code": None, "error_message": None,
            "from": from_ or None, "messaging_service_sid": service or None,
            "num_media": str(len(media)), "num_segments": str(num_segments(body)),
            "price": None, "price_unit": "USD", "sid": sid,
            "status": "queued" if from_ else "accepted",
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
            "to": to, "uri": uri,
        }
        record = {
            "sid": sid, "account_sid": account_sid, "to": to, "from": from_ or None,
            "messaging_service_sid": service or None, "body": body, "media_urls": media,
            "status_callback": form.get("StatusCallback", ""),
            "received_ns": now_ns, "received_monotonic": now_mono,
        }
        with self._lock:
            self._messages.append(record)
            self._by_sid[sid] = resource
            self._by_to[to].append(record)
            statuses, error_code = self._outcomes.get(to, (self.callback_statuses, ""))
            job = None
            if record["status_callback"] and self.callbacks_mode != "off":
                job = {
                    "kind": "message", "url": record["status_callback"], "token": self.auth_token or password, "statuses": statuses,
                    "error_code": error_code, "sid": sid, "account_sid": account_sid, "to": to,
                    "from": from_, "service": service, "delay": self.callback_delay,
                }
                if self.callbacks_mode == "manual":
                    self._held.append(job)
                    job = None
                else:
                    self._pending_callbacks += 1
            self._lock.notify_all()
        if job:
            self._jobs.put(job)
        return 201, resource

    def _fail(self, failure: Failure, attempt: dict, rejected: list[dict]) -> tuple[int, dict]:
        if failure.delay:
            time.sleep(failure.delay)
        with self._lock:
            rejected.append({**attempt, "http_status": failure.status, "code": failure.code})
            self._lock.notify_all()
        if failure.status == 0:
            return 0, {}
        return failure.status, twilio_error(failure.status, failure.code, failure.message)

    def _call_create(self, account_sid: str, password: str, raw: dict[str, list[str]]) -> tuple[int, dict]:
        now_ns, now_mono = time.time_ns(), time.monotonic()
        form = {k: v[-1] for k, v in raw.items()}
        to, from_, url = form.get("To", ""), form.get("From", ""), form.get("Url", "")
        attempt = {"to": to, "from": from_ or None, "url": url, "received_ns": now_ns, "received_monotonic": now_mono}
        with self._lock:
            failure = self._failures["calls"].popleft() if self._failures["calls"] else None
        if failure is not None:
            return self._fail(failure, attempt, self._rejected_calls)
        error = None
        if not to:
            error = twilio_error(400, 21201, "No 'To' number is specified")
        elif not from_:
            error = twilio_error(400, 21213, "No 'From' number is specified")
        elif not url:
            error = twilio_error(400, 21205, "Url parameter is required.")
        elif not re.fullmatch(r"\+[1-9]\d{6,14}", to):
            error = twilio_error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if error:
            with self._lock:
                self._rejected_calls.append({**attempt, "http_status": 400, "code": error["code"]})
                self._lock.notify_all()
            return 400, error
        sid = "CA" + uuid.uuid4().hex
        created = _rfc2822_now()
        uri = f"/{API_VERSION}/Accounts/{account_sid}/Calls/{sid}.json"
        resource = {
            "account_sid": account_sid, "annotation": None, "answered_by": None, "api_version": API_VERSION,
            "caller_name": None, "date_created": created, "date_updated": created, "direction": "outbound-api",
            "duration": None, "end_time": None, "forwarded_from": None, "from": from_, "from_formatted": from_,
            "group_sid": None, "parent_call_sid": None, "phone_number_sid": None, "price": None, "price_unit": "USD",
            "queue_time": "0", "sid": sid, "start_time": None, "status": "queued",
            "subresource_uris": {"recordings": uri.replace(".json", "/Recordings.json")},
            "to": to, "to_formatted": to, "trunk_sid": None, "uri": uri,
        }
        record = {
            "sid": sid, "account_sid": account_sid, "to": to, "from": from_, "url": url,
            "method": form.get("Method", "POST"), "timeout": form.get("Timeout", ""),
            "status_callback": form.get("StatusCallback", ""),
            # Twilio posts only "completed" unless the call asked for more.
            "status_callback_events": raw.get("StatusCallbackEvent") or ["completed"],
            "status": "queued", "twiml": None, "received_ns": now_ns, "received_monotonic": now_mono,
        }
        with self._lock:
            self._calls.append(record)
            job = None
            if self.callbacks_mode != "off":
                job = {
                    "kind": "call", "record": record, "token": self.auth_token or password,
                    "account_sid": account_sid, "delay": self.callback_delay,
                }
                if self.callbacks_mode == "manual":
                    self._held.append(job)
                    job = None
                else:
                    self._pending_callbacks += 1
            self._lock.notify_all()
        if job:
            self._jobs.put(job)
        return 201, resource

    def _message_fetch(self, sid: str) -> tuple[int, dict]:
        with self._lock:
            resource = self._by_sid.get(sid)
        if resource is None:
            return 404, twilio_error(404, 20404, f"The requested resource /Messages/{sid}.json was not found")
        return 200, resource

    def _lookup(self, number: str, fields: str) -> tuple[int, dict]:
        number = unquote(number)
        valid = bool(re.fullmatch(r"\+[1-9]\d{6,14}", number))
        payload = {
            "calling_country_code": "1" if number.startswith("+1") else None,
            "country_code": "US" if number.startswith("+1") else None,
            "phone_number": number, "national_format": number, "valid": valid,
            "validation_errors": [] if valid else ["NOT_A_NUMBER"],
            "caller_name": None, "sim_swap": None, "call_forwarding": None, "line_type_intelligence": None,
            "line_status": None, "identity_match": None, "reassigned_number": None, "sms_pumping_risk": None,
            "phone_number_quality_score": None, "pre_fill": None,
            "url": f"https://lookups.twilio.com/v2/PhoneNumbers/{number}",
        }
        if "line_type_intelligence" in fields.split(","):
            with self._lock:
                line_type = self._line_types.get(number, "mobile")
            payload["line_type_intelligence"] = {
                "carrier_name": "Fake Wireless", "error_code": None, "mobile_country_code": "310",
                "mobile_network_code": "456", "type": line_type,
            }
        return 200, payload

    # --- status callbacks -------------------------------------------------------------------

    def _callback_worker(self) -> None:
        session = requests.Session()
        while True:
            job = self._jobs.get()
            if job is None:
                session.close()  # the server side sees its kept-alive connections end now, not at exit
                return
            try:
                if job["delay"]:
                    time.sleep(job["delay"])
                if job["kind"] == "call":
                    self._answer_call(session, job)
                    continue
                for status in job["statuses"]:
                    self._post_callback(session, job, status)
            finally:
                with self._lock:
                    self._pending_callbacks -= 1
                    self._lock.notify_all()

    def _post_callback(self, session: requests.Session, job: dict, status: str) -> None:
        params = {
            "SmsSid": job["sid"], "SmsStatus": status, "MessageStatus": status, "To": job["to"],
            "MessageSid": job["sid"], "AccountSid": job["account_sid"], "From": job["from"], "ApiVersion": API_VERSION,
        }
        if job["service"]:
            params["MessagingServiceSid"] = job["service"]
        if status in {"failed", "undelivered"} and job["error_code"]:
            params["ErrorCode"] = job["error_code"]
        if status == "delivered":
            params["RawDlrDoneDate"] = datetime.now(timezone.utc).strftime("%y%m%d%H%M")
        self._signed_post(session, job["token"], job["url"], params, sid=job["sid"], to=job["to"], status=status, event="status")

    def _answer_call(self, session: requests.Session, job: dict) -> None:
        """Play a call whose callee answers at once: progress callbacks, the TwiML fetch, the
        <Dial action> if the TwiML dials, and the final "completed"."""
        record, token = job["record"], job["token"]
        callback, events = record["status_callback"], set(record["status_callback_events"])
        base = {
            "CallSid": record["sid"], "AccountSid": job["account_sid"], "From": record["from"], "To": record["to"],
            "Direction": "outbound-api", "ApiVersion": API_VERSION,
        }
        sequence = 0

        def advance(status: str, *, post: bool, **extra) -> None:
            nonlocal sequence
            with self._lock:
                record["status"] = status
                self._lock.notify_all()
            if not (callback and post):
                return
            params = {
                **base, "CallStatus": status, "CallbackSource": "call-progress-events",
                "SequenceNumber": str(sequence), "Timestamp": _rfc2822_now(), **extra,
            }
            sequence += 1
            self._signed_post(session, token, callback, params, sid=record["sid"], to=record["to"], status=status, event="status")

        for event, status in (("initiated", "initiated"), ("ringing", "ringing"), ("answered", "in-progress")):
            advance(status, post=event in events)
        twiml = self._signed_post(
            session, token, record["url"], {**base, "CallStatus": "in-progress"},
            sid=record["sid"], to=record["to"], status="in-progress", event="url",
        )
        with self._lock:
            record["twiml"] = twiml
        action = _dial_action(twiml or "")
        if action:
            self._signed_post(
                session, token, action,
                {**base, "CallStatus": "in-progress", "DialCallStatus": "completed", "DialCallSid": "CA" + uuid.uuid4().hex,
                 "DialCallDuration": str(DIAL_DURATION)},
                sid=record["sid"], to=record["to"], status="completed", event="action",
            )
        advance("completed", post=True, CallDuration=str(CALL_DURATION))  # whichever events the call asked for

    def _signed_post(
        self, session: requests.Session, token: str, url: str, params: dict, *, sid: str, to: str, status: str, event: str
    ) -> str | None:
        """POST a signed webhook, record it with the HTTP status it got, and return the answer's body."""
        signature = RequestValidator(token).compute_signature(url, params)
        headers = {"X-Twilio-Signature": signature, "User-Agent": "TwilioProxy/1.1", "Content-Type": "application/x-www-form-urlencoded"}
        sent_ns = time.time_ns()
        http_status, error, body = None, "", None
        for attempt in range(2):  # a kept-alive connection the server closed meanwhile: retry once, fresh
            try:
                response = session.post(url, data=urlencode(params), headers=headers, timeout=15)
                http_status, body = response.status_code, response.text
                error = ""
                break
            except requests.RequestException as exc:
                error = f"{type(exc).__name__}: {exc}"
        with self._lock:
            self._callbacks.append({
                "sid": sid, "to": to, "status": status, "event": event, "url": url,
                "http_status": http_status, "error": error, "sent_ns": sent_ns, "answered_ns": time.time_ns(),
            })
            self._lock.notify_all()
        return body


def _dial_action(twiml: str) -> str:
    """The action URL of the first <Dial> in a TwiML document ("" when it does not dial)."""
    try:
        root = ElementTree.fromstring(twiml)
    except ElementTree.ParseError:
        return ""
    dial = root.find("Dial")
    return dial.get("action", "") if dial is not None else ""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's pooled session expects
    server_version = "FakeTwilio/1.0"
    fake: FakeTwilio

    def setup(self):
        super().setup()
        # Headers and body go out in separate writes; without NODELAY the client's delayed ACK
        # would add ~40 ms to every answer and swamp what the benchmarks measure.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        pass

    # --- plumbing ---------------------------------------------------------------------------

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send_json(self, status: int, payload) -> None:
        if status == 0:
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass
            return
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        if status == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="Twilio API"')
        self.end_headers()
        self.wfile.write(data)

    def _auth(self, account_sid: str | None) -> str | None:
        """The password of valid basic auth for ``account_sid``, or None."""
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        if not re.fullmatch(r"AC[0-9a-fA-F]{32}", user) or (account_sid and user != account_sid):
            return None
        if self.fake.auth_token is not None and password != self.fake.auth_token:
            return None
        return password

    # --- routes -----------------------------------------------------------------------------

    def do_GET(self):  # noqa: N802 - the stdlib's name
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if parts.path.startswith("/_fake/"):
            return self._control("GET", parts.path, query, b"")
        if match := _MESSAGE.match(parts.path):
            if self._auth(match["account"]) is None:
                return self._send_json(401, twilio_error(401))
            return self._send_json(*self.fake._message_fetch(match["sid"]))
        if match := _LOOKUP.match(parts.path):
            if self._auth(None) is None:
                return self._send_json(401, twilio_error(401))
            return self._send_json(*self.fake._lookup(match["number"], query.get("Fields", "")))
        return self._send_json(404, twilio_error(404, 20404, f"The requested resource {parts.path} was not found"))

    def do_POST(self):  # noqa: N802 - the stdlib's name
        parts = urlsplit(self.path)
        body = self._body()
        if parts.path.startswith("/_fake/"):
            return self._control("POST", parts.path, {}, body)
        if match := _MESSAGES.match(parts.path):
            password = self._auth(match["account"])
            if password is None:
                return self._send_json(401, twilio_error(401))
            raw = parse_qs(body.decode(), keep_blank_values=True)
            return self._send_json(*self.fake._message_create(match["account"], password, raw))
        if match := _CALLS.match(parts.path):
            password = self._auth(match["account"])
            if password is None:
                return self._send_json(401, twilio_error(401))
            raw = parse_qs(body.decode(), keep_blank_values=True)
            return self._send_json(*self.fake._call_create(match["account"], password, raw))
        return self._send_json(404, twilio_error(404, 20404, f"The requested resource {parts.path} was not found"))

    def _control(self, method: str, path: str, query: dict, body: bytes) -> None:
        fake = self.fake
        data = json.loads(body or b"{}")
        if (method, path) == ("GET", "/_fake/health"):
            return self._send_json(200, {"ok": True, "url": fake.url})
        if (method, path) == ("GET", "/_fake/stats"):
            return self._send_json(200, fake.stats())
        if (method, path) == ("GET", "/_fake/messages"):
            return self._send_json(200, {"messages": fake.messages, "rejected": fake.rejected})
        if (method, path) == ("GET", "/_fake/calls"):
            return self._send_json(200, {"calls": fake.calls, "rejected": fake.rejected_calls})
        if (method, path) == ("GET", "/_fake/callbacks"):
            return self._send_json(200, {"callbacks": fake.callbacks})
        if (method, path) == ("GET", "/_fake/wait"):
            message = fake.wait_message(
                query.get("to", ""), timeout=min(float(query.get("timeout", 5)), 60), nth=max(1, int(query.get("nth", 1))),
            )
            return self._send_json(200 if message else 404, {"message": message})
        if (method, path) == ("POST", "/_fake/reset"):
            fake.reset()
            return self._send_json(200, {"ok": True})
        if (method, path) == ("POST", "/_fake/fail"):
            try:
                fake.fail_next(
                    int(data.get("count", 1)), status=int(data.get("status", 400)), code=data.get("code"),
                    message=data.get("message"), delay=float(data.get("delay", 0)), api=data.get("api", "messages"),
                )
            except ValueError as exc:
                return self._send_json(400, {"error": str(exc)})
            return self._send_json(200, {"ok": True})
        if (method, path) == ("POST", "/_fake/config"):
            try:
                fake.configure(callbacks=data.get("callbacks"), callback_delay=data.get("callback_delay"))
            except ValueError as exc:
                return self._send_json(400, {"error": str(exc)})
            return self._send_json(200, {"ok": True})
        if (method, path) == ("POST", "/_fake/release"):
            return self._send_json(200, {"released": fake.release_callbacks()})
        return self._send_json(404, {"error": f"no control route {method} {path}"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A loopback fake of Twilio's REST API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--auth-token", default=None, help="reject other tokens (default: accept any)")
    parser.add_argument("--callbacks", choices=["off", "auto", "manual"], default="off")
    parser.add_argument("--callback-delay", type=float, default=0.0)
    parser.add_argument("--callback-threads", type=int, default=4)
    args = parser.parse_args(argv)
    if args.host not in {"127.0.0.1", "localhost", "::1"}:
        parser.error("the fake only listens on loopback")
    fake = FakeTwilio(
        host=args.host, port=args.port, auth_token=args.auth_token, callbacks=args.callbacks,
        callback_delay=args.callback_delay, callback_threads=args.callback_threads,
    ).start()
    print(f"fake twilio listening on {fake.url}", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    while not stopped.wait(0.5):
        pass
    fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
