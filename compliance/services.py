"""Writes to the consent record and the number profiles."""

from django.db import IntegrityError, transaction

from compliance.models import ConsentEvent, NumberProfile


def consent_record(
    *, phone: str, sender: str, kind: str, source: str, source_ref: str = "", raw_text: str = ""
) -> tuple[ConsentEvent, bool]:
    """Append a consent event; a replay of the same source (same SID, same kind) returns the original."""
    if source_ref:
        existing = ConsentEvent.objects.filter(source_ref=source_ref, kind=kind).first()
        if existing:
            return existing, False
    try:
        with transaction.atomic():
            event = ConsentEvent.objects.create(
                phone=phone, sender=sender, kind=kind, source=source, source_ref=source_ref, raw_text=raw_text[:1600]
            )
    except IntegrityError:
        # A concurrent duplicate won the insert; the unique constraint settled it.
        return ConsentEvent.objects.get(source_ref=source_ref, kind=kind), False
    return event, True


def consent_note_implied(*, phone: str, sender: str, kind: str, source: str, source_ref: str, raw_text: str = "") -> None:
    """Append an implied-consent event unless this call or text already left one: one statement
    (insert, ignoring the duplicate), because every missed call records it on the hot path."""
    ConsentEvent.objects.bulk_create(
        [ConsentEvent(phone=phone, sender=sender, kind=kind, source=source, source_ref=source_ref, raw_text=raw_text[:1600])],
        ignore_conflicts=True,
    )


def number_line_type_set(*, phone: str, line_type: str, source: str) -> NumberProfile:
    profile, _ = NumberProfile.objects.update_or_create(
        phone=phone, defaults={"line_type": line_type, "source": source}
    )
    return profile
