"""Manager dashboards on a year of data: how long the office and brokerage dashboards take, and
how many queries they make (a bounded number, not one per row).

Run after bench/seed_scale.py has filled its database (20 offices, 300 agents, 200,000 leads,
1,000,000 messages over a year). Everything runs in this process (django.setup()) against that
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
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db-name", default="textback_bench_scale")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("dashboard: set DATABASE_URL to the PostgreSQL server holding bench/seed_scale.py's database")
    os.environ.update({
        "DATABASE_URL": urlunsplit(urlsplit(url)._replace(path=f"/{args.db_name}")),
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
    print(f"\ndashboards — db={args.db_name} runs={args.runs} (ms)")
    print(f"{'':22} {'p50':>8} {'p95':>8} {'max':>8} {'x base':>8} {'queries':>8}")
    for name, r in results.items():
        print(f"{name:22} {r['p50']:>8.0f} {r['p95']:>8.0f} {r['max']:>8.0f} {r['p50'] / base:>8.1f} {r['queries']:>8}")
    met = all(r["p95"] < 300 for n, r in results.items() if "dashboard" in n)
    print(f"goal p95 < 300 ms: {'MET' if met else 'NOT MET'}")
    counts = {"leads": Lead.objects.count()}
    out = REPO / "bench" / "results" / "dashboard-postgres.json"
    out.write_text(json.dumps({"benchmark": "dashboard", "runs": args.runs, "counts": counts, "pages": results, "goal_met": met}, indent=2))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
