import json

from django.core.management.base import BaseCommand, CommandError

from routing.brokerage_import import BrokerageImportError, brokerage_import


class Command(BaseCommand):
    help = "Create or update offices, agents and tracking lines from a brokerage JSON file (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("file", help="Path to the brokerage JSON file.")

    def handle(self, *args, file, **options):
        try:
            with open(file, encoding="utf-8") as fh:
                data = json.load(fh)
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CommandError(f"{file} is not valid JSON: {exc}") from None
        try:
            summary = brokerage_import(data)
        except BrokerageImportError as exc:
            raise CommandError(f"{file} was not imported: {exc}") from None
        self.stdout.write(self.style.SUCCESS(f"Imported {summary} from {file}."))
