import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from leads.services import missed_call_outcomes_rebuild


class Command(BaseCommand):
    help = (
        "Recompute the stored outcome of every missed call (of the last --days days), which the "
        "dashboards read. Run once after upgrading a brokerage with history: from then on every "
        "change marks its lead and a worker stores the new outcomes within the minute."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, help="Only the missed calls of the last DAYS days (default: all).")

    def handle(self, *args, days, **options):
        if days is not None and days < 1:
            raise CommandError("--days must be at least 1")
        since = timezone.now() - dt.timedelta(days=days) if days else None
        refreshed = missed_call_outcomes_rebuild(since=since)
        self.stdout.write(f"Refreshed the outcomes of {refreshed} missed calls.")
