"""The broker's control room for who works where: offices, agents and tracking lines."""

import zoneinfo

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import AdminTimeWidget
from django.db import models
from django.db.models import Count
from django.utils.translation import ngettext

from routing.models import WEEKDAYS, Agent, Brokerage, Office, TrackingNumber
from routing.services import agent_user_access_sync

TIMEZONE_CHOICES = [(name, name) for name in sorted(zoneinfo.available_timezones())]


class LanguageCodesField(forms.CharField):
    """Languages as "en, es" in a text box rather than a JSON list a broker has to type by hand."""

    def prepare_value(self, value):
        if isinstance(value, list):
            return ", ".join(value)
        return value

    def to_python(self, value):
        text = super().to_python(value)
        return [code.strip().lower() for code in text.split(",") if code.strip()]


class AgentForm(forms.ModelForm):
    languages = LanguageCodesField(required=False, help_text="ISO codes separated by commas, e.g. en, es.")

    class Meta:
        model = Agent
        fields = "__all__"


class OfficeSummaryForm(forms.ModelForm):
    # A time-zone name mistyped here would put business hours on the wrong clock.
    timezone = forms.ChoiceField(choices=TIMEZONE_CHOICES)

    class Meta:
        model = Office
        fields = ["name", "timezone", "escalation_minutes"]


class OfficeForm(OfficeSummaryForm):
    business_days = forms.TypedMultipleChoiceField(
        choices=list(enumerate(WEEKDAYS)), coerce=int,
        widget=forms.CheckboxSelectMultiple(attrs={"class": "radiolist inline"}),
        help_text="Days the office answers calls; calls outside these hours are missed as after hours.",
    )

    class Meta:
        model = Office
        fields = "__all__"

    def clean_business_days(self):
        return sorted(self.cleaned_data["business_days"])


class OfficeInline(admin.TabularInline):
    model = Office
    form = OfficeSummaryForm
    fields = ["name", "timezone", "escalation_minutes"]
    extra = 0
    show_change_link = True


@admin.register(Brokerage)
class BrokerageAdmin(admin.ModelAdmin):
    list_display = ["name", "help_contact", "office_count"]
    ordering = ["name"]
    search_fields = ["name"]
    inlines = [OfficeInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(office_count=Count("offices"))

    @admin.display(description="offices", ordering="office_count")
    def office_count(self, obj):
        return obj.office_count


class AgentInline(admin.TabularInline):
    model = Agent
    form = AgentForm
    fields = ["name", "user", "phone", "role", "on_duty", "sms_alerts", "weight", "languages"]
    autocomplete_fields = ["user"]
    extra = 0
    show_change_link = True

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        formfield = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "user":
            # Editing a login from inside an office row is a detour; the agent's own page links it.
            widget = formfield.widget
            widget.can_add_related = widget.can_change_related = widget.can_delete_related = widget.can_view_related = False
        return formfield


class TrackingNumberInline(admin.TabularInline):
    model = TrackingNumber
    fields = ["number", "source", "lead_type", "listing", "ring_seconds", "active"]
    extra = 0
    show_change_link = True


@admin.register(Office)
class OfficeAdmin(admin.ModelAdmin):
    form = OfficeForm
    formfield_overrides = {models.TimeField: {"widget": AdminTimeWidget(format="%H:%M")}}
    list_display = ["name", "timezone", "hours", "escalation_minutes", "agent_count", "line_count"]
    list_filter = ["timezone"]
    search_fields = ["name"]
    ordering = ["name"]
    list_per_page = 50
    fieldsets = [
        (None, {"fields": ["brokerage", "name", "timezone"]}),
        ("Business hours", {"fields": ["business_days", ("opens_at", "closes_at")]}),
        ("Follow-up rules", {"fields": ["escalation_minutes", "textback_window_hours"]}),
    ]
    inlines = [AgentInline, TrackingNumberInline]

    def get_queryset(self, request):
        # Two independent counts over joins multiply each other unless they are distinct.
        return super().get_queryset(request).annotate(
            agent_count=Count("agents", distinct=True), line_count=Count("lines", distinct=True)
        )

    @admin.display(description="hours")
    def hours(self, obj):
        return obj.hours_display

    @admin.display(description="agents", ordering="agent_count")
    def agent_count(self, obj):
        return obj.agent_count

    @admin.display(description="lines", ordering="line_count")
    def line_count(self, obj):
        return obj.line_count

    def save_formset(self, request, form, formset, change):
        super().save_formset(request, form, formset, change)
        for obj in formset.new_objects + [o for o, _ in formset.changed_objects]:
            if isinstance(obj, Agent):
                agent_user_access_sync(obj)


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    form = AgentForm
    list_display = ["name", "office", "role", "phone", "on_duty", "sms_alerts", "weight", "language_list"]
    list_editable = ["on_duty", "sms_alerts"]
    list_filter = ["office", "role", "on_duty", "sms_alerts"]
    search_fields = ["name", "user__email", "phone"]
    list_select_related = ["office", "user"]
    list_per_page = 100
    autocomplete_fields = ["user"]
    fields = ["user", "name", "office", "phone", "role", "weight", "languages", "on_duty", "sms_alerts"]
    actions = ["mark_on_duty", "mark_off_duty"]

    @admin.display(description="languages")
    def language_list(self, obj):
        return ", ".join(obj.languages)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        agent_user_access_sync(obj)

    def _set_on_duty(self, request, queryset, on_duty: bool) -> None:
        count = queryset.update(on_duty=on_duty)
        state = "on duty" if on_duty else "off duty"
        self.message_user(
            request, ngettext("%d agent marked %s.", "%d agents marked %s.", count) % (count, state), messages.SUCCESS
        )

    @admin.action(description="Mark on duty")
    def mark_on_duty(self, request, queryset):
        self._set_on_duty(request, queryset, True)

    @admin.action(description="Mark off duty")
    def mark_off_duty(self, request, queryset):
        self._set_on_duty(request, queryset, False)


@admin.register(TrackingNumber)
class TrackingNumberAdmin(admin.ModelAdmin):
    list_display = ["number", "office", "source", "lead_type", "listing", "ring_seconds", "active"]
    list_filter = ["office", "lead_type", "active"]
    search_fields = ["number", "source", "listing"]
    list_select_related = ["office"]
    list_per_page = 100
    fieldsets = [
        (None, {"fields": ["number", "office", "active"]}),
        ("What callers reach", {"fields": ["source", "lead_type", "listing"]}),
        ("Calling and texting", {"fields": ["ring_seconds", "messaging_service_sid"]}),
    ]
