"""Leads and everything that happened with them: calls and texts both ways."""

import datetime as dt

from django.db import models
from django.db.models import Q

from routing.models import E164_VALIDATOR, Agent, LeadType, Office, RoutingRule, TrackingNumber


def _choices_check(field: str, choices: type[models.TextChoices], name: str) -> models.CheckConstraint:
    return models.CheckConstraint(condition=Q(**{f"{field}__in": choices.values}), name=name)


class LeadStatus(models.TextChoices):
    NEW = "new", "New"  # we know of them; nobody has texted them yet
    CONTACTED = "contacted", "Contacted"  # a text-back or an agent reached out
    ENGAGED = "engaged", "In conversation"  # they texted us
    CLOSED = "closed", "Closed"


class DialStatus(models.TextChoices):
    COMPLETED = "completed", "Completed"
    ANSWERED = "answered", "Answered"
    BUSY = "busy", "Busy"
    NO_ANSWER = "no-answer", "No answer"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"


class MissedReason(models.TextChoices):
    NOT_MISSED = "", "—"
    NO_ANSWER = "no_answer", "Agents did not answer"
    AFTER_HOURS = "after_hours", "After hours"
    NOBODY_ON_DUTY = "nobody_on_duty", "Nobody on duty"
    NO_DIAL_OUTCOME = "no_dial_outcome", "Call ended before it reached an agent"


class MessageDirection(models.TextChoices):
    INBOUND = "in", "Inbound"
    OUTBOUND = "out", "Outbound"


class MessageStatus(models.TextChoices):
    QUEUED = "queued", "Queued"  # written, waiting for a worker (the outbox)
    SENDING = "sending", "Sending"  # a worker holds it and is talking to the provider
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    UNDELIVERED = "undelivered", "Undelivered"
    FAILED = "failed", "Failed"
    READ = "read", "Read"
    RECEIVED = "received", "Received"  # inbound
    CANCELED = "canceled", "Not sent"  # the gate or a text-back rule stopped it before sending


class MessageKind(models.TextChoices):
    INBOUND = "inbound", "From the lead"
    TEXTBACK = "textback", "Missed-call text-back"
    REPLY = "reply", "Agent reply"
    OPT_OUT_CONFIRMATION = "opt_out_confirmation", "Opt-out confirmation"
    OPT_IN_CONFIRMATION = "opt_in_confirmation", "Opt-in confirmation"
    HELP_REPLY = "help_reply", "Help reply"
    AGENT_ALERT = "agent_alert", "Alert to the agent"  # to the agent's own phone, not the lead
    QUALIFICATION = "qualification", "Qualification"
    APPOINTMENT_CONFIRMATION = "appointment_confirmation", "Appointment confirmation"


class RevocationCheck(models.TextChoices):
    NONE = "", "—"
    PENDING = "pending", "Waiting for an agent"
    OPTED_OUT = "opted_out", "Confirmed: opted out"
    DISMISSED = "dismissed", "Not an opt-out"


class MessageSender(models.TextChoices):
    LEAD = "lead", "Lead"
    SYSTEM = "system", "System"
    AGENT = "agent", "Agent"


class LeadOutcome(models.TextChoices):
    NONE = "", "—"
    QUALIFIED = "qualified", "Qualified"
    APPOINTMENT = "appointment", "Appointment booked"
    NOT_INTERESTED = "not_interested", "Not interested"
    WRONG_NUMBER = "wrong_number", "Wrong number"
    CLOSED = "closed", "Closed"


class LeadRating(models.TextChoices):
    NONE = "", "—"
    HOT = "hot", "Hot"
    WARM = "warm", "Warm"
    NURTURE = "nurture", "Nurture"


class LeadFinancing(models.TextChoices):
    NONE = "", "—"
    PRE_APPROVED = "pre_approved", "Pre-approved"
    CASH = "cash", "Cash"
    IN_PROGRESS = "in_progress", "Applying"
    NOT_YET = "not_yet", "Not yet"


class Lead(models.Model):
    Status = LeadStatus
    Rating = LeadRating
    Financing = LeadFinancing
    Outcome = LeadOutcome
    # Outcomes that end the conversation: the lead leaves the open lists until they call or text again.
    CLOSING_OUTCOMES = {Outcome.NOT_INTERESTED, Outcome.WRONG_NUMBER, Outcome.CLOSED}

    phone = models.CharField(max_length=16, unique=True, validators=[E164_VALIDATOR])
    name = models.CharField(max_length=120, blank=True)
    email = models.EmailField(blank=True)
    lead_type = models.CharField(max_length=16, choices=LeadType.choices, default=LeadType.GENERAL)
    source = models.CharField(max_length=80, blank=True)
    office = models.ForeignKey(Office, on_delete=models.PROTECT, related_name="leads")
    line = models.ForeignKey(
        TrackingNumber, on_delete=models.PROTECT, related_name="leads", help_text="The line the lead first reached."
    )
    assigned_agent = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="leads"
    )
    assigned_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NEW)
    awaiting_reply_since = models.DateTimeField(
        null=True, blank=True,
        help_text="Since when the lead has waited for a human: a missed call or a text no agent has answered yet.",
    )
    escalated_at = models.DateTimeField(null=True, blank=True, help_text="When the lead last escalated for want of a reply.")
    # What routing knows of the lead beyond its line (the line's listing fills the gaps).
    zip_code = models.CharField("ZIP code", max_length=10, blank=True)
    city = models.CharField(max_length=80, blank=True)
    price = models.PositiveIntegerField(null=True, blank=True, help_text="Budget or asking price in dollars.")
    language = models.CharField(max_length=8, blank=True, help_text="ISO code, e.g. es.")
    routing_rule = models.ForeignKey(
        RoutingRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="leads",
        help_text="The rule that routed the lead last; its pool is where escalation looks for the next agent.",
    )
    claim_deadline = models.DateTimeField(
        null=True, blank=True, help_text="Offered to a pool, first to claim: when the rule's fallback gets it instead."
    )
    escalation_step = models.PositiveSmallIntegerField(
        default=0, help_text="How many rungs of the escalation ladder this wait has climbed."
    )
    escalation_due_at = models.DateTimeField(
        null=True, blank=True, editable=False,
        help_text="When the lead escalates (or its claim offer runs out) if nobody answers it first; kept by save().",
    )
    call_back_since = models.DateTimeField(
        null=True, blank=True, help_text="Set while the lead waits for a call back because it cannot take texts.",
    )
    call_back_reason = models.CharField(max_length=255, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)
    # What the qualification script learnt (price, zip_code, city and language above too).
    rating = models.CharField(max_length=8, choices=LeadRating.choices, blank=True)
    timeline_months = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Months until the caller means to move, as they told us (0: now)."
    )
    financing = models.CharField(max_length=16, choices=LeadFinancing.choices, blank=True)
    address = models.CharField(max_length=200, blank=True, help_text="The property's address, when the caller gave one.")
    appointment_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_activity_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-last_activity_at"]
        indexes = [
            models.Index(fields=["office", "-last_activity_at"]),
            models.Index(fields=["assigned_agent", "-last_activity_at"]),
            models.Index(fields=["awaiting_reply_since"], name="lead_awaiting_reply_idx",
                         condition=Q(awaiting_reply_since__isnull=False)),
            # The escalation sweep reads only what is due: an index range over waiting leads.
            models.Index(fields=["escalation_due_at"], name="lead_escalation_due_idx",
                         condition=Q(escalation_due_at__isnull=False)),
        ]
        constraints = [
            _choices_check("status", LeadStatus, "lead_status_valid"),
            _choices_check("lead_type", LeadType, "lead_type_valid"),
            _choices_check("outcome", LeadOutcome, "lead_outcome_valid"),
            _choices_check("rating", LeadRating, "lead_rating_valid"),
            _choices_check("financing", LeadFinancing, "lead_financing_valid"),
            models.CheckConstraint(
                condition=~Q(outcome="appointment") | Q(appointment_at__isnull=False), name="lead_appointment_has_time"
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.phone

    # Fields that move the escalation clock: saving any of them recomputes `escalation_due_at`.
    CLOCK_FIELDS = {"assigned_agent", "assigned_at", "awaiting_reply_since", "escalated_at", "status", "claim_deadline"}

    def save(self, *args, update_fields=None, **kwargs):
        """Keep the escalation clock in step with the lead, whichever service changed it: every
        path that assigns, answers, closes or re-opens a lead saves one of CLOCK_FIELDS."""
        if update_fields is None or self.CLOCK_FIELDS.intersection(update_fields):
            self.escalation_clock_set()
            if update_fields is not None:
                update_fields = {*update_fields, "escalation_due_at", "escalation_step"}
        super().save(*args, update_fields=update_fields, **kwargs)

    def escalation_clock_set(self) -> None:
        """The window runs from the latest of: the lead starting to wait, its assignment, its last
        escalation. A lead offered first-to-claim is due at its claim deadline instead (one sweep
        serves both); a lead nobody waits on has no clock, and its next wait starts the ladder afresh."""
        if self.awaiting_reply_since is None or self.status == LeadStatus.CLOSED:
            self.escalation_due_at, self.escalation_step = None, 0
            return
        if self.claim_deadline is not None:
            self.escalation_due_at = self.claim_deadline
            return
        office = self.office
        start = max(t for t in (self.awaiting_reply_since, self.assigned_at, self.escalated_at) if t is not None)
        if office.escalation_business_hours_only:
            self.escalation_due_at = office.business_time_add(start, office.escalation_minutes)
        else:
            self.escalation_due_at = start + dt.timedelta(minutes=office.escalation_minutes)


class CallDirection(models.TextChoices):
    INBOUND = "in", "Inbound"
    OUTBOUND = "out", "Call-back"  # an agent calling the lead from the inbox


class Call(models.Model):
    DialStatus = DialStatus
    MissedReason = MissedReason
    Direction = CallDirection
    MISSED_DIAL_STATUSES = {DialStatus.BUSY, DialStatus.NO_ANSWER, DialStatus.FAILED, DialStatus.CANCELED}

    # Null only while a call-back waits for Twilio to create the call.
    call_sid = models.CharField("Call SID", max_length=34, unique=True, null=True, blank=True)
    direction = models.CharField(max_length=3, choices=Direction.choices, default=Direction.INBOUND)
    placed_by = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="placed_calls",
        help_text="The agent who clicked to call the lead back.",
    )
    line = models.ForeignKey(TrackingNumber, on_delete=models.PROTECT, related_name="calls")
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="calls")
    from_number = models.CharField(max_length=16)
    dial_status = models.CharField(max_length=16, choices=DialStatus.choices, blank=True)
    dial_call_sid = models.CharField("dial call SID", max_length=34, blank=True)
    call_status = models.CharField(max_length=16, blank=True, help_text="Twilio's final CallStatus.")
    error_message = models.CharField(max_length=255, blank=True, help_text="Why a call-back could not be placed.")
    missed = models.BooleanField(default=False)
    missed_reason = models.CharField(max_length=16, choices=MissedReason.choices, blank=True)
    textback_skipped = models.CharField(
        max_length=120, blank=True, help_text="Why this missed call got no text-back, when it got none."
    )
    rang_agents = models.ManyToManyField(Agent, blank=True, related_name="rung_calls")
    answered_by = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="answered_calls")
    dial_duration = models.PositiveIntegerField(null=True, blank=True, help_text="Seconds the agent was connected.")
    call_duration = models.PositiveIntegerField(null=True, blank=True, help_text="Seconds the whole call lasted.")
    recording_url = models.URLField(max_length=500, blank=True)
    recording_duration = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["lead", "-created_at"]),
            models.Index(fields=["missed", "-created_at"]),
            # The dashboards count a period's calls by line and lead from this index alone (PostgreSQL).
            models.Index(fields=["created_at"], include=["direction", "line", "lead", "missed"], name="call_created_covering"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(dial_status="") | Q(dial_status__in=DialStatus.values), name="call_dial_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(missed_reason__in=MissedReason.values), name="call_missed_reason_valid"
            ),
            models.CheckConstraint(condition=Q(missed=False) | ~Q(missed_reason=""), name="call_missed_has_reason"),
            _choices_check("direction", CallDirection, "call_direction_valid"),
        ]

    def __str__(self) -> str:
        return self.call_sid or f"Call-back {self.pk} (not placed yet)"

    @property
    def answered(self) -> bool:
        return self.dial_status in (self.DialStatus.COMPLETED, self.DialStatus.ANSWERED)


class Message(models.Model):
    Direction = MessageDirection

    Status = MessageStatus

    # How far a status is along the way, so a late callback never moves a message backwards.
    STATUS_RANK = {
        Status.QUEUED: 0, Status.SENDING: 1, Status.SENT: 2,
        Status.DELIVERED: 3, Status.UNDELIVERED: 3, Status.FAILED: 3, Status.READ: 4,
        Status.RECEIVED: 5, Status.CANCELED: 5,
    }

    Kind = MessageKind

    Sender = MessageSender

    RevocationCheck = RevocationCheck

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="messages")
    line = models.ForeignKey(TrackingNumber, on_delete=models.PROTECT, related_name="messages")
    direction = models.CharField(max_length=3, choices=Direction.choices)
    kind = models.CharField(max_length=24, choices=Kind.choices)
    sender = models.CharField(max_length=8, choices=Sender.choices)
    agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages")
    call = models.ForeignKey(Call, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages")
    to_number = models.CharField(
        max_length=16, blank=True, help_text="Who receives it when that is not the lead: an agent's alert."
    )
    consent_event = models.ForeignKey(
        "compliance.ConsentEvent", null=True, blank=True, on_delete=models.PROTECT, related_name="messages",
        help_text="The opt-out or opt-in this message confirms.",
    )
    outreach = models.BooleanField(
        default=False, help_text="Sent without the caller having just reached out: counts toward the daily caps.",
    )
    revocation_check = models.CharField(
        max_length=12, choices=RevocationCheck.choices, blank=True,
        help_text="An inbound text that may be asking us to stop, and what an agent made of it.",
    )
    body = models.TextField()
    segments = models.PositiveSmallIntegerField(default=1)
    num_media = models.PositiveSmallIntegerField(default=0)
    media_urls = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices)
    provider_sid = models.CharField("provider SID", max_length=34, unique=True, null=True, blank=True)
    error_code = models.CharField(max_length=8, blank=True)
    error_message = models.CharField(max_length=255, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    sending_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["lead", "created_at"]),
            # The outbox sweep's query: rows still waiting for a worker.
            models.Index(fields=["status", "next_attempt_at"], name="message_outbox_idx",
                         condition=Q(status__in=["queued", "sending"])),
        ]
        constraints = [
            _choices_check("direction", MessageDirection, "message_direction_valid"),
            _choices_check("status", MessageStatus, "message_status_valid"),
            _choices_check("kind", MessageKind, "message_kind_valid"),
            _choices_check("sender", MessageSender, "message_sender_valid"),
            # One text-back per missed call, however often Twilio retries the webhook.
            models.UniqueConstraint(fields=["call"], condition=Q(kind="textback"), name="message_one_textback_per_call"),
            # At most one confirmation per opt-out or opt-in.
            models.UniqueConstraint(fields=["consent_event"], name="message_one_confirmation_per_consent_event"),
        ]

    def __str__(self) -> str:
        return f"{self.get_direction_display()} {self.get_kind_display()} to/from {self.lead}"

    @property
    def is_outbound(self) -> bool:
        return self.direction == self.Direction.OUTBOUND

    @property
    def recipient(self) -> str:
        return self.to_number or self.lead.phone


class MessageStatusEvent(models.Model):
    """Every status callback Twilio posted, once: a replay of (SID, status) is a no-op."""

    provider_sid = models.CharField("provider SID", max_length=34)
    status = models.CharField(max_length=24)
    error_code = models.CharField(max_length=8, blank=True)
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.CASCADE, related_name="status_events")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["received_at", "id"]
        constraints = [models.UniqueConstraint(fields=["provider_sid", "status"], name="status_event_once")]

    def __str__(self) -> str:
        return f"{self.provider_sid} {self.status}"


class TextbackTemplate(models.Model):
    """The words of the first text, per lead type and language; brokers edit them in admin."""

    class Language(models.TextChoices):
        ENGLISH = "en", "English"
        SPANISH = "es", "Spanish"

    lead_type = models.CharField(max_length=16, choices=LeadType.choices)
    language = models.CharField(
        max_length=8, choices=Language.choices, default=Language.ENGLISH,
        help_text="Sent to callers known to write in this language (they wrote in it before).",
    )
    body = models.TextField(
        help_text="Placeholders: {brokerage}, {listing}, {agent}, {office}. Keep it to one SMS segment "
        "(160 plain characters) and keep the opt-out wording."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["lead_type", "language"]
        verbose_name = "text-back template"
        constraints = [
            _choices_check("lead_type", LeadType, "template_lead_type_valid"),
            models.UniqueConstraint(fields=["lead_type", "language"], name="template_one_per_type_and_language"),
        ]

    def __str__(self) -> str:
        return f"{self.get_lead_type_display()} text-back ({self.get_language_display()})"


class TwilioWebhookKind(models.TextChoices):
    CALL_INCOMING = "call_incoming", "Incoming call"
    DIAL_STATUS = "dial_status", "Dial outcome"
    CALL_STATUS = "call_status", "Call status"


class TwilioWebhook(models.Model):
    """A voice webhook Twilio delivered, stored before we answer and processed by a worker.

    Twilio needs a fast answer and retries; the caller's text must not be lost if a process dies.
    Storing the request is one insert, which answers Twilio quickly and durably; the unique key
    turns retries into no-ops; a worker applies the effects in the order calls happened.
    """

    Kind = TwilioWebhookKind

    kind = models.CharField(max_length=16, choices=Kind.choices)
    dedupe_key = models.CharField(max_length=300, unique=True)
    call_sid = models.CharField("Call SID", max_length=34, db_index=True)
    line = models.ForeignKey(TrackingNumber, on_delete=models.PROTECT, related_name="webhooks")
    params = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["received_at"], name="webhook_pending_idx", condition=Q(processed_at__isnull=True)),
        ]
        constraints = [_choices_check("kind", TwilioWebhookKind, "webhook_kind_valid")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.call_sid}"


class LeadEventKind(models.TextChoices):
    ASSIGNED = "assigned", "Assigned"
    CLAIMED = "claimed", "Claimed"
    TRANSFERRED = "transferred", "Transferred"
    RETURNED_TO_POOL = "returned_to_pool", "Returned to the office pool"
    ESCALATED = "escalated", "Escalated"
    OFFERED = "offered", "Offered to the pool"
    OUTCOME = "outcome", "Outcome"
    NOTE = "note", "Internal note"
    EDITED = "edited", "Details edited"
    CALL_BACK = "call_back", "Call-back task"
    CONSENT = "consent", "Consent"
    QUALIFIED = "qualified", "Qualification"
    FOLLOW_UP = "follow_up", "Follow-up"


class LeadEvent(models.Model):
    """What people (and the router) did with a lead, for its timeline: who, what, when, why."""

    Kind = LeadEventKind

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    actor = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="lead_actions",
        help_text="Who did it; empty when the system did.",
    )
    agent = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="lead_events",
        help_text="Who the lead went to, for assignments.",
    )
    previous_agent = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="Who had the lead before, for assignments, transfers and escalations.",
    )
    rule = models.ForeignKey(
        RoutingRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="lead_events",
        help_text="The routing rule that decided, for routed assignments and offers.",
    )
    text = models.TextField(blank=True, help_text="The note, the reason, or what changed.")
    detail = models.JSONField(
        default=dict, blank=True,
        help_text="Why, for routing decisions: strategy, target, and every agent skipped with the reason.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["lead", "created_at"]), models.Index(fields=["kind", "created_at"])]
        constraints = [_choices_check("kind", LeadEventKind, "lead_event_kind_valid")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.lead}"


class LeadRead(models.Model):
    """How far each agent has read each thread: the inbox's unread counts."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="reads")
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="reads")
    read_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["agent", "lead"], name="lead_read_once_per_agent")]


class ReplySnippet(models.Model):
    """Canned replies agents insert into the composer; brokers edit them in admin."""

    title = models.CharField(max_length=60)
    body = models.TextField()
    lead_type = models.CharField(
        max_length=16, choices=LeadType.choices, blank=True, help_text="Offered for this lead type only; blank offers it for all."
    )
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        verbose_name = "reply snippet"

    def __str__(self) -> str:
        return self.title


class MissedCallOutcome(models.Model):
    """What followed one missed call, kept up to date as it happens.

    `leads.metrics.missed_call_outcomes_compute` is the definition. A change to a lead marks it
    `OutcomeRefreshDue` in the change's own transaction; a worker stores the new answers within
    the minute, and until then a dashboard computes that lead's. So a dashboard over thousands of
    missed calls sums these rows instead of re-deriving every call's story from a year of texts
    and calls, and is still exact to the second.
    """

    call = models.OneToOneField(Call, primary_key=True, on_delete=models.CASCADE, related_name="outcome")
    # The call's own, copied so a dashboard reads one table by time: they never change.
    missed_at = models.DateTimeField()
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="missed_call_outcomes")
    line = models.ForeignKey(TrackingNumber, on_delete=models.PROTECT, related_name="missed_call_outcomes")
    speed_to_lead = models.FloatField(
        null=True, blank=True, help_text="Seconds from queueing the text-back to Twilio accepting it; empty when none went."
    )
    delivered = models.BooleanField(default=False)
    undelivered_code = models.CharField(max_length=16, blank=True, help_text="Twilio's error code when the text-back failed.")
    replied = models.BooleanField(default=False, help_text="The caller texted after the text-back.")
    response = models.FloatField(null=True, blank=True, help_text="Seconds until a human replied or called; empty if none did.")
    response_business = models.FloatField(null=True, blank=True, help_text="The same, counting the office's business hours only.")
    recovered = models.BooleanField(default=False, help_text="A two-way conversation with a human followed.")
    appointment = models.BooleanField(default=False)
    opted_out = models.BooleanField(default=False)
    landline = models.BooleanField(default=False)
    refreshed_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["missed_at"])]

    def __str__(self) -> str:
        return f"Outcome of {self.call}"


class OutcomeRefreshDue(models.Model):
    """A lead whose missed calls' outcomes may have changed since they were stored: written in the
    same transaction as the change (so none is ever lost), removed once they are stored again."""

    lead = models.OneToOneField(Lead, primary_key=True, on_delete=models.CASCADE, related_name="+")
    since = models.DateTimeField(help_text="The latest change; a refresh removes the mark only if nothing changed since it read.")

    def __str__(self) -> str:
        return f"Outcomes of lead {self.lead_id} due since {self.since:%Y-%m-%d %H:%M:%S}"


QUESTION_CHOICES = [
    ("intent", "Buying or selling"),
    ("timeline", "Timeline"),
    ("budget", "Price range or budget"),
    ("area", "Area, ZIP or the property's address"),
    ("pre_approved", "Pre-approved or not"),
]


def default_questions() -> list[str]:
    return [key for key, _ in QUESTION_CHOICES]


class Playbook(models.Model):
    """What an office's leads hear from us after the text-back, before a human takes over: the
    qualification questions and the follow-up sequence. Brokers edit one per office in admin."""

    office = models.OneToOneField(Office, on_delete=models.CASCADE, related_name="playbook")
    qualification_enabled = models.BooleanField(
        "ask qualification questions", default=True,
        help_text="When a caller replies to the text-back and no agent has answered yet, ask them one question at a time.",
    )
    questions = models.JSONField(
        default=default_questions,
        help_text="Which questions, in order: " + ", ".join(key for key, _ in QUESTION_CHOICES) + ".",
    )
    follow_up_enabled = models.BooleanField(
        "follow up", default=True,
        help_text="When the text-back gets no reply: a call-back task for the agent, then an email if we have an address.",
    )
    call_back_after_minutes = models.PositiveSmallIntegerField(default=15)
    email_after_minutes = models.PositiveSmallIntegerField(default=60, help_text="Counted, like the call-back, from when the text-back left.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["office__name"]
        constraints = [
            models.CheckConstraint(condition=Q(call_back_after_minutes__gte=1), name="playbook_call_back_after_positive"),
            models.CheckConstraint(
                condition=Q(email_after_minutes__gt=models.F("call_back_after_minutes")), name="playbook_email_after_call_back"
            ),
        ]

    def __str__(self) -> str:
        return f"Playbook of {self.office}"


class QualificationState(models.TextChoices):
    ASKING = "asking", "Asking"
    DONE = "done", "Answered"
    STOPPED = "stopped", "Stopped"


class Qualification(models.Model):
    """One lead's way through its office's questions: where it is, and what the caller said."""

    State = QualificationState

    lead = models.OneToOneField(Lead, primary_key=True, on_delete=models.CASCADE, related_name="qualification")
    state = models.CharField(max_length=8, choices=State.choices, default=State.ASKING)
    questions = models.JSONField(help_text="The office's questions when the script started.")
    current = models.CharField(max_length=16, blank=True, help_text="The question waiting for an answer.")
    clarifying = models.BooleanField(default=False, help_text="The current question was asked a second time, differently.")
    answers = models.JSONField(default=dict, blank=True, help_text="What each answer was read as.")
    replies = models.JSONField(default=dict, blank=True, help_text="The caller's words, per question.")
    unclear = models.JSONField(default=list, blank=True, help_text="Questions left unanswered after the clarifying one.")
    language = models.CharField(max_length=8, default="en")
    stop_reason = models.CharField(max_length=120, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [_choices_check("state", QualificationState, "qualification_state_valid")]

    def __str__(self) -> str:
        return f"Qualification of {self.lead}"


class FollowUpStep(models.TextChoices):
    CALL_BACK = "call_back", "Call-back task"
    EMAIL = "email", "Email"


class FollowUpStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    DONE = "done", "Done"
    CANCELED = "canceled", "Cancelled"
    SKIPPED = "skipped", "Skipped"


class FollowUp(models.Model):
    """One step of the sequence after an unanswered text-back, written when the text-back is
    sent (so a restart loses none) and run by the sweep when due, unless the caller or a human
    got in touch first."""

    Step = FollowUpStep
    Status = FollowUpStatus

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="follow_ups")
    textback = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="follow_ups")
    step = models.CharField(max_length=12, choices=Step.choices)
    due_at = models.DateTimeField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.SCHEDULED)
    note = models.CharField(max_length=255, blank=True, help_text="What happened, or why it did not.")
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Tries at sending the email.")
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["due_at", "id"]
        indexes = [models.Index(fields=["due_at"], name="follow_up_due_idx", condition=Q(status="scheduled"))]
        constraints = [
            _choices_check("step", FollowUpStep, "follow_up_step_valid"),
            _choices_check("status", FollowUpStatus, "follow_up_status_valid"),
            models.UniqueConstraint(fields=["textback", "step"], name="follow_up_once_per_textback"),
        ]

    def __str__(self) -> str:
        return f"{self.get_step_display()} for {self.lead}"
