"""Qualification over SMS: how long a caller waits for the next question after answering one.

For each of --conversations missed calls (distinct numbers): the missed call, its text-back,
then the caller answers the questions one text at a time (English and Spanish conversations
alternate, so the offline language detection is on the path). The clock starts just before each
signed POST /twilio/sms/incoming/ leaves this process, and stops when the fake Twilio receives
the next text for that number: the next question, or the thanks after the last. Baselines in
the same run: the inbound-SMS webhook's own round trip, the text-back's speed to lead, and the
same conversations on the line of an office whose playbook has the questions turned off (every
third conversation), where the webhook does everything but the script. Conversations run in
--concurrency closed loops, so this measures latency, not saturation.

    .venv/bin/python bench/qualification.py [--conversations 60] [--concurrency 2]

Honours DATABASE_URL and REDIS_URL (see bench/README.md). Goal: p99 < 1000 ms, like the text-back.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (  # noqa: E402
    LINES, Stack, Webhooks, caller_number, closed_loops, machine_info, new_call_sid, run_benchmark, summary, write_result,
)

GOAL_P99_MS = 1000.0
UNASKED_LINE = LINES[2]  # the demo's Lakeside office: its playbook turns the questions off for the baseline
UNASK = (
    "from leads.models import Playbook; from routing.models import TrackingNumber; "
    f"Playbook.objects.update_or_create(office=TrackingNumber.objects.get(number='{UNASKED_LINE}').office, "
    "defaults={'qualification_enabled': False})"
)
# Each answer, and a piece of the text the caller gets back for it.
CONVERSATIONS = [
    [
        ("Hi! Is the house still available?", "buy, sell, or both?"),
        ("We want to buy", "When are you hoping to move?"),
        ("asap", "What price range"),
        ("400 to 450k", "Which area or ZIP code"),
        ("78704", "pre-approved"),
        ("Yes, pre-approved with Chase", "Thanks, that helps!"),
    ],
    [
        ("Hola, quiero comprar una casa", "Para cuando piensa mudarse"),
        ("en dos meses", "rango de precio"),
        ("hasta 400 mil", "codigo postal"),
        ("78704", "pre-aprobacion"),
        ("si, ya tengo la pre-aprobacion", "Gracias"),
    ],
]


def run_conversations(stack: Stack, *, conversations: int, concurrency: int, text_timeout: float) -> list[dict]:
    hooks = Webhooks(stack.base_url)

    def wait_text(fake: requests.Session, caller: str, nth: int) -> dict | None:
        found = fake.get(
            stack.fake_url + "/_fake/wait", params={"to": caller, "nth": nth, "timeout": text_timeout}, timeout=text_timeout + 5,
        )
        return found.json().get("message") if found.status_code == 200 else None

    def conversation(i: int, web: requests.Session, fake: requests.Session) -> list[dict]:
        caller, line, sid = caller_number(i), LINES[i % len(LINES)], new_call_sid()
        url, body, headers = hooks.incoming(call_sid=sid, caller=caller, line=line)
        web.post(url, data=body, headers=headers, timeout=15)
        url, body, headers = hooks.dial_status(call_sid=sid, caller=caller, line=line)
        t0 = time.time_ns()
        web.post(url, data=body, headers=headers, timeout=15)
        textback = wait_text(fake, caller, 1)
        rows = [{"step": "textback", "language": "", "ms": (textback["received_ns"] - t0) / 1e6 if textback else None,
                 "webhook_ms": None, "ok": textback is not None}]
        script = CONVERSATIONS[i % len(CONVERSATIONS)]
        asking = line != UNASKED_LINE
        for nth, (answer, expected) in enumerate(script, start=2):
            url, body, headers = hooks.sms(message_sid="SM" + uuid.uuid4().hex, caller=caller, line=line, body=answer)
            t0 = time.time_ns()
            response = web.post(url, data=body, headers=headers, timeout=15)
            t1 = time.time_ns()
            if not asking:
                rows.append({"step": "unasked", "language": "", "status": response.status_code, "ms": None,
                             "webhook_ms": (t1 - t0) / 1e6, "ok": response.status_code == 200})
                continue
            reply = wait_text(fake, caller, nth)
            rows.append({
                "step": f"answer {nth - 1}", "language": "es" if i % 2 else "en", "status": response.status_code,
                "ms": (reply["received_ns"] - t0) / 1e6 if reply else None, "webhook_ms": (t1 - t0) / 1e6,
                "ok": reply is not None and expected in reply["body"], "reply": reply["body"] if reply else None,
            })
            if reply is None:
                break
        return rows

    return [row for rows in closed_loops(conversations, concurrency, conversation) for row in rows]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--text-timeout", type=float, default=10.0)
    parser.add_argument("--max-seconds", type=float, default=900)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    if not 1 <= args.conversations <= 2000 or not 1 <= args.concurrency <= 32:
        parser.error("--conversations must be 1..2000 and --concurrency 1..32")

    with Stack(name="qualification", max_seconds=args.max_seconds, keep=args.keep) as stack:
        stack.manage("shell", "-c", UNASK)
        stack.warm_up()
        stack.log(f"{args.conversations} conversations, {args.concurrency} at a time ...")
        started = time.monotonic()
        results = run_conversations(stack, conversations=args.conversations, concurrency=args.concurrency, text_timeout=args.text_timeout)
        elapsed = time.monotonic() - started
        stack.check_alive()
        stack.fake_settle()

    answers = [r for r in results if r["step"].startswith("answer")]
    unasked = [r for r in results if r["step"] == "unasked"]
    wrong = [r for r in answers + unasked if not r["ok"]]
    question = summary([r["ms"] for r in answers if r["ms"] is not None])
    by_language = {lang: summary([r["ms"] for r in answers if r["ms"] is not None and r["language"] == lang]) for lang in ("en", "es")}
    webhook = summary([r["webhook_ms"] for r in answers])
    webhook_unasked = summary([r["webhook_ms"] for r in unasked])
    textback = summary([r["ms"] for r in results if r["step"] == "textback" and r["ms"] is not None])
    ratio = {q: round(question[q] / webhook[q], 2) if webhook[q] else None for q in ("p50", "p90", "p99")}
    expected = args.conversations + sum(len(CONVERSATIONS[i % len(CONVERSATIONS)]) for i in range(args.conversations))
    cost = {q: round(webhook[q] / webhook_unasked[q], 2) if webhook_unasked[q] else None for q in ("p50", "p90", "p99")}
    payload = {
        "benchmark": "qualification", "db": stack.db_label, "redis": stack.redis_label,
        "conversations": args.conversations, "concurrency": args.concurrency, "elapsed_s": round(elapsed, 2),
        "answers": len(answers), "wrong_or_missing_replies": len(wrong),
        "next_question_after_answer_ms": question, "by_language_ms": by_language, "sms_webhook_round_trip_ms": webhook,
        "sms_webhook_round_trip_without_questions_ms": webhook_unasked, "ratio_webhook_with_to_without_questions": cost,
        "textback_speed_to_lead_ms": textback, "ratio_question_to_webhook": ratio, "goal_p99_ms": GOAL_P99_MS,
        "goal_met": not wrong and len(results) == expected and question["p99"] < GOAL_P99_MS,
        "machine": machine_info(), "wrong": wrong[:5],
    }
    path = write_result("qualification", stack.db_label, payload)

    print()
    print(f"qualification — db={payload['db']} redis={payload['redis']} conversations={args.conversations} concurrency={args.concurrency}")
    print(f"{'':36} {'n':>5} {'p50':>9} {'p90':>9} {'p99':>9} {'max':>9}")
    for label, row in (("next question after an answer", question), ("  English", by_language["en"]),
                       ("  Spanish", by_language["es"]), ("inbound-SMS webhook round trip", webhook),
                       ("  the same, questions turned off", webhook_unasked), ("text-back after dial-status", textback)):
        print(f"{label:36} {row['n']:>5} {row['p50']:>9.1f} {row['p90']:>9.1f} {row['p99']:>9.1f} {row['max']:>9.1f}  ms")
    print(f"{'ratio question / webhook':36} {'':>5} {ratio['p50']:>9} {ratio['p90']:>9} {ratio['p99']:>9}")
    print(f"{'ratio webhook with / without':36} {'':>5} {cost['p50']:>9} {cost['p90']:>9} {cost['p99']:>9}")
    print(f"wrong or missing replies: {len(wrong)}")
    print(f"goal p99 < {GOAL_P99_MS:.0f} ms: {'MET' if payload['goal_met'] else 'MISSED'}   -> {path}")
    return 0 if payload["goal_met"] else 1


if __name__ == "__main__":
    run_benchmark(main)
