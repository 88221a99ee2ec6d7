import pytest

from conftest import CALLER, DOWNTOWN_BUYER_LINE, new_sid
from leads.models import Lead
from leads.services import lead_assign, missed_call_record
from routing.models import Agent
from routing.selectors import line_by_number

pytestmark = pytest.mark.django_db


def test_reassigning_a_lead_tells_the_old_and_the_new_agent(brokerage, live_events, django_capture_on_commit_callbacks):
    missed_call_record(line=line_by_number(number=DOWNTOWN_BUYER_LINE), call_sid=new_sid("CA"), from_number=CALLER, reason="no_answer")
    lead = Lead.objects.get()
    old, new = lead.assigned_agent, Agent.objects.exclude(pk=lead.assigned_agent_id).filter(office=lead.office).first()
    live_events.join(f"agent.{old.pk}", f"agent.{new.pk}")
    with django_capture_on_commit_callbacks(execute=True):
        lead_assign(lead=lead, agent=new)
    events = live_events.drain()
    assert [e["type"] for e in events] == ["lead.assigned", "lead.assigned"]  # one per agent group
    lead.refresh_from_db()
    assert lead.assigned_agent == new and lead.assigned_at is not None
