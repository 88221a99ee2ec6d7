"""Routing under load: how fast missed calls get an agent, and what the escalation sweep costs.

Phase 1, assignments. --calls missed calls from distinct numbers, --concurrency closed loops:
each loop sends the signed POST /twilio/voice/incoming/, then the signed POST
/twilio/voice/dial-status/ (DialCallStatus=no-answer), and places its next call once the
caller's text has reached Twilio (the fake), as speed_to_lead.py does. Reported: assignments
per second (LeadEvent "assigned" rows, read afterwards with their created_at) and, per call, the
time from the dial-status POST leaving to its assignment. The in-run baselines are the same
loops posting the same two requests to the trivial /bench/floor/ view (calls per second Django
can take with nothing behind it) and the dial-status round trip itself. Checked: every lead
assigned exactly once, and each office's catch-all pool shared out exactly by weight
(RoundRobinTurn.assignments; the calls are split so that each office gets whole turns of its pool).

Phase 2, the escalation sweep, in this process against the same database and Redis:
--open-leads leads waiting for a reply (bulk-inserted), of which 0, 100, 1,000 (--due) are due
at a time. Per size, --sweep-runs timed runs of leads.tasks.escalation_sweep_task() (the index
read plus the tasks that hand the due leads to the workers, pushed to the same Redis by the same
broker class but onto a list no worker reads, so the same leads stay due), then --apply-runs
runs onto the real queue: two sweeps back to back (the second before the worker has caught up,
so most leads are handed over twice), and the real worker applies the steps (lead_deadline_pass
per lead). Checked: each sweep handed over exactly the due leads, and each due lead escalated
exactly once. The EXPLAIN of the sweep's own query is kept with the results.

    .venv/bin/python bench/routing.py [--calls 640 --concurrency 32 --open-leads 100000 --due 0,100,1000]
                                      [--sweep-runs 20 --apply-runs 3]

Honours DATABASE_URL and REDIS_URL (see bench/README.md). Goal: p99 of the sweeps < 1 s at
every size, with --open-leads waiting.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import datetime as dt
import itertools
import os
import random
import sys
import threading
import time
from pathlib import Path
from unittest import mock

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (  # noqa: E402
    LINES, Stack, StackError, Webhooks, caller_number, machine_info, new_call_sid, percentile, run_benchmark, summary,
    write_result,
)

GOAL_SWEEP_P99_S = 1.0
# Phone numbers of the bulk-inserted waiting leads: clear of the callers (+1555700xxxx) and the
# warm-up (+1555600xxxx).
OPEN_LEAD_PHONE = "+1555{:07d}"
OPEN_LEAD_FIRST = 8_000_000


def django_connect(stack: Stack) -> None:
    """This process becomes one more of the product's processes (same settings, database, broker),
    so the sweep is timed as the worker would run it, without a task queue's overhead around it."""
    os.environ.update(stack.env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "textback_site.settings"
    import django

    django.setup()


class DbWaits:
    """What the product's connections to the bench database are doing, sampled every 100 ms from
    pg_stat_activity (PostgreSQL only): how many run a statement, and how many of those wait for a
    row lock, on which statement. It tells CPU-bound from lock-bound: assignments of one office
    take turns on their rule's row (pool_pick), escalations too."""

    def __init__(self, stack: Stack, interval: float = 0.1):
        self.url = stack.database_url.replace("postgres://", "postgresql://", 1) if stack.db_label == "postgres" else None
        self.interval, self.samples, self.active, self.waiting = interval, 0, 0, 0
        self.by_statement: collections.Counter = collections.Counter()
        self.by_lock: collections.Counter = collections.Counter()  # "COMMIT on routing_routingrule"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "DbWaits":
        if self.url:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self.url:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.wait(self.interval):
                # Each waiter: its statement, the lock (a row's waiter takes the row's tuple lock,
                # which names the table, then waits for the transaction holding the row), and what
                # that transaction is running ("idle in transaction": between two statements).
                rows = conn.execute(
                    "SELECT a.wait_event_type, left(regexp_replace(a.query, '\\s+', ' ', 'g'), 90),"
                    " coalesce((SELECT l.relation::regclass::text FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'tuple'"
                    "  LIMIT 1), a.wait_event),"
                    " (SELECT b.state || ': ' || left(regexp_replace(b.query, '\\s+', ' ', 'g'), 70) FROM pg_stat_activity b"
                    "  WHERE b.pid = ANY(pg_blocking_pids(a.pid)) LIMIT 1)"
                    " FROM pg_stat_activity a"
                    " WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND a.state = 'active'"
                ).fetchall()
                self.samples += 1
                self.active += len(rows)
                for wait_type, query, on, blocker in rows:
                    if wait_type == "Lock":
                        self.waiting += 1
                        self.by_lock[f"{query.split(' ', 1)[0]} on {on}"] += 1
                        self.by_statement[f"{query} [on {on}] <- {blocker}"] += 1

    def report(self) -> dict | None:
        if not self.url or not self.samples:
            return None
        return {
            "samples": self.samples, "mean_active_statements": round(self.active / self.samples, 2),
            "mean_waiting_for_a_lock": round(self.waiting / self.samples, 2),
            "lock_waits_by_kind": {k: round(n / self.samples, 3) for k, n in self.by_lock.most_common()},
            "lock_waits_by_statement": {q: round(n / self.samples, 2) for q, n in self.by_statement.most_common(5)},
        }


# --- phase 1: the call plan --------------------------------------------------------------------


@dataclasses.dataclass
class OfficePool:
    name: str
    lines: list[str]
    rule_id: int
    weights: dict[int, int]  # agent id -> weight in the catch-all pool, agents available now
    names: dict[int, str]
    skipped: list

    @property
    def turn(self) -> int:
        return sum(self.weights.values())


def office_pools() -> list[OfficePool]:
    """Each demo office's catch-all pool as the product sees it now (rule_pool + availability)."""
    from django.utils import timezone

    from routing.models import Office, RoutingRule, TrackingNumber
    from routing.selectors import LeadFacts, availability, rule_for, rule_pool
    from routing.services import office_catch_all

    pools = []
    for office in Office.objects.order_by("name"):
        lines = [line for line in TrackingNumber.objects.filter(office=office, active=True) if line.number in LINES]
        if not lines:
            continue
        rule = office_catch_all(office=office)
        # The share check is about this pool: every call of the run must be routed by it.
        for line in lines:
            facts = LeadFacts(office=office, line=line, phone=caller_number(0), source=line.source, lead_type=line.lead_type)
            decided = rule_for(facts, at=timezone.now())
            if decided != rule or rule.strategy != RoutingRule.Strategy.ROUND_ROBIN:
                raise StackError(f"calls to {line.number} would be routed by {decided} ({decided.strategy}), not a round-robin catch-all")
        found = availability(rule_pool(rule), at=timezone.now())
        pools.append(OfficePool(
            name=office.name, lines=sorted(line.number for line in lines), rule_id=rule.pk,
            weights={a.pk: w for a, w in found.available}, names={a.pk: a.name for a, _ in found.available},
            skipped=found.skipped,
        ))
    return pools


def office_quotas(calls: int, pools: list[OfficePool]) -> tuple[dict[str, int], bool]:
    """Calls per office: near each office's share of the lines, but whole turns of its pool, so
    that weighted round-robin must hand out exactly weight/turn of them to each agent (any run of
    one full turn gives each agent its weight, wherever the turn starts). Returns (quotas, exact);
    when no split into whole turns exists, the lines decide and the check allows one lead off."""
    total_lines = sum(len(p.lines) for p in pools)
    target = {p.name: calls * len(p.lines) / total_lines for p in pools}
    best = None
    *head, last = pools
    for counts in itertools.product(*(range(0, calls + 1, p.turn) for p in head)):
        rest = calls - sum(counts)
        if rest < 0 or rest % last.turn:
            continue
        quotas = dict(zip([p.name for p in head], counts)) | {last.name: rest}
        distance = sum(abs(quotas[name] - target[name]) for name in quotas)
        if best is None or distance < best[0]:
            best = (distance, quotas)
    if best is not None:
        return best[1], True
    quotas = {p.name: round(target[p.name]) for p in pools}
    quotas[last.name] += calls - sum(quotas.values())
    return quotas, False


@dataclasses.dataclass
class CallSample:
    caller: str
    line: str
    office: str
    incoming: tuple
    dial: tuple
    incoming_status: int = 0
    dial_status: int = 0
    sent_ns: int = 0  # time.time_ns() just before the dial-status POST left
    webhook_ms: float | None = None
    text_ns: int | None = None  # the fake's time.time_ns() when Messages.create arrived
    error: str = ""


def call_plan(hooks: Webhooks, pools: list[OfficePool], quotas: dict[str, int]) -> list[CallSample]:
    """The offices' calls interleaved evenly (both pools stay busy the whole run), each office's
    alternating over its lines. Requests are signed here, before any clock runs."""
    slots = []
    for pool in pools:
        n = quotas[pool.name]
        slots += [((j + 0.5) / n, pool, pool.lines[j % len(pool.lines)]) for j in range(n)]
    slots.sort(key=lambda s: (s[0], s[1].name))
    plan = []
    for i, (_, pool, line) in enumerate(slots):
        caller, sid = caller_number(i), new_call_sid()
        plan.append(CallSample(
            caller=caller, line=line, office=pool.name,
            incoming=hooks.incoming(call_sid=sid, caller=caller, line=line),
            dial=hooks.dial_status(call_sid=sid, caller=caller, line=line),
        ))
    return plan


# --- phase 1: the loops --------------------------------------------------------------------------


async def _post(session: aiohttp.ClientSession, request: tuple) -> tuple[int, str]:
    url, body, headers = request
    try:
        async with session.post(url, data=body, headers=headers) as response:
            await response.read()
            return response.status, ""
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        return 0, f"{type(exc).__name__}: {exc}"


async def _closed_loops(concurrency: int, items: list, one) -> None:
    work = collections.deque(items)

    async def loop():
        while work:
            await one(work.popleft())

    await asyncio.gather(*(loop() for _ in range(concurrency)))


def _session(concurrency: int, total: float) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=total))


async def floor_run(requests: list[tuple], concurrency: int) -> tuple[float, collections.Counter]:
    """The same loops, the same two requests per call, against a view that does nothing."""
    codes: collections.Counter = collections.Counter()

    async def one(pair):
        for request in pair:
            status, _ = await _post(session, request)
            codes[status] += 1

    async with _session(concurrency, 15) as session:
        started = time.perf_counter()
        await _closed_loops(concurrency, requests, one)
        return time.perf_counter() - started, codes


async def calls_run(stack: Stack, plan: list[CallSample], concurrency: int, text_timeout: float) -> None:
    async def one(call: CallSample):
        call.incoming_status, call.error = await _post(web, call.incoming)
        call.sent_ns, started = time.time_ns(), time.perf_counter()
        call.dial_status, error = await _post(web, call.dial)
        call.webhook_ms = (time.perf_counter() - started) * 1000
        call.error = call.error or error
        # The loop's next call waits for this caller's text: the call is over for the loop once
        # the product has routed it and texted back.
        params = {"to": call.caller, "timeout": str(text_timeout)}
        try:
            async with fake.get(stack.fake_url + "/_fake/wait", params=params) as response:
                message = (await response.json()).get("message") if response.status == 200 else None
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            message, call.error = None, call.error or f"fake wait: {type(exc).__name__}"
        call.text_ns = message["received_ns"] if message else None

    async with _session(concurrency, 15) as web, _session(concurrency, text_timeout + 10) as fake:
        await _closed_loops(concurrency, plan, one)


# --- phase 1: what the database says -----------------------------------------------------------


def turns_read(pools: list[OfficePool]) -> dict[tuple[int, int], int]:
    from routing.models import RoundRobinTurn

    rows = RoundRobinTurn.objects.filter(rule_id__in=[p.rule_id for p in pools]).values_list("rule_id", "agent_id", "assignments")
    return {(rule_id, agent_id): n for rule_id, agent_id, n in rows}


def assignments_read(phones: list[str]) -> dict[str, list[dict]]:
    """Every routing event of the run's leads (an assignment or an offer), by caller."""
    from leads.models import Lead, LeadEvent

    events: dict[str, list[dict]] = {phone: [] for phone in phones}
    rows = LeadEvent.objects.filter(lead__phone__in=phones, kind__in=[LeadEvent.Kind.ASSIGNED, LeadEvent.Kind.OFFERED])
    for phone, kind, agent_id, created_at in rows.values_list("lead__phone", "kind", "agent_id", "created_at"):
        events[phone].append({"kind": kind, "agent_id": agent_id, "ns": round(created_at.timestamp() * 1e6) * 1000})
    current = dict(Lead.objects.filter(phone__in=phones).values_list("phone", "assigned_agent_id"))
    for phone, agent_id in current.items():
        for event in events[phone]:
            event["lead_agent_id"] = agent_id
    return events


def assignments_analyse(plan, pools, quotas, exact, turns_before, turns_after, events) -> dict:
    once = [c for c in plan if len(events[c.caller]) == 1 and events[c.caller][0]["kind"] == "assigned" and events[c.caller][0]["agent_id"]]
    once_callers = {c.caller for c in once}
    several = [c.caller for c in plan if len(events[c.caller]) > 1]
    none = [c.caller for c in plan if not events[c.caller]]
    other = [c.caller for c in plan if len(events[c.caller]) == 1 and c.caller not in once_callers]
    moved = [c.caller for c in once if events[c.caller][0]["lead_agent_id"] != events[c.caller][0]["agent_id"]]
    bad_http = [c.caller for c in plan if c.incoming_status != 200 or c.dial_status != 200]
    texts_missing = [c.caller for c in plan if c.text_ns is None]

    assigned_ns = [events[c.caller][0]["ns"] for c in once]
    latency = summary([(events[c.caller][0]["ns"] - c.sent_ns) / 1e6 for c in once])
    text = summary([(c.text_ns - c.sent_ns) / 1e6 for c in plan if c.text_ns is not None])
    webhook = summary([c.webhook_ms for c in plan if c.webhook_ms is not None])
    first_sent = min(c.sent_ns for c in plan)  # the first dial-status: nothing can be assigned before
    window_s = (max(assigned_ns) - first_sent) / 1e9 if assigned_ns else float("nan")

    # Who the catch-all pools chose during the run (the warm-up's turns are subtracted).
    by_event = collections.Counter(events[c.caller][0]["agent_id"] for c in once)
    shares, share_ok = [], True
    for pool in pools:
        for agent_id, weight in sorted(pool.weights.items()):
            actual = turns_after.get((pool.rule_id, agent_id), 0) - turns_before.get((pool.rule_id, agent_id), 0)
            expected = quotas[pool.name] * weight / pool.turn
            ok = actual == expected if exact else abs(actual - expected) <= 1
            share_ok &= ok
            shares.append({
                "office": pool.name, "agent": pool.names[agent_id], "weight": weight, "expected": round(expected, 2),
                "actual": actual, "assigned_events": by_event.get(agent_id, 0), "ok": ok,
            })
    # Events and turns must tell the same story: a turn without its event (or the reverse) is a lost lead.
    events_match_turns = all(s["actual"] == s["assigned_events"] for s in shares)
    return {
        "assigned_once": len(once), "assigned_several": len(several), "never_assigned": len(none),
        "other_routing": len(other), "assignee_changed_since": len(moved), "non_200_webhooks": len(bad_http),
        "texts_missing": len(texts_missing), "examples": {"several": several[:5], "none": none[:5], "http": bad_http[:5]},
        "assignments_per_s": round(len(once) / window_s, 2) if assigned_ns else None, "window_s": round(window_s, 2),
        "assignment_after_dial_status_ms": latency, "text_after_dial_status_ms": text, "dial_status_round_trip_ms": webhook,
        "ratio_assignment_to_webhook": {q: round(latency[q] / webhook[q], 2) if webhook[q] else None for q in ("p50", "p90", "p99")},
        "shares": shares, "shares_exact_check": exact, "shares_ok": share_ok, "events_match_turns": events_match_turns,
    }


# --- phase 2: the sweep ------------------------------------------------------------------------------


def sweep_setup(open_leads: int, seed: int) -> dict:
    """Make the sweep's world: `open_leads` leads waiting for a reply, none due, and nobody but
    this process sweeping.

    - The worker's own minute schedule of the sweep is paused (its next run moved a day on), so
      every sweep of this phase is one this process timed and the due set stays under control.
    - The offices' escalation window becomes a day, so a lead that escalates here is not due again
      before the phase ends (its clock restarts from the escalation, as Lead.save() computes it).
    - The leads phase 1 left waiting are pushed a day out for the same reason; they count among
      the open leads, and the rest are inserted with bulk_create. bulk_create skips Lead.save(), so
      escalation_due_at is written here: between 1 h and 24 h ahead, spread evenly.
    """
    from django.db import connection
    from django.utils import timezone
    from django_q.models import Schedule

    from leads.models import Lead
    from routing.models import Office, TrackingNumber
    from routing.selectors import rule_pool
    from routing.services import office_catch_all

    now = timezone.now()
    Schedule.objects.filter(func="leads.tasks.escalation_sweep_task").update(next_run=now + dt.timedelta(days=1))
    Office.objects.update(escalation_minutes=24 * 60)
    Lead.objects.filter(escalation_due_at__isnull=False).update(escalation_due_at=now + dt.timedelta(days=1))
    existing = Lead.objects.filter(escalation_due_at__isnull=False).count()

    # Who the waiting leads belong to: every line, and the agents of its office's catch-all pool.
    homes = []
    for line in TrackingNumber.objects.filter(active=True).select_related("office").order_by("number"):
        rule = office_catch_all(office=line.office)
        homes += [(line, rule, agent) for agent, _ in rule_pool(rule)]
    count = max(0, open_leads - existing)
    waiting_since = now - dt.timedelta(minutes=12)
    started = time.perf_counter()
    batch = []
    for i in range(count):
        line, rule, agent = homes[i % len(homes)]
        batch.append(Lead(
            phone=OPEN_LEAD_PHONE.format(OPEN_LEAD_FIRST + i), office_id=line.office_id, line=line, lead_type=line.lead_type,
            source=line.source, assigned_agent=agent, assigned_at=waiting_since, status=Lead.Status.CONTACTED,
            awaiting_reply_since=waiting_since, routing_rule=rule,
            escalation_due_at=now + dt.timedelta(hours=1) + dt.timedelta(hours=23) * i / max(count, 1),
        ))
        if len(batch) == 5000:
            Lead.objects.bulk_create(batch)
            batch = []
    Lead.objects.bulk_create(batch)
    insert_s = time.perf_counter() - started
    # Fresh statistics, as autovacuum would gather shortly after such a load; without them the
    # planner guesses at the new rows.
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Lead._meta.db_table}")
    phones = (OPEN_LEAD_PHONE.format(OPEN_LEAD_FIRST), OPEN_LEAD_PHONE.format(OPEN_LEAD_FIRST + max(count - 1, 0)))
    candidates = list(Lead.objects.filter(phone__range=phones).order_by("pk").values_list("pk", flat=True)) if count else []
    # Due leads are drawn at random, so they lie scattered over the table as real ones would.
    random.Random(seed).shuffle(candidates)
    return {
        "open_leads": Lead.objects.filter(escalation_due_at__isnull=False).count(), "from_phase_1": existing,
        "inserted": count, "insert_s": round(insert_s, 2), "candidates": candidates,
    }


def due_query_plan(now: dt.datetime) -> dict:
    """The sweep's own SQL (captured from leads_due_ids), explained by the database."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from leads.selectors import leads_due_ids

    with CaptureQueriesContext(connection) as captured:
        leads_due_ids(now=now)
    sql = captured.captured_queries[-1]["sql"]
    prefix = "EXPLAIN (ANALYZE, BUFFERS) " if connection.vendor == "postgresql" else "EXPLAIN QUERY PLAN "
    with connection.cursor() as cursor:
        cursor.execute(prefix + sql)
        rows = cursor.fetchall()
    plan = [row[0] if len(row) == 1 else " | ".join(str(c) for c in row) for row in rows]
    return {"sql": sql, "plan": plan, "uses_due_index": any("lead_escalation_due_idx" in line for line in plan)}


# The timed sweeps enqueue onto this list of the same Redis, through the same broker class, and no
# worker reads it: so the same k leads stay due for every timed run and the workers' load does not
# mix in. (Under the harness's django_q:textback:* pattern, so its clean-up removes it too.)
PARKED_QUEUE = "textback:bench-parked"


@contextlib.contextmanager
def parked_queue():
    import leads.tasks
    from django_q.brokers import get_broker

    broker = get_broker(PARKED_QUEUE)
    broker.delete_queue()
    try:
        with mock.patch.object(leads.tasks, "_broker", lambda pid: broker):
            yield broker
    finally:
        broker.delete_queue()


def parked_lead_ids(broker) -> list[int]:
    """The lead ids in the parked tasks' arguments (a task may carry one lead or a batch)."""
    from django_q.signing import SignedPackage

    ids = []
    for raw in broker.connection.lrange(broker.list_key, 0, -1):
        for arg in SignedPackage.loads(raw)["args"]:
            ids.extend(arg if isinstance(arg, (list, tuple)) else [arg])
    return ids


def sweeps_parked(runs: int, due: list[int]) -> list[dict]:
    from leads.tasks import escalation_sweep_task

    out = []
    with parked_queue() as broker:
        for _ in range(runs):
            started = time.perf_counter()
            found = escalation_sweep_task()
            elapsed = time.perf_counter() - started
            # Every due lead handed over exactly once, in however many tasks (read after the clock).
            handed = collections.Counter(parked_lead_ids(broker))
            out.append({"s": elapsed, "found": found, "tasks": broker.queue_size(), "each_due_lead_once": handed == collections.Counter(due)})
            broker.delete_queue()
    return out


def stack_broker():
    from leads.tasks import _broker

    return _broker(os.getpid())  # the very client the sweep enqueues through


def _queue_quiet(broker, timeout: float) -> float | None:
    """Wait until nothing is left in the broker's queue nor in the outbox (the agents' alerts): the
    worker is done but for the tasks it already took, which only wait on a lock that is free by
    now. Returns when that was seen (time.perf_counter()), None on timeout."""
    from leads.models import Message

    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if broker.queue_size() == 0 and not Message.objects.filter(status__in=[Message.Status.QUEUED, Message.Status.SENDING]).exists():
            seen = time.perf_counter()
            time.sleep(1.0)  # the last tasks the cluster had already taken off the queue
            return seen
        time.sleep(0.1)
    return None


def sweep_apply_run(stack: Stack, ids: list[int], drain_timeout: float) -> dict:
    """The due leads' windows run out now; two sweeps back to back onto the real queue (the second
    before the worker has caught up, so most leads get two tasks); the worker applies the steps."""
    from django.utils import timezone

    from leads.models import Lead, LeadEvent
    from leads.tasks import escalation_sweep_task

    if ids:
        Lead.objects.filter(pk__in=ids).update(escalation_due_at=timezone.now())
    started_dt = timezone.now()
    started = time.perf_counter()
    first = escalation_sweep_task()
    first_s = time.perf_counter() - started
    second = escalation_sweep_task()
    second_s = time.perf_counter() - started - first_s
    run = {"due": len(ids), "first_s": first_s, "second_s": second_s, "found_first": first, "found_second": second}
    if not ids:
        return run
    # Nothing else escalates in this phase, so counting escalations since the sweep is cheap (the
    # (kind, created_at) index) and exact; the per-lead check below settles it.
    escalations = LeadEvent.objects.filter(kind=LeadEvent.Kind.ESCALATED, created_at__gte=started_dt)
    deadline = time.monotonic() + drain_timeout
    while escalations.count() < len(ids) and time.monotonic() < deadline:
        stack.check_alive()
        time.sleep(0.1)
    last = escalations.order_by("-created_at").values_list("created_at", flat=True).first()
    run["apply_s"] = (last - started_dt).total_seconds() if last else None
    run["steps_per_s"] = len(ids) / run["apply_s"] if last else None
    # The steps' alerts to the agents' phones leave after the steps: "all out" is when the last did.
    quiet_at = _queue_quiet(stack_broker(), drain_timeout)
    run["quiet"] = quiet_at is not None
    run["all_out_s"] = quiet_at - started if quiet_at else None
    per_lead = collections.Counter(
        LeadEvent.objects.filter(kind=LeadEvent.Kind.ESCALATED, lead_id__in=ids).values_list("lead_id", flat=True)
    )
    run["escalated_once"] = sum(1 for i in ids if per_lead[i] == 1)
    run["escalated_twice_or_more"] = sum(1 for i in ids if per_lead[i] > 1)
    run["not_escalated"] = sum(1 for i in ids if per_lead[i] == 0)
    return run


def find_only(runs: int) -> list[float]:
    """The index read alone (nothing enqueued): what of a sweep is the read, what the enqueuing."""
    from django.utils import timezone

    from leads.selectors import leads_due_ids

    times = []
    for _ in range(runs):
        started = time.perf_counter()
        leads_due_ids(now=timezone.now())
        times.append(time.perf_counter() - started)
    return times


def sweep_phase(stack: Stack, args) -> dict:
    from django.conf import settings
    from django.utils import timezone

    from leads.models import Lead, LeadEvent

    escalated_before = LeadEvent.objects.filter(kind=LeadEvent.Kind.ESCALATED).count()
    stack.log(f"sweep: {args.open_leads} open leads ...")
    world = sweep_setup(args.open_leads, args.seed)
    candidates = world.pop("candidates")
    needed = sum(args.apply_runs * k for k in args.due)
    if needed > len(candidates):
        raise StackError(f"--due x --apply-runs needs {needed} leads to make due, only {len(candidates)} inserted")
    stack.log(f"{world['inserted']} inserted in {world['insert_s']} s; {world['open_leads']} open leads in all")
    taken = 0

    def take(k: int) -> list[int]:
        nonlocal taken
        taken += k
        return candidates[taken - k : taken]

    sizes, plans = [], {}
    for k in args.due:
        ids = take(k)
        if ids:
            Lead.objects.filter(pk__in=ids).update(escalation_due_at=timezone.now())
        plans[k] = due_query_plan(timezone.now())
        stack.log(f"{k} due: {args.sweep_runs} timed sweeps, then {args.apply_runs} applied by the worker ...")
        find = find_only(args.sweep_runs)
        parked = sweeps_parked(args.sweep_runs, ids)
        cpu_before = stack.cpu_snapshot()
        with DbWaits(stack) as waits:
            applied = [sweep_apply_run(stack, ids if r == 0 else take(k), args.drain_timeout) for r in range(args.apply_runs)]
        cpu = stack.cpu_delta(cpu_before, stack.cpu_snapshot())
        sweep_ms = [r["s"] * 1000 for r in parked]
        first, second = [r["first_s"] * 1000 for r in applied], [r["second_s"] * 1000 for r in applied]
        size = {
            "due": k, "sweep_ms": summary(sweep_ms), "find_only_ms": summary([t * 1000 for t in find]),
            "tasks_per_sweep": parked[0]["tasks"],
            "enqueue_ms_per_due_lead": round((percentile(sweep_ms, 50) - percentile(find, 50) * 1000) / k, 3) if k else None,
            "found_exactly_the_due": all(r["found"] == k and r["each_due_lead_once"] for r in parked)
            and all(r["found_first"] == k for r in applied),
            "applied": {"runs": len(applied), "first_sweep_ms": summary(first), "second_sweep_ms": summary(second),
                        "second_sweep_found": summary([r["found_second"] for r in applied])},
            "all_sweeps_p99_ms": round(percentile(sweep_ms + first + second, 99), 2),
            "all_sweeps_max_ms": round(max(sweep_ms + first + second), 2),
        }
        if k:
            steps = k * len(applied)
            size["applied"] |= {
                "apply_s": summary([r["apply_s"] for r in applied if r["apply_s"] is not None]),
                "steps_per_s": summary([r["steps_per_s"] for r in applied if r["steps_per_s"] is not None]),
                "all_out_s": summary([r["all_out_s"] for r in applied if r["all_out_s"] is not None]),
                "escalated_once": sum(r["escalated_once"] for r in applied),
                "escalated_twice_or_more": sum(r["escalated_twice_or_more"] for r in applied),
                "not_escalated": sum(r["not_escalated"] for r in applied),
                "queue_quiet_every_run": all(r["quiet"] for r in applied),
                "cpu_seconds": cpu, "db_waits": waits.report(),
                "cpu_ms_per_step": {name: round(1000 * v / steps, 1) for name, v in cpu.items() if not name.startswith("machine")},
            }
        size["ok"] = size["found_exactly_the_due"] and (not k or size["applied"]["escalated_once"] == k * len(applied))
        size["goal_met"] = size["all_sweeps_p99_ms"] < GOAL_SWEEP_P99_S * 1000
        size["runs_detail"] = {
            "parked": [{key: round(v, 4) if isinstance(v, float) else v for key, v in r.items()} for r in parked],
            "applied": [{key: round(v, 4) if isinstance(v, float) else v for key, v in r.items()} for r in applied],
        }
        sizes.append(size)
    # Nothing else escalated in the phase: no lead twice, none that was not made due.
    _queue_quiet(stack_broker(), args.drain_timeout)
    escalated = LeadEvent.objects.filter(kind=LeadEvent.Kind.ESCALATED).count() - escalated_before
    expected = sum(k * args.apply_runs for k in args.due)
    return {
        **world, "workers": settings.Q_CLUSTER["workers"], "sizes": sizes,
        "query_plans": {str(k): v for k, v in plans.items()},
        "escalated_in_phase": escalated, "escalated_expected": expected,
        "ok": all(s["ok"] for s in sizes) and escalated == expected,
        "goal_met": all(s["goal_met"] for s in sizes),
    }


# --- the run ---------------------------------------------------------------------------------------


def assignments_phase(stack: Stack, args) -> dict:
    pools = office_pools()
    quotas, exact = office_quotas(args.calls, pools)
    hooks = Webhooks(stack.base_url)
    plan = call_plan(hooks, pools, quotas)
    split = ", ".join(f"{p.name} {quotas[p.name]} ({quotas[p.name] / p.turn:g} turns of {p.turn})" for p in pools)
    stack.log(f"floor: {args.calls} calls' worth of requests to /bench/floor/, {args.concurrency} loops ...")
    floor_requests = [
        (hooks.floor(call_sid=new_call_sid(), caller=c.caller, line=c.line),) * 2 for c in plan
    ]
    floor_s, floor_codes = asyncio.run(floor_run(floor_requests, args.concurrency))
    stack.check_alive()

    stack.log(f"{args.calls} missed calls, {args.concurrency} loops; {split} ...")
    turns_before = turns_read(pools)
    cpu_before = stack.cpu_snapshot()
    with stack.profile("calls"), DbWaits(stack) as waits:
        asyncio.run(calls_run(stack, plan, args.concurrency, args.text_timeout))
    cpu = stack.cpu_delta(cpu_before, stack.cpu_snapshot())
    stack.check_alive()
    stack.fake_settle()
    _queue_quiet(stack_broker(), args.drain_timeout)  # the agents' alerts leave after the texts
    result = assignments_analyse(
        plan, pools, quotas, exact, turns_before, turns_read(pools), assignments_read([c.caller for c in plan])
    )
    floor_rate = args.calls / floor_s
    result |= {
        "calls": args.calls, "concurrency": args.concurrency, "quotas": quotas,
        "pools": [{"office": p.name, "turn": p.turn, "lines": p.lines, "skipped": p.skipped} for p in pools],
        "floor": {"calls_per_s": round(floor_rate, 1), "requests": 2 * args.calls, "elapsed_s": round(floor_s, 2),
                  "status_codes": {str(k): v for k, v in floor_codes.items()}},
        "ratio_assignments_to_floor": round(result["assignments_per_s"] / floor_rate, 3) if result["assignments_per_s"] else None,
        "db_waits": waits.report(), "cpu_seconds": cpu, "cpu_ms_per_call": {k: round(1000 * v / args.calls, 1) for k, v in cpu.items() if not k.startswith("machine")},
        "fake_stats": stack.fake("GET", "/_fake/stats"),
    }
    result["ok"] = (
        result["assigned_once"] == args.calls and not result["non_200_webhooks"] and not result["texts_missing"]
        and result["shares_ok"] and result["events_match_turns"] and not result["assignee_changed_since"]
        and set(result["floor"]["status_codes"]) == {"200"}
    )
    return result


def print_report(payload: dict) -> None:
    a, s = payload.get("assignments"), payload.get("sweep")
    print()
    print(f"routing — db={payload['db']} redis={payload['redis']}")
    if a:
        print(f"\nassignments: {a['calls']} missed calls, {a['concurrency']} closed loops, split {a['quotas']}")
        print(f"{'':36} {'n':>5} {'p50':>9} {'p90':>9} {'p99':>9} {'max':>9}")
        for label, row in (("assignment after dial-status", a["assignment_after_dial_status_ms"]),
                           ("text at Twilio after dial-status", a["text_after_dial_status_ms"]),
                           ("dial-status HTTP round trip", a["dial_status_round_trip_ms"])):
            print(f"{label:36} {row['n']:>5} {row['p50']:>9.1f} {row['p90']:>9.1f} {row['p99']:>9.1f} {row['max']:>9.1f}  ms")
        r = a["ratio_assignment_to_webhook"]
        print(f"{'ratio assignment / webhook':36} {'':>5} {r['p50']:>9} {r['p90']:>9} {r['p99']:>9}")
        print(f"assignments/s: {a['assignments_per_s']}  floor (same loops, trivial view): {a['floor']['calls_per_s']} calls/s"
              f"  ratio: {a['ratio_assignments_to_floor']:.1%}")
        print(f"CPU ms per call: {a['cpu_ms_per_call']}")
        print(f"machine CPU: {a['cpu_seconds']['machine_busy']} s busy of {a['cpu_seconds']['machine_capacity']} s"
              f" ({sum(v for k, v in a['cpu_ms_per_call'].items()) * a['calls'] / 1000:.1f} s ours)")
        if a["db_waits"]:
            print(f"database: {a['db_waits']['mean_active_statements']} statements running on average,"
                  f" {a['db_waits']['mean_waiting_for_a_lock']} of them waiting for a lock {a['db_waits']['lock_waits_by_kind']}")
        print(f"\n{'office':10} {'agent':12} {'weight':>6} {'expected':>9} {'actual':>7} {'events':>7}")
        for row in a["shares"]:
            print(f"{row['office']:10} {row['agent']:12} {row['weight']:>6} {row['expected']:>9g} {row['actual']:>7} {row['assigned_events']:>7}"
                  f"{'' if row['ok'] else '  <-- off'}")
        print(f"assigned once: {a['assigned_once']}/{a['calls']}  several: {a['assigned_several']}  never: {a['never_assigned']}"
              f"  non-200: {a['non_200_webhooks']}  texts missing: {a['texts_missing']}  checks: {'OK' if a['ok'] else 'FAILED'}")
    if s:
        print(f"\nescalation sweep: {s['open_leads']} open leads ({s['inserted']} inserted in {s['insert_s']} s), {s['workers']} workers")
        print(f"{'due':>5} | {'sweep p50':>9} {'p99':>7} {'read p50':>8} {'tasks':>5} | {'applied: 1st':>12} {'2nd':>7} {'2nd found':>9}"
              f" {'apply s':>7} {'steps/s':>7} {'all out':>7} {'once':>6} {'twice+':>6} {'never':>5}")
        for z in s["sizes"]:
            a = z["applied"]
            line = (f"{z['due']:>5} | {z['sweep_ms']['p50']:>7.1f}ms {z['sweep_ms']['p99']:>5.1f}ms {z['find_only_ms']['p50']:>6.2f}ms"
                    f" {z['tasks_per_sweep']:>5} |"
                    f" {a['first_sweep_ms']['p50']:>10.1f}ms {a['second_sweep_ms']['p50']:>5.1f}ms {a['second_sweep_found']['p50']:>9g}")
            if z["due"]:
                line += (f" {a['apply_s']['p50']:>7.2f} {a['steps_per_s']['p50']:>7.1f} {a['all_out_s']['p50']:>7.2f} {a['escalated_once']:>6}"
                         f" {a['escalated_twice_or_more']:>6} {a['not_escalated']:>5}")
            print(line)
        print("(sweep: timed sweeps onto a queue no worker reads; applied: medians of the runs the worker applied, two sweeps back"
              " to back; apply s: until the last step, all out s: until the last alert left)")
        for k, plan in s["query_plans"].items():
            print(f"plan with {k} due: uses lead_escalation_due_idx: {plan['uses_due_index']}; {plan['plan'][0][:100]}")
        for z in s["sizes"]:
            if z["due"]:
                print(f"CPU ms per step ({z['due']} due): {z['applied']['cpu_ms_per_step']}")
                w = z["applied"]["db_waits"]
                if w:
                    print(f"  database: {w['mean_active_statements']} statements running on average,"
                          f" {w['mean_waiting_for_a_lock']} waiting for a lock {w['lock_waits_by_kind']}")
        print(f"escalated in the phase: {s['escalated_in_phase']} (expected {s['escalated_expected']})  checks: {'OK' if s['ok'] else 'FAILED'}")
        worst = max(z["all_sweeps_p99_ms"] for z in s["sizes"])
        print(f"goal: every size's sweep p99 < {GOAL_SWEEP_P99_S:.0f} s (worst {worst:.1f} ms): {'MET' if s['goal_met'] else 'MISSED'}")
    print(f"-> {payload['path']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=640, help="missed calls of phase 1 (0: skip it)")
    parser.add_argument("--concurrency", type=int, default=32, help="closed loops placing calls")
    parser.add_argument("--text-timeout", type=float, default=30.0, help="seconds a loop waits for its caller's text")
    parser.add_argument("--open-leads", type=int, default=100_000, help="leads waiting for a reply in phase 2 (0: skip it)")
    parser.add_argument("--due", default="0,100,1000", help="how many of them are due, per size")
    parser.add_argument("--sweep-runs", type=int, default=20, help="timed sweeps per size (onto a queue no worker reads)")
    parser.add_argument("--apply-runs", type=int, default=3, help="sweeps per size that the worker applies (two back to back each)")
    parser.add_argument("--drain-timeout", type=float, default=300, help="seconds to wait for the worker to apply a run's steps")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--max-seconds", type=float, default=2400, help="time budget for the whole run")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, SQLite file)")
    args = parser.parse_args()
    args.due = [int(x) for x in args.due.split(",") if x.strip()]
    if not (0 <= args.calls <= 20000 and 1 <= args.concurrency <= 128 and args.open_leads >= 0 and args.sweep_runs >= 1
            and args.apply_runs >= 1 and all(k >= 0 for k in args.due)):
        parser.error("need 0 <= calls <= 20000, 1 <= concurrency <= 128, open-leads >= 0, sweep/apply runs >= 1, due >= 0")

    payload: dict = {"benchmark": "routing", "args": {k: v for k, v in vars(args).items() if k != "keep"}}
    with Stack(name="routing", asgi="bench.asgi_with_floor:application", max_seconds=args.max_seconds, keep=args.keep) as stack:
        payload |= {"db": stack.db_label, "redis": stack.redis_label, "machine": machine_info()}
        stack.warm_up()
        django_connect(stack)
        from django.db import connections

        try:
            if args.calls:
                payload["assignments"] = assignments_phase(stack, args)
            if args.open_leads:
                payload["sweep"] = sweep_phase(stack, args)
        finally:
            connections.close_all()  # before the harness drops the database
    ok = all(payload[p]["ok"] for p in ("assignments", "sweep") if p in payload)
    goal = payload["sweep"]["goal_met"] if "sweep" in payload else True
    payload |= {"checks_ok": ok, "goal_met": goal, "goal": f"escalation sweep p99 < {GOAL_SWEEP_P99_S:.0f} s at every size"}
    path = write_result("routing", payload["db"], payload)
    payload["path"] = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
    print_report(payload)
    return 0 if ok and goal else 1


if __name__ == "__main__":
    run_benchmark(main)
