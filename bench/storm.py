"""Storm: a burst of missed calls with Twilio-style retries, against Django's own floor.

1,000 missed calls from 500 numbers (each number calls twice, in shuffled order, so a number's
two calls may overlap), each a signed POST /twilio/voice/incoming/ then /twilio/voice/dial-status/
(no-answer); 20 % of those 2,000 webhooks are sent a second time, byte for byte, soon after
(a Twilio retry). --concurrency clients (asyncio + aiohttp) keep that many requests in flight.

Asserted: no 5xx (webhooks and the fake's status callbacks), nothing lost (every number has a
lead and exactly one text-back Message, and the fake received exactly one Messages.create per
number once the worker drained). Reported: webhook throughput and latency, and the floor: the
same number of requests at the same concurrency against a trivial Django view on the same
daphne (bench/asgi_with_floor.py) in the same run. Goal: webhook throughput >= 50 % of the floor.

    .venv/bin/python bench/storm.py [--calls 1000 --numbers 500 --replay 0.2 --concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import random
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (  # noqa: E402
    DEMO_AGENT_PHONES, LINES, Stack, Webhooks, caller_number, machine_info, new_call_sid, run_benchmark, summary, write_result,
)

GOAL_RATIO = 0.5


@dataclasses.dataclass
class Call:
    caller: str
    line: str
    incoming: tuple
    dial: tuple
    replay_incoming: bool = False
    replay_dial: bool = False


@dataclasses.dataclass
class Sample:
    kind: str
    status: int  # 0: no HTTP answer (connection error, timeout)
    start: float
    end: float
    error: str = ""
    caller: str = ""
    sent_ns: int = 0  # time.time_ns() as the request left, comparable with the fake's clock


async def _post(session: aiohttp.ClientSession, kind: str, request: tuple, caller: str = "") -> Sample:
    url, body, headers = request
    sent_ns, start = time.time_ns(), time.perf_counter()
    try:
        async with session.post(url, data=body, headers=headers) as response:
            await response.read()
            return Sample(kind, response.status, start, time.perf_counter(), caller=caller, sent_ns=sent_ns)
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        return Sample(kind, 0, start, time.perf_counter(), f"{type(exc).__name__}: {exc}", caller, sent_ns)


def _session(concurrency: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=15))


async def floor_run(requests: list[tuple], concurrency: int) -> list[Sample]:
    samples: list[Sample] = []
    work = collections.deque(requests)

    async def client(session):
        while work:
            samples.append(await _post(session, "floor", work.popleft()))

    async with _session(concurrency) as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    return samples


async def storm_run(calls: list[Call], concurrency: int, rng: random.Random) -> list[Sample]:
    samples: list[Sample] = []
    work: collections.deque = collections.deque(("call", call) for call in calls)

    def replay_soon(kind: str, request: tuple) -> None:
        # A retry lands within the next few dozen requests: often while the original is in flight.
        work.insert(rng.randint(0, min(len(work), 2 * concurrency)), ("replay", (kind, request)))

    async def client(session):
        while work:
            what, item = work.popleft()
            if what == "replay":
                kind, request = item
                samples.append(await _post(session, kind + "-replay", request))
                continue
            samples.append(await _post(session, "incoming", item.incoming, item.caller))
            if item.replay_incoming:
                replay_soon("incoming", item.incoming)
            samples.append(await _post(session, "dial-status", item.dial, item.caller))
            if item.replay_dial:
                replay_soon("dial-status", item.dial)

    async with _session(concurrency) as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    return samples


def throughput(samples: list[Sample]) -> float:
    wall = max(s.end for s in samples) - min(s.start for s in samples)
    return len(samples) / wall if wall > 0 else float("nan")


def build_calls(hooks: Webhooks, *, calls: int, numbers: int, replay: float, rng: random.Random) -> list[Call]:
    plan = []
    for i in range(calls):
        caller = caller_number(i % numbers)
        line = LINES[(i % numbers) % len(LINES)]  # a number keeps calling the same line
        sid = new_call_sid()
        plan.append(Call(caller, line, hooks.incoming(call_sid=sid, caller=caller, line=line), hooks.dial_status(call_sid=sid, caller=caller, line=line)))
    rng.shuffle(plan)
    webhooks = 2 * len(plan)
    for index in rng.sample(range(webhooks), round(replay * webhooks)):
        call = plan[index // 2]
        if index % 2:
            call.replay_dial = True
        else:
            call.replay_incoming = True
    return plan


def _db_check_script(numbers: int) -> str:
    return f"""
import json
from django.db.models import Count, Q
from leads.models import Call, Lead, Message
phones = [f"+1555{{7000000 + i:07d}}" for i in range({numbers})]
leads = set(Lead.objects.filter(phone__in=phones).values_list("phone", flat=True))
textbacks = dict(Message.objects.filter(lead__phone__in=phones, kind="textback").values_list("lead__phone").annotate(n=Count("id")))
statuses = dict(Message.objects.filter(lead__phone__in=phones, direction="out").values_list("status").annotate(n=Count("id")))
kinds = dict(Message.objects.filter(lead__phone__in=phones).values_list("kind").annotate(n=Count("id")))
calls = Call.objects.filter(lead__phone__in=phones).aggregate(total=Count("id"), missed=Count("id", filter=Q(missed=True)))
print(json.dumps({{
    "leads": len(leads), "numbers_without_lead": sorted(set(phones) - leads)[:10],
    "numbers_without_textback": sorted(p for p in phones if textbacks.get(p, 0) == 0)[:10],
    "numbers_with_several_textbacks": sorted(p for p in phones if textbacks.get(p, 0) > 1)[:10],
    "without_textback": sum(1 for p in phones if textbacks.get(p, 0) == 0),
    "several_textbacks": sum(1 for p in phones if textbacks.get(p, 0) > 1),
    "outbound_statuses": statuses, "message_kinds": kinds, "calls": calls,
}}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--numbers", type=int, default=500)
    parser.add_argument("--replay", type=float, default=0.2, help="share of webhooks sent twice")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--drain-timeout", type=float, default=180, help="seconds to wait for the worker to drain")
    parser.add_argument("--callbacks", choices=["auto", "off"], default="auto",
                        help="whether the fake posts sent/delivered callbacks (extra webhooks, as Twilio does)")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--max-seconds", type=float, default=1200, help="time budget for the whole run")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, SQLite file)")
    args = parser.parse_args()
    if not (1 <= args.numbers <= args.calls <= 20000 and 0 <= args.replay <= 1 and 1 <= args.concurrency <= 128):
        parser.error("need 1 <= numbers <= calls <= 20000, 0 <= replay <= 1, 1 <= concurrency <= 128")
    rng = random.Random(args.seed)

    with Stack(
        name="storm", asgi="bench.asgi_with_floor:application", callbacks=args.callbacks,
        max_seconds=args.max_seconds, keep=args.keep,
    ) as stack:
        stack.warm_up()
        hooks = Webhooks(stack.base_url)
        plan = build_calls(hooks, calls=args.calls, numbers=args.numbers, replay=args.replay, rng=rng)
        total_webhooks = 2 * len(plan) + sum(c.replay_incoming + c.replay_dial for c in plan)

        stack.log(f"floor: {total_webhooks} requests to /bench/floor/, {args.concurrency} in flight ...")
        floor_requests = [hooks.floor(call_sid=new_call_sid(), caller=c.caller, line=c.line) for c in plan for _ in range(2)]
        floor_requests += floor_requests[: total_webhooks - len(floor_requests)]
        cpu_before = stack.cpu_snapshot()
        with stack.profile("floor"):
            floor = asyncio.run(floor_run(floor_requests, args.concurrency))
        cpu_floor = stack.cpu_delta(cpu_before, stack.cpu_snapshot())
        stack.check_alive()

        stack.log(f"storm: {args.calls} missed calls from {args.numbers} numbers, {total_webhooks} webhooks, {args.concurrency} in flight ...")
        cpu_before = stack.cpu_snapshot()
        with stack.profile("storm"):
            storm = asyncio.run(storm_run(plan, args.concurrency, rng))
        cpu_storm = stack.cpu_delta(cpu_before, stack.cpu_snapshot())
        stack.check_alive()

        # Per number: its text-back, and the SMS alert to the agent its new lead went to.
        want_messages = 2 * args.numbers
        want_callbacks = 2 * want_messages if args.callbacks == "auto" else 0
        stack.log(f"draining: waiting up to {args.drain_timeout:.0f} s for {want_messages} texts and their callbacks ...")
        drain_started = time.monotonic()
        deadline = drain_started + args.drain_timeout
        stats = stack.fake("GET", "/_fake/stats")
        while time.monotonic() < deadline and (
            stats["messages"] < want_messages or stats["callbacks_pending"] or stats["callbacks"] < want_callbacks
        ):
            stack.check_alive()
            time.sleep(0.25)
            stats = stack.fake("GET", "/_fake/stats")
        drained_s = time.monotonic() - drain_started
        cpu_total = stack.cpu_delta(cpu_before, stack.cpu_snapshot())
        time.sleep(2)  # a duplicate send would show up now
        stats = stack.fake_settle()
        sent = stack.fake("GET", "/_fake/messages")
        callbacks = stack.fake("GET", "/_fake/callbacks")["callbacks"]
        db = stack.db_query(_db_check_script(args.numbers))

    by_to = collections.Counter(m["to"] for m in sent["messages"] if m["to"] not in DEMO_AGENT_PHONES)
    numbers = {caller_number(i) for i in range(args.numbers)}
    # An alert names its lead's number; the warm-up's late alerts name the warm-up's callers.
    alerts = sum(
        1 for m in sent["messages"]
        if m["to"] in DEMO_AGENT_PHONES and any(part.rstrip(",") in numbers for part in (m["body"] or "").split())
    )
    fake_missing = sorted(numbers - set(by_to))
    fake_dupes = sorted(n for n, count in by_to.items() if count > 1)
    fake_strangers = sorted(set(by_to) - numbers)
    codes = collections.Counter(s.status for s in storm)
    floor_codes = collections.Counter(s.status for s in floor)
    callback_codes = collections.Counter(c["http_status"] or 0 for c in callbacks)
    storm_5xx = sum(n for code, n in codes.items() if code >= 500 or code == 0)
    callback_5xx = sum(n for code, n in callback_codes.items() if code >= 500 or code == 0)
    storm_tp, floor_tp = throughput(storm), throughput(floor)
    ratio = storm_tp / floor_tp if floor_tp else float("nan")
    # Speed to lead under the storm: from a number's first dial-status leaving to its text at Twilio.
    first_dial_ns: dict[str, int] = {}
    for s in storm:
        if s.kind == "dial-status" and (s.caller not in first_dial_ns or s.sent_ns < first_dial_ns[s.caller]):
            first_dial_ns[s.caller] = s.sent_ns
    text_ms = [
        (m["received_ns"] - first_dial_ns[m["to"]]) / 1e6
        for m in sent["messages"] if m["to"] in first_dial_ns
    ]
    storm_start_ns = min(s.sent_ns for s in storm)
    # (seconds into the storm the number's first dial-status left, ms until its text reached Twilio)
    text_timeline = sorted(
        (round((first_dial_ns[m["to"]] - storm_start_ns) / 1e9, 2), round((m["received_ns"] - first_dial_ns[m["to"]]) / 1e6))
        for m in sent["messages"] if m["to"] in first_dial_ns
    )
    by_kind = collections.defaultdict(list)
    for s in storm:
        by_kind[s.kind].append((s.end - s.start) * 1000)

    checks = {
        "zero_5xx_or_timeouts_webhooks": storm_5xx == 0,
        "all_webhooks_200": set(codes) == {200},
        "zero_5xx_status_callbacks": callback_5xx == 0,
        "every_number_has_a_lead": db["leads"] == args.numbers,
        "exactly_one_textback_per_number_in_db": db["without_textback"] == 0 and db["several_textbacks"] == 0,
        "exactly_one_messages_create_per_number": not fake_missing and not fake_dupes and not fake_strangers,
        "one_agent_alert_per_lead": alerts == args.numbers,
        "drained_in_time": stats["messages"] >= args.numbers and not stats["callbacks_pending"],
        "every_status_callback_answered": len(callbacks) == (2 * len(sent["messages"]) if args.callbacks == "auto" else 0),
    }
    payload = {
        "benchmark": "storm", "db": stack.db_label, "redis": stack.redis_label,
        "calls": args.calls, "numbers": args.numbers, "replay_share": args.replay, "concurrency": args.concurrency,
        "status_callbacks": args.callbacks,
        "webhooks": {
            "requests": len(storm), "throughput_rps": round(storm_tp, 1), "latency_ms": summary([(s.end - s.start) * 1000 for s in storm]),
            "latency_ms_by_kind": {kind: summary(values) for kind, values in sorted(by_kind.items())},
            "status_codes": {str(k): v for k, v in sorted(codes.items())},
            "errors": [s.error for s in storm if s.error][:10],
        },
        "floor": {
            "requests": len(floor), "throughput_rps": round(floor_tp, 1), "latency_ms": summary([(s.end - s.start) * 1000 for s in floor]),
            "status_codes": {str(k): v for k, v in sorted(floor_codes.items())},
        },
        "ratio_webhooks_to_floor": round(ratio, 3), "goal_ratio": GOAL_RATIO,
        "cpu_seconds": {"floor": cpu_floor, "storm": cpu_storm, "storm_and_drain": cpu_total},
        "cpu_ms_per_request": {
            "floor_daphne": round(1000 * cpu_floor.get("daphne", 0) / len(floor), 2),
            "storm_daphne_per_webhook_incl_callbacks": round(1000 * cpu_total.get("daphne", 0) / len(storm), 2),
            "storm_worker_per_text": round(1000 * cpu_total.get("qcluster", 0) / max(1, len(sent["messages"])), 2),
        },
        "drain_s_after_storm": round(drained_s, 2),
        "text_after_first_dial_status_ms": summary(text_ms),
        "texts_within_1s": round(sum(1 for v in text_ms if v < 1000) / len(text_ms), 3) if text_ms else None,
        "text_timeline_s_ms": text_timeline,
        "fake": {
            "messages": len(sent["messages"]), "agent_alerts": alerts, "rejected": len(sent["rejected"]),
            "missing_numbers": fake_missing[:10],
            "duplicate_numbers": fake_dupes[:10], "unexpected_numbers": fake_strangers[:10],
            "status_callbacks": len(callbacks), "status_callback_codes": {str(k): v for k, v in sorted(callback_codes.items())},
        },
        "db_check": db,
        "checks": checks,
        "goal_met": all(checks.values()) and ratio >= GOAL_RATIO,
        "machine": machine_info(),
    }
    name = "storm" if args.callbacks == "auto" else "storm-no-callbacks"
    path = write_result(name, stack.db_label, payload)

    w, f = payload["webhooks"], payload["floor"]
    print()
    print(f"storm — db={payload['db']} redis={payload['redis']} calls={args.calls} numbers={args.numbers} "
          f"replayed={args.replay:.0%} concurrency={args.concurrency}")
    print(f"{'':24} {'requests':>8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for label, row in (("webhooks (storm)", w), ("floor (trivial view)", f)):
        lat = row["latency_ms"]
        print(f"{label:24} {row['requests']:>8} {row['throughput_rps']:>8.1f} {lat['p50']:>8.1f} {lat['p99']:>8.1f} {lat['max']:>8.1f}")
    print(f"ratio webhooks / floor: {ratio:.0%} (goal >= {GOAL_RATIO:.0%})   drain after storm: {drained_s:.1f} s")
    tl = payload["text_after_first_dial_status_ms"]
    print(f"text at Twilio after a number's first dial-status, during the storm: p50 {tl['p50']:.0f} ms, "
          f"p99 {tl['p99']:.0f} ms, max {tl['max']:.0f} ms; within 1 s: {payload['texts_within_1s']:.0%}")
    print(f"status codes: {payload['webhooks']['status_codes']}   callbacks: {payload['fake']['status_callback_codes']}")
    print(f"CPU seconds, floor: {cpu_floor}")
    print(f"CPU seconds, storm + drain: {cpu_total}")
    for name, ok in checks.items():
        print(f"  {'ok  ' if ok else 'FAIL'} {name}")
    print(f"goal: {'MET' if payload['goal_met'] else 'MISSED'}   -> {path}")
    return 0 if payload["goal_met"] else 1


if __name__ == "__main__":
    run_benchmark(main)
