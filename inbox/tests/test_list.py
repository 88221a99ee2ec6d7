"""The conversation list: filters, search, unread counts, the waiting clock, and speed at scale."""

import time

import pytest
from django.utils import timezone

from conftest import CALLER
from inbox.selectors import inbox_counts, inbox_page
from inbox.tests.conftest import agent, lead_for, signed_in
from leads.models import Lead

pytestmark = pytest.mark.django_db


def names(page) -> list[str]:
    return [lead.name for lead in page]


def test_the_filters_show_what_they_say(leads):
    ann = agent("ann@example.com")
    Lead.objects.filter(pk=leads["pool"].pk).update(awaiting_reply_since=timezone.now())
    Lead.objects.filter(pk=leads["ann"].pk).update(status=Lead.Status.CLOSED)
    assert names(inbox_page(agent=ann, view="open")) == ["Pool caller"]
    assert names(inbox_page(agent=ann, view="mine")) == []
    assert names(inbox_page(agent=ann, view="pool")) == ["Pool caller"]
    assert names(inbox_page(agent=ann, view="needs_reply")) == ["Pool caller"]
    assert names(inbox_page(agent=ann, view="closed")) == ["Ann's buyer"]
    assert names(inbox_page(agent=ann, view="escalated")) == []
    assert inbox_counts(agent=ann) == {"mine": 0, "pool": 1, "needs_reply": 1, "call_back": 0}


def test_search_finds_by_name_or_any_way_of_writing_the_phone(leads):
    tess = agent("tess@example.com")
    assert names(inbox_page(agent=tess, view="open", query="ben's")) == ["Ben's buyer"]
    assert names(inbox_page(agent=tess, view="open", query="(555) 555-1235")) == ["Ben's buyer"]
    assert names(inbox_page(agent=tess, view="open", query="Lakeside")) == []  # another office's lead


def test_the_list_is_newest_activity_first(leads):
    Lead.objects.filter(pk=leads["pool"].pk).update(last_activity_at=timezone.now() + timezone.timedelta(minutes=1))
    assert names(inbox_page(agent=agent("tess@example.com"), view="open"))[0] == "Pool caller"


def test_unread_counts_until_the_agent_opens_the_thread(brokerage, twilio):
    twilio.sms("Hello?")
    twilio.sms("Anyone there?")
    lead = Lead.objects.get(phone=CALLER)
    owner = lead.assigned_agent
    client = signed_in(owner.user.email)
    assert inbox_page(agent=owner, view="open")[0].unread == 2
    assert 'title="2 unread"' in client.get("/").content.decode()
    client.get(f"/leads/{lead.pk}/")
    assert inbox_page(agent=owner, view="open")[0].unread == 0
    twilio.sms("Hello again")
    assert inbox_page(agent=owner, view="open")[0].unread == 1
    # Each agent reads for themselves.
    assert inbox_page(agent=agent("tess@example.com"), view="open")[0].unread == 3


def test_a_new_text_starts_the_waiting_clock_and_the_row_says_so(brokerage, twilio):
    twilio.sms("Is it still available?")
    lead = Lead.objects.get(phone=CALLER)
    assert lead.awaiting_reply_since is not None
    page = signed_in(lead.assigned_agent.user.email).get("/").content.decode()
    assert f'data-since="{lead.awaiting_reply_since.isoformat()}"' in page and "Needs reply" in page


def test_ten_thousand_conversations_page_quickly_with_a_fixed_number_of_queries(brokerage, django_assert_max_num_queries):
    downtown_line = lead_for(phone="+15550000000").line
    Lead.objects.bulk_create(
        Lead(phone=f"+1556{i:07d}", name=f"Caller {i}", office=downtown_line.office, line=downtown_line, source="Zillow")
        for i in range(10_000)
    )
    client = signed_in("tess@example.com")
    client.get("/")  # warm up templates
    for url in ["/", "/?page=150", "/?view=pool&q=Caller 99"]:
        with django_assert_max_num_queries(12):
            started = time.perf_counter()
            response = client.get(url)
            elapsed = time.perf_counter() - started
        assert response.status_code == 200
        assert elapsed < 1.0, f"{url} took {elapsed:.2f} s"
    assert "Page 150 of 201" in client.get("/?page=150").content.decode()
