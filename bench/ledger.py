"""Consent ledger: what the hash chain costs an append, and how fast the whole chain verifies.

(a) Appends. --threads threads (default 16) each loop for --seconds (default 10), calling
compliance.services.consent_record(...) once per turn, as the missed-call path does: an implied
consent event (IMPLIED_CALL, a fresh CallSid as source_ref) for a phone no other append uses, each
its own transaction (the replay check, the head row's SELECT ... FOR UPDATE, the SHA-256 over the
event and the previous hash, the INSERT, the head's UPDATE, COMMIT). Per append: the wall time of
the call (time.perf_counter_ns()). The in-run baseline is the same threads running the same loop
on a plain table with no chain: DoNotCallNumber.objects.create(...) (one INSERT, autocommit).
--rounds rounds, each a baseline phase and a ledger phase (their order alternates from round to
round); reported per phase: appends (inserts) per second, latency p50/p90/p99, and the medians
over rounds, with ratio = ledger / baseline. Also CPU seconds (this process, which runs every
thread and so shares one GIL; the PostgreSQL backends serving the bench database) and, on
PostgreSQL, what the connections wait for (pg_stat_activity every 100 ms, as bench/routing.py).
Checked: compliance.selectors.ledger_verify() finds no break and exactly as many events as
consent_record() created; no append failed.

(b) Verify. The ledger is then extended to --verify-events events in all (default 100,000): the
chain built in Python with ConsentEvent.compute_hash, continuing from the head, a mix of
implied-call (70 %), implied-text (25 %, with the caller's words) and STOP (5 %) events, bulk
inserted with django.db.models.QuerySet.bulk_create (the model's own queryset refuses bulk
inserts by design) and the ConsentLedgerHead row set to the last link, in one transaction; then
VACUUM ANALYZE on PostgreSQL (a ledger that old has been vacuumed). Timed: --verify-runs calls of
ledger_verify() in this process, and `manage.py verify_consent_ledger` as a fresh process (what an
auditor runs, Django's start-up included), as events per second. Checked: no break, the count.

Everything runs in this process (django.setup()) against a database of its own: with a
postgres:// DATABASE_URL only the server is taken from it, and the database --db-name
(textback_bench_ledger; BENCH_DB_NAME is not read) is created, migrated, and dropped at the end;
otherwise a fresh SQLite file in a temp dir. No Redis, no worker, no web server.

    .venv/bin/python bench/ledger.py [--threads 16 --seconds 10 --rounds 3 --verify-events 100000 --verify-runs 3]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/ledger.py

Results: a table, and bench/results/ledger-<sqlite|postgres>.json. Exit 0 when every check
passed, 1 when one failed, 2 when the database could not be set up. There is no speed goal:
this measures what the chain costs; the speed-to-lead goal is checked by speed_to_lead.py.
"""

from __future__ import annotations

import _thread
import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import types
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import LINES, PYTHON, REPO, StackError, machine_info, run_benchmark, summary, write_result  # noqa: E402

DEFAULT_DB_NAME = "textback_bench_ledger"
# Phones: the appends' callers, the baseline's rows and the seeded events never share a number.
LEDGER_PHONE, BASELINE_PHONE, SEEDED_PHONE = 2_000_000_000, 3_000_000_000, 4_000_000_000


class LedgerDb:
    """A database of the benchmark's own, and the environment the product's code reads."""

    def __init__(self, db_name: str, threads: int):
        url = os.environ.get("DATABASE_URL", "")
        self.tmp = Path(tempfile.mkdtemp(prefix="textback-ledger-"))
        self.db_name, self.admin_url = db_name, None
        if url.startswith(("postgres://", "postgresql://")):
            self.label = "postgres"
            parts = urlsplit(url)
            self.url = urlunsplit(parts._replace(path=f"/{db_name}"))
            admin_db = parts.path.lstrip("/") or "postgres"
            self.admin_url = urlunsplit(parts._replace(path=f"/{'postgres' if admin_db == db_name else admin_db}", scheme="postgresql"))
        elif not url or url.startswith("sqlite:"):
            self.label = "sqlite"
            self.url = f"sqlite:///{self.tmp / 'ledger.sqlite3'}"  # never someone's working database
        else:
            raise StackError(f"DATABASE_URL must be sqlite:/// or postgres://, not {url!r}")
        self.env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "REDIS_URL", "DATABASE_URL", "SMS_BACKEND"}}
        self.env.update({
            "DATABASE_URL": self.url, "TEXTBACK_VAR_DIR": str(self.tmp), "SECRET_KEY": "bench-" + uuid.uuid4().hex * 2,
            "DEBUG": "false", "DB_POOL_SIZE": str(threads + 4), "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")])),
        })

    def create(self) -> None:
        if self.admin_url:
            import psycopg

            try:
                with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
                    conn.execute(f'CREATE DATABASE "{self.db_name}"')
            except psycopg.Error as exc:
                raise StackError(f"could not create {self.db_name}: {exc}") from exc
            log(f"created PostgreSQL database {self.db_name}")
        os.environ.update(self.env)
        os.environ.pop("REDIS_URL", None)  # nothing here may talk to Redis
        os.environ["DJANGO_SETTINGS_MODULE"] = "textback_site.settings"
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", "--noinput", verbosity=0)

    def drop(self, keep: bool) -> None:
        try:
            from django.db import connections

            connections.close_all()
            if self.label == "postgres" and hasattr(connections["default"], "close_pool"):
                connections["default"].close_pool()
        except Exception:  # django may not have started
            pass
        if self.admin_url:
            import psycopg

            try:
                with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
                log(f"dropped PostgreSQL database {self.db_name}")
            except Exception as exc:
                log(f"could not drop {self.db_name}: {exc}")
        if keep:
            log(f"work dir kept: {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def log(text: str) -> None:
    print(f"[ledger] {text}", flush=True)


# --- CPU ---------------------------------------------------------------------------------------


def cpu_snapshot(db: LedgerDb) -> dict:
    """CPU seconds so far: this process (every thread), the PostgreSQL backends serving the bench
    database (their process title names it), and the whole machine's busy vs. capacity."""
    tick = os.sysconf("SC_CLK_TCK")
    backends = {}
    if db.label == "postgres":
        needle = f" {db.db_name} ".encode()
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                    if needle not in f.read():
                        continue
                with open(f"/proc/{entry.name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            backends[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    with open("/proc/stat") as f:
        cpu = [int(x) for x in f.readline().split()[1:]]
    return {
        "client": time.process_time(), "backends": backends,
        "machine_busy": (sum(cpu[:8]) - cpu[3] - cpu[4]) / tick, "machine_capacity": sum(cpu[:8]) / tick,
    }


def cpu_delta(before: dict, after: dict) -> dict:
    backends = sum(s - before["backends"].get(pid, 0.0) for pid, s in after["backends"].items())
    busy = after["machine_busy"] - before["machine_busy"]
    capacity = after["machine_capacity"] - before["machine_capacity"]
    return {
        "client_s": round(after["client"] - before["client"], 2), "postgres_backends_s": round(backends, 2),
        "machine_busy_pct": round(100 * busy / capacity, 1) if capacity else None,
    }


# --- (a) appends -------------------------------------------------------------------------------


class Numbers:
    """Distinct phone numbers across threads and phases."""

    def __init__(self, first: int):
        self._next, self._lock = first, threading.Lock()

    def take(self) -> str:
        with self._lock:
            self._next += 1
            return f"+1{self._next}"


class Created:
    """How many appends really created an event (a replay would return the original)."""

    def __init__(self):
        self.count, self._lock = 0, threading.Lock()

    def add(self, is_new: bool) -> None:
        if is_new:
            with self._lock:
                self.count += 1


def make_ops(ledger_phones: Numbers, baseline_phones: Numbers, created: Created) -> dict:
    """The two operations timed, imported once (after django.setup())."""
    from django.utils import timezone

    from compliance.models import ConsentEvent, DoNotCallNumber
    from compliance.services import consent_record

    kind, source, now = ConsentEvent.Kind.IMPLIED_CALL, ConsentEvent.Source.CALL, timezone.now()

    def ledger(i: int) -> None:
        # As the missed-call path records it: the line's sender, the CallSid as source_ref.
        _, is_new = consent_record(
            phone=ledger_phones.take(), sender=LINES[i % len(LINES)], kind=kind, source=source, source_ref="CA" + uuid.uuid4().hex,
        )
        created.add(is_new)

    def baseline(i: int) -> None:
        DoNotCallNumber.objects.create(phone=baseline_phones.take(), imported_at=now, batch="bench")

    return {"ledger": ledger, "baseline": baseline}


def run_phase(name: str, op, *, threads: int, seconds: float, db: LedgerDb, waits_url: str | None) -> dict:
    """`threads` threads call op(i) back to back for `seconds`; each call timed on its own."""
    from django.db import connections

    from bench.routing import DbWaits

    latencies: list[list[int]] = [[] for _ in range(threads)]
    errors: list[str] = []
    finished = [0.0] * threads
    barrier = threading.Barrier(threads + 1)
    clock: dict[str, float] = {}

    def worker(t: int) -> None:
        try:
            try:
                connections["default"].ensure_connection()  # connected before the clock starts
            except Exception:
                barrier.abort()
                raise
            barrier.wait()
            deadline, mine, i = clock["deadline"], latencies[t], t
            while time.perf_counter() < deadline:
                started = time.perf_counter_ns()
                try:
                    op(i)
                except Exception as exc:
                    errors.append(f"{type(exc).__name__}: {exc}"[:300])
                    continue
                mine.append(time.perf_counter_ns() - started)
                i += threads
            finished[t] = time.perf_counter()
        finally:
            connections.close_all()  # back to the pool (PostgreSQL) / closed (SQLite)

    pool = [threading.Thread(target=worker, args=(t,), name=f"{name}-{t}", daemon=True) for t in range(threads)]
    for thread in pool:
        thread.start()
    waits = DbWaits(types.SimpleNamespace(database_url=waits_url or "", db_label="postgres" if waits_url else "sqlite"))
    with waits:
        cpu_before = cpu_snapshot(db)
        clock["deadline"] = time.perf_counter() + seconds  # set before the barrier lets the threads read it
        barrier.wait()
        started = time.perf_counter()
        for thread in pool:
            thread.join()
        cpu = cpu_delta(cpu_before, cpu_snapshot(db))
    elapsed = max(finished) - started
    all_ms = [ns / 1e6 for mine in latencies for ns in mine]
    return {
        "phase": name, "threads": threads, "seconds": round(elapsed, 3), "ops": len(all_ms),
        "per_second": round(len(all_ms) / elapsed, 1) if elapsed > 0 else None,
        "latency_ms": summary(all_ms), "errors": len(errors), "first_errors": errors[:5],
        "cpu": cpu, "cpu_ms_per_op": {k: round(1000 * v / max(1, len(all_ms)), 2) for k, v in cpu.items() if k.endswith("_s")},
        "db_waits": waits.report(),
    }


# --- (b) verify ---------------------------------------------------------------------------------


def ledger_seed(target: int, batch: int = 5000) -> dict:
    """Extend the chain to `target` events: built here with the model's compute_hash, bulk-inserted
    past the queryset's guard, the head set to the last link, all in one transaction."""
    from django.db import connection, transaction
    from django.db.models import QuerySet
    from django.utils import timezone

    from compliance.models import ConsentEvent, ConsentLedgerHead

    Kind, Source = ConsentEvent.Kind, ConsentEvent.Source
    started = time.perf_counter()
    with transaction.atomic():
        head = ConsentLedgerHead.objects.select_for_update().get(pk=1)
        seq, prev_hash, first = head.seq, head.hash, head.seq + 1
        if target <= seq:
            return {"seeded": 0, "seconds": 0.0, "events": seq}
        while seq < target:
            objs = []
            for _ in range(min(batch, target - seq)):
                seq += 1
                n, slot = seq - first, seq % 20
                common = {"seq": seq, "prev_hash": prev_hash, "phone": f"+1{SEEDED_PHONE + n // 2}", "sender": LINES[n % len(LINES)],
                          "created_at": timezone.now()}
                if slot == 0:
                    event = ConsentEvent(kind=Kind.OPT_OUT, source=Source.KEYWORD, source_ref=f"SM{seq:032x}", raw_text="STOP", **common)
                elif slot <= 5:
                    event = ConsentEvent(
                        kind=Kind.IMPLIED_TEXT, source=Source.TEXT, source_ref=f"SM{seq:032x}",
                        raw_text=f"Hi, I saw the listing on Elm St #{n % 997}, is it still available? Can we see it Saturday?", **common,
                    )
                else:
                    event = ConsentEvent(kind=Kind.IMPLIED_CALL, source=Source.CALL, source_ref=f"CA{seq:032x}", **common)
                event.hash = event.compute_hash()
                prev_hash = event.hash
                objs.append(event)
            QuerySet.bulk_create(ConsentEvent.objects.all(), objs)
        ConsentLedgerHead.objects.filter(pk=1).update(seq=seq, hash=prev_hash)
    seconds = time.perf_counter() - started
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE compliance_consentevent")
    else:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return {"seeded": seq - first + 1, "seconds": round(seconds, 2), "events": seq}


def verify_timed(runs: int, db: LedgerDb, expected: int) -> dict:
    from compliance.selectors import ledger_verify

    times, problems = [], []
    for _ in range(runs):
        started = time.perf_counter()
        report = ledger_verify()
        times.append(time.perf_counter() - started)
        if report.first_break is not None or report.events != expected:
            problems.append(f"ledger_verify: {report.events} events, break: {report.first_break}")
    started = time.perf_counter()
    command = subprocess.run(
        [PYTHON, "manage.py", "verify_consent_ledger"], cwd=REPO, env=db.env, capture_output=True, text=True, timeout=1800,
    )
    command_s = time.perf_counter() - started
    if command.returncode != 0 or f"intact: {expected} events" not in command.stdout:
        problems.append(f"manage.py verify_consent_ledger exited {command.returncode}: {(command.stdout + command.stderr)[-500:]}")
    p50 = statistics.median(times)
    return {
        "events": expected, "ledger_verify_s": [round(t, 3) for t in times], "ledger_verify_p50_s": round(p50, 3),
        "ledger_verify_events_per_s": round(expected / p50), "command_s": round(command_s, 3),
        "command_events_per_s": round(expected / command_s), "command_output": command.stdout.strip()[-300:],
        "problems": problems,
    }


# --- main --------------------------------------------------------------------------------------


def median_of(rows: list[dict], *keys) -> float:
    values = []
    for row in rows:
        for key in keys:
            row = row[key]
        values.append(row)
    return round(statistics.median(values), 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=16, help="threads appending at once")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each measured phase (0: no append phases)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (baseline, ledger) phases; medians over rounds")
    parser.add_argument("--warm-up", type=float, default=1.0, help="seconds of each op before the first round (not measured)")
    parser.add_argument("--verify-events", type=int, default=100_000, help="ledger size for the verify timing (0: skip)")
    parser.add_argument("--verify-runs", type=int, default=3)
    parser.add_argument("--db-name", default=DEFAULT_DB_NAME, help="PostgreSQL database created and dropped for the run")
    parser.add_argument("--max-seconds", type=float, default=1200, help="time budget for the whole run")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (the SQLite file)")
    args = parser.parse_args()
    if not 1 <= args.threads <= 64 or args.seconds < 0 or not 1 <= args.rounds <= 20 or args.verify_events < 0 or args.verify_runs < 1:
        parser.error("--threads 1..64, --seconds >= 0, --rounds 1..20, --verify-events >= 0, --verify-runs >= 1")

    watchdog = threading.Timer(args.max_seconds, lambda: (print(f"\n!! ledger: time budget of {args.max_seconds:.0f} s exceeded; stopping",
                                                                file=sys.stderr, flush=True), _thread.interrupt_main()))
    watchdog.daemon = True
    watchdog.start()
    signal.signal(signal.SIGTERM, lambda *_: _thread.interrupt_main())

    db = LedgerDb(args.db_name, args.threads)
    failed = True
    try:
        log(f"work dir {db.tmp}; db={db.label}")
        db.create()
        from compliance.selectors import ledger_verify

        waits_url = db.url.replace("postgres://", "postgresql://", 1) if db.label == "postgres" else None
        created = Created()
        ops = make_ops(Numbers(LEDGER_PHONE), Numbers(BASELINE_PHONE), created)
        phases: list[dict] = []
        if args.seconds > 0:
            for name in ("baseline", "ledger"):
                if args.warm_up > 0:
                    run_phase(name, ops[name], threads=args.threads, seconds=args.warm_up, db=db, waits_url=None)
            for r in range(args.rounds):
                order = ("baseline", "ledger") if r % 2 == 0 else ("ledger", "baseline")
                for name in order:
                    log(f"round {r + 1}/{args.rounds}: {name}, {args.threads} threads, {args.seconds:g} s ...")
                    result = run_phase(name, ops[name], threads=args.threads, seconds=args.seconds, db=db, waits_url=waits_url)
                    result["round"] = r + 1
                    phases.append(result)
        with_errors = [p for p in phases if p["errors"]]
        started = time.perf_counter()
        after_appends = ledger_verify()
        append_check = {
            "events": after_appends.events, "created_by_consent_record": created.count,
            "first_break": str(after_appends.first_break) if after_appends.first_break else None,
            "verify_s": round(time.perf_counter() - started, 3),
        }
        log(f"after the appends: {append_check}")

        verify = seed = None
        if args.verify_events:
            log(f"extending the ledger to {args.verify_events:,} events ...")
            seed = ledger_seed(args.verify_events)
            log(f"seeded {seed['seeded']:,} events in {seed['seconds']} s; timing the verify ...")
            verify = verify_timed(args.verify_runs, db, max(args.verify_events, after_appends.events))

        rows = {name: [p for p in phases if p["phase"] == name] for name in ("ledger", "baseline")}
        medians = {
            name: {
                "per_second": median_of(rs, "per_second"),
                **{q: median_of(rs, "latency_ms", q) for q in ("p50", "p90", "p99", "max")},
                "p99_per_round": [r["latency_ms"]["p99"] for r in rs], "per_second_per_round": [r["per_second"] for r in rs],
                "cpu_ms_per_op": {k: median_of(rs, "cpu_ms_per_op", k) for k in rs[0]["cpu_ms_per_op"]},
                "mean_waiting_for_a_lock": median_of(rs, "db_waits", "mean_waiting_for_a_lock") if rs[0]["db_waits"] else None,
                "mean_active_statements": median_of(rs, "db_waits", "mean_active_statements") if rs[0]["db_waits"] else None,
            }
            for name, rs in rows.items() if rs
        }
        ratio = None
        if "ledger" in medians and "baseline" in medians:
            led, base = medians["ledger"], medians["baseline"]
            ratio = {
                "throughput": round(led["per_second"] / base["per_second"], 3),
                **{f"latency_{q}": round(led[q] / base[q], 2) for q in ("p50", "p90", "p99")},
            }
        problems = [f"{p['phase']} round {p['round']}: {p['errors']} errors, e.g. {p['first_errors'][:1]}" for p in with_errors]
        if append_check["first_break"] or append_check["events"] != created.count:
            problems.append(f"after the appends the ledger holds {append_check['events']} events for {created.count} created, break: {append_check['first_break']}")
        if verify:
            problems += verify["problems"]
        if seed and seed["events"] != max(args.verify_events, after_appends.events):
            problems.append(f"seeding ended at {seed['events']} events")
        payload = {
            "benchmark": "ledger", "db": db.label, "threads": args.threads, "seconds": args.seconds, "rounds": args.rounds,
            "medians": medians, "ratio_ledger_to_baseline": ratio, "after_appends": append_check,
            "seed": seed, "verify": verify, "problems": problems, "ok": not problems,
            "machine": machine_info(), "phases": phases,
        }
        path = write_result("ledger", db.label, payload)
        failed = bool(problems)
    finally:
        watchdog.cancel()
        db.drop(keep=args.keep or failed)

    print()
    print(f"consent ledger — db={db.label} threads={args.threads} {args.seconds:g} s x {args.rounds} rounds (medians; p99 per round)")
    if medians:
        print(f"{'':36} {'per s':>8} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8}   p99 per round")
        labels = {"ledger": "ledger append (consent_record)", "baseline": "baseline insert (DoNotCallNumber)"}
        for name in ("ledger", "baseline"):
            m = medians.get(name)
            if m:
                per_round = ", ".join(f"{v:.1f}" for v in m["p99_per_round"])
                print(f"{labels[name]:36} {m['per_second']:>8.0f} {m['p50']:>8.1f} {m['p90']:>8.1f} {m['p99']:>8.1f} {m['max']:>8.1f}  ms  ({per_round})")
        if ratio:
            print(f"{'ratio ledger / baseline':36} {ratio['throughput']:>8.2f} {ratio['latency_p50']:>8.2f} {ratio['latency_p90']:>8.2f} {ratio['latency_p99']:>8.2f}")
        for name in ("ledger", "baseline"):
            m = medians.get(name)
            if m:
                waits = f"; statements running {m['mean_active_statements']}, waiting for a lock {m['mean_waiting_for_a_lock']}" if m["mean_waiting_for_a_lock"] is not None else ""
                print(f"  {name}: CPU ms per op {m['cpu_ms_per_op']}{waits}")
    print(f"after the appends: {append_check['events']:,} events, {'no break' if not append_check['first_break'] else append_check['first_break']}")
    if verify:
        print(f"verify {verify['events']:,} events: ledger_verify() {verify['ledger_verify_p50_s']:.2f} s "
              f"({verify['ledger_verify_events_per_s']:,} events/s; runs {verify['ledger_verify_s']}), "
              f"manage.py verify_consent_ledger {verify['command_s']:.2f} s ({verify['command_events_per_s']:,} events/s)")
        print(f"  seeded {seed['seeded']:,} events in {seed['seconds']} s")
    for problem in problems:
        print(f"PROBLEM: {problem}")
    print(f"{'OK' if not problems else 'FAILED'}   -> {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return 0 if not problems else 1


if __name__ == "__main__":
    run_benchmark(main)
