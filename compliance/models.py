"""What we may say to whom: the consent ledger, the do-not-call lists and what we know about
each number.

The ledger is kept four years at least (the TCPA's limitation period) and forever in practice:
rows are appended, never edited, and each carries a hash chained to the one before, so an edit
made behind the application's back (in SQL, in a restored backup) shows up in
`manage.py verify_consent_ledger`.
"""

import datetime as dt
import hashlib
import json

from django.db import models


class AppendOnlyError(Exception):
    """Raised when code tries to rewrite history that must hold up years later."""


class LedgerHeadMissing(Exception):
    """The ledger has events but no head: something removed it, and appending would hide that."""


class ConsentKind(models.TextChoices):
    IMPLIED_CALL = "implied_call", "Implied: inbound call"
    IMPLIED_TEXT = "implied_text", "Implied: inbound text"
    EXPRESS_OPT_IN = "express_opt_in", "Express opt-in"
    OPT_OUT = "opt_out", "Opt-out"
    OPT_IN = "opt_in", "Opt-in (START)"
    HELP = "help", "Help requested"


class ConsentSource(models.TextChoices):
    CALL = "call", "Inbound call"
    TEXT = "text", "Inbound text"
    KEYWORD = "keyword", "Keyword text"
    CARRIER = "carrier", "Carrier error 21610"
    AGENT = "agent", "Recorded by an agent"
    WEB_FORM = "web_form", "Web form"
    INTERNAL_DNC = "internal_dnc", "Internal do-not-contact list"


# The first event's "previous hash": the chain has to start somewhere everyone agrees on.
GENESIS_HASH = "0" * 64


class ConsentEventQuerySet(models.QuerySet):
    """No bulk rewrite either: `update()` and `delete()` would skip the model's guards, and
    `bulk_create()` the chain."""

    def update(self, **kwargs):
        raise AppendOnlyError("Consent events are append-only; record a new event instead.")

    def delete(self):
        raise AppendOnlyError("Consent events are kept; they cannot be deleted.")

    def bulk_create(self, *args, **kwargs):
        raise AppendOnlyError("Consent events join the ledger's chain one at a time: use consent_record().")


class ConsentEvent(models.Model):
    Kind = ConsentKind
    Source = ConsentSource

    seq = models.PositiveBigIntegerField(
        "sequence", unique=True, editable=False, help_text="Position in the ledger: 1, 2, 3... with no gaps."
    )
    phone = models.CharField(max_length=16, db_index=True)
    sender = models.CharField(
        max_length=34, blank=True,
        help_text="The line or Messaging Service this applies to; blank means the whole brokerage (every sender).",
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    source = models.CharField(max_length=16, choices=Source.choices)
    source_ref = models.CharField(max_length=64, blank=True, help_text="The CallSid or MessageSid that carried it.")
    actor = models.CharField(max_length=200, blank=True, help_text="Who recorded it, as they were named at the time.")
    note = models.TextField(blank=True, help_text="What the person recording it wrote, e.g. how the caller consented.")
    raw_text = models.TextField(blank=True, help_text="The caller's words, exactly as received.")
    created_at = models.DateTimeField(db_index=True)
    prev_hash = models.CharField("previous hash", max_length=64, editable=False)
    hash = models.CharField(max_length=64, unique=True, editable=False)

    objects = ConsentEventQuerySet.as_manager()

    class Meta:
        ordering = ["-seq"]
        indexes = [models.Index(fields=["phone", "sender", "-seq"], name="consent_phone_sender_seq_idx")]
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
        if self.seq is None or not self.hash:
            raise AppendOnlyError("Consent events join the ledger's chain through compliance.services.consent_record().")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Consent events are kept; they cannot be deleted.")

    def compute_hash(self) -> str:
        """SHA-256 of everything the event says and of the previous event's hash.

        Canonical JSON (a fixed field order, UTC time to the microsecond) so that the same row
        hashes the same on every database and Python version, and anyone can recompute it
        from a CSV export.
        """
        payload = [
            self.seq, self.prev_hash, self.phone, self.sender, self.kind, self.source, self.source_ref,
            self.actor, self.note, self.raw_text, self.created_at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        ]
        return hashlib.sha256(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()).hexdigest()


class ConsentLedgerHead(models.Model):
    """The chain's newest link: one row, locked by whoever appends, so events join the chain
    one at a time across every process (and truncating the ledger's tail shows up against it)."""

    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS_HASH)

    def __str__(self) -> str:
        return f"Consent ledger head #{self.seq}"


class DoNotCallNumber(models.Model):
    """A number on the national Do Not Call Registry, from the broker's registry download.

    Callers who inquired (called or texted us) within three months, or who gave express
    consent, may still be answered; everyone else listed gets no outreach.
    """

    phone = models.CharField(max_length=16, unique=True)
    imported_at = models.DateTimeField()
    batch = models.CharField(max_length=120, blank=True, help_text="The file it came from.")

    class Meta:
        verbose_name = "national Do Not Call number"

    def __str__(self) -> str:
        return self.phone


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
