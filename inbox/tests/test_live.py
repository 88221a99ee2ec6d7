"""The inbox's websocket as a tab sees it: what a change renders, once, and what a reconnect sends."""

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async

from compliance.models import ConsentEvent
from inbox.tests.conftest import agent, connect, frames, signed_in, text_from
from leads.models import Lead, Message
from leads.services import missed_call_record, message_status_record
from routing.models import Agent
from routing.selectors import line_by_number

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_tab_that_reconnects_catches_up_on_what_it_missed(leads):
    ann = signed_in("ann@example.com")

    async def scenario():
        await text_from(leads["ann"], "Sent while Ann's laptop slept")
        socket, connected, _ = await connect(ann, f"/ws/inbox/?lead={leads['ann'].pk}")
        assert connected
        catch_up = await frames(socket)
        # The list and the open thread, as they are now.
        assert 'id="conversation-list-wrap"' in catch_up and 'id="timeline"' in catch_up
        assert catch_up.count("Sent while Ann&#x27;s laptop slept") >= 2
        await socket.disconnect()

    async_to_sync(scenario)()


def test_one_transaction_is_one_frame_with_the_row_and_the_counts(leads):
    ann = signed_in("ann@example.com")

    async def scenario():
        socket, _, _ = await connect(ann, "/ws/inbox/")
        await frames(socket)
        await text_from(leads["ann"], "Are you free Saturday?")
        frame = await socket.receive_from(timeout=2)
        assert await socket.receive_nothing(timeout=0.3)
        assert '<ul hx-swap-oob="beforeend:#row-upserts">' in frame and f'id="row-{leads["ann"].pk}"' in frame
        assert "Are you free Saturday?" in frame and 'id="inbox-views"' in frame
        await socket.disconnect()

    async_to_sync(scenario)()


def test_the_assigned_agent_gets_a_toast_and_colleagues_get_nothing(brokerage):
    Agent.objects.filter(user__email__in=["ben@example.com", "tess@example.com"]).update(on_duty=False)
    ann, ben = signed_in("ann@example.com"), signed_in("ben@example.com")
    line = line_by_number(number="+15555550100")

    async def scenario():
        ann_socket, _, _ = await connect(ann, "/ws/inbox/")
        ben_socket, _, _ = await connect(ben, "/ws/inbox/")
        await frames(ann_socket), await frames(ben_socket)
        await database_sync_to_async(missed_call_record)(line=line, call_sid="CA" + "1" * 32, from_number="+15555557001", reason="no_answer")
        to_ann = await frames(ann_socket)
        assert "New lead assigned to you" in to_ann and "+15555557001" in to_ann
        assert "+15555557001" not in await frames(ben_socket)  # created and assigned at once: never in Ben's pool
        await ann_socket.disconnect(), await ben_socket.disconnect()

    async_to_sync(scenario)()
    assert Lead.objects.get(phone="+15555557001").assigned_agent.name == "Ann Lee"


def test_the_composer_is_re_rendered_only_when_the_gate_changes_its_mind(leads):
    ann = signed_in("ann@example.com")
    lead = leads["ann"]

    async def scenario():
        socket, _, _ = await connect(ann, f"/ws/inbox/?lead={lead.pk}")
        await frames(socket)
        await text_from(lead, "Hello")
        assert 'id="composer"' not in await frames(socket)  # a draft in progress survives
        await text_from(lead, "STOP")
        after_stop = await frames(socket)
        assert 'id="composer"' in after_stop and "This lead has opted out of texts." in after_stop
        await socket.disconnect()

    async_to_sync(scenario)()
    assert ConsentEvent.objects.filter(phone=lead.phone, kind=ConsentEvent.Kind.OPT_OUT).exists()


def test_an_alerts_delivery_updates_the_open_thread_only(leads):
    lead = leads["ann"]
    alert = Message.objects.create(
        lead=lead, line=lead.line, direction="out", kind=Message.Kind.AGENT_ALERT, sender="system",
        to_number=agent("ann@example.com").phone, body="New lead", status=Message.Status.SENT, provider_sid="SM" + "a" * 32,
    )
    ann, tess = signed_in("ann@example.com"), signed_in("tess@example.com")

    async def scenario():
        in_thread, _, _ = await connect(ann, f"/ws/inbox/?lead={lead.pk}")
        in_list, _, _ = await connect(tess, "/ws/inbox/")
        await frames(in_thread), await frames(in_list)
        await database_sync_to_async(message_status_record)(provider_sid=alert.provider_sid, status="delivered", error_code="")
        assert "SMS alert to the assigned agent" in await frames(in_thread)
        assert await in_list.receive_nothing(timeout=0.5)
        await in_thread.disconnect(), await in_list.disconnect()

    async_to_sync(scenario)()


def test_a_pool_lead_taken_by_the_router_leaves_every_colleagues_list(brokerage):
    from inbox.tests.conftest import lead_for

    pool_lead = lead_for(phone="+15555557002", name="Pool caller")
    Agent.objects.filter(user__email__in=["ann@example.com", "tess@example.com"]).update(on_duty=False)
    ann = signed_in("ann@example.com")

    async def scenario():
        socket, _, _ = await connect(ann, "/ws/inbox/")
        assert "Pool caller" in await frames(socket)
        await text_from(pool_lead, "Anyone there?")  # assigned to Ben, the one on duty
        assert f'id="row-{pool_lead.pk}" hx-swap-oob="delete"' in await frames(socket)
        await socket.disconnect()

    async_to_sync(scenario)()
    assert Lead.objects.get(pk=pool_lead.pk).assigned_agent.name == "Ben Ortiz"


def test_signing_out_closes_that_sessions_sockets(leads):
    ann = signed_in("ann@example.com")

    async def scenario():
        socket, _, _ = await connect(ann, "/ws/inbox/")
        await frames(socket)
        await database_sync_to_async(ann.post)("/accounts/logout/")
        assert await socket.receive_output(timeout=2) == {"type": "websocket.close", "code": 4401}

    async_to_sync(scenario)()


def test_a_lead_assigned_to_me_toasts_whatever_my_list_shows(leads):
    from inbox.services import lead_transfer

    ann_client, ann, tess = signed_in("ann@example.com"), agent("ann@example.com"), agent("tess@example.com")

    async def scenario():
        socket, _, _ = await connect(ann_client, "/ws/inbox/?view=closed")  # the lead is not in this view
        await frames(socket)
        await database_sync_to_async(lead_transfer)(actor=tess, lead=leads["ben"], to_agent=ann, reason="Ann covers Oak St")
        assert "New lead assigned to you" in await frames(socket)
        await socket.disconnect()

    async_to_sync(scenario)()
