"""Missed-call outcomes marked due: what they cost the dashboard until the minute's task stores them,
and what that task costs.

On bench/seed_scale.py's database (PostgreSQL), in process. For each N in --due, the N leads with
the latest missed calls are marked due (as N changes within a minute would leave them), then:

- the broker's dashboard (leads.metrics.dashboard: every office, by office, the last 30 days),
  which computes those leads' outcomes on the spot, against the same dashboard with nothing due
  (the baseline, measured in the same run);
- missed_call_outcomes_catch_up(), the minute's task, storing them.

Each N is measured --runs times, each run in a transaction rolled back afterwards, so the seeded
database is left as it was. Medians and p95.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/outcomes_catch_up.py [--due 10 100 1000] [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.dashboard import percentile  # noqa: E402


class Rollback(Exception):
    """Undoes a run's writes."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db-name", default="textback_bench_scale")
    parser.add_argument("--due", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("outcomes_catch_up: set DATABASE_URL to the PostgreSQL server holding bench/seed_scale.py's database")
    os.environ.update({
        "DATABASE_URL": urlunsplit(urlsplit(url)._replace(path=f"/{args.db_name}")), "DJANGO_SETTINGS_MODULE": "textback_site.settings",
        "TEXTBACK_VAR_DIR": tempfile.mkdtemp(prefix="textback-catch-up-"), "SECRET_KEY": "bench-catch-up-" + "0" * 40,
    })
    import django

    django.setup()
    import datetime as dt

    from django.db import transaction
    from django.utils import timezone

    from leads.metrics import dashboard
    from leads.models import Call, OutcomeRefreshDue
    from leads.services import missed_call_outcomes_catch_up
    from routing.models import Agent

    if OutcomeRefreshDue.objects.exists():
        raise SystemExit("outcomes_catch_up: leads are already marked due; run the catch-up first")
    broker = Agent.objects.select_related("office").filter(role=Agent.Role.BROKER).order_by("pk").first()
    end = timezone.now()
    start = end - dt.timedelta(days=30)

    def ms(work) -> float:
        started = time.perf_counter()
        work()
        return (time.perf_counter() - started) * 1000

    def read() -> None:
        dashboard(viewer=broker, start=start, end=end)

    read()  # warm-up
    base = [ms(read) for _ in range(args.runs)]
    print(f"\nmissed-call outcomes marked due — db={args.db_name} runs={args.runs} (ms)")
    print(f"{'':34} {'p50':>8} {'p95':>8} {'x base':>8}")
    print(f"{'dashboard, nothing due (baseline)':34} {statistics.median(base):>8.0f} {percentile(base, 95):>8.0f} {1:>8.1f}")
    latest = list(
        Call.objects.filter(missed=True).order_by("-created_at").values_list("lead_id", flat=True).distinct()[: max(args.due) * 3]
    )
    for n in args.due:
        leads = list(dict.fromkeys(latest))[:n]
        reads, catch_ups = [], []
        for _ in range(args.runs):
            try:
                with transaction.atomic():
                    OutcomeRefreshDue.objects.bulk_create([OutcomeRefreshDue(lead_id=pk, since=end) for pk in leads])
                    reads.append(ms(read))
                    catch_ups.append(ms(missed_call_outcomes_catch_up))
                    raise Rollback
            except Rollback:
                pass
        p50 = statistics.median(reads)
        print(f"{f'dashboard, {n:,} leads due':34} {p50:>8.0f} {percentile(reads, 95):>8.0f} {p50 / statistics.median(base):>8.1f}")
        print(f"{f'catch-up of {n:,} leads':34} {statistics.median(catch_ups):>8.0f} {percentile(catch_ups, 95):>8.0f}"
              f"   ({statistics.median(catch_ups) / n:.1f} ms a lead)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
