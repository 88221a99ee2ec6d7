import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from routing.models import Agent, RoutingRule

pytestmark = pytest.mark.django_db


def test_it_loads_the_demo_and_prints_logins_that_work(settings):
    settings.DEMO_MODE = True
    out = io.StringIO()
    call_command("demo_setup", "demo/brokerage.json", stdout=out)
    call_command("demo_setup", "demo/brokerage.json", stdout=io.StringIO())  # idempotent
    assert Agent.objects.count() == 8
    assert "bree@harborandoak.example" in out.getvalue() and "textback-demo" in out.getvalue()
    assert get_user_model().objects.get(email="ann@harborandoak.example").check_password("textback-demo")
    rules = RoutingRule.objects.filter(office__name="Downtown").order_by("position")
    assert [(r.name, r.members.count()) for r in rules] == [
        ("Spanish speakers", 2), ("Sellers: first to claim", 3), ("Everyone else", 0)
    ]


def test_it_leaves_a_real_brokerage_alone(settings):
    settings.DEMO_MODE = False
    out = io.StringIO()
    call_command("demo_setup", "demo/brokerage.json", stdout=out)
    assert Agent.objects.count() == 0 and "not loading" in out.getvalue()
