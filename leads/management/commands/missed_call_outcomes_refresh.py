from django.core.management.base import BaseCommand

from leads.models import Call
from leads.services import missed_call_outcomes_catch_up, missed_call_outcomes_mark_due


class Command(BaseCommand):
    help = (
        "Store now the missed-call outcomes of every lead marked due, rather than 5,000 leads a "
        "minute by the worker's task (after an upgrade, every lead with a missed call is due). "
        "--all marks every such lead first: to recompute them all."
    )

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true", help="Recompute every missed call's outcome.")

    def handle(self, *args, all, **options):
        if all:
            missed_call_outcomes_mark_due(
                lead_ids=list(Call.objects.filter(missed=True).order_by().values_list("lead_id", flat=True).distinct())
            )
        leads = 0
        while stored := missed_call_outcomes_catch_up():
            leads += stored
        self.stdout.write(f"Stored the outcomes of {leads} leads' missed calls.")
