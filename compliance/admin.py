"""The consent record, shown but never touched, and what we know about each number."""

from django.contrib import admin

from compliance.models import ConsentEvent, NumberProfile
from compliance.services import number_line_type_set
from textback_site.admin_mixins import ReadOnlyAdminMixin


@admin.register(ConsentEvent)
class ConsentEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """An append-only legal record: it must read years later exactly as it was written."""

    list_display = ["created_at", "phone", "sender", "kind", "source", "source_ref"]
    list_filter = ["kind", "source"]
    search_fields = ["phone", "source_ref"]
    date_hierarchy = "created_at"
    list_per_page = 100
    fields = ["created_at", "phone", "sender", "kind", "source", "source_ref", "raw_text"]


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
