"""What we may say to whom: the consent record and what we know about each number.

Kept four years at least (the TCPA's limitation period); rows are appended, never edited.
"""

from django.db import models


class AppendOnlyError(Exception):
    """Raised when code tries to rewrite history that must hold up years later."""


class ConsentKind(models.TextChoices):
    IMPLIED_CALL = "implied_call", "Implied: inbound call"
    IMPLIED_TEXT = "implied_text", "Implied: inbound text"
    OPT_OUT = "opt_out", "Opt-out"
    OPT_IN = "opt_in", "Opt-in"
    HELP = "help", "Help requested"


class ConsentSource(models.TextChoices):
    CALL = "call", "Inbound call"
    TEXT = "text", "Inbound text"
    KEYWORD = "keyword", "Keyword text"
    CARRIER = "carrier", "Carrier error 21610"
    AGENT = "agent", "Recorded by an agent"


class ConsentEvent(models.Model):
    Kind = ConsentKind
    Source = ConsentSource

    phone = models.CharField(max_length=16, db_index=True)
    sender = models.CharField(
        max_length=34, blank=True, help_text="The line or Messaging Service this applies to; blank means every sender."
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    source = models.CharField(max_length=16, choices=Source.choices)
    source_ref = models.CharField(max_length=64, blank=True, help_text="The CallSid or MessageSid that carried it.")
    raw_text = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["phone", "sender", "-created_at"])]
        constraints = [
            models.CheckConstraint(condition=models.Q(kind__in=ConsentKind.values), name="consent_kind_valid"),
            models.CheckConstraint(condition=models.Q(source__in=ConsentSource.values), name="consent_source_valid"),
            # A replayed webhook must not record the same keyword twice.
            models.UniqueConstraint(
                fields=["source_ref", "kind"], condition=~models.Q(source_ref=""), name="consent_once_per_source"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.phone}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise AppendOnlyError("Consent events are append-only; record a new event instead.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Consent events are kept; they cannot be deleted.")


class NumberProfile(models.Model):
    """What the carrier network told us about a number: landlines get a call, not a text."""

    class LineType(models.TextChoices):
        UNKNOWN = "unknown", "Unknown"
        MOBILE = "mobile", "Mobile"
        LANDLINE = "landline", "Landline"
        FIXED_VOIP = "fixedVoip", "Fixed VoIP"
        NON_FIXED_VOIP = "nonFixedVoip", "Non-fixed VoIP"
        TOLL_FREE = "tollFree", "Toll free"
        OTHER = "other", "Other"

    phone = models.CharField(max_length=16, unique=True)
    line_type = models.CharField(max_length=16, choices=LineType.choices, default=LineType.UNKNOWN)
    source = models.CharField(max_length=64, blank=True, help_text="How we learned it, e.g. carrier error 30006.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.phone} ({self.get_line_type_display()})"
