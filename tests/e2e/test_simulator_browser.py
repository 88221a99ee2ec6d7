import pytest
from playwright.sync_api import expect

from leads.models import Call, Lead, Message

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

from .conftest import sign_in


@pytest.fixture
def signed_in_broker(page, live, brokerage, django_user_model):
    sign_in(page, live.url, django_user_model, "bree@example.com")
    expect(page.get_by_text("Bree Adams")).to_be_visible()
    return page


def test_a_missed_call_in_the_simulator_texts_the_phone_back(signed_in_broker, live, sms_outbox):
    page = signed_in_broker
    page.goto(live.url + "/simulator/")
    page.locator("#id_line").select_option(label="+15555550100 · Zillow (Downtown)")
    page.locator("#id_caller").fill("+15555557777")
    page.get_by_role("button", name="Call the line").click()
    expect(page.locator("#call-panel")).to_contain_text("Ringing Ann Lee, Ben Ortiz, Tess Morgan for 12 s")
    page.get_by_role("button", name="Let it ring out").click()

    thread = page.locator("#thread-list")
    expect(thread).to_contain_text("sorry we missed your call about 12 Oak St")
    # The phone acknowledges delivery through the signed status webhook; the page shows it live.
    expect(thread).to_contain_text("Delivered")
    lead = Lead.objects.get(phone="+15555557777")
    assert Call.objects.get(lead=lead).missed
    assert Message.objects.get(lead=lead, kind=Message.Kind.TEXTBACK).status == Message.Status.DELIVERED

    page.locator("#compose-body").fill("Is it still available?")
    page.locator("#compose-body").press("Enter")
    expect(thread).to_contain_text("Is it still available?")
    assert Message.objects.filter(lead=lead, direction=Message.Direction.INBOUND).count() == 1


def test_an_agent_who_is_not_staff_cannot_open_the_simulator(page, live, brokerage, django_user_model):
    sign_in(page, live.url, django_user_model, "ann@example.com")
    expect(page.get_by_text("Ann Lee")).to_be_visible()
    expect(page.get_by_role("link", name="Simulator")).to_have_count(0)
    page.goto(live.url + "/simulator/")
    expect(page.get_by_text("Phone simulator")).to_have_count(0)
