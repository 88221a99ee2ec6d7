import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from leads.services import missed_call_outcomes_reconcile


class Command(BaseCommand):
    help = (
        "Recompute the stored outcome of every missed call of the last --days days (the dashboards "
        "read them). Run once after upgrading a brokerage with history; a nightly task keeps the "
        "last 180 days mended after that."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=400, help="How far back (default 400: a year and the one before's tail).")

    def handle(self, *args, days, **options):
        if days < 1:
            raise CommandError("--days must be at least 1")
        refreshed = missed_call_outcomes_reconcile(since=timezone.now() - dt.timedelta(days=days))
        self.stdout.write(f"Refreshed the outcomes of {refreshed} missed calls.")
