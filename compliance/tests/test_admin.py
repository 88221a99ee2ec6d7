"""The broker's compliance pages: the ledger leaves as a file an auditor can check, the registry
download goes in from a file, and the record itself stays untouched."""

import csv
import datetime as dt
import hashlib
import io
import json

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from compliance import admin as compliance_admin
from compliance.models import GENESIS_HASH, ConsentEvent, ConsentLedgerHead, DoNotCallNumber
from compliance.services import consent_record, do_not_call_import
from conftest import CALLER, DOWNTOWN_BUYER_LINE, new_sid

pytestmark = pytest.mark.django_db

EXPORT = reverse("admin:compliance_consentevent_export")
IMPORT = reverse("admin:compliance_donotcallnumber_import")
OTHER_CALLER = "+15555559876"
Kind, Source = ConsentEvent.Kind, ConsentEvent.Source


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def recorded(when: dt.datetime, *, phone: str = CALLER, sender: str = DOWNTOWN_BUYER_LINE, kind: str = Kind.IMPLIED_CALL,
             source: str = Source.CALL, **extra) -> ConsentEvent:
    with time_machine.travel(when, tick=False):
        event, created = consent_record(phone=phone, sender=sender, kind=kind, source=source, **extra)
    assert created
    return event


def export(client, **data):
    return client.post(EXPORT, {"phone": "", "date_from": "", "date_to": "", **data})


def csv_rows(response) -> list[dict]:
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    text = b"".join(response.streaming_content).decode("utf-8")
    return list(csv.DictReader(io.StringIO(text, newline="")))


def recomputed_hash(row: dict) -> str:
    """What an auditor runs, from the page's instructions, with nothing but the file."""
    payload = [
        int(row["seq"]), row["prev_hash"], row["phone"], row["sender"], row["kind"], row["source"], row["source_ref"],
        row["actor"], row["note"], row["raw_text"], row["created_at_utc"],
    ]
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()).hexdigest()


def staff(*permissions: str):
    user = get_user_model().objects.create_user(username=f"staff-{new_sid('')[:8]}", password="x", is_staff=True)
    for codename in permissions:
        user.user_permissions.add(Permission.objects.get(content_type__app_label="compliance", codename=codename))
    return user


@pytest.fixture
def ledger(brokerage):
    """A caller's quarter in the ledger, with the events just outside it on both sides, and
    another caller in the middle of it."""
    return {
        "before": recorded(at(2025, 12, 31, 23, 59, 59, 999999)),
        "first": recorded(at(2026, 1, 1, 0, 0, 0, 1), source_ref=new_sid("CA")),
        "other": recorded(at(2026, 2, 1, 12, 0), phone=OTHER_CALLER),
        "stop": recorded(
            at(2026, 2, 14, 9, 30, 15, 120000), kind=Kind.OPT_OUT, source=Source.TEXT, source_ref=new_sid("SM"),
            raw_text='Por favor, "PARAR"\r\nno más 😀, =HYPERLINK("x")',
        ),
        "agent": recorded(
            at(2026, 3, 31, 23, 59, 59, 999999), sender="", kind=Kind.EXPRESS_OPT_IN, source=Source.AGENT,
            actor="Ann Lee <ann@example.com>", note="Signed the open-house sheet, 3/31.",
        ),
        "after": recorded(at(2026, 4, 1, 0, 0)),
    }


# --- the export for an audit ---------------------------------------------------------------


def test_it_exports_one_number_over_a_period_with_hashes_an_auditor_can_recompute(admin_client, ledger):
    response = export(admin_client, phone=CALLER, date_from="2026-01-01", date_to="2026-03-31")
    rows = csv_rows(response)
    assert response["Content-Disposition"] == 'attachment; filename="consent-ledger-+15555551234-2026-01-01-to-2026-03-31.csv"'
    assert list(rows[0]) == compliance_admin.EXPORT_COLUMNS
    expected = [ledger["first"], ledger["stop"], ledger["agent"]]
    assert [int(row["seq"]) for row in rows] == [event.seq for event in expected]
    for row, event in zip(rows, expected):
        assert recomputed_hash(row) == row["hash"] == event.hash
        rebuilt = ConsentEvent(
            seq=int(row["seq"]), prev_hash=row["prev_hash"], phone=row["phone"], sender=row["sender"], kind=row["kind"],
            source=row["source"], source_ref=row["source_ref"], actor=row["actor"], note=row["note"],
            raw_text=row["raw_text"], created_at=dt.datetime.fromisoformat(row["created_at_utc"]),
        )
        assert rebuilt.compute_hash() == event.hash
    stop, agent = rows[1], rows[2]
    assert stop["raw_text"] == 'Por favor, "PARAR"\r\nno más 😀, =HYPERLINK("x")'
    assert stop["created_at_utc"] == "2026-02-14T09:30:15.120000+00:00"
    assert (agent["sender"], agent["actor"], agent["kind"]) == ("", "Ann Lee <ann@example.com>", "express_opt_in")


def test_it_exports_the_whole_ledger_as_one_chain(admin_client, ledger):
    response = export(admin_client)
    rows = csv_rows(response)
    today = dt.datetime.now(dt.UTC).date().isoformat()
    assert response["Content-Disposition"] == f'attachment; filename="consent-ledger-all-numbers-start-to-{today}.csv"'
    assert [int(row["seq"]) for row in rows] == list(range(1, 7))
    assert rows[0]["prev_hash"] == GENESIS_HASH
    assert all(row["prev_hash"] == above["hash"] for above, row in zip(rows, rows[1:]))
    assert all(recomputed_hash(row) == row["hash"] for row in rows)
    assert rows[-1]["hash"] == ConsentLedgerHead.objects.get().hash


def test_it_counts_days_in_the_brokerages_time_zone(admin_client, ledger, settings):
    settings.TIME_ZONE = "America/New_York"
    rows = csv_rows(export(admin_client, phone=CALLER, date_from="2026-03-31", date_to="2026-03-31"))
    # 23:59 UTC on 31 March is still 31 March in New York, and so is midnight UTC on 1 April.
    assert [int(row["seq"]) for row in rows] == [ledger["agent"].seq, ledger["after"].seq]


def test_it_takes_a_number_as_a_broker_types_it(admin_client, ledger):
    rows = csv_rows(export(admin_client, phone="(555) 555-9876"))
    assert [row["phone"] for row in rows] == [OTHER_CALLER]


@pytest.mark.parametrize(
    "data, error",
    [
        ({"phone": "555-12"}, "Enter a full phone number"),
        ({"phone": "call me"}, "Enter a full phone number"),
        ({"date_from": "2026-13-01"}, "Enter a valid date"),
        ({"date_from": "2026-03-31", "date_to": "2026-01-01"}, "The “From” day is after the “To” day."),
    ],
)
def test_it_exports_nothing_for_bad_input(admin_client, ledger, data, error):
    response = export(admin_client, **data)
    assert response.status_code == 400 and not response.streaming
    assert response["Content-Type"].startswith("text/html") and "Content-Disposition" not in response
    content = response.content.decode()
    assert error in content and "Nothing was exported." in content and ledger["stop"].hash not in content


def test_it_keeps_the_export_from_staff_who_may_not_view_the_ledger(client, ledger):
    client.force_login(staff("view_donotcallnumber"))
    assert client.get(EXPORT).status_code == 403
    response = export(client, phone=CALLER)
    assert response.status_code == 403 and not response.streaming


def test_it_lets_staff_who_may_view_the_ledger_export_it(client, ledger):
    client.force_login(staff("view_consentevent"))
    assert len(csv_rows(export(client, phone=OTHER_CALLER))) == 1


def test_it_sends_everyone_else_to_the_login_page(client, brokerage):
    client.force_login(get_user_model().objects.get(email="ann@example.com"))
    response = export(client)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_it_links_the_export_from_the_list_with_the_number_searched_for(admin_client, ledger):
    changelist = reverse("admin:compliance_consentevent_changelist")
    content = admin_client.get(changelist).content.decode()
    assert f'<a href="{EXPORT}" class="viewlink">Export CSV for an audit</a>' in content
    content = admin_client.get(changelist, {"q": CALLER}).content.decode()
    assert f'href="{EXPORT}?phone=%2B15555551234"' in content
    form = admin_client.get(EXPORT, {"phone": CALLER}).content.decode()
    assert 'value="+15555551234"' in form and "SHA-256" in form and "verify_consent_ledger" in form
    # A fragment searched for is not a number to export.
    assert 'name="phone" value=' not in admin_client.get(EXPORT, {"phone": "555"}).content.decode()


def test_it_lists_the_ledger_with_its_chain(admin_client, ledger):
    content = admin_client.get(reverse("admin:compliance_consentevent_changelist")).content.decode()
    assert "every line" in content and "Ann Lee &lt;ann@example.com&gt;" in content
    page = admin_client.get(reverse("admin:compliance_consentevent_change", args=[ledger["agent"].pk])).content.decode()
    assert ledger["agent"].hash in page and ledger["stop"].hash in page and "Signed the open-house sheet" in page


def test_it_will_not_change_or_delete_a_consent_event(admin_client, ledger):
    event = ledger["stop"]
    assert admin_client.post(reverse("admin:compliance_consentevent_delete", args=[event.pk]), {"post": "yes"}).status_code == 403
    change = reverse("admin:compliance_consentevent_change", args=[event.pk])
    assert admin_client.post(change, {"phone": OTHER_CALLER, "kind": "opt_in", "_save": "Save"}).status_code == 403
    assert admin_client.get(reverse("admin:compliance_consentevent_add")).status_code == 403
    admin_client.post(
        reverse("admin:compliance_consentevent_changelist"),
        {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"},
    )
    assert ConsentEvent.objects.count() == 6
    kept = ConsentEvent.objects.get(pk=event.pk)
    assert (kept.phone, kept.kind, kept.hash) == (CALLER, "opt_out", event.hash)


def test_it_shows_the_ledger_head_and_what_it_is_for(admin_client, ledger):
    head = ConsentLedgerHead.objects.get()
    content = admin_client.get(reverse("admin:compliance_consentledgerhead_changelist")).content.decode()
    assert "manage.py verify_consent_ledger" in content and head.hash in content
    change = reverse("admin:compliance_consentledgerhead_change", args=[head.pk])
    page = admin_client.get(change)
    assert page.status_code == 200 and b'name="_save"' not in page.content and b"verify_consent_ledger" in page.content
    assert admin_client.post(change, {"seq": "0", "hash": GENESIS_HASH}).status_code == 403
    assert admin_client.post(reverse("admin:compliance_consentledgerhead_delete", args=[head.pk]), {"post": "yes"}).status_code == 403
    assert ConsentLedgerHead.objects.get().hash == head.hash == ledger["after"].hash


# --- the national Do Not Call list ---------------------------------------------------------

REGISTRY_FILE = (
    "\ufeffArea Code,Phone Number\r\n"
    "305,5551234\r\n"
    "3055551235\r\n"
    "13055551236\r\n"
    "garbage,row\r\n"
    "(305) 555-1237,2026-01-01,FL\r\n"
)
REGISTRY_NUMBERS = {"+13055551234", "+13055551235", "+13055551236", "+13055551237"}


def upload(client, content: bytes | str, name: str = "dnc-305.csv"):
    data = content.encode() if isinstance(content, str) else content
    return client.post(IMPORT, {"file": SimpleUploadedFile(name, data, content_type="text/csv")})


def flash(client, response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def test_it_imports_a_registry_download_in_each_of_its_shapes(admin_client, brokerage):
    response = upload(admin_client, REGISTRY_FILE)
    assert response.status_code == 302 and response["Location"] == reverse("admin:compliance_donotcallnumber_changelist")
    assert set(DoNotCallNumber.objects.values_list("phone", flat=True)) == REGISTRY_NUMBERS
    assert set(DoNotCallNumber.objects.values_list("batch", flat=True)) == {"dnc-305.csv"}
    page = admin_client.get(response["Location"])
    assert flash(admin_client, page) == ["Added 4 numbers, 0 were already listed, 2 rows could not be read (rows 1, 5)."]


def test_it_skips_blank_lines(admin_client, brokerage):
    response = upload(admin_client, "3055551234\r\n\r\n3055551235\r\n")
    assert response.status_code == 302 and DoNotCallNumber.objects.count() == 2


def test_it_imports_the_same_file_twice_as_once(admin_client, brokerage):
    upload(admin_client, REGISTRY_FILE)
    admin_client.get(reverse("admin:compliance_donotcallnumber_changelist"))
    again = admin_client.post(IMPORT, {"file": SimpleUploadedFile("dnc-305.csv", REGISTRY_FILE.encode())}, follow=True)
    assert flash(admin_client, again) == ["Added 0 numbers, 4 were already listed, 2 rows could not be read (rows 1, 5)."]
    assert DoNotCallNumber.objects.count() == 4
    newer = admin_client.post(IMPORT, {"file": SimpleUploadedFile("dnc-305-new.csv", b"3055551234\n3055559999\n")}, follow=True)
    assert flash(admin_client, newer) == ["Added 1 number, 1 was already listed."]
    assert DoNotCallNumber.objects.count() == 5
    assert DoNotCallNumber.objects.get(phone="+13055551234").batch == "dnc-305.csv"


def test_it_shows_the_first_ten_rows_it_could_not_read(admin_client, brokerage):
    rows = ["not a number"] * 12 + ["3055551234"]
    response = upload(admin_client, "\n".join(rows))
    message = flash(admin_client, admin_client.get(response["Location"]))[0]
    assert message == "Added 1 number, 0 were already listed, 12 rows could not be read (rows 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, …: first 10 shown)."


@pytest.mark.parametrize(
    "content, error",
    [
        (b"", "The submitted file is empty."),
        (b"\xef\xbb\xbf\r\n  \r\n", "The file is empty."),
        (b"PK\x03\x04\x14\x00\x00\x00\x08\x00", "This is not a CSV file"),
        ("Nom,Téléphone\n".encode("latin-1"), "not UTF-8 text"),
        (b"name,email\nCasey,casey@example.com\n", "No phone numbers could be read from this file"),
    ],
    ids=["zero bytes", "blank lines", "zip", "latin-1", "no numbers"],
)
def test_it_refuses_a_file_that_is_not_a_list_of_numbers(admin_client, brokerage, content, error):
    DoNotCallNumber.objects.create(phone="+13055550000", imported_at=dt.datetime.now(dt.UTC), batch="earlier.csv")
    response = upload(admin_client, content)
    assert response.status_code == 400
    text = response.content.decode()
    assert error in text and "Nothing was imported." in text
    assert list(DoNotCallNumber.objects.values_list("phone", flat=True)) == ["+13055550000"]


def test_it_refuses_a_file_too_large_to_be_a_registry_download(admin_client, brokerage, monkeypatch):
    monkeypatch.setattr(compliance_admin, "DNC_UPLOAD_MAX_BYTES", 10)
    response = upload(admin_client, REGISTRY_FILE)
    assert response.status_code == 400 and "files up to 50 MB can be read" in response.content.decode()
    assert not DoNotCallNumber.objects.exists()


def test_it_offers_the_import_only_to_staff_who_may_add_numbers(client, brokerage):
    changelist = reverse("admin:compliance_donotcallnumber_changelist")
    client.force_login(staff("view_donotcallnumber"))
    assert "Import national Do Not Call list" not in client.get(changelist).content.decode()
    assert client.get(IMPORT).status_code == 403
    assert upload(client, REGISTRY_FILE).status_code == 403
    assert not DoNotCallNumber.objects.exists()

    client.force_login(staff("view_donotcallnumber", "add_donotcallnumber"))
    assert f'href="{IMPORT}"' in client.get(changelist).content.decode()
    assert upload(client, REGISTRY_FILE).status_code == 302
    assert DoNotCallNumber.objects.count() == 4


def test_it_lists_numbers_read_only_but_lets_a_mistake_be_deleted(admin_client, brokerage):
    do_not_call_import(csv_text="3055551234\n3055551235\n", batch="dnc-305.csv")
    changelist = reverse("admin:compliance_donotcallnumber_changelist")
    response = admin_client.get(changelist)
    content = response.content.decode()
    assert f'<a href="{IMPORT}" class="addlink">Import national Do Not Call list</a>' in content
    assert reverse("admin:compliance_donotcallnumber_add") not in content
    assert admin_client.get(reverse("admin:compliance_donotcallnumber_add")).status_code == 403
    found = admin_client.get(changelist, {"q": "(305) 555-1234"})
    assert [row.phone for row in found.context["cl"].result_list] == ["+13055551234"]
    fragment = admin_client.get(changelist, {"q": "5551234"})
    assert [row.phone for row in fragment.context["cl"].result_list] == ["+13055551234"]

    number = DoNotCallNumber.objects.get(phone="+13055551234")
    change = reverse("admin:compliance_donotcallnumber_change", args=[number.pk])
    assert b'name="_save"' not in admin_client.get(change).content
    assert admin_client.post(change, {"phone": "+13055550000", "_save": "Save"}).status_code == 403
    assert admin_client.post(reverse("admin:compliance_donotcallnumber_delete", args=[number.pk]), {"post": "yes"}).status_code == 302
    assert list(DoNotCallNumber.objects.values_list("phone", flat=True)) == ["+13055551235"]


def test_it_renders_the_import_page_in_the_admins_own_look(admin_client, brokerage):
    content = admin_client.get(IMPORT).content.decode()
    assert 'enctype="multipart/form-data"' in content and "csrfmiddlewaretoken" in content
    assert '<div class="breadcrumbs">' in content and "National Do Not Call numbers" in content
    assert 'name="file"' in content and "at most 50 MB" in content
