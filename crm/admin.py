"""Where a broker connects the brokerage's CRM and reads what was sent to it.

Credentials go in and never come back out: the page shows empty password boxes, and leaving one
empty keeps the stored value. Deliveries and their attempts are the log of what left, so they are
read-only; "Retry now" is the one thing a broker does with them.
"""

import json

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.translation import ngettext

from crm.models import MILESTONE_CHOICES, CrmDelivery, CrmDeliveryAttempt, CrmEndpoint
from crm.services import crm_deliveries_retry
from textback_site.admin_mixins import ReadOnlyAdminMixin

SECRET_FIELDS = ("api_key", "system_key", "secret")


class CrmEndpointForm(forms.ModelForm):
    milestones = forms.MultipleChoiceField(choices=MILESTONE_CHOICES, widget=forms.CheckboxSelectMultiple)
    url = forms.URLField(
        label="URL", max_length=500, required=False, assume_scheme="https", help_text=CrmEndpoint._meta.get_field("url").help_text
    )

    class Meta:
        model = CrmEndpoint
        fields = ["brokerage", "name", "kind", "enabled", "milestones", "url", "api_key", "system_name", "system_key", "secret"]
        widgets = {name: forms.PasswordInput(render_value=False) for name in SECRET_FIELDS}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in SECRET_FIELDS:
            if getattr(self.instance, name):
                self.fields[name].help_text = "Stored. Leave empty to keep it; type a new value to replace it."

    def _keep_stored(self, name: str) -> str:
        return self.cleaned_data.get(name) or getattr(self.instance, name)

    def clean_api_key(self):
        return self._keep_stored("api_key")

    def clean_system_key(self):
        return self._keep_stored("system_key")

    def clean_secret(self):
        return self._keep_stored("secret")


@admin.register(CrmEndpoint)
class CrmEndpointAdmin(admin.ModelAdmin):
    form = CrmEndpointForm
    list_display = ["name", "brokerage", "kind", "url", "milestone_list", "enabled", "created_at"]
    list_filter = ["kind", "enabled", "brokerage"]
    search_fields = ["name", "url"]
    list_select_related = ["brokerage"]

    @admin.display(description="milestones")
    def milestone_list(self, obj):
        labels = dict(MILESTONE_CHOICES)
        return ", ".join(labels.get(m, m) for m in obj.milestones) or "—"


class CrmDeliveryAttemptInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = CrmDeliveryAttempt
    verbose_name_plural = "attempts"
    fields = ["at", "status_code", "duration_ms", "retry_after_seconds", "error", "response_excerpt"]
    readonly_fields = fields
    ordering = ["at", "id"]
    extra = 0


@admin.register(CrmDelivery)
class CrmDeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["lead", "endpoint", "milestone", "status", "attempts", "last_status_code", "next_attempt_at", "delivered_at"]
    list_filter = ["status", "milestone", "endpoint"]
    search_fields = ["lead__phone", "lead__name"]
    list_select_related = ["lead", "endpoint"]
    date_hierarchy = "created_at"
    list_per_page = 50
    fields = [
        "lead", "endpoint", "milestone", "status", "attempts", "next_attempt_at", "last_status_code", "last_error",
        "created_at", "delivered_at", "payload_pretty",
    ]
    readonly_fields = fields
    inlines = [CrmDeliveryAttemptInline]
    actions = ["retry_now"]

    @admin.display(description="payload (as sent)")
    def payload_pretty(self, obj):
        return format_html('<pre style="white-space: pre-wrap; overflow-wrap: anywhere">{}</pre>', json.dumps(obj.payload, indent=2, ensure_ascii=False))

    @admin.action(description="Retry now")
    def retry_now(self, request, queryset):
        count = crm_deliveries_retry(delivery_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(
            request, ngettext("%d delivery will be sent again now.", "%d deliveries will be sent again now.", count) % count,
            messages.SUCCESS,
        )


@admin.register(CrmDeliveryAttempt)
class CrmDeliveryAttemptAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every request across endpoints, for "what has our CRM been answering today?"."""

    list_display = ["at", "delivery", "status_code", "duration_ms", "retry_after_seconds", "error"]
    list_filter = ["status_code", "delivery__endpoint"]
    search_fields = ["delivery__lead__phone", "delivery__lead__name"]
    list_select_related = ["delivery__lead", "delivery__endpoint"]
    date_hierarchy = "at"
    list_per_page = 50
    fields = ["delivery", "at", "status_code", "duration_ms", "retry_after_seconds", "error", "response_excerpt"]
    readonly_fields = fields
