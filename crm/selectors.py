"""Reads for the CRM write-back: who listens for a milestone, what a lead looks like to a CRM, and
which deliveries are due."""

import datetime as dt

from django.db.models import Exists, OuterRef

from crm.models import CrmDelivery, CrmEndpoint, DeliveryStatus
from leads.models import Lead, Message, Qualification

# A conversation longer than this is cut to its latest messages: a CRM note is for reading, and
# some CRMs refuse very large bodies.
MESSAGES_SENT = 100


def endpoints_listening(*, lead: Lead, milestone: str) -> list[CrmEndpoint]:
    """The enabled endpoints of the lead's brokerage subscribed to the milestone, in one query
    (through the office's id, which the lead row carries): the missed call's path pays only that."""
    endpoints = CrmEndpoint.objects.filter(enabled=True, brokerage__offices=lead.office_id).order_by("id")
    # A JSON list is filtered here rather than in SQL: SQLite has no JSON containment lookup.
    return [endpoint for endpoint in endpoints if milestone in endpoint.milestones]


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def lead_snapshot(*, lead: Lead) -> dict:
    """Everything a CRM may want to know of a lead, as JSON-able values, shared by every format."""
    line, agent = lead.line, lead.assigned_agent
    qualification = Qualification.objects.filter(lead=lead).first()
    messages = (
        Message.objects.filter(lead=lead, to_number="")  # alerts to agents' own phones are not the conversation
        .exclude(status=Message.Status.CANCELED)  # never sent, so the caller never read them
        .select_related("agent")
        .order_by("-created_at", "-id")[:MESSAGES_SENT]
    )
    return {
        "lead": {
            "id": lead.pk,
            "phone": lead.phone,
            "name": lead.name,
            "email": lead.email,
            "lead_type": lead.lead_type,
            "source": lead.source or line.source,
            "status": lead.status,
            "outcome": lead.outcome,
            "rating": lead.rating,
            "timeline_months": lead.timeline_months,
            "financing": lead.financing,
            "price": lead.price,
            "zip_code": lead.zip_code,
            "city": lead.city,
            "address": lead.address,
            "language": lead.language,
            "appointment_at": _iso(lead.appointment_at),
            "created_at": _iso(lead.created_at),
            "office": {"name": lead.office.name, "timezone": lead.office.timezone},
            "line": {
                "number": line.number, "source": line.source, "listing": line.listing,
                "city": line.city, "zip_code": line.zip_code, "price": line.price,
            },
            "agent": {"name": agent.name, "email": agent.user.email, "phone": agent.phone} if agent else None,
        },
        "qualification": {
            "state": qualification.state,
            "answers": qualification.answers,
            "replies": qualification.replies,
            "unclear": qualification.unclear,
            "stop_reason": qualification.stop_reason,
        } if qualification else None,
        "messages": [
            {
                "direction": m.direction,
                "sender": m.sender,
                "agent": m.agent.name if m.agent else None,
                "body": m.body,
                "at": _iso(m.created_at),
            }
            for m in reversed(messages)
        ],
    }


def older_pending_exists() -> Exists:
    """For a delivery (the outer row): an older one to the same endpoint still waits.

    Each endpoint hears its events one at a time, in the order they happened: a CRM hears of the
    missed call before the appointment it led to, and a CRM that is down is probed by its oldest
    delivery alone rather than by every lead at once. The price is that a delivery the CRM keeps
    answering with a 5xx holds the ones behind it until it succeeds, fails, or is 48 hours old.
    """
    return Exists(
        CrmDelivery.objects.filter(endpoint=OuterRef("endpoint"), status=DeliveryStatus.PENDING, pk__lt=OuterRef("pk"))
    )


def deliveries_due_ids(*, now: dt.datetime, limit: int = 1000) -> list[int]:
    """The head of each endpoint's queue, when its time has come: a new delivery whose task was
    lost, a retry that is due, a claim whose worker died (its lease ran out)."""
    return list(
        CrmDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        .exclude(older_pending_exists())
        .order_by("id").values_list("pk", flat=True)[:limit]
    )


def endpoint_next_due_id(*, endpoint_id: int, now: dt.datetime) -> int | None:
    """The endpoint's oldest pending delivery, if it may go now: the next in line after one settles."""
    head = (
        CrmDelivery.objects.filter(endpoint_id=endpoint_id, status=DeliveryStatus.PENDING)
        .order_by("id").values_list("pk", "next_attempt_at").first()
    )
    return head[0] if head and head[1] <= now else None
