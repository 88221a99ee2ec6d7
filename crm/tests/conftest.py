"""A loopback CRM: a real HTTP server on 127.0.0.1 that records every request and answers as the
test scripts it, standing in for Follow Up Boss and for a brokerage's webhook receiver."""

import dataclasses
import datetime as dt
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import transaction
from django.utils import timezone

from crm.models import CrmEndpoint
from leads.signals import lead_milestone
from routing.models import Brokerage


@dataclasses.dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: dt.datetime  # the (possibly travelled) clock's time when it arrived

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclasses.dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    body: str = '{"id": 1}'


class FakeCrm:
    """Answers scripted replies in order, then `respond(request)` (200 unless a test says otherwise)."""

    def __init__(self):
        self.received: list[Received] = []
        self.script: list[Answer] = []
        self.respond: Callable[[Received], Answer] = lambda request: Answer()
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request = Received("POST", self.path, dict(self.headers.items()), body, timezone.now())
                with fake._lock:
                    fake.received.append(request)
                    answer = fake.script.pop(0) if fake.script else fake.respond(request)
                payload = answer.body.encode()
                self.send_response(answer.status)
                for name, value in {"Content-Type": "application/json", **answer.headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, *answers: Answer) -> None:
        self.script.extend(answers)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_crm():
    crm = FakeCrm()
    yield crm
    crm.close()


@pytest.fixture
def follow_up_boss(brokerage, fake_crm) -> CrmEndpoint:
    return CrmEndpoint.objects.create(
        brokerage=Brokerage.objects.get(), name="Follow Up Boss", kind=CrmEndpoint.Kind.FOLLOW_UP_BOSS,
        url=f"{fake_crm.url}/v1/events", api_key="fub-api-key", system_name="Textback", system_key="fub-system-key",
    )


@pytest.fixture
def webhook(brokerage, fake_crm) -> CrmEndpoint:
    return CrmEndpoint.objects.create(
        brokerage=Brokerage.objects.get(), name="Zapier", kind=CrmEndpoint.Kind.WEBHOOK,
        url=f"{fake_crm.url}/hooks/textback", secret="whsec-test-secret",
    )


def milestone_send(lead, milestone: str) -> None:
    """What the qualification script and the appointment booking do: announce it in their transaction."""
    with transaction.atomic():
        lead_milestone.send(sender=type(lead), lead=lead, milestone=milestone, at=timezone.now())
