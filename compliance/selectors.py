"""Reads of consent state; the gate and the pages ask the same questions the same way."""

import dataclasses
import datetime as dt
from collections.abc import Sequence

from django.db.models import Q, QuerySet
from django.utils import timezone

from compliance.models import GENESIS_HASH, ConsentEvent, ConsentLedgerHead, DoNotCallNumber, NumberProfile

Kind, Source = ConsentEvent.Kind, ConsentEvent.Source

# Kinds that change whether we may text; help and implied events do not undo an opt-out.
STATE_KINDS = [Kind.OPT_OUT, Kind.OPT_IN, Kind.EXPRESS_OPT_IN]


def consent_deciding_event(*, phone: str, senders: Sequence[str]) -> ConsentEvent | None:
    """The opt-out or opt-in that decides whether `phone` may be texted from a line (known by all
    its `senders`), or None when the number never said either.

    A line's own opt-out (a STOP to it, a revocation texted to it, the carrier's 21610) is lifted
    only by a later opt-in on that line: the carrier blocks the pair until the caller texts START,
    and a caller who told one line to stop must not be texted from it on the strength of a
    brokerage-wide record. A brokerage-wide opt-out (recorded by an agent) is lifted by any later
    opt-in, for that line or the whole brokerage, except a web form's.
    """
    state = ConsentEvent.objects.filter(phone=phone, kind__in=STATE_KINDS).order_by("-seq")
    line = state.filter(sender__in=senders).first() if senders else None
    # A web form's opt-in (anyone can type any number) counts only where no opt-out stands.
    brokerage = state.filter(sender="").exclude(source=Source.WEB_FORM).first()
    web_form = state.filter(sender="", source=Source.WEB_FORM).first()
    if line is not None and line.kind == Kind.OPT_OUT:
        return line
    if brokerage is not None and brokerage.kind == Kind.OPT_OUT and (line is None or brokerage.seq > line.seq):
        return brokerage
    candidates = [event for event in (line, brokerage, web_form) if event is not None]
    return max(candidates, key=lambda event: event.seq, default=None)


def consent_is_opted_out(*, phone: str, senders: Sequence[str]) -> bool:
    event = consent_deciding_event(phone=phone, senders=senders)
    return event is not None and event.kind == Kind.OPT_OUT


def do_not_contact_event(*, phone: str) -> ConsentEvent | None:
    """The brokerage's own do-not-contact entry for the number, if it stands.

    Only a brokerage-wide express opt-in recorded after it by staff lifts it (the inbox lets team
    leaders and brokers only): a START to one line is the caller talking to that line, and a web
    form anyone can fill in, not the brokerage taking them off its own list.
    """
    latest = (
        ConsentEvent.objects.filter(phone=phone, sender="")
        .filter(Q(kind=Kind.OPT_OUT, source=Source.INTERNAL_DNC) | Q(kind=Kind.EXPRESS_OPT_IN, source=Source.AGENT))
        .order_by("-seq")
        .first()
    )
    return latest if latest is not None and latest.kind == Kind.OPT_OUT else None


def has_express_consent(*, phone: str, senders: Sequence[str]) -> bool:
    """An express opt-in that no later opt-out withdrew."""
    event = consent_deciding_event(phone=phone, senders=senders)
    return event is not None and event.kind == Kind.EXPRESS_OPT_IN


def on_national_do_not_call_list(*, phone: str) -> bool:
    return DoNotCallNumber.objects.filter(phone=phone).exists()


def number_is_landline(*, phone: str) -> bool:
    return NumberProfile.objects.filter(phone=phone, line_type=NumberProfile.LineType.LANDLINE).exists()


def ledger_for_audit(*, phone: str, date_from: dt.date | None, date_to: dt.date | None) -> QuerySet[ConsentEvent]:
    """The ledger's events for one number and/or days (whole days in the site's zone), in chain order."""
    events = ConsentEvent.objects.order_by("seq")
    if phone:
        events = events.filter(phone=phone)
    if date_from:
        events = events.filter(created_at__gte=_local_midnight(date_from))
    if date_to:
        events = events.filter(created_at__lt=_local_midnight(date_to + dt.timedelta(days=1)))
    return events


def _local_midnight(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min), timezone.get_current_timezone())


def consent_history(*, phone: str) -> list[ConsentEvent]:
    return list(ConsentEvent.objects.filter(phone=phone).order_by("-seq"))


@dataclasses.dataclass(frozen=True)
class LedgerBreak:
    seq: int
    event_id: int | None
    problem: str

    def __str__(self) -> str:
        where = f"event #{self.event_id} (sequence {self.seq})" if self.event_id else f"sequence {self.seq}"
        return f"Broken at {where}: {self.problem}"


@dataclasses.dataclass(frozen=True)
class LedgerReport:
    events: int
    head_hash: str
    first_break: LedgerBreak | None


def ledger_verify() -> LedgerReport:
    """Walk the chain from the first event and report the first link that does not hold.

    Catches an edited row (its contents no longer match its hash), a deleted one (a gap in the
    sequence, or the next event pointing at a hash nobody has), a row slipped in, and a tail cut
    off (the head row remembers the last link).
    """
    expected_seq, prev_hash, count = 1, GENESIS_HASH, 0
    for event in ConsentEvent.objects.order_by("seq").iterator(chunk_size=5000):
        if event.seq != expected_seq:
            missing = f"sequence {expected_seq}" + (f" to {event.seq - 1}" if event.seq - 1 > expected_seq else "")
            return LedgerReport(count, prev_hash, LedgerBreak(event.seq, event.pk, f"{missing} missing before it (deleted?)."))
        if event.prev_hash != prev_hash:
            return LedgerReport(count, prev_hash, LedgerBreak(
                event.seq, event.pk, "it does not point at the event before it (an event was replaced or re-chained)."
            ))
        if event.compute_hash() != event.hash:
            return LedgerReport(count, prev_hash, LedgerBreak(
                event.seq, event.pk,
                f"its contents no longer match its hash (edited after it was written): {event.get_kind_display()} "
                f"for {event.phone} at {event.created_at:%Y-%m-%d %H:%M:%S} UTC.",
            ))
        expected_seq, prev_hash, count = expected_seq + 1, event.hash, count + 1
    head = ConsentLedgerHead.objects.filter(pk=1).first()
    if head is None and count:
        return LedgerReport(count, prev_hash, LedgerBreak(
            count + 1, None, "the ledger's head row is missing, so events cut from the end would not show."
        ))
    if head is not None and (head.seq, head.hash) != (count, prev_hash):
        return LedgerReport(count, prev_hash, LedgerBreak(
            count + 1, None, f"the ledger ends at sequence {count} but its head says {head.seq} (events cut from the end?)."
        ))
    return LedgerReport(count, prev_hash, None)
