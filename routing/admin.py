"""The broker's control room for who works where: offices, agents and tracking lines."""

import zoneinfo

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.contrib.admin.widgets import AdminTimeWidget
from django.db import models
from django.db.models import Count
from django.utils.translation import gettext_lazy, ngettext

from routing.models import WEEKDAYS, Agent, Brokerage, LeadType, Office, PoolMember, RoundRobinTurn, RoutingRule, TrackingNumber
from routing.services import agent_user_access_sync
from textback_site.admin_mixins import ReadOnlyAdminMixin

TIMEZONE_CHOICES = [(name, name) for name in sorted(zoneinfo.available_timezones())]
LEAD_TYPE_LABELS = dict(LeadType.choices)


class CommaListField(forms.CharField):
    """A list as "en, es" in a text box rather than a JSON list a broker has to type by hand."""

    def __init__(self, *, lower: bool = False, **kwargs):
        self.lower = lower
        super().__init__(required=False, **kwargs)

    def prepare_value(self, value):
        if isinstance(value, list):
            return ", ".join(value)
        return value

    def to_python(self, value):
        items = [item.strip() for item in super().to_python(value).split(",") if item.strip()]
        return [item.lower() for item in items] if self.lower else items


class AgentForm(forms.ModelForm):
    languages = CommaListField(lower=True, help_text="ISO codes separated by commas, e.g. en, es.")

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


class RoutingRuleInline(admin.TabularInline):
    model = RoutingRule
    fields = ["position", "name", "strategy", "active"]
    readonly_fields = ["strategy"]
    extra = 0
    show_change_link = True
    verbose_name_plural = "routing rules (tried in order; open one to edit its conditions and target)"

    def has_add_permission(self, request, obj=None):
        return False  # a rule needs its conditions and target: added on its own page

    def has_delete_permission(self, request, obj=None):
        return False


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
        ("Text-back", {"fields": ["textback_window_hours"]}),
        ("Escalation ladder", {
            "fields": ["escalation_minutes", "escalation_agent_steps", "escalation_final", "escalation_business_hours_only"],
            "description": "A lead nobody answers within the window goes to the next agent of its pool (as many as "
            "set), then the team leader, then the last step; after that the team leader and brokers are alerted "
            "again every window until someone answers.",
        }),
        ("Texting rules", {
            "fields": [("quiet_hours_start", "quiet_hours_end"), "quiet_hours_for_replies", "daily_text_cap"],
            "description": "Applied in each caller's own time zone, from their number. You can make these stricter "
            "than the law (8:00 am to 9:00 pm; 8:00 pm and three texts a day for Florida and Oklahoma numbers), "
            "never looser. Texts held by these rules wait in the outbox and go at the first minute they may.",
        }),
    ]
    inlines = [AgentInline, TrackingNumberInline, RoutingRuleInline]

    class Media:
        css = {"all": ["css/admin-routing.css"]}

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
    list_display = ["name", "office", "role", "phone", "on_duty", "paused", "sms_alerts", "weight", "max_waiting_leads", "language_list"]
    list_editable = ["on_duty", "paused", "sms_alerts"]
    list_filter = ["office", "role", "on_duty", "paused", "sms_alerts"]
    search_fields = ["name", "user__email", "phone"]
    list_select_related = ["office", "user"]
    list_per_page = 100
    autocomplete_fields = ["user"]
    formfield_overrides = {models.TimeField: {"widget": AdminTimeWidget(format="%H:%M")}}
    fieldsets = [
        (None, {"fields": ["user", "name", "office", "phone", "role", "languages", "sms_alerts"]}),
        ("Taking leads", {"fields": ["on_duty", "paused", "weight", "max_waiting_leads", ("works_from", "works_until")]}),
    ]
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
        ("What callers reach", {"fields": ["source", "lead_type", "listing", "listing_agent", ("zip_code", "city", "price")]}),
        ("Calling and texting", {"fields": ["ring_seconds", "messaging_service_sid"]}),
    ]


# --- routing rules ------------------------------------------------------------------------------


class RuleListFilter(admin.RelatedFieldListFilter):
    """Filter by rule, named with its office, in one query."""

    def field_choices(self, field, request, model_admin):
        return [(rule.pk, str(rule)) for rule in RoutingRule.objects.select_related("office").order_by("office__name", "position")]


class RoutingRuleForm(forms.ModelForm):
    sources = CommaListField(help_text="Lead sources, e.g. Zillow, Realtor.com. Blank: any source.")
    lead_types = forms.MultipleChoiceField(
        choices=LeadType.choices, required=False, widget=forms.CheckboxSelectMultiple(attrs={"class": "radiolist inline"}),
        help_text="None ticked: any type.",
    )
    zip_codes = CommaListField(label="ZIP codes", help_text="e.g. 33101, 33109. Blank: anywhere.")
    cities = CommaListField(help_text="e.g. Miami Beach, Coral Gables. Blank: anywhere.")
    area_codes = CommaListField(help_text="The caller's area code, e.g. 305, 786. Blank: any.")
    languages = CommaListField(lower=True, help_text="The lead's language, e.g. es. Blank: any.")

    class Meta:
        model = RoutingRule
        fields = "__all__"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        office_id = self.instance.office_id or self.initial.get("office") or self.data.get("office")
        if office_id:
            # Pick from the rule's own office, so a rule cannot hand leads across offices by mistake.
            for name in ("agent", "fallback_agent"):
                if name in self.fields:
                    self.fields[name].queryset = Agent.objects.filter(office_id=office_id)
            for name, queryset in (("lines", TrackingNumber.objects), ("fallback_rule", RoutingRule.objects.exclude(pk=self.instance.pk))):
                if name in self.fields:
                    self.fields[name].queryset = queryset.filter(office_id=office_id)


class PoolMemberForm(forms.ModelForm):
    class Meta:
        model = PoolMember
        fields = ["agent", "weight"]

    def clean(self):
        cleaned_data = super().clean()
        rule, agent = cleaned_data.get("rule"), cleaned_data.get("agent")
        # PoolMember.clean checks the office once the rule is saved; a rule being added is not yet.
        if rule is not None and rule.pk is None and agent is not None and agent.office_id != rule.office_id:
            self.add_error("agent", f"{agent.name} works in another office.")
        return cleaned_data


class PoolMemberInline(admin.TabularInline):
    model = PoolMember
    form = PoolMemberForm
    fields = ["agent", "weight"]
    extra = 0
    verbose_name_plural = "pool (no members: every agent and team leader of the office, at their own weight)"

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        rule_id = request.resolver_match.kwargs.get("object_id")
        if db_field.name == "agent" and rule_id:
            kwargs["queryset"] = Agent.objects.filter(office__routing_rules__pk=rule_id).select_related("office")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class RoundRobinTurnInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = RoundRobinTurn
    fields = ["agent", "assignments", "credit"]
    readonly_fields = fields
    extra = 0
    verbose_name_plural = "round-robin turns (leads given so far; credit > 0: owed leads, < 0: ahead of their share)"


class _AlwaysLast(forms.Widget):
    def render(self, name, value, attrs=None, renderer=None):
        return "last"


class RoutingRuleListForm(forms.ModelForm):
    """A row of the rule list. The catch-all is always on and always last: its row says so instead
    of offering inputs (its position is a sentinel no broker needs to see or change)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.is_catch_all:
            for name in ("position", "active"):
                self.fields[name].disabled = True
            self.fields["position"].widget = _AlwaysLast()


_CONDITIONS = ["lines", "sources", "lead_types", ("zip_codes", "cities", "area_codes"), ("price_min", "price_max"), "languages", "time_window"]


@admin.register(RoutingRule)
class RoutingRuleAdmin(admin.ModelAdmin):
    form = RoutingRuleForm
    list_display = ["name", "office", "position", "conditions", "strategy", "target", "active"]
    list_display_links = ["name"]
    list_editable = ["position", "active"]
    list_filter = ["office", "strategy", "active", "time_window"]
    search_fields = ["name", "office__name", "agent__name"]
    list_select_related = ["office", "agent", "fallback_agent", "fallback_rule"]
    ordering = ["office__name", "is_catch_all", "position", "id"]
    filter_horizontal = ["lines"]
    inlines = [PoolMemberInline, RoundRobinTurnInline]
    actions = ["delete_selected"]
    fieldsets = [
        (None, {"fields": ["office", "name", "position", "active"]}),
        ("Conditions: all must hold (blank holds for any lead)", {"fields": _CONDITIONS}),
        ("Who gets the lead", {"fields": ["strategy", "agent", "claim_timeout_minutes"]}),
        ("When they cannot", {"fields": ["fallback", "fallback_agent", "fallback_rule"]}),
    ]

    class Media:
        css = {"all": ["css/admin-routing.css"]}

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("lines")

    def get_fieldsets(self, request, obj=None):
        if obj is not None and obj.is_catch_all:
            # The catch-all takes whatever no other rule took: it has no conditions to edit.
            return [(None, {"fields": ["office", "name", "place", "active"]})] + [
                fs for fs in self.fieldsets[1:] if not fs[0].startswith("Conditions")
            ]
        return self.fieldsets

    def get_readonly_fields(self, request, obj=None):
        return ["office", "active", "place"] if obj is not None and obj.is_catch_all else []

    def get_changelist_form(self, request, **kwargs):
        return super().get_changelist_form(request, form=RoutingRuleListForm, **kwargs)

    @admin.display(description="position")
    def place(self, obj):
        return "Last: tried after every other rule of the office"

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and not (obj is not None and obj.is_catch_all)

    @admin.action(permissions=["delete"], description=gettext_lazy("Delete selected %(verbose_name_plural)s"))
    def delete_selected(self, request, queryset):
        """Django's bulk delete refuses a whole selection that holds one rule it may not delete;
        the catch-alls are left out instead, and the broker is told."""
        if queryset.filter(is_catch_all=True).exists():
            self.message_user(request, "Catch-all rules stay: every office needs one. They were left out of the selection.", messages.WARNING)
            queryset = queryset.filter(is_catch_all=False)
        return django_delete_selected(self, request, queryset) if queryset.exists() else None

    @admin.display(description="conditions")
    def conditions(self, obj):
        if obj.is_catch_all:
            return "Every lead no rule above took"
        parts = []
        if lines := [line.number for line in obj.lines.all()]:
            parts.append("line " + ", ".join(lines))
        lead_types = [str(LEAD_TYPE_LABELS.get(value, value)).lower() for value in obj.lead_types]
        for label, values in (("source", obj.sources), ("type", lead_types), ("ZIP", obj.zip_codes),
                              ("city", obj.cities), ("area code", obj.area_codes), ("language", obj.languages)):
            if values:
                parts.append(f"{label} " + ", ".join(values))
        if obj.price_min is not None or obj.price_max is not None:
            parts.append(f"price ${obj.price_min or 0:,}–" + (f"${obj.price_max:,}" if obj.price_max is not None else "any"))
        if obj.time_window != RoutingRule.TimeWindow.ANY:
            parts.append(obj.get_time_window_display().lower())
        return "; ".join(parts) or "Any lead"

    @admin.display(description="then")
    def target(self, obj):
        who = {
            RoutingRule.Strategy.AGENT: obj.agent.name if obj.agent else "—",
            RoutingRule.Strategy.FIRST_TO_CLAIM: f"{obj.claim_timeout_minutes} min to claim",
        }.get(obj.strategy, "")
        fallback = obj.get_fallback_display().lower()
        if obj.fallback == RoutingRule.Fallback.AGENT and obj.fallback_agent:
            fallback = obj.fallback_agent.name
        elif obj.fallback == RoutingRule.Fallback.RULE and obj.fallback_rule:
            fallback = f"pool of “{obj.fallback_rule.name}”"
        return (f"{who}; " if who else "") + f"else {fallback}"


@admin.register(PoolMember)
class PoolMemberAdmin(admin.ModelAdmin):
    list_display = ["agent", "rule", "weight"]
    list_filter = ["rule__office", ("rule", RuleListFilter)]
    search_fields = ["agent__name", "rule__name"]
    list_select_related = ["agent__office", "rule__office"]


@admin.register(RoundRobinTurn)
class RoundRobinTurnAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Where each agent stands in each pool's turn: the round-robin's own record, not edited by hand."""

    list_display = ["rule", "agent", "assignments", "credit"]
    list_filter = ["rule__office", ("rule", RuleListFilter)]
    search_fields = ["agent__name", "rule__name"]
    list_select_related = ["agent__office", "rule__office"]
