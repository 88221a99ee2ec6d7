"""Writes to the consent ledger, the do-not-call list and the number profiles."""

import csv
import dataclasses
import datetime as dt
import io

import phonenumbers
from django.db import IntegrityError, transaction
from django.utils import timezone

from compliance.models import ConsentEvent, ConsentLedgerHead, DoNotCallNumber, LedgerHeadMissing, NumberProfile


def consent_record(
    *, phone: str, sender: str, kind: str, source: str, source_ref: str = "", raw_text: str = "",
    actor: str = "", note: str = "",
) -> tuple[ConsentEvent, bool]:
    """Append a consent event to the ledger; a replay of the same source (same SID, same kind)
    returns the original.

    The ledger's head row is locked until the caller's transaction commits, so events join the
    chain one at a time. Callers take it last, after any lead, routing-rule or message rows they
    lock (so no two transactions wait on each other), and as late as they can on busy paths.
    """
    if source_ref:
        existing = ConsentEvent.objects.filter(source_ref=source_ref, kind=kind).first()
        if existing:
            return existing, False
    try:
        with transaction.atomic():
            head = _ledger_head_locked()
            event = ConsentEvent(
                seq=head.seq + 1, prev_hash=head.hash, phone=phone, sender=sender, kind=kind, source=source,
                source_ref=source_ref, raw_text=raw_text[:1600], actor=actor[:200], note=note[:4000],
                created_at=timezone.now(),
            )
            event.hash = event.compute_hash()
            event.save()
            head.seq, head.hash = event.seq, event.hash
            head.save(update_fields=["seq", "hash"])
    except IntegrityError:
        if not source_ref:
            raise
        # A concurrent duplicate won the insert; the unique constraint settled it.
        return ConsentEvent.objects.get(source_ref=source_ref, kind=kind), False
    return event, True


# What a web form shows next to its checkbox: CTIA's elements and the TCPA's "not a condition of
# purchase". The exact words shown are kept with each opt-in as proof of what was agreed to.
WEB_FORM_DISCLOSURE = (
    "By checking this box, I agree that {brokerage} may text me at the number above about homes and my "
    "inquiry, including automated texts. Consent is not a condition of any purchase. Message frequency "
    "varies. Msg & data rates may apply. Reply STOP to opt out, HELP for help."
)


def web_form_opt_in_record(*, phone: str, brokerage: str, name: str, ip: str, user_agent: str) -> ConsentEvent:
    """Express consent given on the brokerage's web form, kept with the words the person agreed to.

    Anyone can type any number into a form, so such a record counts as consent only where nothing
    says otherwise: it lifts no opt-out and takes no number off the do-not-contact list.
    """
    event, _ = consent_record(
        phone=phone, sender="", kind=ConsentEvent.Kind.EXPRESS_OPT_IN, source=ConsentEvent.Source.WEB_FORM,
        raw_text=WEB_FORM_DISCLOSURE.format(brokerage=brokerage), actor=f"Web form from {ip}"[:200],
        note=f"Name given: {name or '—'}. Browser: {user_agent[:300]}",
    )
    return event


def _ledger_head_locked() -> ConsentLedgerHead:
    head = ConsentLedgerHead.objects.select_for_update().filter(pk=1).first()
    if head is not None:
        return head
    # No head: an empty database (a fresh install's tables emptied, as tests do), where the chain
    # starts over; several writers may race to create it, and the unique key lets one win.
    _, created = ConsentLedgerHead.objects.get_or_create(pk=1)
    if created and ConsentEvent.objects.exists():
        # Rebuilding it from the last event would hide whatever was cut from the ledger's end.
        raise LedgerHeadMissing("The consent ledger's head row is gone; run verify_consent_ledger and restore it.")
    return ConsentLedgerHead.objects.select_for_update().get(pk=1)


def number_line_type_set(*, phone: str, line_type: str, source: str) -> NumberProfile:
    profile, _ = NumberProfile.objects.update_or_create(
        phone=phone, defaults={"line_type": line_type, "source": source}
    )
    return profile


@dataclasses.dataclass
class DoNotCallImport:
    added: int = 0
    already_listed: int = 0
    invalid_rows: list[int] = dataclasses.field(default_factory=list)  # 1-based row numbers


def do_not_call_import(*, csv_text: str, batch: str, now: dt.datetime | None = None) -> DoNotCallImport:
    """Load numbers from a Do Not Call Registry download (or any CSV holding US numbers).

    The registry's files give each number as ten digits, in one column or as area code and
    number in two; other columns (dates, states) are ignored. A header row is skipped as
    invalid input would be, and reported with the rest, so a broker can see what was not read.
    """
    now = now or timezone.now()
    result, numbers = DoNotCallImport(), {}
    for row_number, row in enumerate(csv.reader(io.StringIO(csv_text)), start=1):
        phone = _us_number(row)
        if phone is None:
            if any(cell.strip() for cell in row):
                result.invalid_rows.append(row_number)
            continue
        numbers[phone] = None
    listed = set()
    phones = list(numbers)
    for start in range(0, len(phones), 5000):
        listed.update(DoNotCallNumber.objects.filter(phone__in=phones[start:start + 5000]).values_list("phone", flat=True))
    new = [DoNotCallNumber(phone=p, imported_at=now, batch=batch[:120]) for p in phones if p not in listed]
    DoNotCallNumber.objects.bulk_create(new, batch_size=5000, ignore_conflicts=True)
    result.added, result.already_listed = len(new), len(listed)
    return result


def _us_number(row: list[str]) -> str | None:
    if not row:
        return None  # a blank line
    digits = [("".join(ch for ch in cell if ch.isdigit())) for cell in row[:2]]
    candidates = [digits[0]] + (["".join(digits)] if len(digits) == 2 else [])
    for candidate in candidates:
        if len(candidate) == 11 and candidate.startswith("1"):
            candidate = candidate[1:]
        if len(candidate) != 10:
            continue
        parsed = phonenumbers.parse("+1" + candidate)
        if phonenumbers.is_possible_number(parsed):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return None
