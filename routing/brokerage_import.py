"""Onboarding a brokerage from one JSON document (DESIGN.md's import format).

Idempotent: offices are keyed by name, agents by email, lines by number, so running the same
file twice changes nothing and running an edited file updates in place. Invalid input is
rejected whole, before anything is written, with the path of the first bad field.

Beyond DESIGN.md's keys an office may carry "business_hours" ({"days": [0, 1, 2, 3, 4],
"opens": "08:00", "closes": "20:00"}, 0 = Monday), "textback_window_hours" and "escalation"
({"agents_to_try": 1, "last_step": "broker" | "pond", "business_hours_only": false}); an agent
"capacity" (most leads waiting for their reply); a line "listing_agent" (an agent's email),
"zip_code", "city" and "price" (the listing's, for routing rules). Left out, they keep whatever
is there, so a broker's edits in admin survive a re-import. Routing rules are set up in admin.
"""

import dataclasses
import datetime as dt
import re
import zoneinfo

import phonenumbers
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from routing.models import Agent, Brokerage, EscalationFinal, LeadType, Office, TrackingNumber
from routing.services import agent_user_access_sync

DEFAULT_BROKERAGE_NAME = "Textback Realty"


class BrokerageImportError(ValueError):
    """Raised with a message naming the bad field, e.g. offices[0].agents[1].phone."""


@dataclasses.dataclass
class ImportSummary:
    offices: int = 0
    agents: int = 0
    lines: int = 0

    def __str__(self) -> str:
        return f"{self.offices} offices, {self.agents} agents, {self.lines} lines"


def _require(obj: dict, key: str, path: str, kind: type = str):
    if not isinstance(obj, dict):
        raise BrokerageImportError(f"{path}: expected an object")
    if key not in obj:
        raise BrokerageImportError(f"{path}.{key}: required")
    value = obj[key]
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise BrokerageImportError(f"{path}.{key}: expected {kind.__name__}, got {type(value).__name__}")
    if kind is str and not value.strip():
        raise BrokerageImportError(f"{path}.{key}: must not be empty")
    return value.strip() if kind is str else value


def _e164(value, path: str) -> str:
    if not isinstance(value, str):
        raise BrokerageImportError(f"{path}: expected a phone number string")
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or not phonenumbers.is_possible_number(parsed):
        raise BrokerageImportError(f"{path}: {value!r} is not a phone number in E.164 form such as +15555550100")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _list(obj: dict, key: str, path: str) -> list:
    value = obj.get(key, [])
    if not isinstance(value, list):
        raise BrokerageImportError(f"{path}.{key}: expected a list")
    return value


def _whole_number(obj: dict, key: str, path: str, low: int, high: int, unit: str):
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BrokerageImportError(f"{path}.{key}: expected a whole number of {unit} from {low} to {high}")
    return value


def _clock(hours: dict, key: str, path: str) -> dt.time:
    value = _require(hours, key, path)
    match = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)", value)
    if not match:
        raise BrokerageImportError(f"{path}.{key}: {value!r} is not a time of day such as \"08:30\"")
    return dt.time(int(match[1]), int(match[2]))


def _business_hours(office: dict, path: str) -> dict:
    """Optional; left out, an office keeps the hours it has (or gets the defaults when new)."""
    if "business_hours" not in office:
        return {}
    hpath = f"{path}.business_hours"
    hours = office["business_hours"]
    if not isinstance(hours, dict):
        raise BrokerageImportError(f"{hpath}: expected an object with days, opens and closes")
    days = _require(hours, "days", hpath, list)
    if not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 6 for d in days):
        raise BrokerageImportError(f"{hpath}.days: list weekday numbers from 0 (Monday) to 6 (Sunday)")
    opens, closes = _clock(hours, "opens", hpath), _clock(hours, "closes", hpath)
    if opens >= closes:
        raise BrokerageImportError(f"{hpath}.closes: must be later than opens")
    return {"business_days": sorted(set(days)), "opens_at": opens, "closes_at": closes}


def _escalation(office: dict, path: str) -> dict:
    if "escalation" not in office:
        return {}
    epath = f"{path}.escalation"
    ladder = office["escalation"]
    if not isinstance(ladder, dict):
        raise BrokerageImportError(f"{epath}: expected an object with agents_to_try, last_step, business_hours_only")
    fields = {}
    if "agents_to_try" in ladder:
        fields["escalation_agent_steps"] = _whole_number(ladder, "agents_to_try", epath, 0, 10, "agents")
    if "last_step" in ladder:
        if ladder["last_step"] not in EscalationFinal.values:
            raise BrokerageImportError(f"{epath}.last_step: expected one of {', '.join(EscalationFinal.values)}")
        fields["escalation_final"] = ladder["last_step"]
    if "business_hours_only" in ladder:
        fields["escalation_business_hours_only"] = _require(ladder, "business_hours_only", epath, bool)
    return fields


def _listing_details(line: dict, path: str) -> dict:
    details = {}
    for key in ("zip_code", "city"):
        if key in line:
            value = line[key]
            if not isinstance(value, str) or len(value) > (10 if key == "zip_code" else 80):
                raise BrokerageImportError(f"{path}.{key}: expected short text")
            details[key] = value.strip()
    if "price" in line:
        details["price"] = _whole_number(line, "price", path, 1, 10**9, "dollars")
    if "listing_agent" in line:
        email = line["listing_agent"]
        if not isinstance(email, str) or "@" not in email:
            raise BrokerageImportError(f"{path}.listing_agent: expected the email of one of the office's agents")
        details["listing_agent"] = email.strip().lower()
    return details


def _validate(data) -> dict:
    """Check everything and return a normalised copy; nothing is written until this passes."""
    if not isinstance(data, dict):
        raise BrokerageImportError("document: expected a JSON object with an 'offices' list")
    offices = _require(data, "offices", "document", list)
    if not offices:
        raise BrokerageImportError("offices: list at least one office")
    brokerage = data.get("brokerage", {})
    if not isinstance(brokerage, dict):
        raise BrokerageImportError("brokerage: expected an object")
    out = {
        "brokerage": {
            "name": str(brokerage.get("name") or DEFAULT_BROKERAGE_NAME).strip(),
            "help_contact": str(brokerage.get("help_contact") or "").strip(),
        },
        "offices": [],
    }
    seen_offices, seen_emails, seen_lines = set(), set(), set()
    for i, office in enumerate(offices):
        path = f"offices[{i}]"
        name = _require(office, "name", path)
        if name in seen_offices:
            raise BrokerageImportError(f"{path}.name: {name!r} appears twice")
        seen_offices.add(name)
        tz = _require(office, "timezone", path)
        try:
            zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise BrokerageImportError(f"{path}.timezone: {tz!r} is not an IANA time zone such as America/New_York") from None
        office_fields = {"timezone": tz, "escalation_minutes": 10, **_business_hours(office, path)}
        if "escalation_minutes" in office:
            office_fields["escalation_minutes"] = _whole_number(office, "escalation_minutes", path, 1, 24 * 60, "minutes")
        if "textback_window_hours" in office:
            office_fields["textback_window_hours"] = _whole_number(office, "textback_window_hours", path, 1, 24 * 30, "hours")
        office_fields.update(_escalation(office, path))
        agents, lines = [], []
        for j, agent in enumerate(_list(office, "agents", path)):
            apath = f"{path}.agents[{j}]"
            email = _require(agent, "email", apath).lower()
            try:
                validate_email(email)
            except ValidationError:
                raise BrokerageImportError(f"{apath}.email: {email!r} is not an email address") from None
            if email in seen_emails:
                raise BrokerageImportError(f"{apath}.email: {email!r} appears twice")
            seen_emails.add(email)
            role = agent.get("role", "agent")
            if role not in Agent.Role.values:
                raise BrokerageImportError(f"{apath}.role: {role!r} is not one of {', '.join(Agent.Role.values)}")
            weight = agent.get("weight", 1)
            if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= 100:
                raise BrokerageImportError(f"{apath}.weight: expected a whole number from 1 to 100")
            languages = agent.get("languages", ["en"])
            if not isinstance(languages, list) or not all(isinstance(x, str) and x for x in languages):
                raise BrokerageImportError(f"{apath}.languages: expected a list of language codes such as [\"en\", \"es\"]")
            agents.append({
                "email": email, "name": _require(agent, "name", apath), "phone": _e164(agent.get("phone"), f"{apath}.phone"),
                "role": role, "weight": weight, "languages": languages,
                **({"max_waiting_leads": _whole_number(agent, "capacity", apath, 1, 1000, "leads")} if "capacity" in agent else {}),
            })
        for j, line in enumerate(_list(office, "lines", path)):
            lpath = f"{path}.lines[{j}]"
            number = _e164(line.get("number") if isinstance(line, dict) else None, f"{lpath}.number")
            if number in seen_lines:
                raise BrokerageImportError(f"{lpath}.number: {number} appears twice")
            seen_lines.add(number)
            lead_type = line.get("lead_type", "general")
            if lead_type not in LeadType.values:
                raise BrokerageImportError(f"{lpath}.lead_type: {lead_type!r} is not one of {', '.join(LeadType.values)}")
            listing = line.get("listing") or ""
            if not isinstance(listing, str):
                raise BrokerageImportError(f"{lpath}.listing: expected text")
            lines.append({
                "number": number, "source": _require(line, "source", lpath), "lead_type": lead_type, "listing": listing.strip(),
                **_listing_details(line, lpath),
            })
        emails = {a["email"] for a in agents}
        for j, line in enumerate(lines):
            if line.get("listing_agent") and line["listing_agent"] not in emails:
                raise BrokerageImportError(f"{path}.lines[{j}].listing_agent: {line['listing_agent']!r} is not an agent of this office")
        out["offices"].append({"name": name, "fields": office_fields, "agents": agents, "lines": lines})
    return out


def brokerage_import(data) -> ImportSummary:
    """Validate the whole document, then create or update everything in one transaction."""
    clean = _validate(data)
    User = get_user_model()
    summary = ImportSummary()
    with transaction.atomic():
        brokerage, _ = Brokerage.objects.get_or_create(name=clean["brokerage"]["name"])
        if clean["brokerage"]["help_contact"] and brokerage.help_contact != clean["brokerage"]["help_contact"]:
            brokerage.help_contact = clean["brokerage"]["help_contact"]
            brokerage.save(update_fields=["help_contact"])
        for office_data in clean["offices"]:
            office, _ = Office.objects.update_or_create(
                name=office_data["name"], defaults={"brokerage": brokerage, **office_data["fields"]}
            )
            summary.offices += 1
            for a in office_data["agents"]:
                user, _ = User.objects.get_or_create(username=a["email"], defaults={"email": a["email"]})
                first, _, last = a["name"].partition(" ")
                if (user.email, user.first_name, user.last_name) != (a["email"], first, last):
                    user.email, user.first_name, user.last_name = a["email"], first, last
                    user.save(update_fields=["email", "first_name", "last_name"])
                agent, _ = Agent.objects.update_or_create(user=user, defaults={"office": office, **{k: v for k, v in a.items() if k != "email"}})
                agent_user_access_sync(agent)
                summary.agents += 1
            for line in office_data["lines"]:
                fields = {k: v for k, v in line.items() if k != "number"}
                if "listing_agent" in fields:
                    fields["listing_agent"] = Agent.objects.get(user__email=fields["listing_agent"])
                TrackingNumber.objects.update_or_create(number=line["number"], defaults={"office": office, **fields})
                summary.lines += 1
    return summary
