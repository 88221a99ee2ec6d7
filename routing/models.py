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


class EscalationFinal(models.TextChoices):
    BROKER = "broker", "A broker"
    POND = "pond", "The office pond (every agent is alerted)"


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
    escalation_agent_steps = models.PositiveSmallIntegerField(
        "agents to try", default=1, validators=[MaxValueValidator(10)],
        help_text="How many other agents of the lead's pool get it, one window each, before the team leader.",
    )
    escalation_final = models.CharField(
        "last step", max_length=16, choices=EscalationFinal.choices, default=EscalationFinal.BROKER,
        help_text="Who gets a lead the team leader did not answer either. The ladder never stops: "
        "after the last step, the team leader and brokers are alerted again every window while the lead waits.",
    )
    escalation_business_hours_only = models.BooleanField(
        "pause outside business hours", default=False,
        help_text="Count the escalation window in business hours only: a lead from 7:55 pm escalates the next morning.",
    )
    quiet_hours_start = models.TimeField(
        "texts from", default=dt.time(8, 0),
        help_text="In the caller's time zone. The law allows 8:00 am at the earliest; you may start later.",
    )
    quiet_hours_end = models.TimeField(
        "texts until", default=dt.time(21, 0),
        help_text="In the caller's time zone. The law allows 9:00 pm at the latest (8:00 pm for Florida and "
        "Oklahoma numbers, whatever is set here); you may stop earlier.",
    )
    quiet_hours_for_replies = models.BooleanField(
        "quiet hours for replies too", default=False,
        help_text="Also hold the missed-call text-back, and agents' answers to a caller who reached out in the last "
        "30 minutes, until the morning. Off: answering someone who just called or texted goes at any hour.",
    )
    daily_text_cap = models.PositiveSmallIntegerField(
        "texts per day without a reply", default=5, validators=[MinValueValidator(1), MaxValueValidator(20)],
        help_text="Most texts a number gets in 24 hours that do not answer something they just did; more wait. "
        "Florida and Oklahoma numbers get at most 3.",
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(opens_at__lt=models.F("closes_at")), name="office_opens_before_close"),
            # Brokers may tighten the law's 8 am to 9 pm, never loosen it.
            models.CheckConstraint(
                condition=models.Q(
                    quiet_hours_start__gte=dt.time(8, 0), quiet_hours_end__lte=dt.time(21, 0),
                    quiet_hours_start__lt=models.F("quiet_hours_end"),
                ) & models.Q(quiet_hours_start__lt=dt.time(20, 0)),  # Florida and Oklahoma stop at 8 pm
                name="office_texting_hours_within_law",
            ),
            models.CheckConstraint(condition=models.Q(daily_text_cap__gte=1), name="office_daily_text_cap_positive"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        days = self.business_days
        if not isinstance(days, list) or any(d not in range(7) for d in days):
            raise ValidationError({"business_days": "List weekday numbers 0 (Monday) to 6 (Sunday)."})
        start, end = self.quiet_hours_start, self.quiet_hours_end
        if start and start < dt.time(8, 0):
            raise ValidationError({"quiet_hours_start": "The law allows texts from 8:00 am at the earliest."})
        if end and end > dt.time(21, 0):
            raise ValidationError({"quiet_hours_end": "The law allows texts until 9:00 pm at the latest."})
        if start and end and start >= end:
            raise ValidationError({"quiet_hours_end": "Texting must end after it starts."})
        if start and end:
            # A caller's number can span two time zones, and Florida's day ends at 8 pm: a short or
            # late window might leave no minute inside it on both sides.
            length = dt.datetime.combine(dt.date.min, end) - dt.datetime.combine(dt.date.min, start)
            if start > dt.time(17) or length < dt.timedelta(hours=3):
                raise ValidationError({"quiet_hours_end": "Leave at least three hours for texting, starting by 5:00 pm."})

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def is_open(self, at: dt.datetime | None = None) -> bool:
        local = (at or timezone.now()).astimezone(self.tz)
        return local.weekday() in self.business_days and self.opens_at <= local.time() < self.closes_at

    def business_time_add(self, start: dt.datetime, minutes: int) -> dt.datetime:
        """`minutes` of opening hours after `start`: the escalation clock that stops at night."""
        if not self.business_days:
            return start + dt.timedelta(minutes=minutes)
        left = dt.timedelta(minutes=minutes)
        local = start.astimezone(self.tz)
        for _ in range(8 * (minutes // (24 * 60) + 1) + 8):  # bounded: every week has an open day
            day = local.date()
            opens = dt.datetime.combine(day, self.opens_at, self.tz)
            closes = dt.datetime.combine(day, self.closes_at, self.tz)
            if day.weekday() in self.business_days and local < closes:
                local = max(local, opens)
                if local + left <= closes:
                    return (local + left).astimezone(dt.UTC)
                left -= closes - local
            local = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), self.tz)
        raise AssertionError("unreachable: business_days is not empty")

    def business_seconds_between(self, start: dt.datetime, end: dt.datetime) -> float:
        """Seconds of opening hours in [start, end): a reply at 9:05 to a text sent at 7:55 pm the
        evening before took five minutes of the office's day."""
        if end <= start:
            return 0.0
        if not self.business_days:
            return (end - start).total_seconds()
        total, day = 0.0, start.astimezone(self.tz).date()
        while dt.datetime.combine(day, dt.time(0), self.tz) < end:
            if day.weekday() in self.business_days:
                opens = max(start, dt.datetime.combine(day, self.opens_at, self.tz))
                closes = min(end, dt.datetime.combine(day, self.closes_at, self.tz))
                total += max(0.0, (closes - opens).total_seconds())
            day += dt.timedelta(days=1)
        return total

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
    paused = models.BooleanField(
        default=False, help_text="Set by the broker (e.g. on leave or in training): no new leads whatever the agent's own toggle says."
    )
    max_waiting_leads = models.PositiveSmallIntegerField(
        "capacity", null=True, blank=True, validators=[MinValueValidator(1)],
        help_text="Most leads that may wait for this agent's reply at once; beyond it new leads skip them. Blank: no limit.",
    )
    works_from = models.TimeField(null=True, blank=True, help_text="The agent's own hours on the office's business days, in the office's time zone. Blank: whenever on duty.")
    works_until = models.TimeField(null=True, blank=True)
    sms_alerts = models.BooleanField(
        "SMS alerts", default=True, help_text="Text the agent's own phone when a lead is assigned to them."
    )

    class Meta:
        ordering = ["office__name", "name"]
        indexes = [models.Index(fields=["office", "on_duty"])]
        constraints = [
            models.CheckConstraint(condition=models.Q(role__in=AgentRole.values), name="agent_role_valid"),
            models.CheckConstraint(condition=models.Q(weight__gte=1), name="agent_weight_positive"),
            models.CheckConstraint(
                condition=models.Q(works_from__isnull=True, works_until__isnull=True)
                | models.Q(works_from__lt=models.F("works_until")),
                name="agent_hours_both_or_neither",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.office})"

    def clean(self) -> None:
        if (self.works_from is None) != (self.works_until is None):
            raise ValidationError("Give both ends of the agent's hours, or neither.")
        if self.works_from and self.works_from >= self.works_until:
            raise ValidationError({"works_until": "The agent's hours must end after they start."})

    def works_at(self, at: dt.datetime) -> bool:
        if self.works_from is None:
            return True
        local = at.astimezone(self.office.tz)
        return local.weekday() in self.office.business_days and self.works_from <= local.time() < self.works_until


class TrackingNumber(models.Model):
    """A line: the number a caller dials, tagged with where the lead came from."""

    number = models.CharField(max_length=16, unique=True, validators=[E164_VALIDATOR])
    office = models.ForeignKey(Office, on_delete=models.PROTECT, related_name="lines")
    source = models.CharField(max_length=80, help_text="Where this number is advertised, e.g. Zillow.")
    lead_type = models.CharField(max_length=16, choices=LeadType.choices, default=LeadType.GENERAL)
    listing = models.CharField(max_length=200, blank=True, help_text="The listing this number advertises, if any.")
    listing_agent = models.ForeignKey(
        "Agent", null=True, blank=True, on_delete=models.SET_NULL, related_name="listing_lines",
        help_text="The agent whose listing this is; a rule can send its leads to them (my listing, my lead).",
    )
    zip_code = models.CharField("ZIP code", max_length=10, blank=True, help_text="The listing's ZIP code, for territory rules.")
    city = models.CharField(max_length=80, blank=True, help_text="The listing's city, for territory rules.")
    price = models.PositiveIntegerField(null=True, blank=True, help_text="The listing's price in dollars, for price-band rules.")
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

    @property
    def senders(self) -> tuple[str, ...]:
        """Every identity the line has texted as: a STOP to the number still holds after the broker
        moves the line into a Messaging Service, and the other way round."""
        return tuple(dict.fromkeys(s for s in (self.messaging_service_sid, self.number) if s))


# --- routing rules ------------------------------------------------------------------------------


class Strategy(models.TextChoices):
    ROUND_ROBIN = "round_robin", "Weighted round-robin over the pool"
    FIRST_TO_CLAIM = "first_to_claim", "First to claim (offer to the whole pool)"
    AGENT = "agent", "A specific agent"
    LISTING_AGENT = "listing_agent", "The line's listing agent (my listing, my lead)"
    POND = "pond", "The office pond (any agent may claim)"


class Fallback(models.TextChoices):
    POND = "pond", "The office pond"
    TEAM_LEADER = "team_leader", "The office's team leader"
    AGENT = "agent", "A specific agent"
    RULE = "rule", "Another rule's pool"


class TimeWindow(models.TextChoices):
    ANY = "any", "Any time"
    BUSINESS_HOURS = "business_hours", "Business hours"
    AFTER_HOURS = "after_hours", "After hours"
    WEEKDAYS = "weekdays", "Weekdays (Mon–Fri)"
    WEEKENDS = "weekends", "Weekends (Sat–Sun)"


CATCH_ALL_POSITION = 2**31 - 1


class RoutingRule(models.Model):
    """One line of an office's routing table: conditions, then who gets the lead.

    Rules are tried in `position` order and the first whose conditions all hold decides. Every
    office has one catch-all (no conditions, always last, never deleted), so a lead is never
    left unrouted. Empty conditions match anything.
    """

    Strategy = Strategy
    Fallback = Fallback
    TimeWindow = TimeWindow

    office = models.ForeignKey(Office, on_delete=models.CASCADE, related_name="routing_rules")
    name = models.CharField(max_length=80)
    position = models.PositiveIntegerField(default=10, help_text="Lower runs first.")
    active = models.BooleanField(default=True)
    is_catch_all = models.BooleanField(default=False, editable=False)
    # Conditions
    lines = models.ManyToManyField(TrackingNumber, blank=True, related_name="routing_rules", help_text="Calls to these lines. None: any line.")
    sources = models.JSONField("lead sources", default=list, blank=True)
    lead_types = models.JSONField(default=list, blank=True)
    zip_codes = models.JSONField("ZIP codes", default=list, blank=True)
    cities = models.JSONField(default=list, blank=True)
    area_codes = models.JSONField(default=list, blank=True, help_text="The caller's area code, e.g. 305.")
    price_min = models.PositiveIntegerField(null=True, blank=True)
    price_max = models.PositiveIntegerField(null=True, blank=True)
    languages = models.JSONField(default=list, blank=True, help_text="The lead's language, e.g. es.")
    time_window = models.CharField(max_length=16, choices=TimeWindow.choices, default=TimeWindow.ANY)
    # Target
    strategy = models.CharField(max_length=16, choices=Strategy.choices, default=Strategy.ROUND_ROBIN)
    agent = models.ForeignKey(
        "Agent", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="For “a specific agent”.",
    )
    claim_timeout_minutes = models.PositiveSmallIntegerField(
        default=5, validators=[MinValueValidator(1), MaxValueValidator(240)],
        help_text="For first to claim: how long the pool has before the fallback gets the lead.",
    )
    fallback = models.CharField(
        max_length=16, choices=Fallback.choices, default=Fallback.POND,
        help_text="Who gets the lead when nobody in the target is available, or nobody claimed it in time.",
    )
    fallback_agent = models.ForeignKey("Agent", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    fallback_rule = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="For “another rule's pool”: that rule's target is used, whatever its conditions.",
    )

    class Meta:
        ordering = ["office__name", "position", "id"]
        indexes = [models.Index(fields=["office", "active", "position"])]
        constraints = [
            models.UniqueConstraint(fields=["office"], condition=models.Q(is_catch_all=True), name="one_catch_all_per_office"),
            models.CheckConstraint(condition=models.Q(strategy__in=Strategy.values), name="rule_strategy_valid"),
            models.CheckConstraint(condition=models.Q(fallback__in=Fallback.values), name="rule_fallback_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.office} · {self.name}"

    def clean(self) -> None:
        errors = {}
        if self.price_min is not None and self.price_max is not None and self.price_min > self.price_max:
            errors["price_max"] = "The top of the price band must be above its bottom."
        if self.strategy == Strategy.AGENT and self.agent is None:
            errors["agent"] = "Choose the agent this rule sends leads to."
        if self.fallback == Fallback.AGENT and self.fallback_agent is None:
            errors["fallback_agent"] = "Choose the agent who gets the lead when the target cannot."
        if self.fallback == Fallback.RULE and self.fallback_rule is None:
            errors["fallback_rule"] = "Choose the rule whose pool gets the lead when the target cannot."
        if self.fallback_rule_id and self.fallback_rule_id == self.pk:
            errors["fallback_rule"] = "A rule cannot fall back to itself."
        office_id = self.office_id
        for field in ("agent", "fallback_agent"):
            agent = getattr(self, field)
            if agent is not None and office_id and agent.office_id != office_id:
                errors[field] = f"{agent.name} works in another office."
        if self.fallback_rule is not None and office_id and self.fallback_rule.office_id != office_id:
            errors["fallback_rule"] = "Fall back to a rule of the same office."
        if self.is_catch_all and not self.active:
            errors["active"] = "The catch-all is always on: it routes every lead no other rule takes."
        if errors:
            raise ValidationError(errors)

    def delete(self, *args, **kwargs):
        if self.is_catch_all:
            raise ValidationError("An office's catch-all rule cannot be deleted; change its target instead.")
        return super().delete(*args, **kwargs)


class PoolMember(models.Model):
    """An agent in a rule's pool. A rule with no members pools the office's agents and team leaders."""

    rule = models.ForeignKey(RoutingRule, on_delete=models.CASCADE, related_name="members")
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="pool_memberships")
    weight = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Share of this pool's leads relative to the others. Blank: the agent's own weight.",
    )

    class Meta:
        ordering = ["rule", "id"]
        constraints = [models.UniqueConstraint(fields=["rule", "agent"], name="pool_member_once")]

    def __str__(self) -> str:
        return f"{self.agent.name} in {self.rule.name}"

    def clean(self) -> None:
        if self.rule_id and self.agent_id and self.agent.office_id != self.rule.office_id:
            raise ValidationError({"agent": f"{self.agent.name} works in another office."})


class RoundRobinTurn(models.Model):
    """Where an agent stands in a pool's weighted round-robin: how far ahead of or behind their
    share they are (`credit`, in leads), and how many leads the pool gave them."""

    rule = models.ForeignKey(RoutingRule, on_delete=models.CASCADE, related_name="turns")
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="round_robin_turns")
    credit = models.FloatField(default=0.0)
    assignments = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rule", "agent"], name="round_robin_turn_once")]
