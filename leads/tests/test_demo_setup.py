import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from routing.models import Agent

pytestmark = pytest.mark.django_db


def test_it_loads_the_demo_and_prints_logins_that_work(settings):
    settings.DEMO_MODE = True
    out = io.StringIO()
    call_command("demo_setup", "demo/brokerage.json", stdout=out)
    call_command("demo_setup", "demo/brokerage.json", stdout=io.StringIO())  # idempotent
    assert Agent.objects.count() == 8
    assert "bree@harborandoak.example" in out.getvalue() and "textback-demo" in out.getvalue()
    assert get_user_model().objects.get(email="ann@harborandoak.example").check_password("textback-demo")


def test_it_leaves_a_real_brokerage_alone(settings):
    settings.DEMO_MODE = False
    out = io.StringIO()
    call_command("demo_setup", "demo/brokerage.json", stdout=out)
    assert Agent.objects.count() == 0 and "not loading" in out.getvalue()
