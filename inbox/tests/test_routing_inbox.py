"""What agents see of routing and escalation: why a lead came to them, the Escalated list, and
the live alerts of an offer and of an escalation."""

import datetime as dt

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.utils import timezone

from conftest import CALLER, DOWNTOWN_BUYER_LINE, new_sid
from inbox.services import agent_reply_send
from inbox.tests.conftest import agent, connect, frames, signed_in
from leads.models import Lead
from leads.services import lead_deadline_pass, missed_call_record
from routing.models import Agent, Office, PoolMember, RoutingRule
from routing.selectors import line_by_number


def miss(phone: str = CALLER) -> Lead:
    missed_call_record(line=line_by_number(number=DOWNTOWN_BUYER_LINE), call_sid=new_sid("CA"), from_number=phone, reason="no_answer")
    return Lead.objects.get(phone=phone)


@pytest.mark.django_db
def test_the_thread_says_why_the_lead_was_routed_to_me(brokerage):
    Agent.objects.filter(user__email="ann@example.com").update(on_duty=False)
    lead = miss()
    assert lead.assigned_agent.name == "Ben Ortiz"
    page = signed_in("ben@example.com").get(f"/leads/{lead.pk}/").content.decode()
    assert "Why was this routed to me?" in page
    assert "Rule <strong>Everyone else</strong>, then weighted round-robin" in page
    assert "Skipped Ann Lee: off duty" in page


@pytest.mark.django_db
def test_the_escalated_list_holds_leads_that_escalated_and_still_wait(brokerage):
    lead = miss()
    lead_deadline_pass(lead_id=lead.pk, now=timezone.now() + dt.timedelta(minutes=10))
    ben = signed_in("ben@example.com")
    listed = ben.get("/", {"view": "escalated"}).content.decode()
    assert f'id="row-{lead.pk}"' in listed
    page = ben.get(f"/leads/{lead.pk}/").content.decode()
    assert "Why did it escalate?" in page and "No reply for 10 min: escalated to the next agent in the pool, Ben Ortiz." in page
    agent_reply_send(agent=agent("ben@example.com"), lead=Lead.objects.get(pk=lead.pk), body="Hi, Ben here!")
    assert f'id="row-{lead.pk}"' not in ben.get("/", {"view": "escalated"}).content.decode()


@pytest.mark.django_db(transaction=True)
def test_an_offer_alerts_the_pool_live_and_the_first_claim_wins(brokerage):
    office = Office.objects.get(name="Downtown")
    offer = RoutingRule.objects.create(office=office, name="Luxury", strategy=RoutingRule.Strategy.FIRST_TO_CLAIM)
    for email in ("ann@example.com", "ben@example.com"):
        PoolMember.objects.create(rule=offer, agent=agent(email))
    ann, ben = signed_in("ann@example.com"), signed_in("ben@example.com")

    async def scenario():
        ann_socket, _, _ = await connect(ann, "/ws/inbox/")
        ben_socket, _, _ = await connect(ben, "/ws/inbox/")
        await frames(ann_socket), await frames(ben_socket)
        await database_sync_to_async(miss)()
        for socket in (ann_socket, ben_socket):
            assert "New lead: first to claim gets it" in await frames(socket)
        await ann_socket.disconnect(), await ben_socket.disconnect()

    async_to_sync(scenario)()
    lead = Lead.objects.get(phone=CALLER)
    assert ben.post(f"/leads/{lead.pk}/claim/", HTTP_HX_REQUEST="true").status_code == 200
    assert ann.post(f"/leads/{lead.pk}/claim/", HTTP_HX_REQUEST="true").status_code == 404  # no longer hers to see
    assert Lead.objects.get(pk=lead.pk).assigned_agent.name == "Ben Ortiz"


@pytest.mark.django_db(transaction=True)
def test_the_next_agent_hears_of_an_escalation_live(brokerage):
    lead = miss()
    ben = signed_in("ben@example.com")

    async def scenario():
        socket, _, _ = await connect(ben, "/ws/inbox/")
        await frames(socket)
        await database_sync_to_async(lead_deadline_pass)(lead_id=lead.pk, now=timezone.now() + dt.timedelta(minutes=10))
        frame = await frames(socket)
        assert "Escalated: waiting 10 min for a reply" in frame and f'id="row-{lead.pk}"' in frame
        await socket.disconnect()

    async_to_sync(scenario)()
