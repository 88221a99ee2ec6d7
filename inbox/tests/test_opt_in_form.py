"""The public "text me" form: express written consent, on record with the words agreed to, and
never a way to undo someone's opt-out."""

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from compliance.gate import Purpose, Rule, gate_check
from compliance.models import ConsentEvent, DoNotCallNumber
from compliance.services import consent_record

pytestmark = pytest.mark.django_db

URL = "/text-me/"
PHONE = "+13055550123"


@pytest.fixture(autouse=True)
def fresh_rate_limit():
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


def submit(client=None, **data):
    return (client or Client()).post(URL, {"phone": "(305) 555-0123", "name": "Rosa", "agree": "on", **data})


def ask(purpose=Purpose.REPLY, history_days=200):
    from compliance.gate import ContactHistory

    now = timezone.now()
    return gate_check(
        phone=PHONE, senders=("+15555550100",), purpose=purpose, at=now.replace(hour=15),
        history=ContactHistory(last_inbound_at=now - dt.timedelta(days=history_days)),
    )


def test_it_shows_the_disclosure_and_records_the_consent_with_those_words(brokerage):
    page = Client().get(URL).content.decode()
    assert "Harbor &amp; Oak Realty may text me" in page and "not a condition of any purchase" in page
    response = submit()
    assert response.status_code == 200 and "on the list" in response.content.decode()
    event = ConsentEvent.objects.get()
    assert (event.phone, event.sender, event.kind, event.source) == (PHONE, "", "express_opt_in", "web_form")
    assert event.raw_text.startswith("By checking this box, I agree that Harbor & Oak Realty may text me")
    assert event.actor == "Web form from 127.0.0.1" and "Rosa" in event.note


@pytest.mark.parametrize("data,error", [
    ({"agree": ""}, "Tick the box"),
    ({"phone": "12"}, "Give a mobile number"),
    ({"phone": "+1 555 555 0123"}, "Give a mobile number"),  # fictional 555 numbers are not valid
])
def test_bad_input_is_a_400_that_records_nothing(brokerage, data, error):
    response = submit(**data)
    assert response.status_code == 400 and error in response.content.decode()
    assert not ConsentEvent.objects.exists()


def test_a_robot_filling_the_hidden_field_records_nothing(brokerage):
    assert submit(website="http://spam.example").status_code == 400
    assert not ConsentEvent.objects.exists()


def test_it_limits_submissions_per_address(brokerage):
    client = Client()
    assert [submit(client).status_code for _ in range(10)] == [200] * 10
    assert submit(client).status_code == 429
    assert ConsentEvent.objects.count() == 10  # each submission is on record; the eleventh was refused


def test_a_web_form_never_lifts_an_opt_out_or_the_do_not_contact_list(brokerage):
    consent_record(phone=PHONE, sender="", kind="opt_out", source="agent", note="Asked on the phone to stop")
    submit()
    assert ask().rule is Rule.OPTED_OUT
    consent_record(phone=PHONE, sender="", kind="opt_in", source="agent")  # hypothetically lifted by staff...
    consent_record(phone=PHONE, sender="", kind="opt_out", source="internal_dnc")
    submit()
    assert ask().rule is Rule.DO_NOT_CONTACT


def test_web_form_consent_lets_outreach_reach_a_national_do_not_call_number(brokerage):
    DoNotCallNumber.objects.create(phone=PHONE, imported_at=timezone.now())
    assert ask().rule is Rule.NATIONAL_DNC
    submit()
    assert ask().allowed
