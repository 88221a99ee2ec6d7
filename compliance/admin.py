"""The consent record, shown but never touched; the national Do Not Call list as the broker
loads it; and what we know about each number."""

import csv
import datetime as dt

import phonenumbers
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import AdminForm
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import StreamingHttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone

from compliance.models import ConsentEvent, ConsentLedgerHead, DoNotCallNumber, NumberProfile
from compliance.selectors import ledger_for_audit
from compliance.services import do_not_call_import, number_line_type_set
from textback_site.admin_mixins import ReadOnlyAdminMixin

EXPORT_COLUMNS = [
    "seq", "created_at_utc", "phone", "sender", "kind", "source", "source_ref", "actor", "note", "raw_text",
    "prev_hash", "hash",
]
# The registry's area-code files are a few megabytes each; anything far larger is not one of them
# and would be read whole into memory.
DNC_UPLOAD_MAX_BYTES = 50 * 1024 * 1024
UNREADABLE_ROWS_SHOWN = 10


def _phone_e164(text: str) -> str | None:
    """Brokers type numbers as they see them, "(305) 555-1234" as often as "+13055551234"; the
    records hold E.164 only."""
    if sum(ch.isdigit() for ch in text) < 10:
        return None
    try:
        parsed = phonenumbers.parse(text, "US")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _admin_form(form: forms.Form, model_admin: admin.ModelAdmin) -> AdminForm:
    """Lays a plain form out with the admin's own fieldset markup, so it looks and folds on a
    phone like every other admin page."""
    return AdminForm(form, [(None, {"fields": list(form.fields)})], {}, model_admin=model_admin)


# --- the consent ledger ----------------------------------------------------------------------


class ConsentExportForm(forms.Form):
    phone = forms.CharField(
        required=False, max_length=32, widget=forms.TextInput(attrs={"type": "tel", "placeholder": "+15551234567"}),
        help_text="One caller's number, or leave blank for every number.",
    )
    date_from = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text="First day included. Leave blank to start at the first event.",
    )
    date_to = forms.DateField(
        label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text="Last day included. Leave blank to end today.",
    )

    def clean_phone(self) -> str:
        text = self.cleaned_data["phone"].strip()
        if not text:
            return ""
        phone = _phone_e164(text)
        if phone is None:
            raise ValidationError("Enter a full phone number, e.g. +15551234567.")
        return phone

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            raise ValidationError("The “From” day is after the “To” day.")
        return cleaned


class _Echo:
    """csv.writer wants a file; a streamed response wants each row back as a string."""

    def write(self, value: str) -> str:
        return value


def _export_rows(events):
    """Every value exactly as it went into the hash, so the auditor's recomputation matches."""
    writer = csv.writer(_Echo())
    yield writer.writerow(EXPORT_COLUMNS)
    for event in events.iterator(chunk_size=2000):
        yield writer.writerow([
            event.seq, event.created_at.astimezone(dt.UTC).isoformat(timespec="microseconds"), event.phone,
            event.sender, event.kind, event.source, event.source_ref, event.actor, event.note, event.raw_text,
            event.prev_hash, event.hash,
        ])


def _export_filename(*, phone: str, date_from: dt.date | None, date_to: dt.date | None) -> str:
    start = date_from.isoformat() if date_from else "start"
    end = (date_to or timezone.localdate()).isoformat()
    return f"consent-ledger-{phone or 'all-numbers'}-{start}-to-{end}.csv"


@admin.register(ConsentEvent)
class ConsentEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """An append-only legal record: it must read years later exactly as it was written, and
    leave the building in a form an auditor can check without trusting us."""

    list_display = ["number", "created_at", "phone", "applies_to", "kind", "source", "actor", "source_ref"]
    list_display_links = ["number", "created_at"]
    list_filter = ["kind", "source"]
    search_fields = ["phone", "source_ref", "actor"]
    date_hierarchy = "created_at"
    list_per_page = 100
    fields = [
        "number", "created_at", "phone", "applies_to", "kind", "source", "actor", "note", "raw_text", "source_ref",
        "prev_hash", "hash",
    ]
    readonly_fields = fields
    change_list_template = "admin/compliance/consentevent/change_list.html"

    @admin.display(description="#", ordering="seq")
    def number(self, obj: ConsentEvent) -> int:
        return obj.seq

    @admin.display(description="sender", ordering="sender")
    def applies_to(self, obj: ConsentEvent) -> str:
        # Blank is a brokerage-wide record (an internal do-not-contact entry); say so, not nothing.
        return obj.sender or "every line"

    def get_urls(self):
        export = path("export/", self.admin_site.admin_view(self.export_view), name="compliance_consentevent_export")
        return [export, *super().get_urls()]

    def export_view(self, request):
        """POST, not GET: the caller's number stays out of URLs and access logs."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            form = ConsentExportForm(request.POST)
            if form.is_valid():
                events = ledger_for_audit(**form.cleaned_data)
                response = StreamingHttpResponse(_export_rows(events), content_type="text/csv; charset=utf-8")
                response["Content-Disposition"] = f'attachment; filename="{_export_filename(**form.cleaned_data)}"'
                return response
            status = 400
        else:
            # From the list's search box: a full number carries over, a fragment like "555" does not.
            form = ConsentExportForm(initial={"phone": _phone_e164(request.GET.get("phone", "")) or ""})
            status = 200
        opts = self.model._meta
        context = {
            **self.admin_site.each_context(request),
            "title": "Export CSV for an audit",
            "subtitle": None,
            "opts": opts,
            "adminform": _admin_form(form, self),
            "form": form,
            "time_zone": timezone.get_current_timezone_name(),
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "admin/compliance/consentevent/export.html", context, status=status)


@admin.register(ConsentLedgerHead)
class ConsentLedgerHeadAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Shown so a broker can compare it with `verify_consent_ledger`'s output or an earlier
    export; never edited, since moving it would hide a cut-off tail."""

    list_display = ["seq", "hash"]
    readonly_fields = ["seq", "hash"]
    fieldsets = [(None, {
        "fields": ["seq", "hash"],
        "description": "The newest link of the consent ledger's hash chain: the last event's sequence number and "
        "hash. <code>manage.py verify_consent_ledger</code> recomputes the chain and checks that it ends here.",
    })]
    change_list_template = "admin/compliance/consentledgerhead/change_list.html"


# --- the national Do Not Call list ------------------------------------------------------------


class DoNotCallImportForm(forms.Form):
    file = forms.FileField(
        label="Registry download",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.txt,text/csv,text/plain"}),
        help_text="The CSV or text file from the Do Not Call Registry (unzipped), at most 50 MB: ten-digit numbers "
        "in one column, or area code and number in two. Other columns and a header row are skipped.",
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > DNC_UPLOAD_MAX_BYTES:
            raise ValidationError(
                f"This file is {upload.size / 1024 / 1024:.0f} MB; files up to 50 MB can be read. "
                "Download the registry by area code and import each file."
            )
        raw = upload.read()
        if b"\0" in raw:
            raise ValidationError("This is not a CSV file (a spreadsheet or a zip archive?). Unzip it, or save it as CSV.")
        try:
            self.csv_text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationError("This file is not UTF-8 text. Save it as CSV (UTF-8) and import it again.") from None
        if not self.csv_text.strip():
            raise ValidationError("The file is empty.")
        return upload


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _import_summary(result) -> str:
    summary = (
        f"Added {_plural(result.added, 'number', 'numbers')}, "
        f"{result.already_listed} {'was' if result.already_listed == 1 else 'were'} already listed"
    )
    if result.invalid_rows:
        shown = ", ".join(str(row) for row in result.invalid_rows[:UNREADABLE_ROWS_SHOWN])
        label = "row" if len(result.invalid_rows) == 1 else "rows"
        if len(result.invalid_rows) > UNREADABLE_ROWS_SHOWN:
            shown += f", …: first {UNREADABLE_ROWS_SHOWN} shown"
        summary += f", {_plural(len(result.invalid_rows), 'row', 'rows')} could not be read ({label} {shown})"
    return summary + "."


@admin.register(DoNotCallNumber)
class DoNotCallNumberAdmin(admin.ModelAdmin):
    """Rows come from the registry's files, not typed in; a broker may still delete a number
    imported by mistake, since the next download re-lists anyone who really is registered."""

    list_display = ["phone", "imported_at", "batch"]
    list_filter = ["batch"]
    search_fields = ["phone"]
    ordering = ["phone"]
    list_per_page = 100
    fields = ["phone", "imported_at", "batch"]
    readonly_fields = ["phone", "imported_at", "batch"]
    change_list_template = "admin/compliance/donotcallnumber/change_list.html"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def may_import(self, request) -> bool:
        # The add permission, which the usual add form (switched off above) would have needed.
        opts = self.model._meta
        return request.user.has_perm(f"{opts.app_label}.{get_permission_codename('add', opts)}")

    def get_search_results(self, request, queryset, search_term):
        # A typed full number finds the row through its unique index, however it was formatted.
        phone = _phone_e164(search_term)
        if phone is not None:
            return queryset.filter(phone=phone), False
        return super().get_search_results(request, queryset, search_term)

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {**(extra_context or {}), "may_import": self.may_import(request)})

    def get_urls(self):
        upload = path("import/", self.admin_site.admin_view(self.import_view), name="compliance_donotcallnumber_import")
        return [upload, *super().get_urls()]

    def import_view(self, request):
        if not self.may_import(request):
            raise PermissionDenied
        status = 200
        if request.method == "POST":
            form = DoNotCallImportForm(request.POST, request.FILES)
            if form.is_valid():
                result = do_not_call_import(csv_text=form.csv_text, batch=form.cleaned_data["file"].name)
                if result.added or result.already_listed:
                    self.message_user(request, _import_summary(result), messages.SUCCESS)
                    return redirect("admin:compliance_donotcallnumber_changelist")
                form.add_error("file", "No phone numbers could be read from this file, so nothing was imported.")
            status = 400
        else:
            form = DoNotCallImportForm()
        opts = self.model._meta
        context = {
            **self.admin_site.each_context(request),
            "title": "Import national Do Not Call list",
            "subtitle": None,
            "opts": opts,
            "adminform": _admin_form(form, self),
            "form": form,
            "has_view_permission": self.has_view_permission(request),
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "admin/compliance/donotcallnumber/import.html", context, status=status)


@admin.register(NumberProfile)
class NumberProfileAdmin(admin.ModelAdmin):
    list_display = ["phone", "line_type", "source", "updated_at"]
    list_filter = ["line_type"]
    search_fields = ["phone"]
    ordering = ["-updated_at"]
    list_per_page = 100
    fields = ["phone", "line_type", "source", "updated_at"]
    readonly_fields = ["phone", "source", "updated_at"]

    def has_add_permission(self, request):
        # Profiles come from carrier lookups and errors, keyed by the exact E.164 number we saw.
        return False

    def save_model(self, request, obj, form, change):
        # A broker's correction says who made it, so the next reader knows it was not the carrier.
        if "line_type" in form.changed_data:
            number_line_type_set(
                phone=obj.phone, line_type=obj.line_type, source=f"Corrected in admin by {request.user}"[:64]
            )
