import copy
import datetime as dt
import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from conftest import BROKERAGE
from routing.brokerage_import import BrokerageImportError, brokerage_import
from routing.models import Agent, Brokerage, Office, TrackingNumber

pytestmark = pytest.mark.django_db


def counts() -> dict[str, int]:
    return {
        "brokerages": Brokerage.objects.count(),
        "offices": Office.objects.count(),
        "agents": Agent.objects.count(),
        "lines": TrackingNumber.objects.count(),
        "users": get_user_model().objects.count(),
    }


def document() -> dict:
    return copy.deepcopy(BROKERAGE)


def import_file(tmp_path, data, name="brokerage.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def test_it_imports_offices_agents_and_lines(brokerage_file, capsys):
    call_command("import_brokerage", str(brokerage_file))
    assert counts() == {"brokerages": 1, "offices": 2, "agents": 5, "lines": 3, "users": 5}
    ann = Agent.objects.select_related("office", "user").get(user__email="ann@example.com")
    assert (ann.name, ann.office.name, ann.phone, ann.role, ann.weight, ann.languages) == (
        "Ann Lee", "Downtown", "+15555550101", "agent", 1, ["en"]
    )
    line = TrackingNumber.objects.get(number="+15555550100")
    assert (line.office.name, line.source, line.lead_type, line.listing) == ("Downtown", "Zillow", "buyer", "12 Oak St")
    assert Brokerage.objects.get().help_contact == "(555) 555-0199"
    assert "Imported 2 offices, 5 agents, 3 lines" in capsys.readouterr().out


def test_it_is_idempotent(brokerage_file):
    call_command("import_brokerage", str(brokerage_file))
    before = counts()
    ids = sorted(Agent.objects.values_list("pk", "user_id"))
    call_command("import_brokerage", str(brokerage_file))
    assert counts() == before
    assert sorted(Agent.objects.values_list("pk", "user_id")) == ids


def test_it_updates_in_place(brokerage):
    edited = document()
    edited["offices"][0]["agents"][0]["name"] = "Ann Lee-Park"
    edited["offices"][0]["agents"][0]["email"] = "ANN@example.com"  # emails are matched without case
    edited["offices"][0]["lines"][0]["listing"] = "14 Oak St"
    edited["offices"][1]["agents"][0]["weight"] = 3
    # Dan moves to Downtown: the same agent and user, in another office.
    edited["offices"][0]["agents"].append(edited["offices"][1]["agents"].pop(0))
    before = counts()
    agent_pk = Agent.objects.get(user__email="ann@example.com").pk

    brokerage_import(edited)

    assert counts() == before
    ann = Agent.objects.select_related("user").get(pk=agent_pk)
    assert (ann.name, ann.user.first_name, ann.user.last_name) == ("Ann Lee-Park", "Ann", "Lee-Park")
    assert TrackingNumber.objects.get(number="+15555550100").listing == "14 Oak St"
    dan = Agent.objects.select_related("office").get(user__email="dan@example.com")
    assert (dan.office.name, dan.weight) == ("Downtown", 3)


def test_it_makes_brokers_staff_superusers_and_nobody_else(brokerage):
    users = {u.email: u for u in get_user_model().objects.all()}
    assert users["bree@example.com"].is_staff and users["bree@example.com"].is_superuser
    for email in ("ann@example.com", "ben@example.com", "tess@example.com", "dan@example.com"):
        assert not users[email].is_staff and not users[email].is_superuser


def test_it_takes_admin_away_from_a_former_broker(brokerage):
    demoted = document()
    demoted["offices"][1]["agents"][1]["role"] = "team_leader"
    brokerage_import(demoted)
    bree = get_user_model().objects.get(email="bree@example.com")
    assert not bree.is_staff and not bree.is_superuser


def test_it_imports_business_hours_and_textback_window():
    data = document()
    data["offices"][0]["business_hours"] = {"days": [4, 0, 1, 2, 3, 0], "opens": "09:00", "closes": "17:30"}
    data["offices"][0]["textback_window_hours"] = 48
    brokerage_import(data)
    downtown, lakeside = Office.objects.get(name="Downtown"), Office.objects.get(name="Lakeside")
    assert downtown.business_days == [0, 1, 2, 3, 4]
    assert (downtown.opens_at, downtown.closes_at, downtown.textback_window_hours) == (dt.time(9), dt.time(17, 30), 48)
    assert (lakeside.business_days, lakeside.opens_at, lakeside.textback_window_hours) == ([0, 1, 2, 3, 4, 5], dt.time(8), 24)


def test_it_keeps_hours_edited_in_admin_when_the_file_leaves_them_out(brokerage):
    Office.objects.filter(name="Downtown").update(business_days=[5, 6], opens_at=dt.time(10), textback_window_hours=6)
    brokerage_import(document())
    downtown = Office.objects.get(name="Downtown")
    assert (downtown.business_days, downtown.opens_at, downtown.textback_window_hours) == ([5, 6], dt.time(10), 6)


def test_it_imports_the_ladder_capacity_and_listing_details():
    data = document()
    data["offices"][0]["escalation"] = {"agents_to_try": 2, "last_step": "pond", "business_hours_only": True}
    data["offices"][0]["agents"][0]["capacity"] = 5
    data["offices"][0]["lines"][0].update(listing_agent="Ben@example.com", zip_code="33139", city="Miami Beach", price=1_250_000)
    brokerage_import(data)
    downtown = Office.objects.get(name="Downtown")
    assert (downtown.escalation_agent_steps, downtown.escalation_final, downtown.escalation_business_hours_only) == (2, "pond", True)
    assert Agent.objects.get(user__email="ann@example.com").max_waiting_leads == 5
    line = TrackingNumber.objects.get(number="+15555550100")
    assert (line.listing_agent.name, line.zip_code, line.city, line.price) == ("Ben Ortiz", "33139", "Miami Beach", 1_250_000)
    assert Office.objects.get(name="Lakeside").escalation_final == "broker"  # left out: the default
    assert all(office.routing_rules.filter(is_catch_all=True).exists() for office in Office.objects.all())


def _set(path: tuple, value):
    def edit(data):
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return edit


def _drop(path: tuple):
    def edit(data):
        target = data
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
    return edit


def _duplicate_email(data):
    data["offices"][1]["agents"][0]["email"] = "Ann@Example.com"


def _duplicate_line(data):
    data["offices"][1]["lines"][0]["number"] = "+15555550100"


# Each error sits in the second office (or after the first office's valid data), so the
# first office would have been written if the import were not all-or-nothing.
INVALID = {
    "missing offices": (_drop(("offices",)), "document.offices: required"),
    "empty offices": (_set(("offices",), []), "offices: list at least one office"),
    "office not an object": (_set(("offices", 1), "Lakeside"), "offices[1]: expected an object"),
    "missing office name": (_drop(("offices", 1, "name")), "offices[1].name: required"),
    "duplicate office name": (_set(("offices", 1, "name"), "Downtown"), "offices[1].name: 'Downtown' appears twice"),
    "bad timezone": (_set(("offices", 1, "timezone"), "America/Lakeside"), "offices[1].timezone:"),
    "bad escalation": (_set(("offices", 1, "escalation_minutes"), 0), "offices[1].escalation_minutes:"),
    "escalation as text": (_set(("offices", 1, "escalation_minutes"), "10"), "offices[1].escalation_minutes:"),
    "agents not a list": (_set(("offices", 1, "agents"), None), "offices[1].agents: expected a list"),
    "bad email": (_set(("offices", 1, "agents", 0, "email"), "dan-at-example.com"), "offices[1].agents[0].email:"),
    "duplicate email": (_duplicate_email, "offices[1].agents[0].email: 'ann@example.com' appears twice"),
    "bad role": (_set(("offices", 1, "agents", 1, "role"), "owner"), "offices[1].agents[1].role: 'owner' is not one of"),
    "missing agent name": (_drop(("offices", 1, "agents", 0, "name")), "offices[1].agents[0].name: required"),
    "bad phone": (_set(("offices", 1, "agents", 0, "phone"), "555-0201"), "offices[1].agents[0].phone:"),
    "missing phone": (_drop(("offices", 1, "agents", 0, "phone")), "offices[1].agents[0].phone:"),
    "zero weight": (_set(("offices", 1, "agents", 0, "weight"), 0), "offices[1].agents[0].weight:"),
    "boolean weight": (_set(("offices", 1, "agents", 0, "weight"), True), "offices[1].agents[0].weight:"),
    "bad languages": (_set(("offices", 1, "agents", 0, "languages"), "en"), "offices[1].agents[0].languages:"),
    "bad lead type": (_set(("offices", 1, "lines", 0, "lead_type"), "renter"), "offices[1].lines[0].lead_type: 'renter' is not one of"),
    "bad line number": (_set(("offices", 1, "lines", 0, "number"), "not a number"), "offices[1].lines[0].number:"),
    "duplicate line": (_duplicate_line, "offices[1].lines[0].number: +15555550100 appears twice"),
    "missing source": (_drop(("offices", 1, "lines", 0, "source")), "offices[1].lines[0].source: required"),
    "bad hours object": (_set(("offices", 1, "business_hours"), "9-5"), "offices[1].business_hours: expected an object"),
    "bad business day": (
        _set(("offices", 1, "business_hours"), {"days": [0, 7], "opens": "09:00", "closes": "17:00"}),
        "offices[1].business_hours.days:",
    ),
    "bad opening time": (
        _set(("offices", 1, "business_hours"), {"days": [0], "opens": "9am", "closes": "17:00"}),
        "offices[1].business_hours.opens: '9am' is not a time of day",
    ),
    "missing closing time": (
        _set(("offices", 1, "business_hours"), {"days": [0], "opens": "09:00"}),
        "offices[1].business_hours.closes: required",
    ),
    "closes before opens": (
        _set(("offices", 1, "business_hours"), {"days": [0], "opens": "18:00", "closes": "09:00"}),
        "offices[1].business_hours.closes: must be later than opens",
    ),
    "bad textback window": (_set(("offices", 1, "textback_window_hours"), 0), "offices[1].textback_window_hours:"),
    "bad last step": (_set(("offices", 1, "escalation"), {"last_step": "ceo"}), "offices[1].escalation.last_step:"),
    "too many agents to try": (_set(("offices", 1, "escalation"), {"agents_to_try": 11}), "offices[1].escalation.agents_to_try:"),
    "pause as text": (_set(("offices", 1, "escalation"), {"business_hours_only": "yes"}), "offices[1].escalation.business_hours_only:"),
    "zero capacity": (_set(("offices", 1, "agents", 0, "capacity"), 0), "offices[1].agents[0].capacity:"),
    "listing agent elsewhere": (
        _set(("offices", 1, "lines", 0, "listing_agent"), "ann@example.com"),
        "offices[1].lines[0].listing_agent: 'ann@example.com' is not an agent of this office",
    ),
    "price as text": (_set(("offices", 1, "lines", 0, "price"), "1.2M"), "offices[1].lines[0].price:"),
}


@pytest.mark.parametrize("edit, message", INVALID.values(), ids=INVALID.keys())
def test_it_rejects_invalid_input_whole_and_names_the_field(edit, message):
    data = document()
    edit(data)
    with pytest.raises(BrokerageImportError) as error:
        brokerage_import(data)
    assert str(error.value).startswith(message)
    assert counts() == {"brokerages": 0, "offices": 0, "agents": 0, "lines": 0, "users": 0}


def test_it_changes_nothing_in_an_existing_brokerage_when_the_file_is_invalid(brokerage):
    before = counts()
    data = document()
    data["offices"][0]["agents"][0]["name"] = "Renamed"
    data["offices"][1]["lines"][0]["lead_type"] = "renter"
    with pytest.raises(BrokerageImportError):
        brokerage_import(data)
    assert counts() == before
    assert Agent.objects.get(user__email="ann@example.com").name == "Ann Lee"


def test_it_names_the_bad_field_from_the_command(tmp_path):
    data = document()
    data["offices"][1]["agents"][0]["email"] = "nope"
    with pytest.raises(CommandError, match=r"was not imported: offices\[1\]\.agents\[0\]\.email"):
        call_command("import_brokerage", import_file(tmp_path, data))
    assert counts()["offices"] == 0


def test_it_rejects_a_file_that_is_not_json(tmp_path):
    path = tmp_path / "brokerage.json"
    path.write_text('{"offices": [')
    with pytest.raises(CommandError, match="is not valid JSON"):
        call_command("import_brokerage", str(path))
    assert counts()["offices"] == 0


def test_it_rejects_a_missing_file(tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        call_command("import_brokerage", str(tmp_path / "missing.json"))


def test_a_role_change_in_admin_grants_and_revokes_the_control_room(brokerage, client):
    from django.contrib.auth import get_user_model

    from routing.models import Agent

    bree = get_user_model().objects.get(email="bree@example.com")
    client.force_login(bree)
    dan = Agent.objects.get(name="Dan Kim")
    data = {"user": dan.user_id, "name": dan.name, "office": dan.office_id, "phone": dan.phone, "role": "broker", "weight": 1, "languages": "en", "on_duty": "on"}
    assert client.post(f"/admin/routing/agent/{dan.pk}/change/", data).status_code == 302
    dan.user.refresh_from_db()
    assert dan.user.is_staff and dan.user.is_superuser
    assert client.post(f"/admin/routing/agent/{dan.pk}/change/", {**data, "role": "agent"}).status_code == 302
    dan.user.refresh_from_db()
    assert not dan.user.is_staff and not dan.user.is_superuser
