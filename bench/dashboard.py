"""Manager dashboards on a year of data: how long the office and brokerage dashboards take, and
how many queries they make (a bounded number, not one per row); on PostgreSQL, and with --sqlite
on SQLite too, over the very same data.

Run after bench/seed_scale.py has filled its database (20 offices, 300 agents, 200,000 leads,
1,000,000 messages over a year). Everything runs in-process (django.setup()) against that
database; the pages are rendered through Django's test client, as a signed-in user loads them
(the view, both periods' numbers, the charts, the template), --runs times each after one warm-up:

- brokerage: a broker, every office, by office, the last 30 days (and the 30 before, for the
  comparison);
- office: the team leader of the busiest office, by agent, the last 30 days;
- baseline: the same users' inbox home page, in the same run.

Reported: p50 / p95 / max per page, the ratio to the baseline's p50, and the queries per page.
Goal: dashboards p95 < 300 ms on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/dashboard.py [--db-name textback_bench_scale] [--runs 20]

Results: a table, and bench/results/dashboard-postgres.json.

SQLite beside it: --sqlite [PATH] (default: textback_bench_scale.sqlite3 in the temp dir) also
measures the same pages on a SQLite copy of that database. The copy is built when the file does
not exist yet, or with --rebuild (bench/sqlite_copy.py: the product's migrations, then every
table's rows as Django would store them in SQLite; checked: foreign keys, every table's row
count). Django's settings are read once per process, so each database is measured in a process of
its own (this script, --measure postgres|sqlite), one after the other, at the same moment `--at`:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/dashboard.py --sqlite [PATH] [--rebuild]

Printed: each database's table, then SQLite / PostgreSQL per page (p50 and p95), and a check
that both databases give the same numbers: the broker's dashboard over the 30 days up to --at
(missed calls, text-backs sent, recovered, ...) read from each, which must be equal. Results:
bench/results/dashboard-postgres.json and dashboard-sqlite.json. The goal is judged on PostgreSQL
only; SQLite is reported, not judged. Exit 0 when the goal is met (and, with --sqlite, both
databases agree), 1 otherwise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
RESULTS = REPO / "bench" / "results"
PAGES = ("brokerage dashboard", "office dashboard", "baseline: inbox")
# The broker's dashboard figures compared between the two databases.
CHECKED = ("inbound_calls", "missed_calls", "textbacks_sent", "textbacks_delivered", "replied", "never_answered",
           "recovered", "appointments", "opt_outs", "landlines", "escalations")


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def measure(args: argparse.Namespace, database_url: str, engine: str) -> int:
    """The pages on one database, in this process: prints the table, writes dashboard-<engine>.json.
    With --at, also the broker's dashboard figures at that moment, for the cross-database check."""
    os.environ.update({
        "DATABASE_URL": database_url,
        "DEBUG": "false",  # as served: compiled templates, hashed static names (collected below)
        "TEXTBACK_VAR_DIR": tempfile.mkdtemp(prefix="textback-dashboard-"),
        "SECRET_KEY": "bench-dashboard-" + "0" * 40, "DJANGO_SETTINGS_MODULE": "textback_site.settings",
    })
    for name in ("REDIS_URL", "SMS_BACKEND", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
        os.environ.pop(name, None)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("collectstatic", interactive=False, verbosity=0)
    from django.db.models import Count
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from leads.models import Lead
    from routing.models import Agent

    busiest = Lead.objects.values("office_id").annotate(n=Count("pk")).order_by("-n").first()["office_id"]
    broker = Agent.objects.select_related("user").filter(role=Agent.Role.BROKER).first()
    leader = Agent.objects.select_related("user").filter(role=Agent.Role.TEAM_LEADER, office_id=busiest).first()
    pages = {
        "brokerage dashboard": (broker, "/reports/dashboard/?period=30&by=office"),
        "office dashboard": (leader, "/reports/dashboard/?period=30&by=agent"),
        "baseline: inbox": (leader, "/"),
    }
    results = {}
    for name, (user, path) in pages.items():
        client = Client()
        client.force_login(user.user)
        assert client.get(path).status_code == 200  # warm-up
        times, queries = [], 0
        for _ in range(args.runs):
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                response = client.get(path)
                times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (name, response.status_code)
            queries = len(captured)
        results[name] = {"p50": statistics.median(times), "p95": percentile(times, 95), "max": max(times), "queries": queries}
    base = results["baseline: inbox"]["p50"]
    db = args.db_name if engine == "postgres" else f"{args.db_name} (SQLite copy)"
    print(f"\ndashboards — db={db} runs={args.runs} (ms)")
    print(f"{'':22} {'p50':>8} {'p95':>8} {'max':>8} {'x base':>8} {'queries':>8}")
    for name, r in results.items():
        print(f"{name:22} {r['p50']:>8.0f} {r['p95']:>8.0f} {r['max']:>8.0f} {r['p50'] / base:>8.1f} {r['queries']:>8}")
    if engine == "postgres":
        met = all(r["p95"] < 300 for n, r in results.items() if "dashboard" in n)
        print(f"goal p95 < 300 ms: {'MET' if met else 'NOT MET'}")
    else:
        met = None
        print("goal: judged on PostgreSQL only (SQLite reported)")
    counts = {"leads": Lead.objects.count()}
    report = {"benchmark": "dashboard", "runs": args.runs, "counts": counts, "pages": results, "goal_met": met}
    if args.at:
        from leads.metrics import dashboard

        at = dt.datetime.fromisoformat(args.at)
        total = dashboard(viewer=broker, start=at - dt.timedelta(days=30), end=at, dimension="office").total
        report["check"] = {"at": args.at, **{name: getattr(total, name) for name in CHECKED},
                           "speed_to_lead_p50": total.speed_to_lead_p50, "response_p50": total.response_p50}
    (RESULTS / f"dashboard-{engine}.json").write_text(json.dumps(report, indent=2))
    return 1 if met is False else 0


def compare(args: argparse.Namespace, postgres_url: str) -> int:
    """Both databases, each measured by a process of its own, then SQLite beside PostgreSQL."""
    from bench import sqlite_copy

    path = Path(args.sqlite or Path(tempfile.gettempdir()) / f"{args.db_name}.sqlite3").resolve()
    if args.rebuild or not path.exists():
        print(f"building the SQLite copy of {args.db_name} ...", flush=True)
        built = sqlite_copy.build(postgres_url, path)
        print(f"SQLite copy built in {built['seconds']:.0f} s (migrate {built['migrate_seconds']:.0f} s,"
              f" {built['rows']:,} rows copied in {built['copy_seconds']:.0f} s): {built['bytes'] / 2**20:,.0f} MiB")
    else:  # built earlier: from the same data still?
        import sqlite3

        lite = sqlite3.connect(path)
        with sqlite_copy.connect_pg(postgres_url) as pg:
            mismatches = sqlite_copy.count_mismatches(pg, lite)
        lite.close()
        if mismatches:
            print("the SQLite copy differs from PostgreSQL (rerun with --rebuild): " + "; ".join(mismatches))
            return 1
    at = dt.datetime.now(dt.timezone.utc).isoformat()
    codes = {}
    for engine in ("postgres", "sqlite"):
        codes[engine] = subprocess.run([
            sys.executable, __file__, "--db-name", args.db_name, "--runs", str(args.runs),
            "--sqlite", str(path), "--measure", engine, "--at", at,
        ]).returncode
    if codes["postgres"] not in (0, 1) or codes["sqlite"] != 0:
        return 2  # a measurement did not run to its end (its error is above)
    pg, lite = (json.loads((RESULTS / f"dashboard-{e}.json").read_text()) for e in ("postgres", "sqlite"))
    print("\nSQLite / PostgreSQL, same data, same run")
    print(f"{'':22} {'p50':>8} {'p95':>8} {'queries SQLite / PostgreSQL':>30}")
    for name in PAGES:
        a, b = pg["pages"][name], lite["pages"][name]
        print(f"{name:22} {b['p50'] / a['p50']:>7.1f}x {b['p95'] / a['p95']:>7.1f}x {b['queries']:>23} / {a['queries']}")
    print(f"\nthe broker's dashboard, 30 days to {at}:")
    print(f"{'':22} {'PostgreSQL':>12} {'SQLite':>12}")
    for name in (*CHECKED, "speed_to_lead_p50", "response_p50"):
        print(f"{name:22} {pg['check'][name]!s:>12} {lite['check'][name]!s:>12}")
    # The counts must be equal; the percentiles to the millisecond (each database prints the
    # times it joins as text in its own way).
    agree = all(pg["check"][n] == lite["check"][n] for n in CHECKED) and all(
        pg["check"][n] is lite["check"][n] is None or round(pg["check"][n], 3) == round(lite["check"][n], 3)
        for n in ("speed_to_lead_p50", "response_p50")
    )
    print(f"same figures on both databases: {'YES' if agree else 'NO'}")
    return codes["postgres"] if agree else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db-name", default="textback_bench_scale")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--sqlite", nargs="?", const="", default=None, metavar="PATH",
                        help="also measure on a SQLite copy of the database, at PATH (default: in the temp dir)")
    parser.add_argument("--rebuild", action="store_true", help="with --sqlite: build the copy again even if the file exists")
    parser.add_argument("--measure", choices=("postgres", "sqlite"), help=argparse.SUPPRESS)  # internal: one database
    parser.add_argument("--at", help=argparse.SUPPRESS)  # internal: the moment both databases' figures are read at
    args = parser.parse_args()
    if args.rebuild and args.sqlite is None:
        parser.error("--rebuild goes with --sqlite")
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("dashboard: set DATABASE_URL to the PostgreSQL server holding bench/seed_scale.py's database")
    postgres_url = urlunsplit(urlsplit(url)._replace(path=f"/{args.db_name}"))
    if args.measure == "sqlite":
        return measure(args, f"sqlite:///{Path(args.sqlite).resolve()}", "sqlite")
    if args.measure == "postgres" or args.sqlite is None:
        return measure(args, postgres_url, "postgres")
    return compare(args, postgres_url)


if __name__ == "__main__":
    sys.exit(main())
