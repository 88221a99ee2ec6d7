"""What each kind of endpoint receives, built from a lead's snapshot (`crm.selectors.lead_snapshot`),
and how the request is signed. Pure functions: the services decide when, these decide what."""

import datetime as dt
import hashlib
import hmac
import json
import zoneinfo

from crm.models import CrmEndpoint, EndpointKind
from leads.models import LeadFinancing, LeadRating
from leads.signals import Milestone
from routing.models import LeadType

SYSTEM = "Textback"
USER_AGENT = "Textback-CRM/1"
_INTENTS = {"buy": "buying", "sell": "selling", "both": "buying and selling"}
_SPEAKERS = {"lead": "Caller", "system": SYSTEM}


def _utc(iso: str) -> str:
    """ISO 8601 in UTC with a Z, the form Follow Up Boss uses for every date."""
    return dt.datetime.fromisoformat(iso).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _is_seller(snapshot: dict) -> bool:
    lead, qualification = snapshot["lead"], snapshot["qualification"] or {}
    said_selling = (qualification.get("answers") or {}).get("intent") in {"sell", "both"}
    return lead["lead_type"] in {LeadType.SELLER, LeadType.HOME_VALUE} or said_selling


def follow_up_boss_type(snapshot: dict) -> str:
    """Follow Up Boss runs action plans and automations on these inquiry types, so the type decides
    what the brokerage's CRM does next: a seller's valuation plan, a listing's showing plan."""
    lead = snapshot["lead"]
    if _is_seller(snapshot):
        return "Seller Inquiry"
    if lead["lead_type"] == LeadType.BUYER and lead["line"]["listing"]:
        return "Property Inquiry"
    return "General Inquiry"


def qualification_facts(snapshot: dict) -> list[str]:
    """What the caller told us, one fact a line, for an agent skimming the CRM's timeline."""
    lead, qualification = snapshot["lead"], snapshot["qualification"]
    facts = []
    if lead["rating"]:
        facts.append(f"Rating: {LeadRating(lead['rating']).label}")
    intent = ((qualification or {}).get("answers") or {}).get("intent")
    if intent in _INTENTS:
        facts.append(f"Intent: {_INTENTS[intent]}")
    if lead["timeline_months"] is not None:
        months = lead["timeline_months"]
        facts.append("Timeline: now" if months == 0 else f"Timeline: within {months} month{'s' if months != 1 else ''}")
    if lead["price"]:
        facts.append(f"Price: ${lead['price']:,}")
    if lead["financing"]:
        facts.append(f"Financing: {LeadFinancing(lead['financing']).label}")
    area = " ".join(v for v in (lead["city"], lead["zip_code"]) if v)
    if area:
        facts.append(f"Area: {area}")
    if lead["address"]:
        facts.append(f"Address: {lead['address']}")
    if qualification and qualification["unclear"]:
        facts.append("Unclear: " + ", ".join(qualification["unclear"]))
    if qualification and qualification["stop_reason"]:
        facts.append(f"Stopped: {qualification['stop_reason']}")
    return facts


def _speaker(message: dict) -> str:
    if message["sender"] == "agent":
        return message["agent"] or "Agent"
    return _SPEAKERS[message["sender"]]


def conversation_lines(snapshot: dict) -> list[str]:
    return [f"{_speaker(m)}: {m['body']}" for m in snapshot["messages"]]


def milestone_description(snapshot: dict, milestone: str) -> str:
    lead = snapshot["lead"]
    if milestone == Milestone.MISSED_CALL:
        line = lead["line"]
        texted = any(m["direction"] == "out" and m["sender"] == "system" for m in snapshot["messages"])
        return f"Missed call to {line['number']} ({line['source']})" + ("; Textback texted the caller back." if texted else ".")
    if milestone == Milestone.QUALIFIED:
        stop = (snapshot["qualification"] or {}).get("stop_reason")
        return f"Qualification by text stopped: {stop}" if stop else "Answered Textback's qualification questions by text."
    if milestone == Milestone.APPOINTMENT and lead["appointment_at"]:
        tz = zoneinfo.ZoneInfo(lead["office"]["timezone"])
        local = dt.datetime.fromisoformat(lead["appointment_at"]).astimezone(tz)
        return f"Appointment booked for {local:%a %b %d, %Y %H:%M} ({lead['office']['timezone']})."
    return "Appointment booked."


def follow_up_boss_event(snapshot: dict, *, milestone: str, at: dt.datetime, endpoint: CrmEndpoint) -> dict:
    """A body for Follow Up Boss's POST /v1/events, the endpoint it asks lead sources to use: it
    finds or creates the person (by phone and email) and runs the brokerage's automations."""
    lead = snapshot["lead"]
    person = {"phones": [{"value": lead["phone"], "type": "mobile"}], "tags": [SYSTEM, *filter(None, [lead["rating"]])]}
    if lead["name"]:
        first, _, last = lead["name"].strip().partition(" ")
        person.update({"firstName": first, **({"lastName": last.strip()} if last.strip() else {})})
    if lead["email"]:
        person["emails"] = [{"value": lead["email"]}]
    line = lead["line"]
    # The caller's own property (a seller's address) first, else the listing they called about.
    prop = {
        "street": lead["address"] or line["listing"],
        "city": lead["city"] or line["city"],
        "code": lead["zip_code"] or line["zip_code"],
        "price": lead["price"] or line["price"],
    }
    summary, conversation = qualification_facts(snapshot), conversation_lines(snapshot)
    message = "\n".join([*summary, *([""] if summary and conversation else []), *conversation])
    event = {
        "source": lead["source"] or SYSTEM,
        "system": endpoint.system_name or SYSTEM,
        "type": follow_up_boss_type(snapshot),
        "message": message,
        "description": milestone_description(snapshot, milestone),
        "person": person,
        "occurredAt": _utc(at.isoformat()),
    }
    if any(prop.values()):
        event["property"] = {k: v for k, v in prop.items() if v}
    return event


def webhook_event(snapshot: dict, *, delivery_id: int, milestone: str, at: dt.datetime) -> dict:
    """Our own format for any other CRM: the whole snapshot, named by delivery (a receiver dedupes
    retries on `id`) and by event."""
    return {"id": delivery_id, "event": milestone, "occurred_at": at.isoformat(), **snapshot}


def webhook_signature(secret: str, timestamp: int | str, body: bytes) -> str:
    """`sha256=` and the hex HMAC-SHA256 of "{timestamp}.{body}" keyed with the endpoint's secret.

    A receiver recomputes it over the raw body it received, compares with `hmac.compare_digest`,
    and rejects a timestamp more than a few minutes old, so a captured request cannot be replayed.
    """
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def request_for(endpoint: CrmEndpoint, payload: dict, *, event: str, delivery_id: int, timestamp: int) -> dict:
    """The keyword arguments for `requests.post` (but the URL and timeouts) for one delivery."""
    # Keys sorted: PostgreSQL's jsonb keeps its own key order, and a retry must post the same bytes.
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode()
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    if endpoint.kind == EndpointKind.FOLLOW_UP_BOSS:
        headers["X-System"] = endpoint.system_name or SYSTEM
        if endpoint.system_key:
            headers["X-System-Key"] = endpoint.system_key
        return {"data": body, "headers": headers, "auth": (endpoint.api_key, "")}
    headers.update({
        "X-Textback-Event": event,
        "X-Textback-Delivery": str(delivery_id),
        "X-Textback-Timestamp": str(timestamp),
        "X-Textback-Signature": webhook_signature(endpoint.secret, timestamp, body),
    })
    return {"data": body, "headers": headers}
