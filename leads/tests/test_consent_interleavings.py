"""Whatever order texts, keywords, revocations, replies, sends and status callbacks arrive in,
nothing is texted to someone whose latest word to that line was "stop", and every opt-out is
confirmed at most once.

Hypothesis draws the interleavings; the services run for real on the test database, and the
only thing watched is Twilio's boundary (the locmem backend), checked at the moment of each send.
"""

import datetime as dt
import zoneinfo

import pytest
import time_machine
from django.db import transaction
from hypothesis import HealthCheck, given, settings, strategies as st

from compliance.models import ConsentEvent
from compliance.selectors import consent_deciding_event
from conftest import CALLER, DOWNTOWN_BUYER_LINE, new_sid
from inbox.services import ActionRefused, agent_reply_send, consent_record_by_agent, revocation_review
from leads.models import Lead, Message
from leads.services import inbound_sms_record, message_send, message_status_record, missed_call_record
from leads.sms import locmem
from routing.models import Agent, TrackingNumber

pytestmark = pytest.mark.django_db

SELLER_LINE = "+15555550110"
LINES = [DOWNTOWN_BUYER_LINE, SELLER_LINE]
BODIES = [
    "Is it still for sale?", "Can we stop by Saturday?", "STOP", "stop", "Unsubscribe", "please stop texting me",
    "deja de escribirme", "no more texts", "START", "HELP", "yes", "How much is it?",
]

lines = st.sampled_from(LINES)
actions = st.one_of(
    st.tuples(st.just("missed_call"), lines),
    st.tuples(st.just("text"), lines, st.sampled_from(BODIES)),
    st.tuples(st.just("agent_reply"), st.just(None)),
    st.tuples(st.just("agent_records"), st.sampled_from(["opt_in", "opt_out"])),
    st.tuples(st.just("review"), st.booleans()),
    st.tuples(st.just("worker"), st.integers(0, 20)),
    st.tuples(st.just("status"), st.integers(0, 20), st.sampled_from([("delivered", ""), ("undelivered", "30003"), ("failed", "21610")])),
    st.tuples(st.just("wait"), st.sampled_from([1, 4, 7, 45, 60 * 13])),
)


class Rollback(Exception):
    """Ends an example, undoing everything it wrote."""


def _checked_send(original, violations: list[str]):
    """The backend's send, noting any text handed over while the line's latest word is "stop"
    (noted, not raised: the outbox turns a backend's exception into a retry)."""

    def send(self, message):
        if not message.to_number:
            latest = consent_deciding_event(phone=message.recipient, senders=message.line.senders)
            opted_out = latest is not None and latest.kind == ConsentEvent.Kind.OPT_OUT
            # The one text allowed after an opt-out is the confirmation of that very opt-out.
            if opted_out and not (message.kind == Message.Kind.OPT_OUT_CONFIRMATION and message.consent_event_id == latest.pk):
                violations.append(f"{message.get_kind_display()} sent from {message.line.sender} after opt-out #{latest.pk}")
        return original(self, message)

    return send


def _run(action, traveller, agent) -> None:
    kind, *args = action
    now_lines = {line.number: line for line in TrackingNumber.objects.select_related("office__brokerage")}
    lead = Lead.objects.filter(phone=CALLER).first()
    if kind == "missed_call":
        missed_call_record(line=now_lines[args[0]], call_sid=new_sid("CA"), from_number=CALLER, reason="no_answer")
    elif kind == "text":
        inbound_sms_record(line=now_lines[args[0]], message_sid=new_sid("SM"), from_number=CALLER, body=args[1], media_urls=[])
    elif kind == "agent_reply" and lead is not None:
        try:
            agent_reply_send(agent=agent, lead=lead, body="Happy to help — when suits you?")
        except ActionRefused:
            pass  # the gate said no at once: nothing was queued
    elif kind == "agent_records" and lead is not None:
        try:
            consent_record_by_agent(actor=agent, lead=lead, action=args[0], note="Said so on the phone.")
        except ActionRefused:
            pass
    elif kind == "review" and lead is not None:
        pending = lead.messages.filter(revocation_check=Message.RevocationCheck.PENDING).first()
        if pending is not None:
            revocation_review(actor=agent, lead=lead, message_id=pending.pk, opted_out=args[0])
    elif kind == "worker":
        queued = list(Message.objects.filter(status=Message.Status.QUEUED).order_by("id").values_list("pk", flat=True))
        if queued:
            message_send(message_id=queued[args[0] % len(queued)])
    elif kind == "status":
        sent = list(Message.objects.exclude(provider_sid=None).filter(direction="out").order_by("id").values_list("provider_sid", flat=True))
        if sent:
            status, code = args[1]
            message_status_record(provider_sid=sent[args[0] % len(sent)], status=status, error_code=code)
    elif kind == "wait":
        traveller.shift(dt.timedelta(minutes=args[0]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(script=st.lists(actions, min_size=1, max_size=30))
def test_no_text_follows_an_opt_out_and_each_opt_out_is_confirmed_at_most_once(brokerage, sms_outbox, monkeypatch, script):
    violations = []
    monkeypatch.setattr(locmem.LocmemBackend, "send", _checked_send(locmem.LocmemBackend.send, violations))
    agent = Agent.objects.select_related("user", "office").get(user__email="tess@example.com")  # the team leader
    start = dt.datetime(2026, 3, 7, 19, 30, tzinfo=zoneinfo.ZoneInfo("America/New_York"))  # the night before DST
    try:
        with transaction.atomic(), time_machine.travel(start, tick=False) as traveller:
            sms_outbox.clear()
            for action in script:
                _run(action, traveller, agent)
            # Then every worker catches up, long after: still nothing reaches an opted-out line.
            traveller.shift(dt.timedelta(days=2))
            for pk in Message.objects.filter(status=Message.Status.QUEUED).values_list("pk", flat=True):
                message_send(message_id=pk)
            confirmations = [m for m in sms_outbox if Message.objects.get(pk=m["message_id"]).kind == Message.Kind.OPT_OUT_CONFIRMATION]
            confirmed_events = [Message.objects.get(pk=m["message_id"]).consent_event_id for m in confirmations]
            assert len(confirmed_events) == len(set(confirmed_events))
            assert violations == []
            raise Rollback
    except Rollback:
        pass
