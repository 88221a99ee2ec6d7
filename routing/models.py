"""Who works where: the brokerage, its offices, agents and tracking lines."""

import datetime as dt
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

E164_VALIDATOR = RegexValidator(r"^\+[1-9]\d{6,14}$", "Enter a phone number in E.164 form, e.g. +15555550100.")

WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def validate_timezone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"{value!r} is not an IANA time zone such as America/New_York.")


def default_business_days() -> list[int]:
    return [0, 1, 2, 3, 4, 5]


class LeadType(models.TextChoices):
    BUYER = "buyer", "Buyer"
    SELLER = "seller", "Seller"
    HOME_VALUE = "home_value", "Home value"
    GENERAL = "general", "General"


class Brokerage(models.Model):
    """The business that texts; its name opens every first text (CTIA asks for that)."""

    name = models.CharField(max_length=120, unique=True)
    help_contact = models.CharField(
        max_length=120,
        blank=True,
        help_text="Named in HELP replies, e.g. a phone number or email a caller can reach.",
    )

    def __str__(self) -> str:
        return self.name


class Office(models.Model):
    brokerage = models.ForeignKey(Brokerage, on_delete=models.PROTECT, related_name="offices")
    name = models.CharField(max_length=120, unique=True)
    timezone = models.CharField(max_length=64, default="America/New_York", validators=[validate_timezone])
    business_days = models.JSONField(
        default=default_business_days, help_text="Weekdays the office answers calls, 0 = Monday."
    )
    opens_at = models.TimeField(default=dt.time(8, 0))
    closes_at = models.TimeField(default=dt.time(20, 0))
    escalation_minutes = models.PositiveIntegerField(
        default=10, validators=[MinValueValidator(1), MaxValueValidator(24 * 60)],
        help_text="Minutes an assigned lead may wait for a human reply before it escalates.",
    )
    textback_window_hours = models.PositiveIntegerField(
        default=24, validators=[MinValueValidator(1), MaxValueValidator(24 * 30)],
        help_text="A number that was texted back is not texted back again within this window.",
    )
    round_robin_cursor = models.PositiveBigIntegerField(
        default=0, editable=False, help_text="Advances once per assignment; picks the next agent in turn."
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(opens_at__lt=models.F("closes_at")), name="office_opens_before_close"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        days = self.business_days
        if not isinstance(days, list) or any(d not in range(7) for d in days):
            raise ValidationError({"business_days": "List weekday numbers 0 (Monday) to 6 (Sunday)."})

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def is_open(self, at: dt.datetime | None = None) -> bool:
        local = (at or timezone.now()).astimezone(self.tz)
        return local.weekday() in self.business_days and self.opens_at <= local.time() < self.closes_at

    @property
    def hours_display(self) -> str:
        days = ", ".join(WEEKDAYS[d] for d in sorted(self.business_days))
        return f"{days} {self.opens_at:%H:%M}–{self.closes_at:%H:%M} {self.timezone}"


class AgentRole(models.TextChoices):
    AGENT = "agent", "Agent"
    TEAM_LEADER = "team_leader", "Team leader"
    BROKER = "broker", "Broker"


class Agent(models.Model):
    Role = AgentRole

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="agent")
    office = models.ForeignKey(Office, on_delete=models.PROTECT, related_name="agents")
    name = models.CharField(max_length=120)
    phone = models.CharField(max_length=16, validators=[E164_VALIDATOR], help_text="The agent's own mobile, rung for missed-call routing.")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.AGENT)
    weight = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1), MaxValueValidator(100)])
    languages = models.JSONField(default=list, blank=True, help_text='ISO codes, e.g. ["en", "es"].')
    on_duty = models.BooleanField(default=True, help_text="Off-duty agents are not rung and get no new leads.")
    sms_alerts = models.BooleanField(
        "SMS alerts", default=True, help_text="Text the agent's own phone when a lead is assigned to them."
    )

    class Meta:
        ordering = ["office__name", "name"]
        indexes = [models.Index(fields=["office", "on_duty"])]
        constraints = [
            models.CheckConstraint(condition=models.Q(role__in=AgentRole.values), name="agent_role_valid"),
            models.CheckConstraint(condition=models.Q(weight__gte=1), name="agent_weight_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.office})"


class TrackingNumber(models.Model):
    """A line: the number a caller dials, tagged with where the lead came from."""

    number = models.CharField(max_length=16, unique=True, validators=[E164_VALIDATOR])
    office = models.ForeignKey(Office, on_delete=models.PROTECT, related_name="lines")
    source = models.CharField(max_length=80, help_text="Where this number is advertised, e.g. Zillow.")
    lead_type = models.CharField(max_length=16, choices=LeadType.choices, default=LeadType.GENERAL)
    listing = models.CharField(max_length=200, blank=True, help_text="The listing this number advertises, if any.")
    ring_seconds = models.PositiveSmallIntegerField(
        default=12,
        validators=[MinValueValidator(5), MaxValueValidator(14)],
        help_text="How long agents' phones ring. Kept under carrier voicemail pickup (~15 s) so an "
        "agent's voicemail cannot answer and hide a missed call.",
    )
    messaging_service_sid = models.CharField(
        max_length=34, blank=True, help_text="Send through this Twilio Messaging Service instead of the number itself."
    )
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["office__name", "number"]
        verbose_name = "tracking line"
        constraints = [
            models.CheckConstraint(condition=models.Q(lead_type__in=LeadType.values), name="line_lead_type_valid"),
            models.CheckConstraint(condition=models.Q(ring_seconds__gte=5, ring_seconds__lte=14), name="line_ring_seconds_range"),
        ]

    def __str__(self) -> str:
        return f"{self.number} · {self.source}"

    @property
    def sender(self) -> str:
        """The identity a consent record is kept against: the Messaging Service, else the number."""
        return self.messaging_service_sid or self.number
