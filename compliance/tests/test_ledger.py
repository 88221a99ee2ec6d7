"""The consent ledger holds up years later: every event chained to the one before, nothing
rewritten through the application, and any rewrite behind its back named by the verifier."""

import hashlib
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from compliance.models import GENESIS_HASH, ConsentEvent, ConsentLedgerHead
from compliance.selectors import ledger_verify
from compliance.services import consent_record

pytestmark = pytest.mark.django_db

PHONE, LINE = "+12124561234", "+15555550100"
TABLE = ConsentEvent._meta.db_table


def ledger(n: int) -> list[ConsentEvent]:
    kinds = ["implied_call", "opt_out", "opt_in", "help", "express_opt_in"]
    return [
        consent_record(phone=PHONE, sender=LINE, kind=kinds[i % len(kinds)], source="keyword", source_ref=f"SM{i}", raw_text=f"text {i}")[0]
        for i in range(n)
    ]


def behind_the_applications_back(sql: str, params: list) -> None:
    """Someone with database access rewrites history; on PostgreSQL they must first switch off
    the ledger's trigger (only the table's owner can), which this does inside the test's
    transaction, so the rollback at the end of the test switches it back on."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER consent_ledger_append_only")
        cursor.execute(sql, params)


def test_it_chains_each_event_to_the_one_before():
    events = ledger(4)
    assert [e.seq for e in events] == [1, 2, 3, 4]
    assert events[0].prev_hash == GENESIS_HASH
    assert all(later.prev_hash == earlier.hash for earlier, later in zip(events, events[1:]))
    # Anyone can recompute a hash from the exported fields, without our code.
    e = ConsentEvent.objects.get(pk=events[2].pk)
    payload = [e.seq, e.prev_hash, e.phone, e.sender, e.kind, e.source, e.source_ref, e.actor, e.note, e.raw_text,
               e.created_at.astimezone(__import__("datetime").UTC).isoformat(timespec="microseconds")]
    assert hashlib.sha256(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()).hexdigest() == e.hash
    head = ConsentLedgerHead.objects.get()
    assert (head.seq, head.hash) == (4, events[-1].hash)


def test_an_intact_ledger_verifies():
    ledger(5)
    report = ledger_verify()
    assert report.first_break is None and report.events == 5
    out = __import__("io").StringIO()
    call_command("verify_consent_ledger", stdout=out)
    assert "Consent ledger intact: 5 events" in out.getvalue()


def test_an_edit_in_sql_is_named_by_the_verifier():
    events = ledger(5)
    behind_the_applications_back(f"UPDATE {TABLE} SET kind = %s WHERE id = %s", ["opt_in", events[1].pk])
    report = ledger_verify()
    assert report.first_break.event_id == events[1].pk and report.first_break.seq == 2
    assert "no longer match its hash" in report.first_break.problem and report.events == 1
    with pytest.raises(CommandError, match=f"event #{events[1].pk} \\(sequence 2\\)"):
        call_command("verify_consent_ledger")


def test_an_edit_that_also_recomputes_the_hash_breaks_the_next_link():
    events = ledger(4)
    forged = ConsentEvent.objects.get(pk=events[1].pk)
    forged.kind = "opt_in"
    forged_hash = forged.compute_hash()
    behind_the_applications_back(f"UPDATE {TABLE} SET kind = %s, hash = %s WHERE id = %s", ["opt_in", forged_hash, forged.pk])
    report = ledger_verify()
    assert report.first_break.event_id == events[2].pk and "does not point at the event before it" in report.first_break.problem


def test_a_deleted_event_shows_as_a_gap():
    events = ledger(5)
    behind_the_applications_back(f"DELETE FROM {TABLE} WHERE id = %s", [events[2].pk])
    report = ledger_verify()
    assert report.first_break.event_id == events[3].pk and "sequence 3 missing" in report.first_break.problem


def test_events_cut_from_the_end_show_against_the_head():
    events = ledger(5)
    behind_the_applications_back(f"DELETE FROM {TABLE} WHERE id IN (%s, %s)", [events[3].pk, events[4].pk])
    report = ledger_verify()
    assert report.first_break.event_id is None and "ends at sequence 3 but its head says 5" in report.first_break.problem


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the append-only trigger exists on PostgreSQL")
def test_the_database_itself_refuses_updates_and_deletes_on_postgresql():
    event = ledger(1)[0]
    for sql in (f"UPDATE {TABLE} SET kind = 'opt_in' WHERE id = %s", f"DELETE FROM {TABLE} WHERE id = %s"):
        with pytest.raises(DatabaseError, match="append-only"):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql, [event.pk])
    assert ConsentEvent.objects.get(pk=event.pk).kind == event.kind and ledger_verify().first_break is None


def test_concurrent_appends_still_form_one_chain():
    """Interleaved writers (here one after another in a transaction each) never fork the chain:
    the head row is locked while each event joins. The PostgreSQL concurrency run is in
    leads/tests/test_concurrency.py."""
    for i in range(10):
        with transaction.atomic():
            consent_record(phone=f"+1212456{i:04d}", sender="", kind="implied_call", source="call", source_ref=f"CA{i}")
    assert ledger_verify().first_break is None


def test_the_prune_keeps_the_four_year_record(brokerage, sms_outbox):
    """Only applied webhook payloads older than 30 days go; texts, calls, leads and the ledger
    stay, however old."""
    import datetime as dt

    import time_machine
    from django.utils import timezone

    from conftest import CALLER, DOWNTOWN_BUYER_LINE, new_sid
    from leads.models import Call, Lead, Message, TwilioWebhook
    from leads.services import missed_call_record, records_prune
    from routing.selectors import line_by_number

    line = line_by_number(number=DOWNTOWN_BUYER_LINE)
    missed_call_record(line=line, call_sid=new_sid("CA"), from_number=CALLER, reason="no_answer")
    TwilioWebhook.objects.create(kind="dial_status", dedupe_key="d1", line=line, call_sid="CA1", params={}, processed_at=timezone.now())
    TwilioWebhook.objects.create(kind="dial_status", dedupe_key="d2", line=line, call_sid="CA2", params={})
    with time_machine.travel(timezone.now() + dt.timedelta(days=5 * 365)):
        assert records_prune(now=timezone.now()) == 1
    assert TwilioWebhook.objects.get().dedupe_key == "d2"  # never applied: the sweep still owes it
    assert Lead.objects.count() == Call.objects.count() == Message.objects.count() == 1 and ConsentEvent.objects.count() == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the retention trigger exists on PostgreSQL")
def test_postgresql_refuses_to_delete_texts_and_calls_younger_than_four_years(brokerage, sms_outbox):
    import datetime as dt

    from django.utils import timezone

    from conftest import CALLER, DOWNTOWN_BUYER_LINE, new_sid
    from leads.models import Call, Lead, Message
    from leads.services import missed_call_record
    from routing.selectors import line_by_number

    missed_call_record(line=line_by_number(number=DOWNTOWN_BUYER_LINE), call_sid=new_sid("CA"), from_number=CALLER, reason="no_answer")
    for doomed in (Message.objects.all(), Call.objects.all(), Lead.objects.all()):
        with pytest.raises(DatabaseError, match="kept four years"), transaction.atomic():
            doomed.delete()
    assert Message.objects.count() == Call.objects.count() == Lead.objects.count() == 1
    five_years_ago = timezone.now() - dt.timedelta(days=5 * 366)
    Message.objects.update(created_at=five_years_ago)
    Call.objects.update(created_at=five_years_ago)
    Lead.objects.all().delete()  # old enough: the trigger lets it go
    assert not Message.objects.exists()


def test_a_missing_head_is_reported_and_appending_is_refused():
    from compliance.models import LedgerHeadMissing

    ledger(3)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {ConsentLedgerHead._meta.db_table}")
    report = ledger_verify()
    assert report.first_break is not None and "head row is missing" in report.first_break.problem
    with pytest.raises(LedgerHeadMissing):
        consent_record(phone=PHONE, sender=LINE, kind="help", source="keyword", source_ref="SM99")
