"""The qualification script over SMS, end to end through the services, the outbox and the gate:
which questions a caller is asked and when, what their answers put on the lead, when the
script stops, and what the agent is told."""

import datetime as dt

import pytest
import time_machine
from django.utils import timezone
from hypothesis import HealthCheck, given, settings, strategies as st

from compliance.models import ConsentEvent
from compliance.services import consent_record
from conftest import CALLER, DOWNTOWN_BUYER_LINE, new_sid
from inbox.services import agent_reply_send
from inbox.tests.conftest import agent
from leads.models import Lead, LeadEvent, Message, Playbook, Qualification
from leads.services import call_answered_record, inbound_sms_record, message_send, missed_call_record
from leads.signals import lead_milestone
from routing.models import Agent
from routing.selectors import line_by_number

pytestmark = pytest.mark.django_db
OTHER_CALLER = "+15125550188"


def missed_call(caller: str = CALLER) -> Lead:
    missed_call_record(line=line_by_number(number=DOWNTOWN_BUYER_LINE), call_sid=new_sid("CA"), from_number=caller, reason="no_answer")
    send_queued()
    return Lead.objects.get(phone=caller)


def text(body: str, caller: str = CALLER) -> Message:
    message = inbound_sms_record(
        line=line_by_number(number=DOWNTOWN_BUYER_LINE), message_sid=new_sid("SM"), from_number=caller, body=body, media_urls=[]
    )
    send_queued()
    return message


def send_queued() -> None:
    for pk in Message.objects.filter(status=Message.Status.QUEUED).order_by("pk").values_list("pk", flat=True):
        message_send(message_id=pk)


def questions_sent(sms_outbox) -> list[str]:
    bodies = {m.body for m in Message.objects.filter(kind=Message.Kind.QUALIFICATION)}
    return [m["body"] for m in sms_outbox if m["body"] in bodies]


@pytest.fixture
def milestones():
    seen = []

    def receive(sender, lead, milestone, at, **kwargs):
        seen.append((lead.phone, milestone))

    lead_milestone.connect(receive)
    yield seen
    lead_milestone.disconnect(receive)


def test_it_asks_one_question_at_a_time_and_fills_the_lead(brokerage, sms_outbox, milestones):
    missed_call()
    text("Hi, yes I called about the house")
    assert questions_sent(sms_outbox) == ["Quick question so we can help: are you looking to buy, sell, or both?"]
    for reply in ["Buying", "asap", "between 300 and 450k", "78704", "yes we're pre-approved"]:
        text(reply)
    assert questions_sent(sms_outbox) == [
        "Quick question so we can help: are you looking to buy, sell, or both?",
        "When are you hoping to move? (e.g. ASAP, 3 months, next spring)",
        "What price range are you looking at?",
        "Which area or ZIP code are you looking in?",
        "Are you pre-approved for a mortgage, or paying cash?",
        "Thanks, that helps! Ann will text you shortly.",
    ]
    lead = Lead.objects.get(phone=CALLER)
    assert (lead.lead_type, lead.timeline_months, lead.price, lead.zip_code, lead.financing, lead.rating) == (
        "buyer", 0, 450_000, "78704", "pre_approved", "hot",
    )
    qualification = Qualification.objects.get(lead=lead)
    assert qualification.state == Qualification.State.DONE and qualification.replies["budget"] == "between 300 and 450k"
    card = LeadEvent.objects.get(lead=lead, kind=LeadEvent.Kind.QUALIFIED)
    assert card.text == "Hot · Buying · Now · $300k–$450k · 78704 · Pre-approved"
    assert card.detail["answers"][0] == ["Looking to", "Buying"]
    assert milestones.count((CALLER, "qualified")) == 1
    # Every question went through the gate and out: nothing waits in the outbox.
    assert not Message.objects.filter(status=Message.Status.QUEUED).exists()


def test_an_unclear_answer_gets_one_clarifying_question_then_the_script_moves_on(brokerage, sms_outbox):
    Playbook.objects.create(office=line_by_number(number=DOWNTOWN_BUYER_LINE).office, questions=["timeline", "budget"])
    missed_call()
    text("hello")
    text("hmm good question")
    text("depends on my wife honestly")
    text("around 400k")
    assert questions_sent(sms_outbox) == [
        "When are you hoping to move? (e.g. ASAP, 3 months, next spring)",
        "Roughly how many months until you'd like to move? A guess is fine.",
        "What price range are you looking at?",
        "Thanks, that helps! Ann will text you shortly.",
    ]
    qualification = Qualification.objects.get(lead__phone=CALLER)
    assert qualification.unclear == ["timeline"] and qualification.answers == {"budget": {"low": 400_000, "high": 400_000}}
    assert Lead.objects.get(phone=CALLER).rating == "nurture"  # no timeline: nothing says soon
    assert LeadEvent.objects.get(kind=LeadEvent.Kind.QUALIFIED).detail["unclear"] == ["Timeline"]


def test_answers_given_before_they_are_asked_are_not_asked_again(brokerage, sms_outbox):
    missed_call()
    text("Looking to buy, budget around 450k")
    assert questions_sent(sms_outbox) == ["When are you hoping to move? (e.g. ASAP, 3 months, next spring)"]
    assert Lead.objects.get(phone=CALLER).price == 450_000


def test_a_seller_is_asked_about_their_home_and_not_about_a_mortgage(brokerage, sms_outbox):
    missed_call()
    text("Hi")
    text("I want to sell my house")
    text("next month")
    text("hoping for 600k")
    text("12 Oak Street, Austin 78704")
    assert questions_sent(sms_outbox)[1:] == [
        "When are you hoping to move? (e.g. ASAP, 3 months, next spring)",
        "Roughly what do you hope to sell for?",
        "What's the address of the home you're selling?",
        "Thanks, that helps! Ann will text you shortly.",
    ]
    lead = Lead.objects.get(phone=CALLER)
    assert (lead.lead_type, lead.address, lead.zip_code, lead.rating) == ("seller", "12 Oak Street", "78704", "hot")


def test_an_agent_reply_stops_the_questions_at_once(brokerage, sms_outbox):
    missed_call()
    text("Hi there")
    text("buying")  # the timeline question is queued...
    lead = Lead.objects.get(phone=CALLER)
    inbound_sms_record(
        line=line_by_number(number=DOWNTOWN_BUYER_LINE), message_sid=new_sid("SM"), from_number=CALLER, body="in 2 months", media_urls=[],
    )  # ...and the budget question waits in the outbox when the agent answers
    agent_reply_send(agent=agent("ann@example.com"), lead=lead, body="Hi! Ann here, when can you see it?")
    send_queued()
    text("tomorrow works")
    assert questions_sent(sms_outbox)[-1] == "When are you hoping to move? (e.g. ASAP, 3 months, next spring)"
    held = Message.objects.filter(kind=Message.Kind.QUALIFICATION).last()
    assert held.status == Message.Status.CANCELED and "an agent replied" in held.error_message
    qualification = Qualification.objects.get(lead=lead)
    assert (qualification.state, qualification.stop_reason) == ("stopped", "An agent replied.")
    # What was learnt stays on the lead and in the card.
    assert LeadEvent.objects.get(kind=LeadEvent.Kind.QUALIFIED).detail["answers"] == [["Looking to", "Buying"], ["Timeline", "In about 2 months"]]


def test_asking_for_a_person_stops_the_script_and_alerts_the_agent(brokerage, sms_outbox, django_capture_on_commit_callbacks, live_events):
    missed_call()
    text("hi")
    listener = live_events.join(f"agent.{agent('ann@example.com').pk}")
    with django_capture_on_commit_callbacks(execute=True):
        inbound_sms_record(
            line=line_by_number(number=DOWNTOWN_BUYER_LINE), message_sid=new_sid("SM"), from_number=CALLER,
            body="Can someone just call me please", media_urls=[],
        )
    send_queued()
    assert len(questions_sent(sms_outbox)) == 1
    assert Qualification.objects.get(lead__phone=CALLER).stop_reason == "The caller asked for a person."
    titles = [e.get("alert", {}).get("title") for e in listener.drain()]
    assert f"{CALLER} asks to talk to a person" in titles


def test_it_does_not_start_once_a_human_has_answered(brokerage, sms_outbox):
    missed_call()
    lead = Lead.objects.get(phone=CALLER)
    agent_reply_send(agent=agent("ann@example.com"), lead=lead, body="Hi, Ann here!")
    text("Hi Ann, I want to buy")
    assert questions_sent(sms_outbox) == [] and not Qualification.objects.exists()


def test_it_does_not_start_after_the_caller_spoke_with_an_agent(brokerage, sms_outbox):
    missed_call()
    call_answered_record(
        line=line_by_number(number=DOWNTOWN_BUYER_LINE), call_sid=new_sid("CA"), from_number=CALLER,
        dial_status="completed", dial_call_sid=new_sid("CA"), dial_duration=60,
    )
    text("thanks for the call!")
    assert questions_sent(sms_outbox) == []


def test_it_does_not_start_when_the_office_turned_it_off_or_without_a_text_back(brokerage, sms_outbox):
    office = line_by_number(number=DOWNTOWN_BUYER_LINE).office
    Playbook.objects.create(office=office, qualification_enabled=False)
    missed_call()
    text("hello")
    text("Hi, I saw your listing", caller=OTHER_CALLER)  # texted first: no missed call, no text-back
    assert questions_sent(sms_outbox) == [] and not Qualification.objects.exists()


def test_a_spanish_reply_switches_the_questions_to_spanish(brokerage, sms_outbox):
    missed_call()
    text("Hola, quiero comprar una casa")
    assert questions_sent(sms_outbox) == ["¿Para cuando piensa mudarse? (por ejemplo: ya, en 3 meses, la primavera)"]
    text("en dos meses")
    assert questions_sent(sms_outbox)[-1] == "¿En que rango de precio esta buscando?"
    lead = Lead.objects.get(phone=CALLER)
    assert (lead.language, lead.timeline_months) == ("es", 2)


def test_an_opt_out_stops_the_script_and_what_waits_for_the_gate(brokerage, sms_outbox):
    missed_call()
    text("hi")
    inbound_sms_record(
        line=line_by_number(number=DOWNTOWN_BUYER_LINE), message_sid=new_sid("SM"), from_number=CALLER, body="buy", media_urls=[],
    )
    waiting = Message.objects.filter(kind=Message.Kind.QUALIFICATION, status=Message.Status.QUEUED).get()
    text("STOP")
    waiting.refresh_from_db()
    assert waiting.status == Message.Status.CANCELED
    assert Qualification.objects.get(lead__phone=CALLER).state == Qualification.State.STOPPED
    text("ok whatever, 3 months")  # after a stop, nothing more is asked
    assert len(questions_sent(sms_outbox)) == 1


def test_the_gate_is_asked_again_when_each_question_is_sent(brokerage, sms_outbox):
    missed_call()
    inbound_sms_record(
        line=line_by_number(number=DOWNTOWN_BUYER_LINE), message_sid=new_sid("SM"), from_number=CALLER, body="hi", media_urls=[],
    )
    line = line_by_number(number=DOWNTOWN_BUYER_LINE)
    consent_record(phone=CALLER, sender=line.sender, kind=ConsentEvent.Kind.OPT_OUT, source=ConsentEvent.Source.AGENT, note="asked on the phone")
    send_queued()
    question = Message.objects.get(kind=Message.Kind.QUALIFICATION)
    assert question.status == Message.Status.CANCELED and questions_sent(sms_outbox) == []


def test_a_replayed_webhook_asks_nothing_twice(brokerage, sms_outbox):
    missed_call()
    sid = new_sid("SM")
    for _ in range(2):
        inbound_sms_record(line=line_by_number(number=DOWNTOWN_BUYER_LINE), message_sid=sid, from_number=CALLER, body="buying", media_urls=[])
    send_queued()
    assert Message.objects.filter(kind=Message.Kind.QUALIFICATION).count() == 1


def test_a_caller_writing_spanish_is_handed_to_a_spanish_speaking_agent(brokerage, sms_outbox):
    lead = missed_call()
    english_only = lead.assigned_agent
    speaker = Agent.objects.filter(office=lead.office, role="agent").exclude(pk=english_only.pk).get()
    Agent.objects.filter(pk=speaker.pk).update(languages=["en", "es"])
    text("Hola, quiero comprar una casa")
    lead.refresh_from_db()
    assert lead.assigned_agent == speaker and lead.language == "es"
    event = lead.events.filter(kind=LeadEvent.Kind.ASSIGNED).latest("id")
    assert {"agent": english_only.name, "reason": "does not speak es"} in event.detail["skipped"]
    # The questions go on in Spanish, and the thanks names the new agent.
    for reply in ["en dos meses", "hasta 400 mil", "78704", "si, ya tengo la pre-aprobacion"]:
        text(reply)
    assert questions_sent(sms_outbox)[-1] == f"¡Gracias, eso nos ayuda! {speaker.name.split()[0]} le escribira en breve."
    assert Lead.objects.get(pk=lead.pk).rating == "hot"


def test_an_english_speaking_agent_keeps_a_spanish_lead_when_nobody_speaks_spanish(brokerage, sms_outbox):
    lead = missed_call()
    text("Hola, quiero comprar una casa")
    assert Lead.objects.get(pk=lead.pk).assigned_agent == lead.assigned_agent


def test_a_caller_known_to_write_spanish_gets_the_spanish_text_back(brokerage, sms_outbox):
    missed_call()
    text("Hola, quiero comprar una casa")
    # A week later the conversation is closed and they call again.
    Message.objects.filter(kind=Message.Kind.TEXTBACK).update(created_at=timezone.now() - dt.timedelta(days=7))
    Lead.objects.filter(phone=CALLER).update(status=Lead.Status.CLOSED)
    missed_call()
    assert Message.objects.filter(kind=Message.Kind.TEXTBACK).order_by("pk").last().body == (
        "Harbor & Oak Realty: no pudimos atender su llamada sobre 12 Oak St. Un agente le escribira aqui pronto. Responda STOP para salir."
    )


# Replies a caller might send at any point: answers, noise, a request for a person, Spanish.
REPLIES = [
    "buying", "selling", "both", "asap", "in 3 months", "next spring", "450k", "under 500", "78704", "12 Oak St",
    "pre-approved", "cash", "not yet", "hmm", "what?", "ok", "lol", "", "Can someone call me?", "quiero comprar",
    "hasta 400 mil", "ya tengo la pre-aprobacion", "idk",
]
_callers = (f"+1555557{n:04d}" for n in range(10_000))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(replies=st.lists(st.sampled_from(REPLIES), min_size=1, max_size=16), questions=st.permutations(
    ["intent", "timeline", "budget", "area", "pre_approved"]).map(lambda q: q[:3]))
def test_any_replies_end_the_script_without_a_loop(brokerage, sms_outbox, replies, questions):
    """Whatever the caller sends, each question is asked at most twice, nothing follows the end
    of the script, and the script ends once every question is answered or given up on."""
    caller = next(_callers)
    Playbook.objects.update_or_create(office=line_by_number(number=DOWNTOWN_BUYER_LINE).office, defaults={"questions": questions})
    missed_call(caller)
    text("hello", caller)
    for reply in replies:
        text(reply, caller)
    qualification = Qualification.objects.get(lead__phone=caller)
    asked = list(Message.objects.filter(lead__phone=caller, kind=Message.Kind.QUALIFICATION).order_by("pk").values_list("body", flat=True))
    assert all(asked.count(body) <= 1 for body in asked)  # a question and its clarification differ: no text twice
    assert len(asked) <= 2 * len(questions) + 1
    settled = set(qualification.answers) | set(qualification.unclear)
    if qualification.state == Qualification.State.DONE:
        assert asked[-1].startswith("Thanks") or asked[-1].startswith("¡Gracias")
        assert settled >= set(questions) - {"pre_approved"}
    elif qualification.state == Qualification.State.ASKING:
        assert len(replies) < 2 * len(questions)  # still asking only while replies ran short


def test_a_text_that_may_be_a_stop_ends_the_questions(brokerage, sms_outbox):
    missed_call()
    inbound_sms_record(line=line_by_number(number=DOWNTOWN_BUYER_LINE), message_sid=new_sid("SM"), from_number=CALLER, body="hi", media_urls=[])
    waiting = Message.objects.get(kind=Message.Kind.QUALIFICATION, status=Message.Status.QUEUED)
    text("can we stop by?")  # unclear: an agent must read it, and no machine asks anything more
    waiting.refresh_from_db()
    assert waiting.status == Message.Status.CANCELED
    text("buying")
    text("next month")
    assert questions_sent(sms_outbox) == []
    assert Qualification.objects.get(lead__phone=CALLER).stop_reason == "The caller's text may be asking us to stop."


def test_a_question_held_for_the_night_is_not_answered_by_the_callers_next_text(brokerage, sms_outbox):
    from routing.models import Office

    missed_call()
    Office.objects.update(quiet_hours_for_replies=True)
    night = dt.datetime(2026, 11, 25, 3, 30, tzinfo=dt.UTC)  # 10:30 pm in New York
    with time_machine.travel(night, tick=False):
        text("hi")  # the first question waits for the morning
        text("also, is there a garage?")
    qualification = Qualification.objects.get(lead__phone=CALLER)
    assert qualification.current == "intent" and not qualification.clarifying and qualification.answers == {}
    held = Message.objects.get(kind=Message.Kind.QUALIFICATION)
    assert held.status == Message.Status.QUEUED and held.next_attempt_at > night


def test_a_spanish_text_sets_the_language_without_the_questions(brokerage, sms_outbox):
    Playbook.objects.create(office=line_by_number(number=DOWNTOWN_BUYER_LINE).office, qualification_enabled=False)
    lead = missed_call()
    speaker = Agent.objects.filter(office=lead.office, role="agent").exclude(pk=lead.assigned_agent_id).get()
    Agent.objects.filter(pk=speaker.pk).update(languages=["en", "es"])
    text("Hola, estoy interesado en la casa")
    lead.refresh_from_db()
    assert (lead.language, lead.assigned_agent) == ("es", speaker)


def test_an_outcome_set_by_an_agent_stops_the_questions(brokerage, sms_outbox):
    from inbox.services import lead_outcome_set

    lead = missed_call()
    text("hi")
    lead_outcome_set(
        actor=agent("ann@example.com"), lead=lead, outcome=Lead.Outcome.APPOINTMENT,
        appointment_at=timezone.now() + dt.timedelta(days=1),
    )
    text("can we do 4pm instead?")
    assert len(questions_sent(sms_outbox)) == 1
    assert Qualification.objects.get(lead=lead).stop_reason == "An agent set the outcome."


def test_a_zip_code_answer_is_not_taken_for_a_price(brokerage, sms_outbox):
    Playbook.objects.create(office=line_by_number(number=DOWNTOWN_BUYER_LINE).office, questions=["area", "budget"])
    missed_call()
    text("hello")
    text("78704")
    assert questions_sent(sms_outbox)[-1] == "What price range are you looking at?"
    assert Lead.objects.get(phone=CALLER).price is None


def test_a_failing_reader_keeps_the_callers_text(brokerage, sms_outbox, monkeypatch):
    class Broken:
        def wants_a_person(self, text):
            raise RuntimeError("the model is down")

    missed_call()
    text("hi")
    monkeypatch.setattr("leads.services.qualifier", lambda: Broken())
    message = text("buying")
    assert Message.objects.filter(pk=message.pk, body="buying").exists()
    assert Qualification.objects.get(lead__phone=CALLER).current == "intent"  # the script waits


def test_a_caller_who_texts_before_the_text_back_left_is_not_questioned(brokerage, sms_outbox):
    missed_call_record(line=line_by_number(number=DOWNTOWN_BUYER_LINE), call_sid=new_sid("CA"), from_number=CALLER, reason="no_answer")
    text("Hi, I just called about Oak St")  # the text-back is still in the outbox
    assert not Qualification.objects.exists() and questions_sent(sms_outbox) == []
