"""Routing rules as a broker edits them in admin: conditions typed as lists, pools with weights,
a catch-all that always stays, and the reasons a lead went where it went."""

import pytest
from django.contrib.auth import get_user_model

from conftest import CALLER, DOWNTOWN_BUYER_LINE, new_sid
from leads.models import Lead, LeadEvent
from leads.tests.test_admin import form_data, url
from leads.services import missed_call_record
from routing.models import Agent, Brokerage, Office, PoolMember, RoutingRule
from routing.selectors import line_by_number

pytestmark = pytest.mark.django_db


def changelist_data(response) -> dict:
    """What the browser posts when the broker edits the rule list in place and presses Save."""
    formset = response.context["cl"].formset
    data = {"_save": "Save"}
    for form in [formset.management_form, *formset.forms]:
        for field in form:
            value = field.value()
            if value is None or value is False:
                continue
            data[field.html_name] = "on" if value is True else str(value)
    return data


def agent(email: str) -> Agent:
    return Agent.objects.get(user__email=email)


def rule_errors(response) -> dict:
    assert response.status_code == 200, "the form was saved"
    return response.context["adminform"].form.errors


@pytest.fixture
def broker(client, brokerage):
    client.force_login(get_user_model().objects.get(email="bree@example.com"))
    return client


@pytest.fixture
def downtown(brokerage) -> Office:
    return Office.objects.get(name="Downtown")


@pytest.fixture
def catch_all(downtown) -> RoutingRule:
    return RoutingRule.objects.get(office=downtown, is_catch_all=True)


def new_rule_data(broker, office: Office, **changes) -> dict:
    data = form_data(broker.get(url(RoutingRule, "add")))
    data.update({"office": str(office.pk), "name": "Beach buyers", "position": "20", **changes})
    return data


# --- adding a rule ------------------------------------------------------------------------------


def test_it_adds_a_rule_with_its_conditions_typed_as_lists_and_a_weighted_pool(broker, downtown):
    ann, ben = agent("ann@example.com"), agent("ben@example.com")
    data = new_rule_data(
        broker, downtown,
        sources="Zillow, Realtor.com", zip_codes=" 33139,33140 , ", cities="Miami Beach, North Bay Village",
        area_codes="305, 786", languages="ES, en", lead_types=["buyer", "home_value"],
        price_min="400000", price_max="900000", time_window="business_hours", strategy="round_robin", fallback="team_leader",
    )
    data.update({
        "members-TOTAL_FORMS": "2",
        "members-0-agent": str(ann.pk), "members-0-weight": "3",
        "members-1-agent": str(ben.pk), "members-1-weight": "1",
    })
    response = broker.post(url(RoutingRule, "add"), data)
    assert response.status_code == 302, response.context and response.context["errors"]
    rule = RoutingRule.objects.get(name="Beach buyers")
    assert (rule.office, rule.position, rule.active, rule.is_catch_all) == (downtown, 20, True, False)
    assert rule.sources == ["Zillow", "Realtor.com"]
    assert rule.zip_codes == ["33139", "33140"]
    assert rule.cities == ["Miami Beach", "North Bay Village"]
    assert rule.area_codes == ["305", "786"] and rule.languages == ["es", "en"]
    assert rule.lead_types == ["buyer", "home_value"]
    assert (rule.price_min, rule.price_max, rule.time_window) == (400000, 900000, "business_hours")
    assert {m.agent.name: m.weight for m in rule.members.select_related("agent")} == {"Ann Lee": 3, "Ben Ortiz": 1}


def test_it_shows_the_lists_back_as_the_broker_typed_them(broker, downtown):
    rule = RoutingRule.objects.create(
        office=downtown, name="Beach buyers", sources=["Zillow", "Realtor.com"], zip_codes=["33139", "33140"],
        cities=["Miami Beach"], lead_types=["seller"],
    )
    response = broker.get(url(RoutingRule, "change", rule.pk))
    content = response.content.decode()
    assert 'value="Zillow, Realtor.com"' in content and 'value="33139, 33140"' in content and 'value="Miami Beach"' in content
    assert response.context["adminform"].form["lead_types"].value() == ["seller"]
    data = form_data(response)
    assert broker.post(url(RoutingRule, "change", rule.pk), data).status_code == 302
    rule.refresh_from_db()
    assert (rule.sources, rule.zip_codes, rule.cities, rule.lead_types) == (["Zillow", "Realtor.com"], ["33139", "33140"], ["Miami Beach"], ["seller"])


def test_it_refuses_a_pool_member_from_another_office(broker, downtown):
    dan = agent("dan@example.com")
    data = new_rule_data(broker, downtown)
    data.update({"members-TOTAL_FORMS": "1", "members-0-agent": str(dan.pk), "members-0-weight": "2"})
    response = broker.post(url(RoutingRule, "add"), data)
    assert response.status_code == 200
    assert "Dan Kim works in another office." in response.content.decode()
    assert not RoutingRule.objects.filter(name="Beach buyers").exists() and not PoolMember.objects.exists()


def test_it_offers_only_the_rules_own_office_in_its_pool_and_fallbacks(broker, downtown):
    rule = RoutingRule.objects.create(office=downtown, name="Buyers", lead_types=["buyer"])
    response = broker.get(url(RoutingRule, "change", rule.pk))
    form = response.context["adminform"].form
    downtown_names = {"Ann Lee", "Ben Ortiz", "Tess Morgan"}
    assert {a.name for a in form.fields["agent"].queryset} == downtown_names
    assert {a.name for a in form.fields["fallback_agent"].queryset} == downtown_names
    assert {r.office for r in form.fields["fallback_rule"].queryset} == {downtown}
    member_form = response.context["inline_admin_formsets"][0].formset.empty_form
    assert {a.name for a in member_form.fields["agent"].queryset} == downtown_names


# --- the catch-all ------------------------------------------------------------------------------


def test_it_keeps_the_catch_all_from_being_deleted_on_its_page(broker, catch_all):
    response = broker.get(url(RoutingRule, "change", catch_all.pk))
    content = response.content.decode()
    assert response.status_code == 200
    assert 'class="deletelink"' not in content and url(RoutingRule, "delete", catch_all.pk) not in content
    # It takes whatever no other rule took: no conditions to edit, and always on and last.
    assert "Conditions" not in content and 'name="sources"' not in content
    assert 'name="office"' not in content and 'name="active"' not in content and 'name="position"' not in content
    assert "Last: tried after every other rule of the office" in content and "2147483647" not in content
    assert broker.get(url(RoutingRule, "delete", catch_all.pk)).status_code == 403
    assert broker.post(url(RoutingRule, "delete", catch_all.pk), {"post": "yes"}).status_code == 403
    assert RoutingRule.objects.filter(pk=catch_all.pk).exists()


def test_it_lets_the_broker_change_the_catch_alls_target(broker, catch_all):
    tess = agent("tess@example.com")
    page = url(RoutingRule, "change", catch_all.pk)
    data = form_data(broker.get(page))
    data.update({"strategy": "agent", "agent": str(tess.pk), "fallback": "pond"})
    assert broker.post(page, data).status_code == 302
    catch_all.refresh_from_db()
    assert (catch_all.strategy, catch_all.agent, catch_all.active, catch_all.is_catch_all) == ("agent", tess, True, True)
    assert catch_all.sources == [] and catch_all.lead_types == []


def test_it_bulk_deletes_other_rules_but_leaves_the_catch_all(broker, downtown, catch_all):
    buyers = RoutingRule.objects.create(office=downtown, name="Buyers", lead_types=["buyer"])
    sellers = RoutingRule.objects.create(office=downtown, name="Sellers", lead_types=["seller"])
    selected = {"action": "delete_selected", "_selected_action": [buyers.pk, sellers.pk, catch_all.pk]}
    confirm = broker.post(url(RoutingRule, "changelist"), selected)
    content = confirm.content.decode()
    assert confirm.status_code == 200 and "Catch-all rules stay: every office needs one." in content
    # The confirmation lists, and posts back, only the rules that will go.
    assert list(confirm.context["queryset"]) == [buyers, sellers]
    response = broker.post(url(RoutingRule, "changelist"), {**selected, "post": "yes"}, follow=True)
    content = response.content.decode()
    assert "Catch-all rules stay: every office needs one." in content and "Successfully deleted 2 routing rules." in content
    assert list(RoutingRule.objects.filter(office=downtown)) == [catch_all]


def test_it_explains_why_a_catch_all_alone_is_not_deleted(broker, catch_all):
    selected = {"action": "delete_selected", "_selected_action": [catch_all.pk], "post": "yes"}
    response = broker.post(url(RoutingRule, "changelist"), selected, follow=True)
    assert response.status_code == 200 and "Catch-all rules stay: every office needs one." in response.content.decode()
    assert RoutingRule.objects.filter(pk=catch_all.pk).exists()


def test_it_shows_the_catch_all_in_the_list_as_always_on_and_last(broker, catch_all):
    page = url(RoutingRule, "changelist") + f"?office__id__exact={catch_all.office_id}"
    response = broker.get(page)
    content = response.content.decode()
    assert '<td class="field-position">last</td>' in content and "2147483647" not in content
    data = changelist_data(response)
    row = next(k.removesuffix("-id") for k, v in data.items() if k.endswith("-id") and v == str(catch_all.pk))
    data.pop(f"{row}-active", None)
    data[f"{row}-position"] = "1"
    assert broker.post(page, data).status_code == 302
    catch_all.refresh_from_db()
    assert catch_all.active and catch_all.position == 2**31 - 1


# --- validation ---------------------------------------------------------------------------------


def test_it_refuses_a_price_band_upside_down(broker, downtown):
    response = broker.post(url(RoutingRule, "add"), new_rule_data(broker, downtown, price_min="900000", price_max="500000"))
    assert rule_errors(response)["price_max"] == ["The top of the price band must be above its bottom."]
    assert "The top of the price band must be above its bottom." in response.content.decode()
    assert not RoutingRule.objects.filter(name="Beach buyers").exists()


def test_it_refuses_a_specific_agent_rule_without_its_agent(broker, downtown):
    response = broker.post(url(RoutingRule, "add"), new_rule_data(broker, downtown, strategy="agent"))
    assert rule_errors(response)["agent"] == ["Choose the agent this rule sends leads to."]
    assert "Choose the agent this rule sends leads to." in response.content.decode()


def test_it_refuses_a_fallback_agent_from_another_office(broker, downtown):
    rule = RoutingRule.objects.create(office=downtown, name="Buyers", lead_types=["buyer"])
    page = url(RoutingRule, "change", rule.pk)
    data = form_data(broker.get(page))
    data.update({"fallback": "agent", "fallback_agent": str(agent("dan@example.com").pk)})
    response = broker.post(page, data)
    assert rule_errors(response)["fallback_agent"]
    assert 'class="errorlist' in response.content.decode()
    rule.refresh_from_db()
    assert (rule.fallback, rule.fallback_agent) == ("pond", None)


def test_it_refuses_a_fallback_agent_from_another_office_on_a_new_rule(broker, downtown):
    data = new_rule_data(broker, downtown, fallback="agent", fallback_agent=str(agent("dan@example.com").pk))
    response = broker.post(url(RoutingRule, "add"), data)
    assert rule_errors(response)["fallback_agent"]
    assert not RoutingRule.objects.filter(name="Beach buyers").exists()


# --- the rule list ------------------------------------------------------------------------------


def test_it_lists_rules_with_their_conditions_and_target_in_words(broker, downtown, catch_all):
    tess = agent("tess@example.com")
    luxury = RoutingRule.objects.create(
        office=downtown, name="Luxury $1M+", position=20, price_min=1_000_000,
        strategy="first_to_claim", claim_timeout_minutes=5, fallback="team_leader",
    )
    beach = RoutingRule.objects.create(
        office=downtown, name="Beach sellers", position=30, sources=["Zillow"], lead_types=["seller", "home_value"],
        zip_codes=["33139", "33140"], cities=["Miami Beach"], time_window="after_hours",
        strategy="agent", agent=tess, fallback="rule", fallback_rule=luxury,
    )
    content = broker.get(url(RoutingRule, "changelist"), {"office__id__exact": downtown.pk}).content.decode()
    assert "price $1,000,000–any" in content
    assert "5 min to claim; else the office&#x27;s team leader" in content
    assert "source Zillow; type seller, home value; ZIP 33139, 33140; city Miami Beach; after hours" in content
    assert "Tess Morgan; else pool of “Luxury $1M+”" in content
    assert "Every lead no rule above took" in content
    # Tried in order, the catch-all last whatever its position says.
    assert content.index(luxury.name) < content.index(beach.name) < content.index("Every lead no rule above took")


def test_it_reorders_and_switches_rules_off_from_the_list(broker, downtown):
    first = RoutingRule.objects.create(office=downtown, name="Spanish speakers", position=10, languages=["es"])
    second = RoutingRule.objects.create(office=downtown, name="Sellers", position=20, lead_types=["seller"])
    page = url(RoutingRule, "changelist")
    data = changelist_data(broker.get(page))
    rows = {v: k.removesuffix("-id") for k, v in data.items() if k.endswith("-id")}
    data[f"{rows[str(first.pk)]}-position"] = "30"
    data.pop(f"{rows[str(second.pk)]}-active")
    response = broker.post(page, data)
    assert response.status_code == 302, response.context["cl"].formset.errors
    first.refresh_from_db(), second.refresh_from_db()
    assert (first.position, first.active) == (30, True) and (second.position, second.active) == (20, False)


# --- offices and leads --------------------------------------------------------------------------


def test_it_gives_an_office_added_in_admin_its_catch_all(broker):
    data = form_data(broker.get(url(Office, "add")))
    data.update({
        "brokerage": str(Brokerage.objects.get().pk), "name": "Harborview", "timezone": "America/Denver",
        "business_days": ["0", "1", "2", "3", "4"], "opens_at": "09:00", "closes_at": "18:00",
    })
    response = broker.post(url(Office, "add"), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    office = Office.objects.get(name="Harborview")
    rule = RoutingRule.objects.get(office=office)
    assert (rule.is_catch_all, rule.active, rule.name) == (True, True, "Everyone else")
    content = broker.get(url(Office, "change", office.pk)).content.decode()
    assert "Everyone else" in content and "Escalation ladder" in content


def test_it_shows_on_the_lead_why_it_was_routed_there(broker, downtown):
    ann, ben = agent("ann@example.com"), agent("ben@example.com")
    rule = RoutingRule.objects.create(office=downtown, name="Zillow buyers", sources=["Zillow"])
    PoolMember.objects.create(rule=rule, agent=ann)
    PoolMember.objects.create(rule=rule, agent=ben)
    Agent.objects.filter(pk=ben.pk).update(on_duty=False)
    missed_call_record(line=line_by_number(number=DOWNTOWN_BUYER_LINE), call_sid=new_sid("CA"), from_number=CALLER, reason="no_answer")
    lead = Lead.objects.get(phone=CALLER)
    event = LeadEvent.objects.get(lead=lead, kind=LeadEvent.Kind.ASSIGNED)
    assert lead.assigned_agent == ann and event.detail["skipped"] == [{"agent": "Ben Ortiz", "reason": "off duty"}]
    content = broker.get(url(Lead, "change", lead.pk)).content.decode()
    assert "skipped and why" in content.lower()
    assert '<ul class="routing-why"><li>Ben Ortiz: off duty</li></ul>' in content
    assert "Rule “Zillow buyers” → weighted round-robin: Ann Lee." in content
