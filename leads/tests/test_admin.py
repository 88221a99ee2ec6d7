"""The control room as a broker uses it: every page opens, records stay records, templates are checked."""

from types import SimpleNamespace

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from compliance.models import ConsentEvent, NumberProfile
from compliance.services import consent_record, do_not_call_import
from conftest import CALLER, DOWNTOWN_BUYER_LINE, LAKESIDE_LINE, new_sid
from leads.models import (
    Call, FollowUp, Lead, LeadEvent, LeadRead, Message, MessageStatusEvent, MissedCallOutcome, OutcomeRefreshDue, Playbook, Qualification, TextbackTemplate,
    TwilioWebhook,
)
from leads.services import missed_call_outcomes_catch_up, missed_call_outcomes_mark_due, missed_call_outcomes_refresh
from routing.models import Agent, Office, PoolMember, RoundRobinTurn, RoutingRule, TrackingNumber

pytestmark = pytest.mark.django_db

# Read markers are the inbox's bookkeeping for unread counts, nobody's record to look at.
OUR_MODELS = [
    model for label in ("routing", "leads", "compliance") for model in apps.get_app_config(label).get_models()
    if model is not LeadRead
]


def url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def lead_with_history(*, phone: str, line_number: str, agent_email: str) -> SimpleNamespace:
    """A missed call, its text-back, the caller's reply and what the carrier said, as the product records them."""
    line = TrackingNumber.objects.select_related("office").get(number=line_number)
    agent = Agent.objects.get(user__email=agent_email)
    lead = Lead.objects.create(
        phone=phone, name="Casey Caller", office=line.office, line=line, assigned_agent=agent,
        lead_type=line.lead_type, source=line.source, status=Lead.Status.ENGAGED,
    )
    call = Call.objects.create(
        call_sid=new_sid("CA"), line=line, lead=lead, from_number=phone, dial_status="no-answer",
        dial_call_sid=new_sid("CA"), missed=True, missed_reason=Call.MissedReason.NO_ANSWER,
        recording_url=f"https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/{new_sid('RE')}", recording_duration=14,
    )
    call.rang_agents.add(agent)
    consent, _ = consent_record(
        phone=phone, sender=line.number, kind=ConsentEvent.Kind.IMPLIED_CALL, source=ConsentEvent.Source.CALL,
        source_ref=call.call_sid,
    )
    do_not_call_import(csv_text=f"{phone[2:]}\n", batch="national-dnc.csv")
    textback = Message.objects.create(
        lead=lead, line=line, direction=Message.Direction.OUTBOUND, kind=Message.Kind.TEXTBACK,
        sender=Message.Sender.SYSTEM, call=call, body="Harbor & Oak Realty: sorry we missed your call! Reply STOP to opt out.",
        status=Message.Status.DELIVERED, provider_sid=new_sid("SM"), attempts=1,
    )
    reply = Message.objects.create(
        lead=lead, line=line, direction=Message.Direction.INBOUND, kind=Message.Kind.INBOUND,
        sender=Message.Sender.LEAD, body="Is it still available?", status=Message.Status.RECEIVED, provider_sid=new_sid("SM"),
    )
    status_event = MessageStatusEvent.objects.create(provider_sid=textback.provider_sid, status="delivered", message=textback)
    TwilioWebhook.objects.create(
        kind=TwilioWebhook.Kind.DIAL_STATUS, dedupe_key=f"dial:{call.call_sid}", call_sid=call.call_sid, line=call.line,
        params={"call_sid": call.call_sid, "dial_status": "no-answer"}, processed_at=call.created_at,
    )
    profile = NumberProfile.objects.create(phone=phone, line_type=NumberProfile.LineType.MOBILE, source="lookup")
    LeadEvent.objects.create(lead=lead, kind=LeadEvent.Kind.NOTE, actor=agent, text="Prefers texts after 5pm.")
    rule = RoutingRule.objects.create(office=line.office, name="Zillow buyers", sources=["Zillow"])
    PoolMember.objects.create(rule=rule, agent=agent, weight=2)
    RoundRobinTurn.objects.create(rule=rule, agent=agent, credit=0.5, assignments=3)
    LeadEvent.objects.create(
        lead=lead, kind=LeadEvent.Kind.ASSIGNED, agent=agent, rule=rule, text="Rule “Zillow buyers” → weighted round-robin.",
        detail={"rule": rule.name, "strategy": "round_robin", "skipped": [{"agent": "Ben Ortiz", "reason": "off duty"}]},
    )
    Playbook.objects.get_or_create(office=line.office, defaults={"questions": ["intent", "timeline"]})
    Qualification.objects.create(
        lead=lead, questions=["intent", "timeline"], current="timeline", answers={"intent": "buy"},
        replies={"intent": "Buying"}, started_at=textback.created_at,
    )
    FollowUp.objects.create(lead=lead, textback=textback, step=FollowUp.Step.CALL_BACK, due_at=textback.created_at)
    missed_call_outcomes_refresh(lead_ids=[lead.pk])
    missed_call_outcomes_mark_due(lead_ids=[lead.pk])  # as the caller's latest change left it
    return SimpleNamespace(
        lead=lead, call=call, consent=consent, textback=textback, reply=reply, status_event=status_event, profile=profile
    )


@pytest.fixture
def records(brokerage):
    return lead_with_history(phone=CALLER, line_number=DOWNTOWN_BUYER_LINE, agent_email="ann@example.com")


@pytest.fixture
def broker(client, brokerage):
    client.force_login(get_user_model().objects.get(email="bree@example.com"))
    return client


def form_data(response) -> dict:
    """What the browser would post back from an admin change page, inline formsets included."""
    data = {}

    def add(form):
        for field in form:
            value = field.value()
            if value is None or value is False:
                continue
            data[field.html_name] = [str(v) for v in value] if isinstance(value, (list, tuple)) else str(value)
            if value is True:
                data[field.html_name] = "on"

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        add(inline.formset.management_form)
        for form in inline.formset.forms:
            add(form)
    data["_save"] = "Save"
    return data


def test_it_registers_every_model():
    assert [m.__name__ for m in OUR_MODELS if m not in admin.site._registry] == []


@pytest.mark.parametrize("model", OUR_MODELS, ids=lambda m: m.__name__)
def test_it_opens_every_list_and_record(broker, records, model):
    assert broker.get(url(model, "changelist")).status_code == 200
    assert broker.get(url(model, "changelist"), {"q": "555"}).status_code == 200
    response = broker.get(url(model, "change", model.objects.first().pk))
    assert response.status_code == 200


@pytest.mark.parametrize("model", [Office, Agent, TrackingNumber], ids=lambda m: m.__name__)
def test_it_opens_the_add_pages_for_setup(broker, model):
    assert broker.get(url(model, "add")).status_code == 200


@pytest.mark.parametrize("model", [Lead, Call, Message, MessageStatusEvent, ConsentEvent, NumberProfile], ids=lambda m: m.__name__)
def test_it_lets_nobody_add_records_the_product_writes(broker, model):
    assert broker.get(url(model, "add")).status_code == 403


def test_it_lists_without_a_query_per_row(broker, records):
    lists = [url(model, "changelist") for model in OUR_MODELS]

    def query_counts():
        counts = []
        for page in lists:
            with CaptureQueriesContext(connection) as queries:
                assert broker.get(page).status_code == 200
            counts.append(len(queries))
        return counts

    before = query_counts()
    lead_with_history(phone="+15555559876", line_number=LAKESIDE_LINE, agent_email="dan@example.com")
    lead_with_history(phone="+15555559877", line_number=DOWNTOWN_BUYER_LINE, agent_email="tess@example.com")
    assert dict(zip(lists, query_counts())) == dict(zip(lists, before))


# --- records stay records -----------------------------------------------------------------


def test_it_shows_a_consent_event_without_any_way_to_change_it(broker, records):
    page = url(ConsentEvent, "change", records.consent.pk)
    response = broker.get(page)
    assert response.status_code == 200
    assert b'name="_save"' not in response.content and b"deletelink" not in response.content
    response = broker.post(page, {"phone": "+15555550000", "kind": "opt_in", "source": "agent", "_save": "Save"})
    assert response.status_code == 403
    assert broker.post(url(ConsentEvent, "delete", records.consent.pk), {"post": "yes"}).status_code == 403
    consent = ConsentEvent.objects.get(pk=records.consent.pk)
    assert (consent.phone, consent.kind, consent.source) == (CALLER, "implied_call", "call")


def test_it_offers_no_bulk_delete_of_consent_events(broker, records):
    response = broker.post(
        url(ConsentEvent, "changelist"), {"action": "delete_selected", "_selected_action": [records.consent.pk], "post": "yes"}
    )
    assert ConsentEvent.objects.filter(pk=records.consent.pk).exists()
    assert b"delete_selected" not in broker.get(url(ConsentEvent, "changelist")).content
    assert response.status_code in (200, 302)


def test_it_keeps_texts_as_they_were_sent(broker, records):
    page = url(Message, "change", records.textback.pk)
    response = broker.get(page)
    assert response.status_code == 200 and b'name="_save"' not in response.content
    assert records.textback.provider_sid.encode() in response.content
    assert broker.post(page, {"body": "rewritten", "status": "failed", "_save": "Save"}).status_code == 403
    assert broker.post(url(Message, "delete", records.textback.pk), {"post": "yes"}).status_code == 403
    assert Message.objects.get(pk=records.textback.pk).body.startswith("Harbor & Oak Realty")


def test_it_will_not_delete_a_lead_and_its_texts_with_it(broker, records):
    response = broker.post(url(Lead, "delete", records.lead.pk), {"post": "yes"})
    assert response.status_code == 403
    assert Message.objects.filter(lead=records.lead).count() == 2


def test_it_shows_a_lead_with_its_calls_texts_voicemail_and_consent(broker, records):
    response = broker.get(url(Lead, "change", records.lead.pk))
    content = response.content.decode()
    assert records.call.call_sid in content and "Is it still available?" in content
    assert f'<audio controls preload="none" src="{records.call.recording_url}">' in content
    assert "Implied: inbound call" in content
    # The calls and texts are shown, not offered as form fields.
    assert 'name="messages-0-body"' not in content and 'name="calls-0-dial_status"' not in content
    assert content.index("sorry we missed your call!") < content.index("Is it still available?")


def test_it_records_when_a_broker_reassigns_a_lead(broker, records):
    page = url(Lead, "change", records.lead.pk)
    data = form_data(broker.get(page))
    dan = Agent.objects.get(user__email="dan@example.com")
    data["assigned_agent"] = str(dan.pk)
    response = broker.post(page, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    lead = Lead.objects.get(pk=records.lead.pk)
    assert lead.assigned_agent == dan and lead.assigned_at is not None
    assert lead.phone == CALLER and Message.objects.filter(lead=lead).count() == 2


def test_it_lets_a_broker_mark_a_call_missed_but_not_rewrite_it(broker, records):
    Call.objects.filter(pk=records.call.pk).update(missed=False, missed_reason="", dial_status="completed")
    MissedCallOutcome.objects.all().delete()
    OutcomeRefreshDue.objects.all().delete()
    page = url(Call, "change", records.call.pk)
    data = form_data(broker.get(page))
    data.update({"missed": "on", "missed_reason": "no_answer", "call_sid": "CAforged", "dial_status": "busy"})
    assert broker.post(page, data).status_code == 302
    call = Call.objects.get(pk=records.call.pk)
    assert (call.missed, call.missed_reason, call.call_sid, call.dial_status) == (True, "no_answer", records.call.call_sid, "completed")
    # The dashboards count it from now on: the lead is due, and the minute's catch-up stores it.
    assert OutcomeRefreshDue.objects.filter(lead=call.lead).exists()
    missed_call_outcomes_catch_up()
    assert MissedCallOutcome.objects.filter(call=call).exists()


def test_it_requires_a_reason_for_a_missed_call(broker, records):
    page = url(Call, "change", records.call.pk)
    data = form_data(broker.get(page))
    data["missed_reason"] = ""
    response = broker.post(page, data)
    assert response.status_code == 200 and response.context["adminform"].form.errors
    assert Call.objects.get(pk=records.call.pk).missed_reason == "no_answer"


def test_it_records_who_corrected_a_line_type(broker, records):
    page = url(NumberProfile, "change", records.profile.pk)
    data = form_data(broker.get(page))
    data["line_type"] = "landline"
    assert broker.post(page, data).status_code == 302
    profile = NumberProfile.objects.get(pk=records.profile.pk)
    assert (profile.line_type, profile.source) == ("landline", "Corrected in admin by bree@example.com")


# --- setting up offices and agents ----------------------------------------------------------


def test_it_saves_an_office_with_its_agents_and_lines(broker):
    office = Office.objects.get(name="Downtown")
    page = url(Office, "change", office.pk)
    response = broker.get(page)
    content = response.content.decode()
    assert "Ann Lee" in content and "+15555550100" in content
    data = form_data(response)
    data["business_days"] = ["0", "1", "2", "3", "4"]
    data["opens_at"], data["closes_at"] = "09:00", "17:00"
    ann_row = next(k.removesuffix("-name") for k, v in data.items() if k.startswith("agents-") and v == "Ann Lee")
    data[f"{ann_row}-languages"] = "EN, es"
    response = broker.post(page, data)
    assert response.status_code == 302, [f.errors for f in response.context["inline_admin_formsets"][0].formset.forms]
    office.refresh_from_db()
    assert office.business_days == [0, 1, 2, 3, 4] and office.hours_display == "Mon, Tue, Wed, Thu, Fri 09:00–17:00 America/New_York"
    assert Agent.objects.get(user__email="ann@example.com").languages == ["en", "es"]


def test_it_rejects_an_office_that_closes_before_it_opens(broker):
    office = Office.objects.get(name="Downtown")
    page = url(Office, "change", office.pk)
    data = form_data(broker.get(page))
    data["opens_at"], data["closes_at"] = "18:00", "09:00"
    response = broker.post(page, data)
    assert response.status_code == 200 and response.context["adminform"].form.non_field_errors()
    office.refresh_from_db()
    assert office.closes_at > office.opens_at


def test_it_lists_offices_with_their_hours_and_counts(broker):
    content = broker.get(url(Office, "changelist")).content.decode()
    assert "America/Chicago" in content and "00:00–23:59" in content
    assert '<td class="field-agent_count">3</td>' in content and '<td class="field-line_count">2</td>' in content


def test_it_takes_agents_off_duty_in_bulk(broker):
    agents = list(Agent.objects.filter(office__name="Downtown").values_list("pk", flat=True))
    response = broker.post(url(Agent, "changelist"), {"action": "mark_off_duty", "_selected_action": agents})
    assert response.status_code == 302
    assert not Agent.objects.filter(pk__in=agents, on_duty=True).exists()
    assert Agent.objects.filter(office__name="Lakeside", on_duty=True).count() == 2
    broker.post(url(Agent, "changelist"), {"action": "mark_on_duty", "_selected_action": agents[:1]})
    assert list(Agent.objects.filter(pk__in=agents, on_duty=True).values_list("pk", flat=True)) == agents[:1]


# --- the text-back template ------------------------------------------------------------------


def template_post(broker, template: TextbackTemplate, body: str):
    return broker.post(url(TextbackTemplate, "change", template.pk), {"body": body, "_save": "Save"})


def test_it_refuses_a_template_without_opt_out_wording(broker):
    template = TextbackTemplate.objects.get(lead_type="general", language="en")
    original = template.body
    response = template_post(broker, template, "{brokerage}: sorry we missed your call! An agent will text you shortly.")
    assert response.status_code == 200
    assert "Say how to opt out" in response.content.decode()
    assert TextbackTemplate.objects.get(pk=template.pk).body == original


@pytest.mark.parametrize(
    "body, problem",
    [
        ("{brokerage.upper}: hi. Reply STOP to opt out.", "Unknown placeholder {brokerage.upper}"),
        ("{brokerage}: {}. Reply STOP to opt out.", "Unknown placeholder {}"),
        ("{brokerage}: hi {listing!r}. Reply STOP to opt out.", "Unknown placeholder {listing!r}"),
        ("{brokerage:>150}: hi. Reply STOP to opt out.", "Unknown placeholder {brokerage:&gt;150}"),
        ("{brokerage}: hi {. Reply STOP to opt out.", "A brace is not part of a placeholder"),
    ],
)
def test_it_refuses_placeholders_that_are_not_bare_names(broker, body, problem):
    template = TextbackTemplate.objects.get(lead_type="general", language="en")
    original = template.body
    response = template_post(broker, template, body)
    assert response.status_code == 200 and problem in response.content.decode()
    assert TextbackTemplate.objects.get(pk=template.pk).body == original


def test_it_saves_a_good_template(broker):
    template = TextbackTemplate.objects.get(lead_type="seller", language="en")
    body = "{brokerage}: thanks for calling! {agent} will text you shortly. Reply STOP to opt out."
    assert template_post(broker, template, body).status_code == 302
    assert TextbackTemplate.objects.get(pk=template.pk).body == body


def test_it_previews_the_template_as_a_caller_would_read_it(broker):
    template = TextbackTemplate.objects.get(lead_type="buyer", language="en")
    content = broker.get(url(TextbackTemplate, "change", template.pk)).content.decode()
    assert 'id="textback-preview"' in content
    assert "Harbor &amp; Oak Realty: sorry we missed your call about 12 Oak St!" in content
    assert "of 160 characters · 1 text" in content


def test_it_previews_while_the_broker_types(broker):
    preview = reverse("admin:leads_textbacktemplate_preview")
    response = broker.get(preview, {"body": "{brokerage}: hi 😀 Reply STOP", "lead_type": "general"})
    assert response.status_code == 200
    content = response.content.decode()
    assert "Harbor &amp; Oak Realty: hi 😀 Reply STOP" in content and "of 70 characters" in content
    assert "Use plain characters only" in content
    long = broker.get(preview, {"body": "{brokerage}: " + "x" * 170 + " STOP", "lead_type": "general"}).content.decode()
    assert "2 texts, billed separately" in long and "Too long for one text" in long
    assert "Unknown placeholder {nope}" in broker.get(preview, {"body": "{nope}", "lead_type": "general"}).content.decode()


def test_it_keeps_the_preview_to_staff(client, brokerage):
    client.force_login(get_user_model().objects.get(email="ann@example.com"))
    response = client.get(reverse("admin:leads_textbacktemplate_preview"), {"body": "x"})
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_a_snippet_with_a_stray_brace_or_unknown_placeholder_is_refused(broker):
    from leads.models import ReplySnippet

    page = url(ReplySnippet, "add")
    for body in ["Hi {agent.__class__}", "Price is {", "Hi {name}"]:
        response = broker.post(page, {"title": "Bad", "body": body, "lead_type": "", "position": 0})
        assert response.status_code == 200 and response.context["adminform"].form.errors["body"]
    assert broker.post(page, {"title": "Good", "body": "Hi, {agent} here", "lead_type": "", "position": 0}).status_code == 302


def test_a_snippet_is_filled_without_ever_failing_the_thread(brokerage):
    from inbox.selectors import reply_snippets
    from inbox.tests.conftest import agent, lead_for
    from leads.models import ReplySnippet

    ReplySnippet.objects.all().delete()
    ReplySnippet.objects.create(title="Odd", body="{agent} at {brokerage}: {} {listing.x} {")
    lead = lead_for(phone="+15555557100")
    assert reply_snippets(lead=lead, agent=agent("ann@example.com")) == [("Odd", "Ann Lee at Harbor & Oak Realty: {} {listing.x} {")]
