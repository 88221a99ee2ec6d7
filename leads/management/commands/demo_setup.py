import json

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from routing.brokerage_import import BrokerageImportError, brokerage_import
from routing.models import Agent, Office, PoolMember, RoutingRule

# A few rules so the demo shows routing at work. Made once; after that they are the broker's to edit.
DEMO_RULES = {
    "Downtown": [
        {"name": "Spanish speakers", "position": 10, "languages": ["es"], "pool": ["ann", "ben"]},
        {"name": "Sellers: first to claim", "position": 20, "lead_types": ["seller"], "pool": ["ann", "ben", "cara"],
         "strategy": RoutingRule.Strategy.FIRST_TO_CLAIM, "claim_timeout_minutes": 5,
         "fallback": RoutingRule.Fallback.TEAM_LEADER},
    ],
}

DEMO_PASSWORD = "textback-demo"


class Command(BaseCommand):
    help = (
        "Demo mode only: load the demo brokerage, give its people the demo password and print the "
        "logins. With Twilio credentials set it does nothing: a real brokerage is not a demo."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="The demo brokerage JSON file.")

    def handle(self, *args, file, **options):
        if not settings.DEMO_MODE:
            self.stdout.write("Twilio credentials are set: not loading the demo brokerage.")
            return
        try:
            with open(file, encoding="utf-8") as fh:
                data = json.load(fh)
            brokerage_import(data)
        except (OSError, ValueError, BrokerageImportError) as exc:
            raise CommandError(f"cannot load the demo brokerage from {file}: {exc}") from None
        _demo_rules()
        emails = [a["email"].lower() for office in data["offices"] for a in office.get("agents", [])]
        # Only the demo's own people get the public demo password.
        for user in get_user_model().objects.filter(email__in=emails):
            if not user.check_password(DEMO_PASSWORD):
                user.set_password(DEMO_PASSWORD)
                user.save(update_fields=["password"])
        base = settings.PUBLIC_BASE_URL
        self.stdout.write(f"\nDemo logins (password for all: {DEMO_PASSWORD})")
        for agent in Agent.objects.filter(user__email__in=emails).select_related("user", "office").order_by("office__name", "role", "name"):
            self.stdout.write(f"  {agent.get_role_display():<12} {agent.office.name:<10} {agent.user.email}")
        self.stdout.write(f"\nSign in: {base}/accounts/login/   Phone simulator: {base}/simulator/   Control room: {base}/admin/\n")


def _demo_rules() -> None:
    for office_name, rules in DEMO_RULES.items():
        office = Office.objects.filter(name=office_name).first()
        if office is None:
            continue
        for spec in rules:
            spec = dict(spec)
            pool = spec.pop("pool", [])
            rule, created = RoutingRule.objects.get_or_create(office=office, name=spec.pop("name"), defaults=spec)
            if created:
                for agent in Agent.objects.filter(office=office, user__email__in=[f"{n}@harborandoak.example" for n in pool]):
                    PoolMember.objects.create(rule=rule, agent=agent)
