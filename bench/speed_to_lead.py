"""Speed to lead: how long from the missed-call webhook to the text reaching Twilio.

For each of --calls missed calls (distinct numbers): a signed POST /twilio/voice/incoming/, then
the measured part: the clock starts just before the signed POST /twilio/voice/dial-status/
(DialCallStatus=no-answer) leaves this process, and stops when the fake Twilio receives
Messages.create for that number (its time.time_ns(), same machine clock). Calls go out from
--concurrency closed loops (each waits for its text before placing the next call), so this
measures latency, not saturation. The in-run baseline is the dial-status round trip itself.

    .venv/bin/python bench/speed_to_lead.py [--calls 200] [--concurrency 2]

Honours DATABASE_URL and REDIS_URL (see bench/README.md). Goal: p99 < 1000 ms.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (  # noqa: E402
    LINES, Stack, Webhooks, caller_number, closed_loops, machine_info, new_call_sid, run_benchmark, summary, write_result,
)

GOAL_P99_MS = 1000.0


def run_calls(stack: Stack, *, calls: int, concurrency: int, text_timeout: float) -> list[dict]:
    hooks = Webhooks(stack.base_url)

    def one_call(i: int, web: requests.Session, fake: requests.Session) -> dict:
        caller, line, sid = caller_number(i), LINES[i % len(LINES)], new_call_sid()
        url, body, headers = hooks.incoming(call_sid=sid, caller=caller, line=line)
        incoming = web.post(url, data=body, headers=headers, timeout=15)
        url, body, headers = hooks.dial_status(call_sid=sid, caller=caller, line=line)
        t0 = time.time_ns()
        dial = web.post(url, data=body, headers=headers, timeout=15)
        t1 = time.time_ns()
        found = fake.get(stack.fake_url + "/_fake/wait", params={"to": caller, "timeout": text_timeout}, timeout=text_timeout + 5)
        message = found.json().get("message") if found.status_code == 200 else None
        return {
            "caller": caller, "line": line, "incoming_status": incoming.status_code, "dial_status": dial.status_code,
            "webhook_ms": (t1 - t0) / 1e6,
            "text_ms": (message["received_ns"] - t0) / 1e6 if message else None,
            "text_from": message["from"] if message else None,
            "text_body": message["body"] if message else None,
        }

    return closed_loops(calls, concurrency, one_call)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=2, help="calls in flight at once (closed loops)")
    parser.add_argument("--text-timeout", type=float, default=10.0, help="seconds to wait for each text")
    parser.add_argument("--max-seconds", type=float, default=900, help="time budget for the whole run")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, SQLite file)")
    args = parser.parse_args()
    if not 1 <= args.calls <= 5000 or not 1 <= args.concurrency <= 32:
        parser.error("--calls must be 1..5000 and --concurrency 1..32")

    with Stack(name="speed_to_lead", max_seconds=args.max_seconds, keep=args.keep) as stack:
        stack.warm_up()
        stack.log(f"{args.calls} missed calls, {args.concurrency} at a time ...")
        started = time.monotonic()
        with stack.profile("calls"):
            results = run_calls(stack, calls=args.calls, concurrency=args.concurrency, text_timeout=args.text_timeout)
        elapsed = time.monotonic() - started
        stack.check_alive()
        stack.fake_settle()
        fake_stats = stack.fake("GET", "/_fake/stats")

        arrived = [r for r in results if r["text_ms"] is not None]
        text = summary([r["text_ms"] for r in arrived])
        webhook = summary([r["webhook_ms"] for r in results])
        bad_http = [r for r in results if r["incoming_status"] != 200 or r["dial_status"] != 200]
        wrong_sender = [r for r in arrived if r["text_from"] != r["line"]]
        ratio = {q: round(text[q] / webhook[q], 2) if webhook[q] else None for q in ("p50", "p90", "p99")}
        payload = {
            "benchmark": "speed_to_lead", "db": stack.db_label, "redis": stack.redis_label,
            "calls": args.calls, "concurrency": args.concurrency, "elapsed_s": round(elapsed, 2),
            "texts_arrived": len(arrived), "texts_missing": args.calls - len(arrived),
            "non_200_webhooks": len(bad_http), "wrong_sender": len(wrong_sender),
            "text_after_dial_status_ms": text, "dial_status_round_trip_ms": webhook,
            "ratio_text_to_webhook": ratio, "goal_p99_ms": GOAL_P99_MS,
            "goal_met": len(arrived) == args.calls and not bad_http and text["p99"] < GOAL_P99_MS,
            "fake_stats": fake_stats, "machine": machine_info(),
            "slowest": sorted(arrived, key=lambda r: -r["text_ms"])[:5],
        }
        path = write_result("speed_to_lead", stack.db_label, payload)

    print()
    print(f"speed to lead — db={payload['db']} redis={payload['redis']} calls={args.calls} concurrency={args.concurrency}")
    print(f"{'':34} {'n':>5} {'p50':>9} {'p90':>9} {'p99':>9} {'max':>9}")
    for label, row in (("text at Twilio after dial-status", text), ("dial-status HTTP round trip", webhook)):
        print(f"{label:34} {row['n']:>5} {row['p50']:>9.1f} {row['p90']:>9.1f} {row['p99']:>9.1f} {row['max']:>9.1f}  ms")
    print(f"{'ratio text / webhook':34} {'':>5} {ratio['p50']:>9} {ratio['p90']:>9} {ratio['p99']:>9}")
    print(f"texts missing: {payload['texts_missing']}  non-200 webhooks: {len(bad_http)}  wrong sender: {len(wrong_sender)}")
    print(f"goal p99 < {GOAL_P99_MS:.0f} ms: {'MET' if payload['goal_met'] else 'MISSED'}   -> {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return 0 if payload["goal_met"] else 1


if __name__ == "__main__":
    run_benchmark(main)
