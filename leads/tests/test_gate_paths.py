"""Every way an outbound text comes to exist goes through the compliance gate at send time.

The first tests read the source: one function writes outbound Message rows, the callers of it
are exactly the paths listed here, and only the sender hands texts to the backend, after asking
the gate. The last test walks each listed path for real and shows the gate stopping it when the
consent record changes between queueing and sending.
"""

import ast
import datetime as dt
from pathlib import Path

import pytest
import time_machine
from django.utils import timezone

from compliance.models import ConsentEvent
from compliance.services import consent_record
from conftest import CALLER, DOWNTOWN_BUYER_LINE, new_sid
from inbox.services import agent_reply_send, lead_outcome_set, lead_transfer, revocation_review
from inbox.tests.conftest import agent
from leads.models import Lead, Message, Playbook
from leads.selectors import PURPOSE_BY_KIND
from leads.services import inbound_sms_record, lead_deadline_pass, message_send, missed_call_record
from routing.models import Agent
from routing.selectors import line_by_number

ROOT = Path(__file__).resolve().parents[2]
APPS = ["leads", "inbox", "routing", "compliance", "textback_site"]

# Every function that queues an outbound text, and the scenario below that exercises it.
QUEUEING_PATHS = {
    ("leads/services.py", "_textback_queue"): "textback",
    ("leads/services.py", "_agent_alert_queue"): "new-lead alert, escalation alert, transfer alert",
    ("leads/services.py", "opt_out_record"): "opt-out confirmation (in words, or confirmed by an agent)",
    ("leads/services.py", "inbound_sms_record"): "opt-in confirmation, help reply",
    ("inbox/services.py", "agent_reply_send"): "agent reply",
    ("leads/services.py", "_qualification_ask"): "qualification question",
    ("leads/services.py", "_qualification_finish"): "qualification thanks",
    ("leads/appointments.py", "appointment_booked"): "appointment confirmation",
}


def _sources():
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            if "/tests/" in rel or "/migrations/" in rel:
                continue
            yield rel, ast.parse(path.read_text())


def _calls(tree: ast.AST):
    """(enclosing function, call node) for every call in the module."""
    for func in ast.walk(tree):
        if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(func):
                if isinstance(node, ast.Call):
                    yield func.name, node


def _name(call: ast.Call) -> str:
    return ast.unparse(call.func)


def test_outbound_message_rows_are_written_in_one_place():
    writers = {
        (rel, fn) for rel, tree in _sources() for fn, call in _calls(tree)
        if _name(call) in ("Message.objects.create", "Message", "Message.objects.bulk_create", "Message.objects.get_or_create")
    }
    # message_queue writes outbound texts; inbound_sms_record stores what the caller sent (direction "in").
    assert writers == {("leads/services.py", "message_queue"), ("leads/services.py", "inbound_sms_record")}


def test_the_paths_that_queue_texts_are_the_ones_listed():
    callers = {
        (rel, fn) for rel, tree in _sources() for fn, call in _calls(tree)
        if _name(call).split(".")[-1] == "message_queue" and fn != "message_queue"
    }
    assert callers == set(QUEUEING_PATHS)


def test_only_the_sender_hands_texts_to_the_backend_and_only_after_asking_the_gate():
    senders = [
        (rel, fn, call.lineno) for rel, tree in _sources() for fn, call in _calls(tree)
        if _name(call) == "get_sms_backend().send"
    ]
    assert [(rel, fn) for rel, fn, _ in senders] == [("leads/services.py", "message_send")]
    tree = dict(_sources())["leads/services.py"]
    gate_lines = [call.lineno for fn, call in _calls(tree) if fn == "message_send" and _name(call) == "text_gate"]
    assert gate_lines and max(gate_lines) < senders[0][2]


def test_every_outbound_kind_has_a_purpose_the_gate_knows():
    outbound = {kind for kind in Message.Kind.values if kind != Message.Kind.INBOUND}
    assert set(PURPOSE_BY_KIND) == outbound


# --- each path, for real ----------------------------------------------------------------------------


def _line():
    return line_by_number(number=DOWNTOWN_BUYER_LINE)


def _text(body: str) -> None:
    inbound_sms_record(line=_line(), message_sid=new_sid("SM"), from_number=CALLER, body=body, media_urls=[])


def _missed_call() -> Lead:
    missed_call_record(line=_line(), call_sid=new_sid("CA"), from_number=CALLER, reason="no_answer")
    return Lead.objects.get(phone=CALLER)


def _stop_caller() -> None:
    consent_record(phone=CALLER, sender="", kind=ConsentEvent.Kind.OPT_OUT, source=ConsentEvent.Source.AGENT, note="test")


def _stop_agents() -> None:
    for phone in Agent.objects.values_list("phone", flat=True):
        consent_record(phone=phone, sender="", kind=ConsentEvent.Kind.OPT_OUT, source=ConsentEvent.Source.KEYWORD)


def _restart_caller() -> None:
    consent_record(phone=CALLER, sender=DOWNTOWN_BUYER_LINE, kind=ConsentEvent.Kind.OPT_IN, source=ConsentEvent.Source.KEYWORD)


def _escalation_alert() -> None:
    Agent.objects.update(sms_alerts=True)
    lead = _missed_call()
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=11)):
        lead_deadline_pass(lead_id=lead.pk)


def _transfer_alert() -> None:
    lead = _missed_call()
    Agent.objects.update(sms_alerts=True)
    target = Agent.objects.filter(office=lead.office, role="agent").exclude(pk=lead.assigned_agent_id).first()
    lead_transfer(actor=agent("tess@example.com"), lead=lead, to_agent=target, reason="Speaks Spanish")


def _confirmed_revocation() -> None:
    lead = _missed_call()
    _text("can we stop by?")
    pending = lead.messages.get(revocation_check=Message.RevocationCheck.PENDING)
    revocation_review(actor=agent("tess@example.com"), lead=lead, message_id=pending.pk, opted_out=True)


def _appointment_booked() -> None:
    lead = _missed_call()
    lead_outcome_set(
        actor=agent("tess@example.com"), lead=lead, outcome=Lead.Outcome.APPOINTMENT,
        appointment_at=timezone.now() + dt.timedelta(days=2),
    )


def _texted_back() -> Lead:
    """A missed call whose text-back has left: a reply to it starts the questions."""
    lead = _missed_call()
    message_send(message_id=lead.messages.get(kind=Message.Kind.TEXTBACK).pk)
    return lead


def _qualification_thanks() -> None:
    _texted_back()
    office = _line().office
    Playbook.objects.update_or_create(office=office, defaults={"questions": ["intent"]})
    _text("hello")
    _text("buying")


SCENARIOS = {
    # name: (make it queue, the kind it queues, a consent change after which the gate must say no)
    "textback": (_missed_call, Message.Kind.TEXTBACK, _stop_caller),
    "new-lead alert": (lambda: (Agent.objects.update(sms_alerts=True), _missed_call()), Message.Kind.AGENT_ALERT, _stop_agents),
    "escalation alert": (_escalation_alert, Message.Kind.AGENT_ALERT, _stop_agents),
    "transfer alert": (_transfer_alert, Message.Kind.AGENT_ALERT, _stop_agents),
    "agent reply": (lambda: agent_reply_send(agent=agent("tess@example.com"), lead=_missed_call(), body="Hi!"), Message.Kind.REPLY, _stop_caller),
    "opt-out confirmation (in words)": (lambda: (_missed_call(), _text("please stop texting me")), Message.Kind.OPT_OUT_CONFIRMATION, _restart_caller),
    "opt-out confirmation (confirmed by an agent)": (_confirmed_revocation, Message.Kind.OPT_OUT_CONFIRMATION, _restart_caller),
    "opt-in confirmation": (lambda: (_missed_call(), _text("STOP"), _text("START")), Message.Kind.OPT_IN_CONFIRMATION, _stop_caller),
    "help reply": (lambda: (_missed_call(), _text("HELP")), Message.Kind.HELP_REPLY, _stop_caller),
    "qualification question": (lambda: (_texted_back(), _text("hello")), Message.Kind.QUALIFICATION, _stop_caller),
    "qualification thanks": (_qualification_thanks, Message.Kind.QUALIFICATION, _stop_caller),
    "appointment confirmation": (_appointment_booked, Message.Kind.APPOINTMENT_CONFIRMATION, _stop_caller),
}


def test_every_listed_path_has_a_scenario():
    named = {name for names in QUEUEING_PATHS.values() for name in names.replace(" (in words, or confirmed by an agent)", "").split(", ")}
    assert {name.split(" (")[0] for name in SCENARIOS} >= named


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_the_gate_stops_each_path_at_send_time(brokerage, sms_outbox, name):
    make, kind, withdraw = SCENARIOS[name]
    make()
    queued = Message.objects.filter(kind=kind, status=Message.Status.QUEUED).order_by("-id").first()
    assert queued is not None, f"{name} queued no {kind}"
    withdraw()  # consent changes after the text was queued and before a worker sends it
    with time_machine.travel(max(queued.next_attempt_at, timezone.now()), tick=False):  # the escalation queued 11 min on
        message_send(message_id=queued.pk)
    queued.refresh_from_db()
    assert queued.status == Message.Status.CANCELED and queued.error_message
    assert queued.pk not in [m["message_id"] for m in sms_outbox]
