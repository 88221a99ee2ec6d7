"""Inbox fixtures: signed-in agents of the shared two-office brokerage, and leads in known hands."""

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from conftest import CALLER, DOWNTOWN_BUYER_LINE, LAKESIDE_LINE, new_sid
from leads.models import Call, Lead
from leads.services import inbound_sms_record
from routing.models import Agent, TrackingNumber


def agent(email: str) -> Agent:
    return Agent.objects.select_related("user", "office").get(user__email=email)


def signed_in(email: str) -> Client:
    client = Client()
    client.force_login(get_user_model().objects.get(email=email))
    return client


def lead_for(*, phone: str, line: str = DOWNTOWN_BUYER_LINE, agent_email: str | None = None, **fields) -> Lead:
    """A lead who called a moment ago (so agents' texts answer them, at any hour of the test run)."""
    tracking = TrackingNumber.objects.select_related("office").get(number=line)
    lead = Lead.objects.create(
        phone=phone, office=tracking.office, line=tracking, source=tracking.source, lead_type=tracking.lead_type,
        assigned_agent=agent(agent_email) if agent_email else None, **fields,
    )
    Call.objects.create(call_sid=new_sid("CA"), line=tracking, lead=lead, from_number=phone, dial_status="completed")
    return lead


@pytest.fixture
def leads(brokerage):
    """Ann's lead, Ben's lead, a Downtown pool lead and a Lakeside lead."""
    return {
        "ann": lead_for(phone=CALLER, agent_email="ann@example.com", name="Ann's buyer"),
        "ben": lead_for(phone="+15555551235", agent_email="ben@example.com", name="Ben's buyer"),
        "pool": lead_for(phone="+15555551236", name="Pool caller"),
        "lakeside": lead_for(phone="+15555551237", line=LAKESIDE_LINE, agent_email="dan@example.com", name="Lakeside owner"),
    }


# --- the websocket, as a browser tab opens it -------------------------------------------------
# A scenario runs in one event loop (the communicator's application lives in it); its database
# work goes through database_sync_to_async, as in the consumer.


async def connect(client, path: str, origin: str = "http://testserver"):
    from textback_site.asgi import application

    headers = [(b"origin", origin.encode()), (b"host", b"testserver")]
    if client is not None:
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await communicator.connect(timeout=5)
    return communicator, connected, code


async def frames(communicator, quiet: float = 0.5) -> str:
    """Everything the socket sends until it has been quiet for a moment."""
    out = []
    while not await communicator.receive_nothing(timeout=quiet):
        out.append(await communicator.receive_from())
    return "".join(out)


@database_sync_to_async
def text_from(lead: Lead, body: str) -> None:
    line = TrackingNumber.objects.get(pk=lead.line_id)
    inbound_sms_record(line=line, message_sid=new_sid("SM"), from_number=lead.phone, body=body, media_urls=[])
