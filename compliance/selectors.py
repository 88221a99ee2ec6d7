"""Reads of consent state; the gate and the pages ask the same questions the same way."""

from django.db.models import Q

from compliance.models import ConsentEvent, NumberProfile

# Kinds that change whether we may text; help and implied events do not undo an opt-out.
_STATE_KINDS = [ConsentEvent.Kind.OPT_OUT, ConsentEvent.Kind.OPT_IN]


def consent_latest_state_event(*, phone: str, sender: str) -> ConsentEvent | None:
    """The newest opt-out or opt-in that applies to this sender (or to every sender)."""
    return (
        ConsentEvent.objects.filter(Q(sender=sender) | Q(sender=""), phone=phone, kind__in=_STATE_KINDS)
        .order_by("-created_at", "-id")
        .first()
    )


def consent_is_opted_out(*, phone: str, sender: str) -> bool:
    event = consent_latest_state_event(phone=phone, sender=sender)
    return event is not None and event.kind == ConsentEvent.Kind.OPT_OUT


def number_is_landline(*, phone: str) -> bool:
    return NumberProfile.objects.filter(phone=phone, line_type=NumberProfile.LineType.LANDLINE).exists()


def consent_history(*, phone: str) -> list[ConsentEvent]:
    return list(ConsentEvent.objects.filter(phone=phone).order_by("-created_at", "-id"))
