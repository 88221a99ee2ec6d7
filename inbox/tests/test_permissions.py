"""Who sees which lead: one rule (leads_visible_to) for pages, actions and the websocket."""

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async

from compliance.models import ConsentEvent
from inbox.tests.conftest import agent, connect, frames, signed_in, text_from
from leads.models import Call, Lead, LeadEvent, Message
from leads.selectors import agent_live_groups, lead_live_groups, leads_visible_to

pytestmark = pytest.mark.django_db


def visible(email: str, leads: dict) -> set[str]:
    ids = set(leads_visible_to(agent(email)).values_list("pk", flat=True))
    return {name for name, lead in leads.items() if lead.pk in ids}


def test_agents_see_their_own_leads_and_their_offices_pool(leads):
    assert visible("ann@example.com", leads) == {"ann", "pool"}
    assert visible("dan@example.com", leads) == {"lakeside"}


def test_team_leaders_see_their_office_and_brokers_everything(leads):
    assert visible("tess@example.com", leads) == {"ann", "ben", "pool"}
    assert visible("bree@example.com", leads) == {"ann", "ben", "pool", "lakeside"}


def test_the_groups_an_agent_joins_hear_only_leads_they_may_see(leads):
    """Every group a lead publishes to is one only entitled agents join."""
    for email in ["ann@example.com", "ben@example.com", "tess@example.com", "dan@example.com", "bree@example.com"]:
        me = agent(email)
        joined = set(agent_live_groups(me))
        for lead in leads.values():
            hears = bool(joined & set(lead_live_groups(lead)) - {f"lead.{lead.pk}"})
            assert hears == leads_visible_to(me).filter(pk=lead.pk).exists(), (email, lead.name)


ACTIONS = [
    ("get", ""), ("post", "reply/"), ("post", "claim/"), ("post", "transfer/"), ("post", "outcome/"),
    ("post", "note/"), ("post", "details/"), ("post", "call-back/"), ("post", "call-back/done/"),
    ("post", "consent/"), ("post", "revocation/"),
]


@pytest.mark.parametrize("method,action", ACTIONS)
def test_an_agent_gets_404_on_another_agents_lead(leads, method, action):
    ann = signed_in("ann@example.com")
    ben_lead = leads["ben"]
    data = {"body": "hi", "agent": str(agent("ann@example.com").pk), "reason": "mine now", "outcome": "closed",
            "text": "note", "name": "x", "email": "", "lead_type": "buyer", "action": "opt_out", "note": "asked",
            "decision": "opt_out", "message": "1"}
    response = getattr(ann, method)(f"/leads/{ben_lead.pk}/{action}", data if method == "post" else None)
    assert response.status_code == 404
    ben_lead.refresh_from_db()
    assert ben_lead.assigned_agent.user.email == "ben@example.com" and ben_lead.name == "Ben's buyer"
    assert not Message.objects.exists() and not LeadEvent.objects.exists() and not ConsentEvent.objects.exists()
    assert not ben_lead.calls.filter(direction=Call.Direction.OUTBOUND).exists()


def test_an_agent_of_another_office_gets_404_on_the_pool(leads):
    assert signed_in("dan@example.com").post(f"/leads/{leads['pool'].pk}/claim/").status_code == 404
    assert Lead.objects.get(pk=leads["pool"].pk).assigned_agent is None


def test_the_list_shows_only_visible_leads(leads):
    page = signed_in("ann@example.com").get("/").content.decode()
    assert "Ann&#x27;s buyer" in page and "Pool caller" in page
    assert "Ben&#x27;s buyer" not in page and "Lakeside owner" not in page


def test_anonymous_visitors_get_the_login_page_not_the_inbox(leads, client):
    for path in ["/", f"/leads/{leads['ann'].pk}/"]:
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert client.post(f"/leads/{leads['ann'].pk}/reply/", {"body": "hi"}).status_code == 302
    assert not Message.objects.exists()


# --- the websocket ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_socket_refuses_anonymous_and_foreign_origins(leads):
    ann = signed_in("ann@example.com")

    async def scenario():
        _, connected, code = await connect(None, "/ws/inbox/")
        assert not connected and code == 4401
        _, connected, _ = await connect(ann, "/ws/inbox/", origin="https://evil.example")
        assert not connected

    async_to_sync(scenario)()


@pytest.mark.django_db(transaction=True)
def test_the_socket_relays_own_leads_and_never_another_agents(leads):
    ann = signed_in("ann@example.com")

    async def scenario():
        socket, connected, _ = await connect(ann, f"/ws/inbox/?lead={leads['ben'].pk}")
        assert connected
        catch_up = await frames(socket)
        assert "Ann&#x27;s buyer" in catch_up and "Ben&#x27;s buyer" not in catch_up
        await text_from(leads["ben"], "A secret for Ben")  # she asked for Ben's thread: she hears nothing of it
        await text_from(leads["ann"], "Hello Ann")
        received = await frames(socket)
        assert "Hello Ann" in received and "A secret for Ben" not in received
        await socket.disconnect()

    async_to_sync(scenario)()


@pytest.mark.django_db(transaction=True)
def test_a_lead_transferred_away_leaves_the_old_agents_page(leads):
    from inbox.services import lead_transfer

    ann, tess, ben = signed_in("ann@example.com"), agent("tess@example.com"), agent("ben@example.com")

    async def scenario():
        socket, connected, _ = await connect(ann, f"/ws/inbox/?lead={leads['ann'].pk}")
        assert connected
        await frames(socket)
        await database_sync_to_async(lead_transfer)(
            actor=tess, lead=leads["ann"], to_agent=ben, reason="Ben knows the street"
        )
        received = await frames(socket)
        assert f'id="row-{leads["ann"].pk}" hx-swap-oob="delete"' in received
        assert "This conversation has left your inbox" in received and "Ben knows the street" not in received
        await socket.disconnect()

    async_to_sync(scenario)()
