"""The broker's CRM pages: connecting an endpoint without ever seeing its secrets again, reading the
delivery log, and sending a refused delivery again once the cause is fixed."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from conftest import CALLER
from crm.models import FOLLOW_UP_BOSS_EVENTS_URL, CrmDelivery, CrmDeliveryAttempt, CrmEndpoint
from crm.tests.conftest import Answer
from routing.models import Brokerage

pytestmark = pytest.mark.django_db

CRM_MODELS = list(apps.get_app_config("crm").get_models())


def url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def broker(client, brokerage):
    client.force_login(get_user_model().objects.get(email="bree@example.com"))
    return client


@pytest.fixture
def refused(webhook, fake_crm, twilio, sms_outbox, django_capture_on_commit_callbacks) -> CrmDelivery:
    """A missed call whose delivery the receiver refused (it did not know the URL yet)."""
    fake_crm.answer(Answer(404, body="no such hook"))
    with django_capture_on_commit_callbacks(execute=True):
        twilio.missed_call()
    delivery = CrmDelivery.objects.get()
    assert delivery.status == "failed"
    return delivery


def endpoint_form(endpoint: CrmEndpoint, **changes) -> dict:
    data = {
        "brokerage": endpoint.brokerage_id, "name": endpoint.name, "kind": endpoint.kind, "enabled": "on",
        "milestones": endpoint.milestones, "url": endpoint.url, "api_key": "", "system_name": endpoint.system_name,
        "system_key": "", "secret": "", "_save": "Save",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_it_registers_every_model():
    assert [m.__name__ for m in CRM_MODELS if m not in admin.site._registry] == []


@pytest.mark.parametrize("model", CRM_MODELS, ids=lambda m: m.__name__)
def test_it_opens_every_list_and_record(broker, refused, model):
    assert broker.get(url(model, "changelist")).status_code == 200
    assert broker.get(url(model, "changelist"), {"q": "555"}).status_code == 200
    assert broker.get(url(model, "change", model.objects.first().pk)).status_code == 200


def test_it_lists_deliveries_without_a_query_per_row(broker, refused, twilio, django_capture_on_commit_callbacks):
    pages = [url(model, "changelist") for model in CRM_MODELS]

    def query_counts():
        counts = []
        for page in pages:
            with CaptureQueriesContext(connection) as queries:
                assert broker.get(page).status_code == 200
            counts.append(len(queries))
        return counts

    before = query_counts()
    with django_capture_on_commit_callbacks(execute=True):
        twilio.missed_call(caller="+15555553001")
        twilio.missed_call(caller="+15555553002")
    assert CrmDeliveryAttempt.objects.count() == 3
    assert query_counts() == before


def test_it_never_shows_a_secret_and_keeps_it_when_left_empty(broker, follow_up_boss):
    page = url(CrmEndpoint, "change", follow_up_boss.pk)
    content = broker.get(page).content.decode()
    assert "fub-api-key" not in content and "fub-system-key" not in content
    assert 'type="password"' in content and "Stored. Leave empty to keep it" in content
    response = broker.post(page, endpoint_form(follow_up_boss, name="FUB main"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    endpoint = CrmEndpoint.objects.get(pk=follow_up_boss.pk)
    assert (endpoint.name, endpoint.api_key, endpoint.system_key) == ("FUB main", "fub-api-key", "fub-system-key")
    assert broker.post(page, endpoint_form(follow_up_boss, api_key="new-key")).status_code == 302
    assert CrmEndpoint.objects.get(pk=follow_up_boss.pk).api_key == "new-key"


def test_it_connects_follow_up_boss_with_just_an_api_key(broker):
    brokerage = Brokerage.objects.get()
    data = {
        "brokerage": brokerage.pk, "name": "FUB", "kind": "follow_up_boss", "enabled": "on",
        "milestones": ["missed_call", "qualified"], "url": "", "api_key": "k-123", "system_name": "", "system_key": "",
        "secret": "", "_save": "Save",
    }
    assert broker.post(url(CrmEndpoint, "add"), data).status_code == 302
    endpoint = CrmEndpoint.objects.get()
    assert (endpoint.url, endpoint.api_key, endpoint.milestones) == (FOLLOW_UP_BOSS_EVENTS_URL, "k-123", ["missed_call", "qualified"])


def test_it_refuses_an_unsigned_webhook(broker):
    data = {
        "brokerage": Brokerage.objects.get().pk, "name": "Zap", "kind": "webhook", "enabled": "on",
        "milestones": ["missed_call"], "url": "https://hooks.zapier.com/hooks/catch/1/abc/", "api_key": "",
        "system_name": "", "system_key": "", "secret": "", "_save": "Save",
    }
    response = broker.post(url(CrmEndpoint, "add"), data)
    assert response.status_code == 200 and "secret" in response.context["adminform"].form.errors
    assert not CrmEndpoint.objects.exists()


def test_it_shows_a_delivery_as_sent_with_its_attempts_and_no_way_to_edit_it(broker, refused):
    page = url(CrmDelivery, "change", refused.pk)
    content = broker.get(page).content.decode()
    assert 'name="_save"' not in content
    assert f"&quot;phone&quot;: &quot;{CALLER}&quot;" in content  # the payload, pretty-printed
    assert "no such hook" in content and "404" in content
    assert broker.post(page, {"status": "delivered", "_save": "Save"}).status_code == 403
    assert CrmDelivery.objects.get(pk=refused.pk).status == "failed"


def test_it_sends_a_refused_delivery_again_on_retry_now(broker, refused, fake_crm, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = broker.post(url(CrmDelivery, "changelist"), {"action": "retry_now", "_selected_action": [refused.pk]})
    assert response.status_code == 302
    delivery = CrmDelivery.objects.get(pk=refused.pk)
    assert (delivery.status, delivery.attempts) == ("delivered", 2)
    assert [a.status_code for a in delivery.attempt_log.all()] == [404, 200]
    assert len(fake_crm.received) == 2
    # Delivered stays delivered: a second "retry" sends nothing.
    with django_capture_on_commit_callbacks(execute=True):
        broker.post(url(CrmDelivery, "changelist"), {"action": "retry_now", "_selected_action": [refused.pk]})
    assert len(fake_crm.received) == 2
