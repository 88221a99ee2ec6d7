"""Prove the consent ledger reads as it was written: recompute every link of its hash chain."""

from django.core.management.base import BaseCommand, CommandError

from compliance.selectors import ledger_verify


class Command(BaseCommand):
    help = "Check the consent ledger's hash chain and report the first broken link (exit status 1 if any)."

    def handle(self, *args, **options):
        report = ledger_verify()
        if report.first_break is not None:
            raise CommandError(f"Consent ledger NOT intact after {report.events} good events. {report.first_break}")
        self.stdout.write(self.style.SUCCESS(f"Consent ledger intact: {report.events} events, head {report.head_hash}."))
