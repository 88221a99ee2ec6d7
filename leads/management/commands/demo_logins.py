from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from routing.models import Agent

DEMO_PASSWORD = "textback-demo"


class Command(BaseCommand):
    help = "Demo mode only: give every imported person the demo password and print the logins."

    def handle(self, *args, **options):
        if not settings.DEMO_MODE:
            raise CommandError("Refusing: Twilio credentials are set, so this is not a demo.")
        agents = list(Agent.objects.select_related("user", "office").order_by("office__name", "role", "name"))
        for agent in agents:
            if not agent.user.check_password(DEMO_PASSWORD):
                agent.user.set_password(DEMO_PASSWORD)
                agent.user.save(update_fields=["password"])
        base = settings.PUBLIC_BASE_URL
        self.stdout.write(f"\nDemo logins (password for all: {DEMO_PASSWORD})")
        for agent in agents:
            self.stdout.write(f"  {agent.get_role_display():<12} {agent.office.name:<10} {agent.user.email}")
        self.stdout.write(f"\nSign in: {base}/accounts/login/   Phone simulator: {base}/simulator/   Control room: {base}/admin/\n")
