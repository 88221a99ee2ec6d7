"""A brokerage at scale, for the manager dashboards' benchmark: a year of calls, texts and leads.

Creates (and leaves in place) a PostgreSQL database of its own, --db-name (textback_bench_scale):
only the server is taken from DATABASE_URL; the database is dropped if it exists, created,
migrated, then filled. At --scale 1.0 (volumes scale, the organisation does not):

- the organisation, through the product's own onboarding (routing.brokerage_import): 20 offices in
  five US time zones with different hours and escalation settings, 300 agents (15 an office: 1-2
  team leaders each, 2 brokers in all), 60 tracking lines (3 an office, from Zillow to yard signs,
  every lead type), extra routing rules with pools in half the offices;
- 200,000 leads over the 365 days up to now (first contacts business-hours-heavy and weekday-heavy
  in each office's own time zone, a spring peak, a growing business), ~350,000 inbound calls (~40 %
  missed), 1,000,000 messages (+-1 %: text-backs, callers' texts, agents' replies and follow-ups,
  alerts to agents' phones, opt-out confirmations), agents' call-backs, the timeline (assigned,
  escalated, claimed, outcome, call-back events), the consent ledger (an implied-consent event per
  inbound call and text, ~2 % of leads opting out; hash-chained and verified at the end), the line
  types the worker looks up before a caller's first text (~1 % landlines), round-robin turns, the
  agents' read marks, and a few hundred leads waiting for a human right now (their ladder run up
  to now, escalation_due_at ahead).

Every row is what the product's own paths would have written for the story simulated: a missed
call routes a new lead and queues its text-back, a repeat call within the office's text-back window
or from an engaged caller is not texted again, a landline's text-back is cancelled and a call-back
task appears, the escalation ladder climbs by the office's clock while a lead waits, and so on.
The story is drawn in Python from --seed (deterministic for a seed, scale and --now); the rows are
sorted by time, so ids and the tables' physical order follow time as in production, and loaded
with COPY (the foreign keys are checked, at each table's commit). Then VACUUM (ANALYZE), each
missed call's outcome stored by the product's own refresh (what the services keep up to date as
events happen), compliance.selectors.ledger_verify() over the whole chain, and leads.metrics.dashboard() over the
last --dashboard-days as a broker reads it. Not generated: MessageStatusEvent (Twilio's status
callbacks), TwilioWebhook (pruned in production anyway), national Do Not Call entries.

    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/seed_scale.py                       # [--scale 1.0 --seed 42 --db-name textback_bench_scale]
    .venv/bin/python bench/seed_scale.py --scale 0.01          # a quick run: 2,000 leads, 10,000 messages
    .venv/bin/python bench/seed_scale.py --drop                # drop the database instead

Every user's password is BENCH_PASSWORD below. Exit 0 when the ledger verifies and the messages
are within 1 % of the target, 1 otherwise; the database stays either way.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import datetime as dt
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time
import types
import zoneinfo
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DEFAULT_DB_NAME = "textback_bench_scale"
# Databases this script must never create, fill or drop, whatever --db-name says.
PROTECTED_DB_NAMES = {"postgres", "template0", "template1", "test", "test_test", "root"}
BENCH_PASSWORD = "textback-bench-scale"
BROKERAGE_NAME = "Summit Key Realty"
DOMAIN = "summitkey.example"

# --- the volumes at --scale 1.0 --------------------------------------------------------------------
LEADS = 200_000
MESSAGES = 1_000_000
CALLS_PER_CALLING_LEAD = 1.86  # ~350,000 inbound calls over the leads whose first contact is a call
TEXT_FIRST_SHARE = 0.06  # leads whose first contact is a text, not a call
WAITING_NOW = 300  # leads picked to be waiting for a human right now (plus the few the story leaves waiting)
DAYS = 365

# --- how people behave --------------------------------------------------------------------------------
ANSWER_PROB_BASE = 0.62  # per ring during business hours, before the office's and the agent's factors
REPLY_TO_TEXTBACK = 0.30  # callers who text back after a delivered/sent text-back
STOP_AMONG_FIRST_REPLIES = 0.09  # the first reply is STOP (a keyword opt-out)
REVOKE_PER_LEAD_TEXT = 0.008  # a later text asks us to stop in words (confirmed once)
LANDLINE_SHARE = 0.014
NEVER_ANSWERED = 0.02  # waits that end with the lead closed, no human ever reaching them
RT_MEDIAN_S = 5.5 * 60  # an agent's first touch after a miss or a text: lognormal around this...
RT_SIGMA = 0.6
RT_TAIL_SHARE = 0.01  # ...except these, which take hours
RT_TAIL_MEDIAN_S = 100 * 60
CONVERSATION_MEAN_EXCHANGES = 2.6  # adjusted on the fly so the messages total MESSAGES x scale

TZ_EAST, TZ_CENTRAL, TZ_MOUNTAIN, TZ_ARIZONA, TZ_PACIFIC = (
    "America/New_York", "America/Chicago", "America/Denver", "America/Phoenix", "America/Los_Angeles",
)
# name, time zone, area codes (the office's callers' numbers), share of the brokerage's calls, Spanish-speaking share
OFFICES = [
    ("Manhattan", TZ_EAST, (212, 646, 917), 1.6, 0.10), ("Brooklyn", TZ_EAST, (718, 347), 1.1, 0.12),
    ("Boston", TZ_EAST, (617, 857), 0.9, 0.05), ("Philadelphia", TZ_EAST, (215, 267), 0.8, 0.06),
    ("Miami", TZ_EAST, (305, 786), 1.3, 0.35), ("Orlando", TZ_EAST, (407, 321), 0.9, 0.15),
    ("Atlanta", TZ_EAST, (404, 678, 770), 1.2, 0.05), ("Charlotte", TZ_EAST, (704, 980), 0.7, 0.04),
    ("Chicago", TZ_CENTRAL, (312, 773, 872), 1.4, 0.10), ("Dallas", TZ_CENTRAL, (214, 469, 972), 1.2, 0.15),
    ("Houston", TZ_CENTRAL, (713, 832, 281), 1.3, 0.30), ("Austin", TZ_CENTRAL, (512, 737), 1.0, 0.12),
    ("Nashville", TZ_CENTRAL, (615, 629), 0.7, 0.03), ("Minneapolis", TZ_CENTRAL, (612, 651), 0.5, 0.03),
    ("Denver", TZ_MOUNTAIN, (303, 720), 0.9, 0.10), ("Phoenix", TZ_ARIZONA, (602, 480, 623), 1.0, 0.25),
    ("Salt Lake City", TZ_MOUNTAIN, (801, 385), 0.5, 0.06), ("Los Angeles", TZ_PACIFIC, (213, 310, 323), 1.5, 0.32),
    ("San Diego", TZ_PACIFIC, (619, 858), 0.8, 0.25), ("Seattle", TZ_PACIFIC, (206, 425), 0.9, 0.04),
]
AGENTS_PER_OFFICE = 15
BROKER_OFFICES = (0, 8)  # one broker each: Manhattan and Chicago
# Offices that differ: hours (index -> (days, opens, closes)), ladders, pond as the last step.
HOURS_LONG = {1, 6, 11, 16}  # 8:00-21:00 every day, escalation by the wall clock (the others pause at night)
HOURS_SHORT = {13, 19}  # Mon-Sat 9:00-19:00
ESCALATION_MINUTES = [20, 15, 30, 20, 30, 15, 20, 30, 20, 25, 30, 20, 15, 30, 20, 25, 30, 20, 30, 20]
POND_FINAL = {3, 11}
TWO_AGENT_STEPS = {0, 4, 8, 12, 16}
SELLER_RULE_OFFICES = {0, 2, 4, 5, 7, 10, 12, 14, 15, 17}  # offices with a seller or home-value line
SPANISH_RULE_OFFICES = {4, 10, 15, 17, 18}
# A sellers' pool member (its heaviest) on leave for the first 60 % of the year: the pool's shares show it.
LEAVE_OFFICES = {2, 10, 15}

LINE_FIRST = ("Zillow", "buyer", 3.0)
LINE_SECOND = [("Realtor.com", "buyer", 2.0), ("Homes.com", "buyer", 1.4), ("Facebook Ads", "general", 1.6), ("Google Ads", "general", 1.8)]
LINE_THIRD = [("Yard sign", "seller", 1.0), ("Website", "general", 1.3), ("Home value ad", "home_value", 1.2),
              ("Open house flyer", "buyer", 0.8), ("Postcard", "seller", 0.7)]
STREETS = ["Oak St", "Maple Ave", "Cedar Ln", "Elm St", "Park Pl", "Lakeview Dr", "Hillcrest Rd", "Sunset Blvd", "Willow Way",
           "Riverside Dr", "Highland Ave", "Chestnut St", "Magnolia Ct", "Juniper Rd", "Aspen Cir"]
FIRST_NAMES = ["Ann", "Ben", "Cara", "Dan", "Eve", "Finn", "Gia", "Hugo", "Ivy", "Jon", "Kai", "Lena", "Max", "Nora", "Omar", "Pia",
               "Quinn", "Rosa", "Sam", "Tess", "Uma", "Vic", "Wes", "Xena", "Yara", "Zane", "Luis", "Mia", "Raj", "Sofia", "Theo", "Zoe"]
LAST_NAMES = ["Lee", "Park", "Diaz", "Nguyen", "Smith", "Garcia", "Brown", "Khan", "Rossi", "Cohen", "Okafor", "Silva", "Moore",
              "Patel", "Kim", "Lopez", "Novak", "Ward", "Hayes", "Reyes", "Fox", "Stone", "Bauer", "Ito"]

# What people write. {listing}, {agent}, {first}, {brokerage}, {n} are filled per lead.
LEAD_TEXTS = {
    "buyer": ["Hi, is {listing} still available?", "Can we see it this weekend?", "What are the HOA fees?", "Is the price negotiable?",
              "We're pre-approved, how soon can we tour?", "Does it have a garage?", "Saturday morning works for us",
              "Can you send more photos?", "What's the school district?", "Is there an open house?", "How many offers are in?",
              "We'd like to make an offer", "Great, see you then", "Running 10 min late", "Yes please", "Perfect, thank you!",
              "Is it pet friendly?", "What are the taxes like?", "Could we do 5:30 on Thursday?", "Ok sounds good"],
    "seller": ["Thinking of selling in the spring", "What would my home list for?", "What's your commission?", "Can you come by Tuesday?",
               "It's a 3 bed 2 bath, about 1,800 sq ft", "We redid the kitchen last year", "How long do homes sit on the market now?",
               "Ok, send me the comps", "That works", "Thanks, talk soon", "Yes", "We need to move by August"],
    "home_value": ["What's my home worth?", "Just curious about the value", "Address is {n} Maple Ct", "Not selling yet, just curious",
                   "Ok thanks!", "Can you email the report?", "That's higher than I thought", "Sure, Thursday works"],
    "general": ["Hi, I called earlier", "Who is this?", "I saw your sign", "Can you call me back after 5?", "Looking to buy in the area",
                "Thanks!", "Ok", "Yes", "Sounds good", "What areas do you cover?", "Do you do rentals?"],
}
AGENT_FIRST_TOUCH = [
    "Hi{first}! This is {agent} with {brokerage}. Sorry I missed your call - how can I help?",
    "Hi{first}, {agent} here from {brokerage}. Got your call about {listing} - is now a good time to chat?",
    "Hello{first}! {agent} with {brokerage} - thanks for reaching out. What can I do for you?",
]
AGENT_REPLIES = [
    "Yes it is! Would Saturday at 11 work for a showing?", "Absolutely, I'll send the details over now.",
    "The HOA is $240/month and covers exterior maintenance.", "Great - you're down for Saturday 11am. See you there!",
    "Happy to help. What's the best time for a quick call?", "I can run a free market analysis for you this week.",
    "Thanks! I'll follow up tomorrow with comps.", "Good question - let me check with the listing agent and get back to you.",
    "Here are more photos: https://" + DOMAIN + "/l/{n}", "No problem at all!", "Sounds good, talk then.",
    "I'll put together a few similar homes for you.", "Yes, pets are welcome - two max.", "I'll confirm with the sellers and text you.",
]
AGENT_AFTER_CALL = [
    "Great talking with you{first}! Here's the listing: https://" + DOMAIN + "/l/{n}",
    "Thanks for the call - as promised, the comps: https://" + DOMAIN + "/c/{n}",
    "Nice chatting{first}. Text me here anytime. - {agent}",
]
AGENT_FOLLOW_UP = [
    "Hi{first}, just following up on your call about {listing}. Still interested?",
    "Hi{first}, {agent} from {brokerage} again - want me to set up a showing?",
    "Checking in{first} - any questions I can answer?",
]
STOP_WORDS = ["STOP", "Stop", "stop", "UNSUBSCRIBE", "STOP ", "Stop."]
REVOKE_WORDS = ["Please stop texting me", "Stop texting me please", "Remove me from your list", "Do not text me again"]

# Hour of day (local) a call or a first text comes in: business hours, evenings thinning out.
HOUR_WEIGHTS = [0.02, 0.01, 0.01, 0.01, 0.02, 0.04, 0.1, 0.4, 2.5, 6.5, 8.5, 9.0, 8.0, 8.0, 8.5, 8.5, 8.0, 7.5, 6.5, 3.5, 0.6,
                0.3, 0.12, 0.06]
WEEKDAY_WEIGHTS = [1.0, 1.05, 1.0, 1.0, 0.95, 0.72, 0.45]  # Mon..Sun
MONTH_WEIGHTS = [0.85, 0.9, 1.1, 1.25, 1.3, 1.25, 1.1, 1.05, 1.0, 0.95, 0.85, 0.7]  # the spring market


def log(text: str) -> None:
    print(f"[seed_scale {time.perf_counter() - STARTED:7.1f}s] {text}", flush=True)


STARTED = time.perf_counter()
UTC = dt.UTC


def to_dt(ts: float | None) -> dt.datetime | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, UTC)


# --- the database -----------------------------------------------------------------------------------


class Database:
    """The seed's own database on the server DATABASE_URL names; the environment the product reads."""

    def __init__(self, db_name: str):
        url = os.environ.get("DATABASE_URL", "")
        if not url.startswith(("postgres://", "postgresql://")):
            raise SystemExit("seed_scale: set DATABASE_URL to a postgres:// URL (only its server is used; COPY is PostgreSQL's)")
        if db_name in PROTECTED_DB_NAMES or db_name.startswith("test"):
            raise SystemExit(f"seed_scale: refusing to use the database {db_name!r}; choose another --db-name")
        parts = urlsplit(url)
        if parts.path.lstrip("/") == db_name:
            raise SystemExit(f"seed_scale: {db_name!r} is DATABASE_URL's own database; choose another --db-name")
        self.name = db_name
        self.url = urlunsplit(parts._replace(path=f"/{db_name}"))
        self.dsn = urlunsplit(parts._replace(path=f"/{db_name}", scheme="postgresql"))
        self.admin_dsn = urlunsplit(parts._replace(path="/postgres", scheme="postgresql"))
        self.tmp: Path | None = None
        self.created = False

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.admin_dsn, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql)

    def recreate(self) -> None:
        self.admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self.admin(f'CREATE DATABASE "{self.name}"')
        self.created = True

    def drop(self) -> None:
        self.admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def django_setup(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="textback-seed-scale-"))  # the product's var dir, removed at the end
        os.environ.update({
            "DATABASE_URL": self.url, "TEXTBACK_VAR_DIR": str(self.tmp), "DEBUG": "false",
            "SECRET_KEY": "bench-seed-scale-" + "0" * 40, "DJANGO_SETTINGS_MODULE": "textback_site.settings",
        })
        for name in ("REDIS_URL", "SMS_BACKEND", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
            os.environ.pop(name, None)  # nothing here sends, queues or publishes
        import django

        django.setup()

    def close(self) -> None:
        try:
            from django.db import connections

            connections.close_all()
            if hasattr(connections["default"], "close_pool"):
                connections["default"].close_pool()
        except Exception:
            pass
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)


# --- the organisation -------------------------------------------------------------------------------


class OfficeSpec:
    __slots__ = ("i", "model", "id", "name", "tz", "days", "opens", "closes", "window", "bh_only", "agent_steps", "pond_final",
                 "areas", "volume", "spanish", "miss_factor", "agents", "leaders", "brokers", "takers", "catch_all", "seller_rule",
                 "spanish_rule", "lines")

    def is_open(self, ts: float) -> bool:
        local = dt.datetime.fromtimestamp(ts, self.tz)
        return local.weekday() in self.days and self.opens <= local.time() < self.closes

    def due(self, start: float) -> float:
        """When a wait that started (or last moved) at `start` escalates: Lead.escalation_clock_set's rule."""
        if self.bh_only:
            return self.model.business_time_add(to_dt(start), self.window).timestamp()
        return start + self.window * 60

    def after(self, start: float, seconds: float) -> float:
        """`seconds` of the office's escalation clock after `start`: how agents' answers run too
        (an office that pauses escalation at night answers in the morning)."""
        if self.bh_only:
            whole = int(seconds // 60)
            return self.model.business_time_add(to_dt(start), whole).timestamp() + (seconds - whole * 60)
        return start + seconds


class AgentSpec:
    __slots__ = ("id", "name", "phone", "role", "weight", "office", "sms_alerts", "speed", "miss_factor", "leave_until", "es")


class RuleSpec:
    __slots__ = ("id", "name", "office", "pool", "credits", "counts")

    def pick(self, ts: float, rng: random.Random, exclude: int | None = None) -> tuple[AgentSpec | None, list]:
        """Smooth weighted round-robin, as routing.services.weighted_turn, over the members not on leave."""
        skipped = [{"agent": a.name, "reason": "paused"} for a, _ in self.pool if a.leave_until and ts < a.leave_until]
        weights = {a.id: w for a, w in self.pool if not (a.leave_until and ts < a.leave_until) and a.id != exclude}
        if not weights:
            return None, skipped
        total = sum(weights.values())
        best, best_key = None, None
        for agent_id, weight in weights.items():
            self.credits[agent_id] = self.credits.get(agent_id, 0.0) + weight / total
            key = (round(self.credits[agent_id], 9), -agent_id)
            if best_key is None or key > best_key:
                best, best_key = agent_id, key
        self.credits[best] -= 1.0
        self.counts[best] = self.counts.get(best, 0) + 1
        return next(a for a, _ in self.pool if a.id == best), skipped


class LineSpec:
    __slots__ = ("id", "number", "office", "source", "lead_type", "listing", "zip_code", "city", "price", "volume")


def org_document(rng: random.Random) -> dict:
    """The brokerage in DESIGN.md's import format (plus the optional keys the importer takes)."""
    offices, used_names = [], set()
    for i, (name, tz, areas, _, spanish) in enumerate(OFFICES):
        if i in HOURS_LONG:
            hours = {"days": list(range(7)), "opens": "08:00", "closes": "21:00"}
        elif i in HOURS_SHORT:
            hours = {"days": [0, 1, 2, 3, 4, 5], "opens": "09:00", "closes": "19:00"}
        else:
            hours = {"days": list(range(7)), "opens": "08:00", "closes": "20:00"}
        leaders = 2 if i % 3 == 0 else 1
        agents = []
        for j in range(AGENTS_PER_OFFICE):
            while True:
                first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
                if (first, last) not in used_names:
                    used_names.add((first, last))
                    break
            role = "broker" if (i in BROKER_OFFICES and j == AGENTS_PER_OFFICE - 1) else "team_leader" if j < leaders else "agent"
            weight = 1 if role != "agent" else rng.choices([1, 2, 3], [0.7, 0.22, 0.08])[0]
            es = rng.random() < max(spanish * 1.3, 0.08)
            agents.append({
                "email": f"{first}.{last}@{DOMAIN}".lower(), "name": f"{first} {last}", "phone": f"+1{areas[0]}555{100 + j:04d}",
                "role": role, "weight": weight, "languages": ["en", "es"] if es else ["en"],
            })
        lines = []
        for k, (source, lead_type, _) in enumerate([LINE_FIRST, LINE_SECOND[i % 4], LINE_THIRD[i % 5]]):
            street = STREETS[(i * 3 + k) % len(STREETS)]
            listing = f"{10 + (i * 37 + k * 11) % 890} {street}" if lead_type == "buyer" else ""
            line = {"number": f"+1{areas[-1]}555{150 + k:04d}", "source": source, "lead_type": lead_type, "listing": listing,
                    "city": name}
            if listing:
                line.update({"zip_code": f"{10001 + i * 4000 + k:05d}"[:5], "price": 250_000 + 25_000 * ((i * 7 + k * 3) % 40)})
            lines.append(line)
        offices.append({
            "name": name, "timezone": tz, "escalation_minutes": ESCALATION_MINUTES[i], "business_hours": hours,
            "textback_window_hours": 24,
            "escalation": {"agents_to_try": 2 if i in TWO_AGENT_STEPS else 1, "last_step": "pond" if i in POND_FINAL else "broker",
                           "business_hours_only": i not in HOURS_LONG},
            "agents": agents, "lines": lines,
        })
    return {"brokerage": {"name": BROKERAGE_NAME, "help_contact": f"help@{DOMAIN}"}, "offices": offices}


def org_build(rng: random.Random, now: float) -> tuple[list[OfficeSpec], list[LineSpec], dict[int, AgentSpec], list[RuleSpec]]:
    """Onboard the brokerage the way a broker would (the importer, then rules and pools as admin
    would save them), then read it back as the simulation's specs."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import transaction

    from routing.brokerage_import import brokerage_import
    from routing.models import Agent, Office, PoolMember, RoutingRule, TrackingNumber
    from routing.services import office_catch_all

    brokerage_import(org_document(rng))
    get_user_model().objects.update(password=make_password(BENCH_PASSWORD))
    offices: list[OfficeSpec] = []
    agents: dict[int, AgentSpec] = {}
    rules: list[RuleSpec] = []
    lines: list[LineSpec] = []
    back_from_leave = now - DAYS * 86400 * 0.4
    with transaction.atomic():
        for i, model in enumerate(Office.objects.order_by("id")):
            name, _, areas, volume, spanish = OFFICES[i]
            assert model.name == name, (model.name, name)
            o = OfficeSpec()
            o.i, o.model, o.id, o.name, o.tz = i, model, model.pk, model.name, model.tz
            o.days, o.opens, o.closes = set(model.business_days), model.opens_at, model.closes_at
            o.window, o.bh_only, o.agent_steps = model.escalation_minutes, model.escalation_business_hours_only, model.escalation_agent_steps
            o.pond_final = model.escalation_final == "pond"
            o.areas, o.volume, o.spanish = areas, volume, spanish
            o.miss_factor = rng.uniform(0.75, 1.3)
            o.agents, o.leaders, o.lines = [], [], []
            for a in Agent.objects.filter(office=model).order_by("id"):
                s = AgentSpec()
                s.id, s.name, s.phone, s.role, s.weight, s.office = a.pk, a.name, a.phone, a.role, a.weight, o
                s.sms_alerts = rng.random() < 0.85
                s.speed = rng.lognormvariate(0, 0.35) * (2.5 if rng.random() < 0.05 else 1.0)
                s.miss_factor = rng.lognormvariate(0, 0.25)
                s.leave_until, s.es = None, "es" in a.languages
                agents[s.id] = s
                o.agents.append(s)
                if s.role == "team_leader":
                    o.leaders.append(s)
            o.takers = [a for a in o.agents if a.role in ("agent", "team_leader")]
            # A few people are away today; the lead they already have stays theirs.
            for s in o.takers:
                if rng.random() < 0.03:
                    Agent.objects.filter(pk=s.id).update(on_duty=False)
            Agent.objects.filter(pk__in=[s.id for s in o.agents if not s.sms_alerts]).update(sms_alerts=False)
            catch_all = office_catch_all(office=model)
            o.catch_all = rule_spec(catch_all, o, [(a, a.weight) for a in o.takers])
            rules.append(o.catch_all)
            o.seller_rule = o.spanish_rule = None
            if i in SELLER_RULE_OFFICES:
                members = rng.sample([a for a in o.takers if a.role == "agent"], 5)
                if i in LEAVE_OFFICES:
                    max(members, key=lambda a: a.weight).leave_until = back_from_leave
                rule = RoutingRule.objects.create(
                    office=model, name="Sellers & valuations", position=20, lead_types=["seller", "home_value"],
                    fallback=RoutingRule.Fallback.TEAM_LEADER,
                )
                PoolMember.objects.bulk_create([PoolMember(rule=rule, agent_id=a.id) for a in members])
                o.seller_rule = rule_spec(rule, o, [(a, a.weight) for a in members])
                rules.append(o.seller_rule)
            if i in SPANISH_RULE_OFFICES:
                members = [a for a in o.takers if a.es][:4] or o.takers[:2]
                rule = RoutingRule.objects.create(office=model, name="Spanish speakers", position=10, languages=["es"])
                PoolMember.objects.bulk_create([PoolMember(rule=rule, agent_id=a.id) for a in members])
                o.spanish_rule = rule_spec(rule, o, [(a, a.weight) for a in members])
                rules.append(o.spanish_rule)
            for t in TrackingNumber.objects.filter(office=model).order_by("number"):
                line = LineSpec()
                line.id, line.number, line.office, line.source, line.lead_type = t.pk, t.number, o, t.source, t.lead_type
                line.listing, line.zip_code, line.city, line.price = t.listing, t.zip_code, t.city, t.price
                line.volume = volume * next(w for s, lt, w in [LINE_FIRST, *LINE_SECOND, *LINE_THIRD] if s == t.source)
                lines.append(line)
                o.lines.append(line)
            offices.append(o)
    brokers = [a for a in agents.values() if a.role == "broker"]
    for o in offices:
        o.brokers = sorted(brokers, key=lambda b: (b.office is not o, b.id))  # routing.selectors.brokers_for's order
    return offices, lines, agents, rules


def rule_spec(rule, office: OfficeSpec, pool: list) -> RuleSpec:
    r = RuleSpec()
    r.id, r.name, r.office, r.pool, r.credits, r.counts = rule.pk, rule.name, office, pool, {}, {}
    return r


# --- when things happen ---------------------------------------------------------------------------------


class Clock:
    """Draws local times: weekday- and business-hours-heavy, a spring peak, a growing business."""

    def __init__(self, now: float, rng: random.Random):
        self.now, self.rng = now, rng
        today = dt.datetime.fromtimestamp(now, UTC).date()
        self.days = [today - dt.timedelta(days=DAYS - 1 - d) for d in range(DAYS)]
        weights = [WEEKDAY_WEIGHTS[day.weekday()] * MONTH_WEIGHTS[day.month - 1] * (0.8 + 0.4 * d / DAYS)
                   for d, day in enumerate(self.days)]
        self.day_cum = list(_cumulative(weights))
        self.hour_cum = list(_cumulative(HOUR_WEIGHTS))

    def local_time(self) -> dt.time:
        rng = self.rng
        hour = bisect.bisect(self.hour_cum, rng.random() * self.hour_cum[-1])
        second = rng.random() * 3600
        return dt.time(min(hour, 23), int(second // 60), int(second % 60), int((second % 1) * 1e6))

    def first_contact(self, tz: zoneinfo.ZoneInfo) -> float:
        rng = self.rng
        while True:
            day = self.days[bisect.bisect(self.day_cum, rng.random() * self.day_cum[-1])]
            ts = dt.datetime.combine(day, self.local_time(), tz).timestamp()
            if ts < self.now - 600:
                return ts

    def later(self, ts: float, tz: zoneinfo.ZoneInfo) -> float:
        """The next call of a caller who calls again: minutes later, hours later, or another day
        (then at a business-hours-heavy time of that day)."""
        rng = self.rng
        r = rng.random()
        if r < 0.22:
            return ts + rng.uniform(60, 900)  # redials right after a miss
        if r < 0.45:  # later that day or the next
            day = dt.datetime.fromtimestamp(ts, tz).date() + dt.timedelta(days=int(rng.random() < 0.5))
            later = dt.datetime.combine(day, self.local_time(), tz).timestamp()
            return later if later > ts + 1800 else later + 86400
        day = (dt.datetime.fromtimestamp(ts, tz) + dt.timedelta(days=max(1.0, rng.lognormvariate(math.log(9), 1.1)))).date()
        return dt.datetime.combine(day, self.local_time(), tz).timestamp()


def _cumulative(weights):
    total = 0.0
    for w in weights:
        total += w
        yield total


# --- the story -------------------------------------------------------------------------------------------


class Lead:
    """One caller: their skeleton (drawn first, for every lead, so the round-robin runs in time
    order), then what happened, simulated in `Story.lead`."""

    __slots__ = ("id", "phone", "line", "office", "rule", "t0", "contacts", "lang", "first_agent", "pond", "landline", "name",
                 "email", "final", "agent", "assigned_at", "status", "awaiting", "escalated_at", "step", "call_back_since",
                 "call_back_reason", "outcome", "appointment_at", "last_activity", "last_textback", "opted_out", "profiled",
                 "engaged_any", "last_inbound", "routed", "skipped")


class Story:
    """Simulates every lead's calls, texts and timeline into row lists, as the product's paths
    would have written them."""

    def __init__(self, *, rng, now, lines, clock, templates, base_url, lead_types):
        self.rng, self.now, self.lines, self.clock = rng, now, lines, clock
        self.templates, self.base_url, self.lead_types = templates, base_url, lead_types
        self.calls: list[list] = []
        self.messages: list[tuple] = []
        self.events: list[tuple] = []
        self.consent: list[list] = []
        self.profiles: list[tuple] = []
        self.reads: list[tuple] = []
        self.conv_mult = 1.0
        self.conv_messages = 0  # messages of the conversations, the part conv_mult scales
        self.mult_used = 0.0  # sum over leads of the conv_mult in force
        self.snapshots = collections.deque([(0, 0, 0, 0.0)])
        self.stats: dict[str, int] = {}
        self.rts: list[float] = []
        self._textbacks: dict = {}
        from compliance.gate import REPLY_WINDOW
        from leads.services import AGENT_ALERT, ESCALATION_ALERT, OPT_OUT_CONFIRMATION
        from leads.textback import textback_render

        self.reply_window = REPLY_WINDOW.total_seconds()
        self.AGENT_ALERT, self.ESCALATION_ALERT = AGENT_ALERT, ESCALATION_ALERT
        self.OPT_OUT_CONFIRMATION = OPT_OUT_CONFIRMATION.format(brokerage=BROKERAGE_NAME)
        self.textback_render = textback_render

    def count(self, key: str, n: int = 1) -> None:
        self.stats[key] = self.stats.get(key, 0) + n

    def sid(self, prefix: str) -> str:
        return f"{prefix}{self.rng.getrandbits(128):032x}"

    # --- skeletons ---

    def skeletons(self, n_leads: int, n_waiting: int) -> list[Lead]:
        rng, clock, now = self.rng, self.clock, self.now
        line_cum = list(_cumulative([line.volume for line in self.lines]))
        phones: set[str] = set()
        q = 1 - 1 / CALLS_PER_CALLING_LEAD  # geometric number of calls with that mean
        leads = []
        for _ in range(n_leads):
            lead = Lead()
            line = self.lines[bisect.bisect(line_cum, rng.random() * line_cum[-1])]
            office = line.office
            lead.line, lead.office = line, office
            while True:
                phone = f"+1{rng.choice(office.areas)}{rng.randint(201, 989):03d}{rng.randint(0, 9999):04d}"
                if phone[5:8] != "555" and phone not in phones:
                    phones.add(phone)
                    break
            lead.phone = phone
            lead.t0 = clock.first_contact(office.tz)
            text_first = rng.random() < TEXT_FIRST_SHARE
            contacts = [(lead.t0, "text" if text_first else "call")]
            calls = 1 + int(math.log(1 - rng.random()) / math.log(q)) if not text_first else int(rng.random() < 0.4)
            ts = lead.t0
            for _ in range(min(calls, 14) - (0 if text_first else 1)):
                ts = clock.later(ts, office.tz)
                if ts >= now - 120:
                    break
                contacts.append((ts, "call"))
            contacts.sort()
            lead.contacts = contacts
            lead.lang = "es" if rng.random() < office.spanish else ""
            lead.landline = not text_first and rng.random() < LANDLINE_SHARE
            named = rng.random() < 0.35
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            lead.name = f"{first} {last}" if named else ""
            lead.email = f"{first}.{last}{rng.randint(1, 999)}@mail.example".lower() if named and rng.random() < 0.4 else ""
            lead.final = False
            leads.append(lead)
        leads.sort(key=lambda lead: lead.t0)
        for i, lead in enumerate(leads, 1):
            lead.id = i
        # Who is waiting for a human right now: callers coming back to an existing lead minutes to
        # hours ago, nobody having answered yet (the ladder has run as far as the office's clock says).
        recent = [lead for lead in leads if now - 60 * 86400 < lead.t0 < now - 3600]
        for lead in rng.sample(recent, min(n_waiting, len(recent))):
            at = now - min(max(rng.expovariate(1 / (40 * 60)), 30), 5 * 3600)
            if at <= lead.t0 + 3600:
                continue
            lead.contacts = [c for c in lead.contacts if c[0] < at - 60] + [(at, "text" if rng.random() < 0.6 else "call")]
            lead.final = True
        # Routing in time order: the weighted round-robin of each rule, members on leave skipped.
        for lead in leads:
            office = lead.office
            rule = office.catch_all
            if lead.lang == "es" and office.spanish_rule:
                rule = office.spanish_rule
            elif office.seller_rule and lead.line.lead_type in ("seller", "home_value"):
                rule = office.seller_rule
            lead.rule = rule
            lead.pond = not office.is_open(lead.t0) and rng.random() < 0.5  # nobody on duty at that hour
            if lead.pond:
                lead.first_agent, lead.skipped = None, [{"agent": a.name, "reason": "off duty"} for a, _ in rule.pool]
            else:
                lead.first_agent, lead.skipped = rule.pick(lead.t0, rng)
                if lead.first_agent is None:
                    lead.pond = True
        return leads

    # --- rows ---

    def message(self, ts, lead, kind, body, *, agent=None, call=None, to_number="", status="delivered", error_code="",
                error_message="", sent_delay=None, consent=None, outreach=False, media=None) -> tuple:
        """One Message row; outbound ones get the outbox's timings (queued, sending, sent, delivered)."""
        rng = self.rng
        if kind == "inbound":
            row = (ts, lead, lead.line.id, kind, None, None, "", body, "received", self.sid("SM"), "", "", None, None, None, None,
                   None, False, media)
        else:
            queued = ts
            sent = delivered = sending = None
            if status not in ("canceled", "queued"):
                sending = queued + rng.uniform(0.02, 0.15)
                sent = queued + (sent_delay if sent_delay is not None else rng.lognormvariate(math.log(0.6), 0.6))
                if status in ("delivered", "read"):
                    delivered = sent + rng.uniform(1.5, 8.0)
            row = (ts, lead, lead.line.id, kind, agent.id if agent else None, call, to_number, body, status,
                   self.sid("SM") if sent is not None else None, error_code, error_message, queued, sending, sent, delivered,
                   consent, outreach, None)
        self.messages.append(row)
        return row

    def event(self, ts, lead, kind, *, actor=None, agent=None, previous=None, rule=None, text="", detail=None) -> None:
        self.events.append((ts, lead, kind, actor.id if actor else None, agent.id if agent else None,
                            previous.id if previous else None, rule, text, json.dumps(detail or {})))

    def consent_event(self, ts, lead, kind, source, source_ref, raw_text="") -> list:
        record = [None, ts, lead.phone, lead.line.number, kind, source, source_ref, raw_text]
        self.consent.append(record)
        return record

    def touch(self, lead, ts):
        if ts > lead.last_activity:
            lead.last_activity = ts

    def profile(self, lead, ts) -> None:
        """The worker's Lookup before the first text to a number (kept once)."""
        if lead.profiled:
            return
        lead.profiled = True
        r = self.rng.random()
        kind = "landline" if lead.landline else "mobile" if r < 0.93 else "nonFixedVoip" if r < 0.98 else "fixedVoip" if r < 0.995 else "other"
        self.profiles.append((lead.phone, kind, "Twilio Lookup", ts))

    def fill(self, template: str, lead: Lead, agent: AgentSpec | None) -> str:
        first = lead.name.split(" ")[0] if lead.name else ""
        return template.format(listing=lead.line.listing or "the home", agent=agent.name.split(" ")[0] if agent else "your agent",
                               first=f" {first}" if first else "", brokerage=BROKERAGE_NAME, n=self.rng.randint(100, 9999))

    def lead_text(self, lead: Lead) -> str:
        return self.fill(self.rng.choice(LEAD_TEXTS[lead.line.lead_type]), lead, None)

    def alert(self, ts, lead, agent, template=None, **fields) -> None:
        """An SMS to the agent's own phone (routing.services' wording), when the agent wants them."""
        if not agent.sms_alerts:
            return
        body = (template or self.AGENT_ALERT).format(
            lead_type=self.lead_types[lead.line.lead_type].lower(), who=lead.name or lead.phone, source=lead.line.source,
            url=f"{self.base_url}/leads/{lead.id}/", **fields,
        )
        self.message(ts + 0.05, lead, "agent_alert", body, to_number=agent.phone, status="delivered" if self.rng.random() < 0.98 else "sent")

    # --- routing and escalation ---

    def route(self, lead: Lead, ts: float) -> None:
        """The first time the lead needs a human (or is answered): the rule's decision, on record."""
        lead.routed = True
        rule = lead.rule
        if lead.pond:
            text = f"Rule “{rule.name}” → the office pond: the office pond. Fallback: nobody in the pool is available."
            detail = {"rule": rule.name, "strategy": "round_robin", "target": "the office pond", "fallback": "nobody in the pool is available",
                      "skipped": lead.skipped, "offered_to": []}
            self.event(ts, lead, "assigned", rule=rule.id, text=text, detail=detail)
            lead.agent, lead.assigned_at = None, None
            return
        agent = lead.first_agent
        text = f"Rule “{rule.name}” → weighted round-robin: {agent.name}."
        detail = {"rule": rule.name, "strategy": "round_robin", "target": "weighted round-robin", "fallback": "",
                  "skipped": lead.skipped, "offered_to": []}
        self.event(ts, lead, "assigned", agent=agent, rule=rule.id, text=text, detail=detail)
        lead.agent, lead.assigned_at = agent, ts

    def ladder(self, lead: Lead, until: float) -> None:
        """Fire the escalation steps due before `until` while the lead waits (leads.services._lead_escalate)."""
        office = lead.office
        while lead.awaiting is not None:
            start = max(lead.awaiting, lead.assigned_at or 0.0, lead.escalated_at or 0.0)
            due = office.due(start)
            if due >= until:
                return
            self.escalate(lead, due)

    def escalate(self, lead: Lead, at: float) -> None:
        office, rng = lead.office, self.rng
        step = lead.step + 1
        previous = lead.agent
        exclude = previous.id if previous else None
        minutes = int((at - lead.awaiting) // 60)
        reassign, pond, agent = True, False, None
        if step <= office.agent_steps:
            pool = [a for a, _ in lead.rule.pool if a.id != exclude and not (a.leave_until and at < a.leave_until)]
            agent = rng.choice(pool) if pool else None
            rung = "next agent in the pool"
            if agent is None:
                step = office.agent_steps + 1
        if agent is None and step == office.agent_steps + 1:
            leaders = [a for a in office.leaders if a.id != exclude]
            agent, rung = (leaders[0] if leaders else None), "team leader"
            if agent is None:
                step += 1
        if agent is None and step == office.agent_steps + 2:
            if office.pond_final:
                rung, pond = "office pond", True
            else:
                brokers = [b for b in office.brokers if b.id != exclude]
                agent, rung = (brokers[0] if brokers else None), "broker"
        if agent is None and not pond:
            rung, reassign = "still waiting", False
        if reassign:
            alerted = [agent] if agent else [a for a in office.takers]
            who = agent.name if agent else "the office pond"
            text = f"No reply for {minutes} min: escalated to the {rung}, {who}." if agent else f"No reply for {minutes} min: escalated to {who}."
            what = "It is yours now." if agent else "It is in the office pond: first to claim it gets it."
            lead.agent, lead.assigned_at = agent, (at if agent else None)
        else:
            alerted = [a for a in [*office.leaders, *office.brokers] if a.id != exclude]
            who = previous.name if previous else "the office pond"
            text = f"Still no reply after {minutes} min; {who} has it. Alerted " + ", ".join(a.name for a in alerted) + "."
            what = f"{who} has it; please make sure someone answers."
        lead.step, lead.escalated_at = step, at
        self.event(at, lead, "escalated", agent=agent if reassign else None, previous=previous, rule=lead.rule.id, text=text,
                   detail={"step": step, "rung": rung, "skipped": [], "alerted": [a.name for a in alerted]})
        self.count("escalations")
        for person in alerted:
            self.alert(at, lead, person, self.ESCALATION_ALERT, minutes=minutes, what=what)

    def wait_starts(self, lead: Lead, ts: float) -> None:
        if lead.awaiting is None:
            lead.awaiting = ts

    def wait_ends(self, lead: Lead) -> None:
        lead.awaiting, lead.step = None, 0

    def claim_if_pond(self, lead: Lead, ts: float) -> None:
        if lead.agent is None:
            pool = [a for a, _ in lead.rule.pool if not (a.leave_until and ts < a.leave_until)] or lead.office.takers
            # After the ladder left it in the pond, whoever is quickest; else the agent routing would pick.
            agent = self.rng.choice(pool) if lead.escalated_at or not lead.first_agent else lead.first_agent
            self.event(ts, lead, "claimed", actor=agent, agent=agent, text="Replied first.")
            lead.agent, lead.assigned_at = agent, ts
            self.count("claims")

    def response_seconds(self, agent: AgentSpec | None) -> float:
        rng = self.rng
        if rng.random() < RT_TAIL_SHARE:
            return rng.lognormvariate(math.log(RT_TAIL_MEDIAN_S), 0.8)
        return (agent.speed if agent else 1.0) * rng.lognormvariate(math.log(RT_MEDIAN_S), RT_SIGMA)

    # --- the agent's side ---

    def agent_text(self, lead, ts, body, *, outreach=False) -> tuple | None:
        """An agent's reply (inbox.services.lead_reply): the lead stops waiting and is contacted."""
        rng = self.rng
        self.claim_if_pond(lead, ts)
        r = rng.random()
        status, code = ("delivered", "") if r < 0.965 else ("sent", "") if r < 0.985 else ("undelivered", "30003") if r < 0.995 else ("failed", "30007")
        self.profile(lead, ts)
        row = self.message(ts, lead, "reply", body, agent=lead.agent, status=status, error_code=code, outreach=outreach)
        self.wait_ends(lead)
        if lead.status in ("new", "closed"):
            lead.status = "contacted"
        self.touch(lead, ts)
        return row

    def agent_call(self, lead, ts) -> bool:
        """A call-back from the inbox (leads.call_back): a human touch when the caller picks up."""
        rng = self.rng
        self.claim_if_pond(lead, ts)
        answered = rng.random() < 0.72
        talk = int(rng.lognormvariate(math.log(180), 0.8)) if answered else None
        ring = rng.randint(8, 25)
        self.calls.append([None, ts, lead, lead.line.id, "out", lead.agent.id, lead.line.number, "", "", "completed" if answered else "no-answer",
                           False, "", "", None, None, (talk or 0) + ring, "", None, ts + (talk or 0) + ring, self.sid("CA"), None])
        self.count("call_backs")
        self.touch(lead, ts)
        if answered:
            self.wait_ends(lead)
            lead.engaged_any = True
            if lead.call_back_since is not None:
                self.event(ts + talk + ring + 30, lead, "call_back", actor=lead.agent, text="Call-back done.")
                lead.call_back_since, lead.call_back_reason = None, ""
        return answered

    def can_text(self, lead) -> bool:
        return not (lead.opted_out or lead.landline)

    # --- the caller's side ---

    def lead_texts(self, lead, ts, body=None) -> tuple:
        """An inbound text that is not a keyword (leads.services.inbound_sms_record's last branch)."""
        body = body or self.lead_text(lead)
        media = None
        if self.rng.random() < 0.02:
            media = json.dumps([f"https://api.twilio.com/2010-04-01/Accounts/AC{'5e' * 16}/Messages/{self.sid('MM')}/Media/{self.sid('ME')}"])
        row = self.message(ts, lead, "inbound", body, media=media)
        self.consent_event(ts, lead, "implied_text", "text", row[9], body)
        if not lead.routed:
            self.route(lead, ts)
            if lead.agent:
                self.alert(ts, lead, lead.agent)
        self.wait_starts(lead, ts)
        lead.status = "engaged"
        lead.engaged_any = True
        lead.last_inbound = ts
        self.touch(lead, ts)
        self.count("inbound_texts")
        return row

    def lead_stops(self, lead, ts, words: bool) -> None:
        body = self.rng.choice(REVOKE_WORDS if words else STOP_WORDS)
        row = self.message(ts, lead, "inbound", body)
        record = self.consent_event(ts, lead, "opt_out", "text" if words else "keyword", row[9], body)
        if words:  # confirmed once, within seconds (Twilio answers its own keywords itself)
            self.message(ts + self.rng.uniform(0.5, 3), lead, "opt_out_confirmation", self.OPT_OUT_CONFIRMATION, consent=record)
        lead.opted_out = True
        self.touch(lead, ts)
        self.count("opt_outs")

    # --- a conversation after the agent's first touch ---

    def conversation(self, lead, ts, cutoff, exchanges) -> None:
        """`exchanges` rounds of the caller texting and the agent answering, each within cutoff."""
        before = len(self.messages)
        self._exchange(lead, ts, cutoff, exchanges)
        self.conv_messages += len(self.messages) - before

    def _exchange(self, lead, ts, cutoff, exchanges) -> None:
        rng, office = self.rng, lead.office
        for _ in range(exchanges):
            ts += rng.lognormvariate(math.log(6 * 60), 1.7)
            if ts >= cutoff or not self.can_text(lead):
                return
            if rng.random() < REVOKE_PER_LEAD_TEXT:
                self.lead_stops(lead, ts, words=True)
                return
            self.lead_texts(lead, ts)
            answer = office.after(ts, min(rng.lognormvariate(math.log(150), 0.9), office.window * 60 * 0.8))
            if answer >= cutoff:
                self.ladder(lead, cutoff)
                return
            self.agent_text(lead, answer, self.fill(rng.choice(AGENT_REPLIES), lead, lead.agent))
            ts = answer

    def exchanges(self) -> int:
        mean = CONVERSATION_MEAN_EXCHANGES * self.conv_mult
        q = max(0.0, 1 - 1 / mean)
        return 1 + (int(math.log(1 - self.rng.random()) / math.log(q)) if q > 0 else 0)

    # --- one wait for a human ---

    def resolve(self, lead, start, cutoff, *, replied=None, converse=False, final=False) -> None:
        """The lead waits (since `lead.awaiting`) after a miss or a text at `start`; the caller may
        have texted back at `replied`. The agent acts on the miss after their response time, or
        answers the caller's text if it came first. Ends with a human touch, a closing, or the lead
        still waiting at `cutoff` (the next contact, or now)."""
        rng, office = self.rng, lead.office
        if final:  # nobody has answered yet: the ladder has climbed as far as the office's clock says
            self.ladder(lead, self.now)
            return
        if rng.random() < NEVER_ANSWERED or (lead.opted_out and rng.random() < 0.6):
            closed = office.after(start, rng.lognormvariate(math.log(75 * 60), 0.5))
            if closed >= cutoff:
                self.ladder(lead, cutoff)
                return
            self.ladder(lead, closed)
            who = lead.agent or (lead.office.leaders[0] if lead.office.leaders else lead.office.takers[0])
            self.outcome(lead, closed, rng.choice(["not_interested", "not_interested", "wrong_number", "closed"]), who)
            self.count("never_answered")
            return
        agent = lead.agent or lead.first_agent
        touch = office.after(start, self.response_seconds(agent))
        answers_reply = replied is not None and replied < touch
        if answers_reply:
            touch = min(touch, office.after(replied, self.response_seconds(agent)))
        if touch >= cutoff:
            self.ladder(lead, cutoff)
            return
        self.ladder(lead, touch)
        self.rts.append(touch - (replied if answers_reply else start))
        if not self.can_text(lead) or rng.random() < 0.12:
            answered = self.agent_call(lead, touch)
            if not answered:
                if not self.can_text(lead):  # try again later; a second miss and the agent closes the lead
                    retry = office.after(touch, rng.lognormvariate(math.log(2 * 3600), 0.5))
                    if retry >= cutoff:
                        self.ladder(lead, cutoff)
                        return
                    self.ladder(lead, retry)
                    if not self.agent_call(lead, retry):
                        self.outcome(lead, retry + 300, "not_interested", lead.agent)
                    return
                touch += rng.uniform(30, 120)
                self.agent_text(lead, touch, self.fill(rng.choice(AGENT_FIRST_TOUCH), lead, lead.agent))
        else:
            self.agent_text(lead, touch, self.fill(rng.choice(AGENT_FIRST_TOUCH), lead, lead.agent))
        if not self.can_text(lead):
            return
        if replied is not None and replied > touch:
            # The caller's text came after the agent's first one: it waits for an answer of its own.
            self.wait_starts(lead, replied)
            answer = office.after(replied, min(rng.lognormvariate(math.log(150), 0.9), office.window * 60 * 0.8))
            if answer >= cutoff:
                self.ladder(lead, cutoff)
                return
            self.agent_text(lead, answer, self.fill(rng.choice(AGENT_REPLIES), lead, lead.agent))
            touch = answer
        if converse or replied is not None or rng.random() < 0.12:
            self.conversation(lead, touch, cutoff, self.exchanges())
        elif rng.random() < 0.4:
            later = touch + rng.lognormvariate(math.log(26 * 3600), 0.5)
            if later < cutoff and later < self.now:
                local = dt.datetime.fromtimestamp(later, office.tz)
                if 9 <= local.hour < 19:
                    self.agent_text(lead, later, self.fill(rng.choice(AGENT_FOLLOW_UP), lead, lead.agent),
                                    outreach=later - (lead.last_inbound or 0) > self.reply_window)
                    if rng.random() < 0.2:
                        self.conversation(lead, later, cutoff, self.exchanges())

    # --- contacts ---

    def inbound_call(self, lead, ts, cutoff, final) -> None:
        rng, office = self.rng, lead.office
        call_sid = self.sid("CA")
        call = [None, ts, lead, lead.line.id, "in", None, lead.phone, "", "", "completed", False, "", "", None, None, None, "", None,
                None, call_sid, None]
        self.calls.append(call)
        self.count("inbound_calls")
        self.touch(lead, ts)
        # Whom the ring plan rings: the caller's agent, else the one routing picks (a pond lead: someone of the pool).
        agent = (lead.agent if lead.routed else None) or lead.first_agent or rng.choice(office.takers)
        if not office.is_open(ts):
            missed, reason, dial = True, "after_hours", ""
            decided = ts + rng.uniform(0.5, 2)
        elif rng.random() < 0.012:
            missed, reason, dial = True, "nobody_on_duty", ""
            decided = ts + rng.uniform(0.5, 2)
        else:
            p_answer = ANSWER_PROB_BASE / (office.miss_factor * agent.miss_factor) ** 0.6
            missed = final or rng.random() >= min(p_answer, 0.95)
            reason = "no_answer" if missed else ""
            if missed:
                r = rng.random()
                dial = "no-answer" if r < 0.72 else "busy" if r < 0.95 else "canceled"
                ring = 12 if dial == "no-answer" else rng.uniform(1, 4) if dial == "busy" else rng.uniform(3, 10)
            else:
                dial, ring = "completed", rng.uniform(3, 10)
            decided = ts + ring
            call[8] = self.sid("CA")  # the agent's leg
            call[20] = agent.id
        call[7], call[10], call[11] = dial, missed, reason
        self.consent_event(decided, lead, "implied_call", "call", call_sid)
        if not missed:
            if not lead.routed:
                self.route(lead, decided)
            if lead.agent is None:  # in the pond: whoever's phone rang has them now
                lead.agent, lead.assigned_at = agent, decided
            talk = int(min(max(rng.lognormvariate(math.log(150), 0.9), 5), 3600))
            call[13], call[14], call[15] = lead.agent.id, talk, int(ring + talk + 1)
            call[20] = lead.agent.id
            call[18] = ts + ring + talk + 1
            if lead.awaiting is not None:
                self.ladder(lead, decided)
                self.rts.append(decided - lead.awaiting)
            self.wait_ends(lead)
            if lead.call_back_since is not None:
                lead.call_back_since, lead.call_back_reason = None, ""
            if lead.status == "new":
                lead.status = "contacted"
            lead.engaged_any = True
            lead.last_inbound = ts
            self.count("answered")
            end = call[18]
            if self.can_text(lead) and rng.random() < 0.5:
                after = end + rng.lognormvariate(math.log(8 * 60), 0.8)
                if after < cutoff:
                    self.agent_text(lead, after, self.fill(rng.choice(AGENT_AFTER_CALL), lead, lead.agent))
                    if rng.random() < 0.42:
                        self.conversation(lead, after, cutoff, self.exchanges())
            return
        # Missed: leads.services.missed_call_record.
        voicemail = rng.random() < 0.3
        call[15] = int(decided - ts + (rng.randint(8, 60) if voicemail else rng.randint(1, 6)))
        call[18] = ts + call[15]
        if voicemail:
            call[16] = f"https://api.twilio.com/2010-04-01/Accounts/AC{'5e' * 16}/Recordings/{self.sid('RE')}"
            call[17] = call[15] - int(decided - ts) - 3
        if call[17] is not None and call[17] < 1:
            call[16], call[17] = "", None
        self.count("missed")
        if reason == "after_hours":
            self.count("missed_after_hours")
        new_route = not lead.routed
        if new_route:
            self.route(lead, decided)
        self.wait_starts(lead, decided)
        if lead.status == "closed":
            lead.status = "new"
        self.touch(lead, decided)
        textback = self.textback(lead, call, decided)
        if new_route and lead.agent:
            self.alert(decided + 0.2, lead, lead.agent)
        replied = None
        if textback is not None and textback[8] in ("sent", "delivered") and rng.random() < REPLY_TO_TEXTBACK:
            at = textback[14] + rng.lognormvariate(math.log(4 * 60), 1.3)
            if at < cutoff:
                if rng.random() < STOP_AMONG_FIRST_REPLIES:
                    self.lead_stops(lead, at, words=False)
                else:
                    self.lead_texts(lead, at)
                    replied = at
                    self.count("replied")
        self.resolve(lead, decided, cutoff, replied=replied, final=final)

    def textback(self, lead, call, ts) -> tuple | None:
        """leads.services._textback_queue, then the worker's send and Twilio's status callbacks."""
        rng = self.rng
        window = 24 * 3600
        if lead.last_textback is not None and ts - lead.last_textback < window:
            call[12] = "Already texted back within 24 h."
            self.count("textback_skipped")
            return None
        if lead.status == "engaged":
            call[12] = "The caller already has an open conversation."
            self.count("textback_skipped")
            return None
        key = (lead.line.id, lead.agent.id if lead.agent else None)
        body = self._textbacks.get(key)
        if body is None:
            body = self._textbacks[key] = self.textback_render(
                template=self.templates[lead.line.lead_type], brokerage=BROKERAGE_NAME, listing=lead.line.listing,
                agent=lead.agent.name if lead.agent else "", office=lead.office.name,
            )
        self.count("textbacks")
        if lead.opted_out:
            return self.message(ts, lead, "textback", body, call=call, status="canceled",
                                error_message="Opted out: the caller asked us to stop texting, or the carrier reported an opt-out.")
        self.profile(lead, ts + 0.05)
        if lead.landline:
            row = self.message(ts, lead, "textback", body, call=call, status="canceled",
                               error_message="Landline: the number cannot receive texts; call instead.")
            if lead.call_back_since is None:
                reason = "The number is a landline: it cannot take texts."
                lead.call_back_since, lead.call_back_reason = ts + 0.3, reason
                self.event(ts + 0.3, lead, "call_back", text=f"Call back instead of texting. {reason}")
            return row
        r = rng.random()
        if r < 0.03:
            code = rng.choices(["30003", "30005", "30006", "30007"], [0.4, 0.2, 0.12, 0.28])[0]
            status = "undelivered" if code in ("30003", "30006") or rng.random() < 0.5 else "failed"
        else:
            code, status = "", "delivered" if r < 0.975 else "sent"
        sent_delay = min(max(rng.lognormvariate(math.log(0.45), 0.7), 0.1), 3.0)
        row = self.message(ts, lead, "textback", body, call=call, status=status, error_code=code, sent_delay=sent_delay)
        lead.last_textback = ts
        if lead.status == "new":
            lead.status = "contacted"
        self.touch(lead, row[14])
        self.count("textbacks_sent")
        if code == "30006":  # the carrier says landline: learned, and a call-back task instead
            self.profiles.append((lead.phone, "landline", "carrier error 30006", row[14] + 5))
            lead.landline = True
            reason = "The carrier reported a landline (error 30006): the text did not arrive."
            lead.call_back_since, lead.call_back_reason = row[14] + 5, reason
            self.event(row[14] + 5, lead, "call_back", text=f"Call back instead of texting. {reason}")
        return row

    def outcome(self, lead, ts, outcome, actor) -> None:
        """inbox.services.lead_outcome_set."""
        text = {"qualified": "Qualified", "appointment": "Appointment booked", "not_interested": "Not interested",
                "wrong_number": "Wrong number", "closed": "Closed"}[outcome]
        if outcome == "appointment":
            rng = self.rng
            day = (dt.datetime.fromtimestamp(ts, lead.office.tz) + dt.timedelta(days=rng.randint(1, 10))).date()
            local = dt.datetime.combine(day, dt.time(rng.randint(9, 17), rng.choice([0, 15, 30, 45])), lead.office.tz)
            lead.appointment_at = local.timestamp()
            text += f": {local:%a %b %-d, %-I:%M %p} {local.tzname()}"
            self.count("appointments")
        else:
            lead.appointment_at = None
        lead.outcome = outcome
        if outcome in ("not_interested", "wrong_number", "closed"):
            lead.status = "closed"
            self.wait_ends(lead)
        elif lead.status == "closed":
            lead.status = "engaged"
        self.event(ts, lead, "outcome", actor=actor, text=text)

    # --- one lead, start to now ---

    def steer(self, done: int, total: int, target: int) -> None:
        """Set conv_mult so that the leads still to come bring the messages to `target`: what a
        lead brings besides conversations, and per unit of conv_mult, as measured over the recent
        leads (the latest leads' stories are cut short by now, so the year's average would overshoot)."""
        snapshot = (done, len(self.messages), self.conv_messages, self.mult_used)
        self.snapshots.append(snapshot)
        window = max(200, total // 50)
        while len(self.snapshots) > 2 and done - self.snapshots[1][0] >= window:
            self.snapshots.popleft()
        first = self.snapshots[0]
        leads, messages, conv, mult = (a - b for a, b in zip(snapshot, first))
        if done >= total or leads <= 0 or conv <= 0 or mult <= 0:
            return
        fixed_per_lead = (messages - conv) / leads
        conv_per_mult = conv / mult
        wanted = (target - len(self.messages)) / (total - done)
        self.conv_mult = min(max((wanted - fixed_per_lead) / conv_per_mult, 0.2), 5.0)

    def lead(self, lead: Lead) -> None:
        rng, now = self.rng, self.now
        self.mult_used += self.conv_mult
        lead.agent = lead.assigned_at = lead.awaiting = lead.escalated_at = lead.call_back_since = None
        lead.appointment_at = lead.last_textback = lead.last_inbound = None
        lead.step, lead.status, lead.outcome, lead.call_back_reason = 0, "new", "", ""
        lead.last_activity, lead.opted_out, lead.profiled, lead.engaged_any, lead.routed = lead.t0, False, False, False, False
        contacts = lead.contacts
        for k, (ts, kind) in enumerate(contacts):
            cutoff = contacts[k + 1][0] if k + 1 < len(contacts) else now
            final = lead.final and k == len(contacts) - 1
            if kind == "call":
                self.inbound_call(lead, ts, cutoff, final)
            else:
                body = rng.choice(["Hi, any update?", "Hello?", "Still waiting to hear back", "Can someone call me?"]) if final else None
                self.lead_texts(lead, ts, body)
                self.resolve(lead, ts, cutoff, converse=True, final=final)
        if lead.awaiting is None and not lead.final and lead.outcome == "":
            last = max(lead.last_activity, contacts[-1][0])
            at = last + rng.lognormvariate(math.log(20 * 3600), 1.0)
            actor = lead.agent or lead.first_agent or lead.office.takers[0]
            if at < now:
                r = rng.random()
                if lead.engaged_any:
                    if r < 0.1:
                        if rng.random() < 0.3:
                            self.outcome(lead, last + (at - last) * rng.uniform(0.2, 0.7), "qualified", actor)
                        self.outcome(lead, at, "appointment", actor)
                    elif r < 0.34:
                        self.outcome(lead, at, "qualified", actor)
                    elif r < 0.43:
                        self.outcome(lead, at, "not_interested", actor)
                    elif r < 0.49:
                        self.outcome(lead, at, "closed", actor)
                    elif r < 0.495:
                        self.outcome(lead, at, "wrong_number", actor)
                elif r < 0.05:
                    self.outcome(lead, at, "not_interested", actor)
                elif r < 0.08:
                    self.outcome(lead, at, "wrong_number", actor)
        if lead.agent is not None:
            read = lead.last_activity if lead.awaiting is None else lead.awaiting - 1
            if rng.random() < 0.95 and read > lead.t0:
                self.reads.append((lead, lead.agent.id, read))
        if lead.awaiting is not None:
            self.count("waiting_now")
            if not lead.final and now - lead.awaiting > 86400:
                self.count("stale_waits")  # a wait the story forgot to end: should stay 0


# --- loading ---------------------------------------------------------------------------------------------------


def table_layout(model, given: list[str]) -> tuple[str, list[str], tuple]:
    """The table, its columns (those given first) and the constant values of the rest: their
    model defaults. A column the model gained since this script was written is filled from its
    default, or refused by name when it has none."""
    from django.db import models

    fields = {f.column: f for f in model._meta.concrete_fields}
    unknown = [c for c in given if c not in fields]
    if unknown:
        raise SystemExit(f"seed_scale: {model._meta.db_table} has no column(s) {unknown}: the model changed; update bench/seed_scale.py")
    rest, consts = [], []
    for column, field in fields.items():
        if column in given:
            continue
        if field.has_default():
            value = field.get_default()
        elif field.null:
            value = None
        elif field.empty_strings_allowed:
            value = ""
        else:
            raise SystemExit(f"seed_scale: {model._meta.db_table}.{column} is required and has no default: update bench/seed_scale.py")
        if isinstance(field, models.JSONField):
            value = json.dumps(value)
        rest.append(column)
        consts.append(value)
    return model._meta.db_table, given + rest, tuple(consts)


def copy_in(conn, model, given: list[str], rows, total: int, label: str) -> float:
    table, columns, consts = table_layout(model, given)
    started = time.perf_counter()
    cols = ", ".join(f'"{c}"' for c in columns)
    with conn.cursor() as cur, cur.copy(f'COPY "{table}" ({cols}) FROM STDIN') as copy:
        for n, row in enumerate(rows, 1):
            copy.write_row(row + consts if consts else row)
            if n % 250_000 == 0:
                log(f"  {label}: {n:,} / {total:,}")
    conn.commit()
    seconds = time.perf_counter() - started
    log(f"  {label}: {total:,} rows in {seconds:.1f} s ({total / max(seconds, 1e-9):,.0f}/s)")
    return seconds


def load(story: Story, leads: list[Lead], db: Database, rules: list[RuleSpec]) -> dict:
    import psycopg

    from compliance.models import ConsentEvent, ConsentLedgerHead, NumberProfile
    from leads.models import Call, Lead as LeadModel, LeadEvent, LeadRead, Message
    from routing.models import RoundRobinTurn

    timings = {}
    # Time order gives the ids, as it would have in production (and the tables' physical order).
    for rows in (story.calls, story.consent):
        rows.sort(key=lambda r: r[1])
    for n, row in enumerate(story.calls, 1):
        row[0] = n
    for n, row in enumerate(story.consent, 1):
        row[0] = n
    story.messages.sort(key=lambda r: r[0])
    story.events.sort(key=lambda r: r[0])

    with psycopg.connect(db.dsn) as conn:
        conn.execute("SET synchronous_commit = off")
        timings["leads"] = copy_in(conn, LeadModel, [
            "id", "phone", "name", "email", "lead_type", "source", "office_id", "line_id", "assigned_agent_id", "assigned_at", "status",
            "awaiting_reply_since", "escalated_at", "zip_code", "city", "price", "language", "routing_rule_id", "claim_deadline",
            "escalation_step", "escalation_due_at", "call_back_since", "call_back_reason", "outcome", "appointment_at", "created_at",
            "last_activity_at",
        ], (lead_row(lead) for lead in leads), len(leads), "leads")

        timings["calls"] = copy_in(conn, Call, [
            "id", "call_sid", "direction", "placed_by_id", "line_id", "lead_id", "from_number", "dial_status", "dial_call_sid",
            "call_status", "error_message", "missed", "missed_reason", "textback_skipped", "answered_by_id", "dial_duration",
            "call_duration", "recording_url", "recording_duration", "created_at", "ended_at",
        ], ((c[0], c[19], c[4], c[5], c[3], c[2].id, c[6], c[7], c[8], c[9], "", c[10], c[11], c[12], c[13], c[14], c[15], c[16], c[17],
             to_dt(c[1]), to_dt(c[18])) for c in story.calls), len(story.calls), "calls")

        rang = [(c[0], c[20]) for c in story.calls if c[20] is not None]
        timings["rang"] = copy_in(conn, Call.rang_agents.through, ["id", "call_id", "agent_id"],
                                  ((n, call_id, agent_id) for n, (call_id, agent_id) in enumerate(rang, 1)), len(rang), "calls' rung agents")

        timings["consent"], head = consent_load(conn, story.consent, ConsentEvent)

        timings["messages"] = copy_in(conn, Message, [
            "id", "lead_id", "line_id", "direction", "kind", "sender", "agent_id", "call_id", "to_number", "consent_event_id",
            "outreach", "revocation_check", "body", "segments", "num_media", "media_urls", "status", "provider_sid", "error_code",
            "error_message", "attempts", "next_attempt_at", "created_at", "queued_at", "sending_at", "sent_at", "delivered_at",
            "updated_at",
        ], message_rows(story.messages), len(story.messages), "messages")

        timings["events"] = copy_in(conn, LeadEvent, [
            "id", "lead_id", "kind", "actor_id", "agent_id", "previous_agent_id", "rule_id", "text", "detail", "created_at",
        ], ((n, e[1].id, e[2], e[3], e[4], e[5], e[6], e[7], e[8], to_dt(e[0])) for n, e in enumerate(story.events, 1)),
            len(story.events), "lead events")

        profiles: dict[str, tuple] = {}
        for p in story.profiles:  # one row a number: the latest word on it
            profiles[p[0]] = p
        timings["profiles"] = copy_in(conn, NumberProfile, ["id", "phone", "line_type", "source", "updated_at"],
                                      ((n, p[0], p[1], p[2], to_dt(p[3])) for n, p in enumerate(profiles.values(), 1)),
                                      len(profiles), "number profiles")

        reads = {(r[1], r[0].id): r for r in story.reads}
        timings["reads"] = copy_in(conn, LeadRead, ["id", "lead_id", "agent_id", "read_at"],
                                   ((n, r[0].id, r[1], to_dt(r[2])) for n, r in enumerate(reads.values(), 1)), len(reads), "read marks")

        turns = [(n, rule.id, agent_id, rule.credits.get(agent_id, 0.0), count)
                 for n, (rule, agent_id, count) in enumerate(((r, a, c) for r in rules for a, c in r.counts.items()), 1)]
        timings["turns"] = copy_in(conn, RoundRobinTurn, ["id", "rule_id", "agent_id", "credit", "assignments"], iter(turns), len(turns),
                                   "round-robin turns")

        with conn.cursor() as cur:
            cur.execute(f'UPDATE "{ConsentLedgerHead._meta.db_table}" SET seq = %s, hash = %s WHERE id = 1', head)
            if cur.rowcount != 1:
                raise SystemExit("seed_scale: the consent ledger's head row (pk=1) is missing after migrate")
            for model in (LeadModel, Call, Call.rang_agents.through, ConsentEvent, Message, LeadEvent, NumberProfile, LeadRead, RoundRobinTurn):
                table = model._meta.db_table
                cur.execute(f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), GREATEST((SELECT max(id) FROM \"{table}\"), 1))")
        conn.commit()
    return timings


def lead_row(lead: Lead) -> tuple:
    office = lead.office
    awaiting = lead.awaiting if lead.status != "closed" else None
    due = None
    if awaiting is not None:  # Lead.escalation_clock_set
        due = office.due(max(awaiting, lead.assigned_at or 0.0, lead.escalated_at or 0.0))
    line = lead.line
    listing = bool(line.listing) and lead.id % 2 == 0
    return (
        lead.id, lead.phone, lead.name, lead.email, line.lead_type, line.source, office.id, line.id, lead.agent.id if lead.agent else None,
        to_dt(lead.assigned_at), lead.status, to_dt(awaiting), to_dt(lead.escalated_at), line.zip_code if listing else "",
        line.city if listing else "", line.price if listing else None, lead.lang, lead.rule.id, None, lead.step if awaiting else 0,
        to_dt(due), to_dt(lead.call_back_since), lead.call_back_reason, lead.outcome, to_dt(lead.appointment_at), to_dt(lead.t0),
        to_dt(lead.last_activity),
    )


def message_rows(messages):
    from leads.textback import segment_count

    segments: dict[str, int] = {}
    for n, m in enumerate(messages, 1):
        (ts, lead, line_id, kind, agent_id, call, to_number, body, status, sid, error_code, error_message, queued, sending, sent,
         delivered, consent, outreach, media) = m
        seg = segments.get(body)
        if seg is None:
            seg = segments[body] = segment_count(body)
            if len(segments) > 200_000:
                segments.clear()
        inbound = kind == "inbound"
        updated = delivered or sent or queued or ts
        if status in ("undelivered", "failed"):
            updated = (sent or ts) + 6
        yield (
            n, lead.id, line_id, "in" if inbound else "out", kind, "lead" if inbound else "agent" if kind == "reply" else "system",
            agent_id, call[0] if call else None, to_number, consent[0] if consent else None, outreach, "", body, seg,
            1 if media else 0, media or "[]", status, sid, error_code, error_message, 0 if inbound or status == "canceled" else 1, None,
            to_dt(ts), to_dt(queued), to_dt(sending), to_dt(sent), to_dt(delivered), to_dt(updated),
        )


def consent_load(conn, records: list[list], ConsentEvent) -> tuple[float, tuple[int, str]]:
    """The chain, in time order, each link hashed by the model's own compute_hash; inserted past
    the model's queryset (which refuses bulk inserts by design) with COPY, the head set after."""
    from compliance.models import GENESIS_HASH

    started = time.perf_counter()
    prev = GENESIS_HASH
    rows = []
    compute = ConsentEvent.compute_hash
    for record in records:
        seq, ts, phone, sender, kind, source, source_ref, raw_text = record
        created_at = to_dt(ts)
        link = types.SimpleNamespace(seq=seq, prev_hash=prev, phone=phone, sender=sender, kind=kind, source=source,
                                     source_ref=source_ref, actor="", note="", raw_text=raw_text, created_at=created_at)
        digest = compute(link)
        rows.append((seq, seq, phone, sender, kind, source, source_ref, "", "", raw_text, created_at, prev, digest))
        prev = digest
    log(f"  consent ledger: {len(rows):,} links hashed in {time.perf_counter() - started:.1f} s")
    copy_in(conn, ConsentEvent, ["id", "seq", "phone", "sender", "kind", "source", "source_ref", "actor", "note", "raw_text",
                                           "created_at", "prev_hash", "hash"], iter(rows), len(rows), "consent events")
    return time.perf_counter() - started, (len(rows), prev)


# --- checks and the report -------------------------------------------------------------------------------------


COUNTED = [
    ("routing_office", "offices"), ("routing_agent", "agents"), ("routing_trackingnumber", "lines"), ("routing_routingrule", "rules"),
    ("routing_poolmember", "pool members"), ("routing_roundrobinturn", "round-robin turns"), ("leads_lead", "leads"),
    ("leads_call", "calls"), ("leads_call_rang_agents", "calls' rung agents"), ("leads_message", "messages"),
    ("leads_leadevent", "lead events"), ("leads_leadread", "read marks"), ("compliance_consentevent", "consent events"),
    ("compliance_numberprofile", "number profiles"),
]


def report(db: Database) -> dict:
    import psycopg

    out = {}
    with psycopg.connect(db.dsn) as conn:
        for table, label in COUNTED:
            out[label] = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
        out["by kind"] = dict(conn.execute("SELECT kind, count(*) FROM leads_message GROUP BY 1 ORDER BY 2 DESC").fetchall())
        out["calls in/out"] = dict(conn.execute("SELECT direction, count(*) FROM leads_call GROUP BY 1").fetchall())
        out["missed"] = conn.execute("SELECT count(*) FROM leads_call WHERE direction = 'in' AND missed").fetchone()[0]
        out["missed reasons"] = dict(conn.execute("SELECT missed_reason, count(*) FROM leads_call WHERE missed GROUP BY 1").fetchall())
        out["events by kind"] = dict(conn.execute("SELECT kind, count(*) FROM leads_leadevent GROUP BY 1 ORDER BY 2 DESC").fetchall())
        out["leads by status"] = dict(conn.execute("SELECT status, count(*) FROM leads_lead GROUP BY 1 ORDER BY 2 DESC").fetchall())
        out["leads by outcome"] = dict(conn.execute("SELECT outcome, count(*) FROM leads_lead GROUP BY 1 ORDER BY 2 DESC").fetchall())
        out["waiting now"] = conn.execute("SELECT count(*) FROM leads_lead WHERE awaiting_reply_since IS NOT NULL").fetchone()[0]
        out["escalated leads"] = conn.execute("SELECT count(DISTINCT lead_id) FROM leads_leadevent WHERE kind = 'escalated'").fetchone()[0]
        out["opted-out leads"] = conn.execute("SELECT count(DISTINCT phone) FROM compliance_consentevent WHERE kind = 'opt_out'").fetchone()[0]
        out["landlines"] = conn.execute("SELECT count(*) FROM compliance_numberprofile WHERE line_type = 'landline'").fetchone()[0]
        out["textback statuses"] = dict(conn.execute("SELECT status, count(*) FROM leads_message WHERE kind = 'textback' GROUP BY 1 ORDER BY 2 DESC").fetchall())
        out["time span"] = [str(v) for v in conn.execute("SELECT min(created_at), max(created_at) FROM leads_message").fetchone()]
        size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]
        out["database size"] = size
    return out


def dashboard_check(days: int, now: float) -> dict:
    """The dashboard's own numbers for the last `days`, as a broker reads them: every figure non-trivial."""
    from leads.metrics import dashboard
    from routing.models import Agent

    broker = Agent.objects.filter(role=Agent.Role.BROKER).select_related("office").order_by("id").first()
    now = to_dt(now)
    started = time.perf_counter()
    board = dashboard(viewer=broker, start=now - dt.timedelta(days=days), end=now, dimension="office")
    t = board.total
    return {
        "days": days, "seconds": round(time.perf_counter() - started, 2), "rows": len(board.rows),
        "inbound_calls": t.inbound_calls, "missed_calls": t.missed_calls, "missed_rate": t.missed_rate,
        "textbacks_sent": t.textbacks_sent, "delivered_rate": t.delivered_rate, "undelivered": t.undelivered,
        "speed_to_lead_p50_s": t.speed_to_lead_p50, "speed_to_lead_p90_s": t.speed_to_lead_p90, "reply_rate": t.reply_rate,
        "response_p50_min": round(t.response_p50 / 60, 1) if t.response_p50 is not None else None,
        "response_p90_min": round(t.response_p90 / 60, 1) if t.response_p90 is not None else None,
        "response_business_p50_min": round(t.response_business_p50 / 60, 1) if t.response_business_p50 is not None else None,
        "never_answered": t.never_answered, "recovery_rate": t.recovery_rate, "appointment_rate": t.appointment_rate,
        "opt_out_rate": t.opt_out_rate, "landline_rate": t.landline_rate, "escalations": t.escalations,
    }


# --- main ------------------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="volume factor: 1.0 = 200,000 leads and 1,000,000 messages")
    parser.add_argument("--seed", type=int, default=42, help="random seed (the same seed, scale and --now give the same data)")
    parser.add_argument("--now", type=dt.datetime.fromisoformat, default=None,
                        help="the end of the simulated year, ISO 8601 with an offset (default: now)")
    parser.add_argument("--db-name", default=DEFAULT_DB_NAME, help="the database created (dropped first if it exists) and left in place")
    parser.add_argument("--drop", action="store_true", help="drop the database and exit")
    parser.add_argument("--dashboard-days", type=int, default=30, help="read the dashboard over this many days at the end (0: skip)")
    args = parser.parse_args()
    if not 0.001 <= args.scale <= 5:
        parser.error("--scale from 0.001 to 5")
    if args.now is not None and args.now.tzinfo is None:
        parser.error("--now needs a UTC offset, e.g. 2026-06-01T12:00:00+00:00")
    db = Database(args.db_name)
    if args.drop:
        db.drop()
        log(f"dropped {db.name} (if it existed)")
        return 0
    try:
        return seed(args, db)
    finally:
        if db.created:
            where = db.url.rsplit("@", 1)[-1]
            print(f"\nThe database {db.name} is left in place ({where}). Drop it with the same DATABASE_URL and\n"
                  f"    .venv/bin/python bench/seed_scale.py --drop{'' if db.name == DEFAULT_DB_NAME else f' --db-name {db.name}'}\n"
                  f"or in psql: DROP DATABASE \"{db.name}\" WITH (FORCE);", flush=True)
        db.close()


def seed(args, db: Database) -> int:
    phases = {}
    rng = random.Random(args.seed)
    n_leads = max(100, round(LEADS * args.scale))
    target_messages = round(MESSAGES * args.scale)
    log(f"database {db.name}: re-creating and migrating ...")
    db.recreate()
    db.django_setup()
    from django.conf import settings
    from django.core.management import call_command

    started = time.perf_counter()
    call_command("migrate", "--noinput", verbosity=0)
    phases["migrate"] = time.perf_counter() - started

    started = time.perf_counter()
    now = args.now.timestamp() if args.now else time.time()
    offices, lines, agents, rules = org_build(rng, now)
    phases["organisation"] = time.perf_counter() - started
    log(f"organisation: {len(offices)} offices, {len(agents)} agents, {len(lines)} lines, {len(rules)} rules "
        f"({phases['organisation']:.1f} s)")

    from leads.models import TextbackTemplate
    from leads.textback import DEFAULT_TEMPLATES
    from routing.models import LeadType

    templates = {lt.value: DEFAULT_TEMPLATES[lt] for lt in LeadType}
    templates.update(dict(TextbackTemplate.objects.values_list("lead_type", "body")))
    story = Story(rng=rng, now=now, lines=lines, clock=Clock(now, rng),
                  templates=templates, base_url=settings.PUBLIC_BASE_URL, lead_types={lt.value: lt.label for lt in LeadType})

    started = time.perf_counter()
    leads = story.skeletons(n_leads, max(3, round(WAITING_NOW * args.scale)))
    log(f"{len(leads):,} leads drawn ({time.perf_counter() - started:.1f} s); simulating a year of calls and texts ...")
    # The messages' total is held to the target by adjusting how long conversations run, as the
    # leads go by (each lead's story is drawn independently of the others').
    step = max(10, len(leads) // 2000)
    for n, lead in enumerate(leads, 1):
        story.lead(lead)
        if n % step == 0:
            story.steer(n, len(leads), target_messages)
        if n % (len(leads) // 10 or 1) == 0:
            log(f"  {n:,} leads: {len(story.calls):,} calls, {len(story.messages):,} messages, {len(story.events):,} events, "
                f"{len(story.consent):,} consent events (conversation length x{story.conv_mult:.2f})")
    phases["simulate"] = time.perf_counter() - started

    started = time.perf_counter()
    log("loading (COPY, in time order) ...")
    loads = load(story, leads, db, rules)
    phases["load"] = time.perf_counter() - started

    import psycopg

    started = time.perf_counter()
    with psycopg.connect(db.dsn, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
    phases["vacuum_analyze"] = time.perf_counter() - started
    log(f"VACUUM (ANALYZE): {phases['vacuum_analyze']:.1f} s")

    # After the statistics: the outcome queries are planned on them.
    from leads.services import missed_call_outcomes_rebuild

    started = time.perf_counter()
    outcomes = missed_call_outcomes_rebuild()
    with psycopg.connect(db.dsn, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) leads_missedcalloutcome")
    phases["missed_call_outcomes"] = time.perf_counter() - started
    log(f"missed calls' outcomes (leads.services.missed_call_outcomes_rebuild): {outcomes:,} in {phases['missed_call_outcomes']:.1f} s")

    from compliance.selectors import ledger_verify

    started = time.perf_counter()
    verdict = ledger_verify()
    phases["ledger_verify"] = time.perf_counter() - started
    log(f"ledger_verify(): {verdict.events:,} events, {'intact' if verdict.first_break is None else verdict.first_break} "
        f"({phases['ledger_verify']:.1f} s)")

    board = None
    if args.dashboard_days:
        board = dashboard_check(args.dashboard_days, now)
        phases["dashboard_read"] = board["seconds"]

    counts = report(db)
    total = time.perf_counter() - STARTED
    rts = sorted(story.rts)
    sim = dict(sorted(story.stats.items()))
    if rts:
        sim["first_touch_p50_min"] = round(rts[len(rts) // 2] / 60, 1)
        sim["first_touch_p90_min"] = round(rts[int(len(rts) * 0.9)] / 60, 1)
    print()
    print(f"seed_scale: scale {args.scale:g}, seed {args.seed}, database {db.name} ({counts.pop('database size')}) — {total:.0f} s in all")
    print("  phases (s): " + ", ".join(f"{k} {v:.1f}" for k, v in phases.items()))
    print("  COPY (s):   " + ", ".join(f"{k} {v:.1f}" for k, v in loads.items()))
    for key, value in counts.items():
        print(f"  {key:<22} {value:,}" if isinstance(value, int) else f"  {key:<22} {value}")
    print(f"  simulation: {sim}")
    if board:
        print(f"  dashboard, last {board['days']} days, all offices (leads.metrics.dashboard, {board['seconds']} s): "
              + ", ".join(f"{k}={v}" for k, v in board.items() if k not in ("days", "seconds")))
    problems = []
    if verdict.first_break is not None or verdict.events != counts["consent events"]:
        problems.append(f"consent ledger: {verdict.events} events verified of {counts['consent events']}, break: {verdict.first_break}")
    if abs(counts["messages"] - target_messages) > 0.01 * target_messages:
        problems.append(f"messages {counts['messages']:,}, target {target_messages:,} +-1 %")
    for problem in problems:
        print(f"PROBLEM: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
