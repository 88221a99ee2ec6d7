"""Where a brokerage's leads are written back to (its CRM endpoints), and the outbox and log of
every write: one delivery per endpoint and milestone, one attempt row per HTTP request."""

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.db.models import Q

from leads.models import Lead
from leads.signals import Milestone
from routing.models import Brokerage

FOLLOW_UP_BOSS_EVENTS_URL = "https://api.followupboss.com/v1/events"

MILESTONE_CHOICES = [
    (Milestone.MISSED_CALL, "Missed call"),
    (Milestone.QUALIFIED, "Qualified by text"),
    (Milestone.APPOINTMENT, "Appointment booked"),
]


def default_milestones() -> list[str]:
    return [value for value, _ in MILESTONE_CHOICES]


class EndpointKind(models.TextChoices):
    FOLLOW_UP_BOSS = "follow_up_boss", "Follow Up Boss"
    WEBHOOK = "webhook", "Webhook (any CRM, Zapier)"


class CrmEndpoint(models.Model):
    Kind = EndpointKind

    brokerage = models.ForeignKey(Brokerage, on_delete=models.CASCADE, related_name="crm_endpoints")
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    url = models.URLField(
        "URL", max_length=500, blank=True,
        help_text=f"Follow Up Boss: leave blank for {FOLLOW_UP_BOSS_EVENTS_URL}. Webhook: the receiver's HTTPS address.",
    )
    api_key = models.CharField(
        "API key", max_length=200, blank=True, help_text="Follow Up Boss: Admin → API. Sent as the Basic auth username."
    )
    system_name = models.CharField(
        "system", max_length=80, blank=True, help_text="Follow Up Boss: the registered X-System name (default Textback)."
    )
    system_key = models.CharField(
        max_length=200, blank=True, help_text="Follow Up Boss: the X-System-Key issued with the system's registration."
    )
    secret = models.CharField(
        max_length=200, blank=True,
        help_text="Webhook: every request is signed with it (X-Textback-Signature); give the receiver the same value.",
    )
    milestones = models.JSONField(default=default_milestones, help_text="Which moments of a lead are sent.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["brokerage__name", "name"]
        verbose_name = "CRM endpoint"
        constraints = [models.CheckConstraint(condition=Q(kind__in=EndpointKind.values), name="crm_endpoint_kind_valid")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if not isinstance(self.milestones, list) or not set(self.milestones) <= set(default_milestones()):
            raise ValidationError({"milestones": "Choose among: " + ", ".join(default_milestones()) + "."})
        if self.kind == EndpointKind.FOLLOW_UP_BOSS:
            self.url = self.url or FOLLOW_UP_BOSS_EVENTS_URL
            if not self.api_key:
                raise ValidationError({"api_key": "Follow Up Boss needs an API key."})
        elif self.kind == EndpointKind.WEBHOOK:
            errors = {}
            if not self.url:
                errors["url"] = "A webhook needs the address to post to."
            if not self.secret:
                errors["secret"] = "Every webhook is signed: enter a long random secret and give the receiver the same."
            if errors:
                raise ValidationError(errors)


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # waiting for its first attempt, or for a retry
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"  # refused for good (4xx), or still failing 48 hours on


class CrmDelivery(models.Model):
    """One milestone of one lead for one endpoint: written with the milestone, sent by a worker.

    The payload is built when a worker first claims the row (off the text-back's path) and kept,
    so the log shows exactly what was sent, and a retry hours later sends the same event rather
    than whatever the lead looks like by then.
    """

    Status = DeliveryStatus

    endpoint = models.ForeignKey(CrmEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="crm_deliveries")
    milestone = models.CharField(max_length=16, choices=MILESTONE_CHOICES)
    occurred_at = models.DateTimeField(default=timezone.now, help_text="When the milestone happened.")
    payload = models.JSONField(help_text="What is posted, built on the first attempt and kept for every retry.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(
        null=True, blank=True,
        help_text="When a worker may try next; while a worker is posting, the end of its lease. Empty once settled.",
    )
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = "CRM delivery"
        verbose_name_plural = "CRM deliveries"
        indexes = [
            # The sweep reads only what is due: an index range over pending rows.
            models.Index(fields=["next_attempt_at"], name="crm_delivery_due_idx", condition=Q(status="pending")),
            # Each endpoint's queue: a delivery waits while an older one to the same endpoint is pending.
            models.Index(fields=["endpoint", "id"], name="crm_delivery_queue_idx", condition=Q(status="pending")),
        ]
        constraints = [models.CheckConstraint(condition=Q(status__in=DeliveryStatus.values), name="crm_delivery_status_valid")]

    def __str__(self) -> str:
        return f"{self.get_milestone_display()} of {self.lead} to {self.endpoint}"


class CrmDeliveryAttempt(models.Model):
    """One HTTP request and what came back: the delivery log a broker reads when a CRM complains."""

    delivery = models.ForeignKey(CrmDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Empty when no answer came (timeout, refused).")
    duration_ms = models.PositiveIntegerField()
    retry_after_seconds = models.PositiveIntegerField(null=True, blank=True, help_text="What the CRM's Retry-After asked for.")
    error = models.TextField(blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True, help_text="The first 500 characters of the answer.")

    class Meta:
        ordering = ["at", "id"]
        verbose_name = "attempt"

    def __str__(self) -> str:
        return f"Attempt at {self.at:%Y-%m-%d %H:%M:%S}: {self.status_code or self.error[:40]}"
