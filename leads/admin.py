"""The broker's view of leads and their records, and the words of the text-back.

Calls, texts and status callbacks are evidence of what was said to whom and when; the admin
shows them but does not let anyone rewrite or delete them.
"""


from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from compliance.selectors import consent_history
from leads.models import (
    QUESTION_CHOICES, Call, FollowUp, Lead, LeadEvent, Message, MessageStatusEvent, MissedCallOutcome, OutcomeRefreshDue,
    Playbook, Qualification, ReplySnippet, TextbackTemplate, TwilioWebhook, default_questions,
)
from leads.services import lead_assign, missed_call_outcomes_mark_due
from leads.textback import (
    SINGLE_SEGMENT_GSM7,
    SNIPPET_PLACEHOLDERS,
    gsm7_length,
    is_gsm7,
    placeholder_problems,
    segment_count,
    template_problems,
    textback_render,
)
from routing.admin import RuleListFilter
from textback_site.admin_mixins import ReadOnlyAdminMixin
from routing.models import Brokerage, LeadType, Office, TrackingNumber


def _voicemail(call: Call) -> str:
    if not call.recording_url:
        return "—"
    seconds = f" ({call.recording_duration} s)" if call.recording_duration is not None else ""
    return format_html(
        '<audio controls preload="none" src="{}"></audio> <a href="{}" target="_blank" rel="noopener noreferrer">Open recording</a>{}',
        call.recording_url, call.recording_url, seconds,
    )


# --- leads ------------------------------------------------------------------------------------


def _routing_why(event: LeadEvent) -> str:
    """The routing decision's reasons: the rule and strategy, and each agent passed over and why."""
    detail = event.detail or {}
    skipped = detail.get("skipped") or []
    if not skipped and not detail.get("offered_to"):
        return "—"
    html = format_html_join("", "<li>{}: {}</li>", ((s["agent"], s["reason"]) for s in skipped))
    if detail.get("offered_to"):
        html += format_html("<li>Offered to {}</li>", ", ".join(detail["offered_to"]))
    return format_html('<ul class="routing-why">{}</ul>', html)


class LeadEventInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = LeadEvent
    verbose_name_plural = "assignments, escalations, outcomes and notes"
    fields = ["created_at", "kind", "actor", "agent", "rule", "text", "why"]
    readonly_fields = fields
    ordering = ["created_at", "id"]
    extra = 0

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor__office", "agent__office", "rule__office")

    @admin.display(description="skipped and why")
    def why(self, obj):
        return _routing_why(obj)


class CallInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Call
    # Each row's heading already names the call by its SID and links to it.
    fields = ["created_at", "line", "dial_status", "missed", "missed_reason", "answered_by", "call_duration", "voicemail"]
    readonly_fields = fields
    ordering = ["created_at", "id"]
    extra = 0
    show_change_link = True

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("line", "answered_by__office")

    @admin.display(description="voicemail")
    def voicemail(self, obj):
        return _voicemail(obj)


class MessageInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Message
    fields = ["created_at", "direction", "kind", "sender", "agent", "body", "status", "error_code", "segments"]
    readonly_fields = fields
    ordering = ["created_at", "id"]
    extra = 0
    show_change_link = True

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("agent__office")


class QualificationInline(ReadOnlyAdminMixin, admin.StackedInline):
    model = Qualification
    fields = ["state", "current", "clarifying", "answers", "replies", "unclear", "language", "stop_reason", "started_at", "finished_at"]
    readonly_fields = fields


class FollowUpInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = FollowUp
    fk_name = "lead"
    fields = ["step", "due_at", "status", "note", "done_at"]
    readonly_fields = fields


@admin.register(Lead)
class LeadAdmin(admin.ModelAdmin):
    list_display = [
        "phone", "name", "office", "assigned_agent", "status", "outcome", "lead_type", "source", "awaiting_reply_since",
        "last_activity_at",
    ]
    list_filter = ["status", "rating", "outcome", "office", "lead_type", "source"]
    search_fields = ["phone", "name", "email"]
    date_hierarchy = "created_at"
    list_select_related = ["office", "assigned_agent__office"]
    list_per_page = 50
    fieldsets = [
        (None, {"fields": ["phone", "name", "email", "status", "outcome", "appointment_at"]}),
        ("Where it came from", {"fields": ["office", "line", "lead_type", "source"]}),
        ("What they told us", {"fields": [
            "rating", "zip_code", "city", "address", "price", "timeline_months", "financing", "language",
        ]}),
        ("Who works it", {"fields": [
            "assigned_agent", "assigned_at", "routing_rule", "awaiting_reply_since", "claim_deadline",
            "escalated_at", "escalation_step", "escalation_due_at",
        ]}),
        ("Record", {"fields": ["created_at", "last_activity_at", "consent"]}),
    ]
    # The phone number ties the lead to its calls, texts and consent record; the line is where
    # it first called. Changing either would rewrite history.
    readonly_fields = [
        "phone", "line", "assigned_at", "routing_rule", "awaiting_reply_since", "claim_deadline", "escalated_at",
        "escalation_step", "escalation_due_at", "created_at", "last_activity_at", "consent",
    ]
    inlines = [QualificationInline, FollowUpInline, LeadEventInline, CallInline, MessageInline]

    def has_add_permission(self, request):
        # Leads come from calls and texts, so their numbers are real E.164 numbers with a record.
        return False

    def has_delete_permission(self, request, obj=None):
        # Deleting a lead would take its calls, texts and their four-year record with it.
        return False

    def save_model(self, request, obj, form, change):
        new_agent = obj.assigned_agent
        if "assigned_agent" in form.changed_data:
            obj.assigned_agent_id = form.initial.get("assigned_agent")
        super().save_model(request, obj, form, change)
        if "assigned_agent" in form.changed_data:
            lead_assign(lead=obj, agent=new_agent)

    @admin.display(description="consent record")
    def consent(self, obj):
        events = consent_history(phone=obj.phone)
        if not events:
            return "—"
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "", '<li><a href="{}">{}</a> · {} · {}</li>',
                (
                    (reverse("admin:compliance_consentevent_change", args=[e.pk]), e.get_kind_display(),
                     e.get_source_display(), timezone.localtime(e.created_at).strftime("%Y-%m-%d %H:%M %Z"))
                    for e in events
                ),
            ),
        )


# --- calls and texts --------------------------------------------------------------------------


@admin.register(Call)
class CallAdmin(admin.ModelAdmin):
    list_display = ["call_sid", "created_at", "lead", "line", "dial_status", "missed", "missed_reason", "voicemail_link"]
    list_filter = ["missed", "missed_reason", "dial_status", "line__office"]
    search_fields = ["call_sid", "from_number", "lead__name"]
    list_select_related = ["lead", "line"]
    date_hierarchy = "created_at"
    list_per_page = 50
    fieldsets = [
        (None, {"fields": ["call_sid", "lead", "line", "from_number", "created_at", "ended_at"]}),
        ("Outcome", {"fields": [
            "missed", "missed_reason", "textback_skipped", "dial_status", "dial_call_sid", "call_status",
            "rang_agents", "answered_by", "dial_duration", "call_duration",
        ]}),
        ("Voicemail", {"fields": ["recording", "recording_duration"]}),
    ]
    # Only the verdict stays editable: a carrier voicemail can make a missed call look
    # "completed", and a broker who hears it may mark the call missed for the numbers.
    readonly_fields = [
        "call_sid", "lead", "line", "from_number", "created_at", "ended_at", "dial_status", "dial_call_sid",
        "textback_skipped", "call_status", "rang_agents", "answered_by", "dial_duration", "call_duration", "recording", "recording_duration",
    ]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        # A call is the evidence behind an implied-consent record and its text-back.
        return False

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        missed_call_outcomes_mark_due(lead_ids=[obj.lead_id])  # the dashboards count it as the broker now says

    @admin.display(description="voicemail")
    def recording(self, obj):
        return _voicemail(obj)

    @admin.display(description="voicemail")
    def voicemail_link(self, obj):
        if not obj.recording_url:
            return ""
        return format_html('<a href="{}" target="_blank" rel="noopener noreferrer">Listen</a>', obj.recording_url)


@admin.register(MissedCallOutcome)
class MissedCallOutcomeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """What followed each missed call, as the dashboards count it (kept up to date as it happens)."""

    list_display = [
        "call", "missed_at", "caller", "office", "speed_to_lead", "delivered", "replied", "response_minutes",
        "recovered", "appointment", "opted_out", "landline",
    ]
    list_filter = ["recovered", "appointment", "replied", "delivered", "opted_out", "landline", "call__line__office"]
    search_fields = ["call__from_number", "call__lead__name", "call__call_sid"]
    list_select_related = ["call__lead", "call__line__office"]
    date_hierarchy = "call__created_at"
    list_per_page = 50
    fields = [
        "call", "speed_to_lead", "delivered", "undelivered_code", "replied", "response", "response_business",
        "recovered", "appointment", "opted_out", "landline", "refreshed_at",
    ]
    readonly_fields = fields

    @admin.display(description="missed at", ordering="call__created_at")
    def missed_at(self, obj):
        return obj.call.created_at

    @admin.display(description="caller")
    def caller(self, obj):
        return obj.call.lead

    @admin.display(description="office", ordering="call__line__office__name")
    def office(self, obj):
        return obj.call.line.office

    @admin.display(description="answered after (min)", ordering="response")
    def response_minutes(self, obj):
        return "—" if obj.response is None else f"{obj.response / 60:.1f}"


@admin.register(OutcomeRefreshDue)
class OutcomeRefreshDueAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Leads whose missed calls' outcomes a worker stores within the minute (dashboards compute them meanwhile)."""

    list_display = ["lead", "since"]
    search_fields = ["lead__phone", "lead__name"]
    list_select_related = ["lead"]
    fields = ["lead", "since"]
    readonly_fields = fields


@admin.register(LeadEvent)
class LeadEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Who did what with which lead: assignments, claims, transfers, outcomes and notes."""

    list_display = ["created_at", "lead", "kind", "actor", "agent", "rule", "text"]
    list_filter = ["kind", "lead__office", ("rule", RuleListFilter)]
    search_fields = ["lead__phone", "lead__name", "text", "actor__name", "agent__name"]
    list_select_related = ["lead", "actor__office", "agent__office", "rule__office"]
    fields = ["created_at", "lead", "kind", "actor", "agent", "previous_agent", "rule", "text", "why"]
    readonly_fields = fields

    @admin.display(description="skipped and why")
    def why(self, obj):
        return _routing_why(obj)
    date_hierarchy = "created_at"
    list_per_page = 50


class ReplySnippetForm(forms.ModelForm):
    class Meta:
        model = ReplySnippet
        fields = ["title", "body", "lead_type", "position"]
        help_texts = {"body": "Placeholders: {agent}, {brokerage}, {listing}; agents can edit before sending."}

    def clean_body(self):
        body = self.cleaned_data["body"]
        problems = placeholder_problems(body, SNIPPET_PLACEHOLDERS)
        if problems:
            raise ValidationError(problems)
        return body


@admin.register(ReplySnippet)
class ReplySnippetAdmin(admin.ModelAdmin):
    """The canned replies agents insert in the inbox's composer."""

    list_display = ["title", "lead_type", "position", "body"]
    list_editable = ["position"]
    list_filter = ["lead_type"]
    search_fields = ["title", "body"]

    form = ReplySnippetForm


@admin.register(Message)
class MessageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Texts are records kept for years; status changes come from the provider, not from here."""

    list_display = ["created_at", "lead", "direction", "kind", "status", "error_code", "segments"]
    list_filter = ["direction", "kind", "status", "line__office"]
    search_fields = ["body", "provider_sid", "lead__phone"]
    list_select_related = ["lead"]
    date_hierarchy = "created_at"
    list_per_page = 50
    fieldsets = [
        (None, {"fields": ["lead", "line", "direction", "kind", "sender", "agent", "call", "consent_event"]}),
        ("Text", {"fields": ["body", "segments", "num_media", "media_urls"]}),
        ("Delivery", {"fields": [
            "status", "provider_sid", "error_code", "error_message", "attempts", "next_attempt_at",
            "created_at", "queued_at", "sending_at", "sent_at", "delivered_at", "updated_at",
        ]}),
    ]


@admin.register(MessageStatusEvent)
class MessageStatusEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["received_at", "provider_sid", "status", "error_code", "message"]
    list_filter = ["status"]
    search_fields = ["provider_sid"]
    list_select_related = ["message__lead"]
    date_hierarchy = "received_at"
    list_per_page = 100


@admin.register(TwilioWebhook)
class TwilioWebhookAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Voice webhooks as Twilio delivered them; one still unprocessed here is retried by the sweep."""

    list_display = ["received_at", "kind", "call_sid", "line", "processed_at", "attempts"]
    list_filter = ["kind", ("processed_at", admin.EmptyFieldListFilter), "line__office"]
    search_fields = ["call_sid", "dedupe_key"]
    list_select_related = ["line"]
    date_hierarchy = "received_at"
    list_per_page = 100


# --- the text-back template -------------------------------------------------------------------


def _error_list(problems: list[str]) -> str:
    return format_html('<ul class="errorlist">{}</ul>', format_html_join("", "<li>{}</li>", ((p,) for p in problems)))


class TextbackTemplateForm(forms.ModelForm):
    class Meta:
        model = TextbackTemplate
        fields = ["lead_type", "language", "body"]
        widgets = {"body": forms.Textarea(attrs={"rows": 4, "cols": 80})}

    def clean_body(self):
        body = self.cleaned_data["body"].strip()
        problems = template_problems(body)
        if problems:
            raise ValidationError(problems)
        return body


def _sample_values(lead_type: str) -> dict[str, str]:
    """The broker's own names, and the longest listing on a line of this type: the worst case."""
    listings = TrackingNumber.objects.filter(lead_type=lead_type, active=True).exclude(listing="").values_list("listing", flat=True)
    return {
        "brokerage": Brokerage.objects.order_by("pk").values_list("name", flat=True).first() or "Your Brokerage",
        "listing": max(listings, key=len, default="12 Oak St"),
        "agent": "Alexandra Smith",
        "office": Office.objects.order_by("name").values_list("name", flat=True).first() or "Downtown",
    }


def textback_preview_html(*, body: str, lead_type: str) -> str:
    """The text as a caller would receive it, with its length and what it costs in segments."""
    if not body.strip():
        return format_html('<p class="help">Type the text above to see it as a caller would.</p>')
    sample = textback_render(template=body, **_sample_values(lead_type))
    segments = segment_count(sample)
    if is_gsm7(sample):
        size = f"{gsm7_length(sample)} of {SINGLE_SEGMENT_GSM7} characters"
    else:
        size = f"{len(sample.encode('utf-16-le')) // 2} of 70 characters (emoji or special characters make it a Unicode text)"
    parts = "1 text" if segments == 1 else f"{segments} texts, billed separately"
    problems = template_problems(body)
    return format_html(
        '<blockquote class="textback-preview-body">{}</blockquote><p class="textback-preview-size{}">{} · {}</p>'
        '<p class="help">Shown with your brokerage\'s name and the longest listing on an active line of this type.</p>{}',
        sample, " over" if segments > 1 else "", size, parts,
        _error_list(problems) if problems else "",
    )


@admin.register(TextbackTemplate)
class TextbackTemplateAdmin(admin.ModelAdmin):
    form = TextbackTemplateForm
    list_display = ["lead_type", "language", "body", "updated_at"]
    list_filter = ["language", "lead_type"]
    fields = ["lead_type", "language", "body", "preview", "updated_at"]
    readonly_fields = ["preview", "updated_at"]

    def get_readonly_fields(self, request, obj=None):
        # One template per lead type and language: they say what the template is for, not something to edit.
        return [*self.readonly_fields, "lead_type", "language"] if obj else self.readonly_fields

    def has_add_permission(self, request):
        every = len(LeadType.values) * len(TextbackTemplate.Language.values)
        return super().has_add_permission(request) and TextbackTemplate.objects.count() < every

    def get_urls(self):
        preview = path("preview/", self.admin_site.admin_view(self.preview_view), name="leads_textbacktemplate_preview")
        return [preview, *super().get_urls()]

    def preview_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        body = request.GET.get("body", "")
        lead_type = request.GET.get("lead_type", "")
        return HttpResponse(textback_preview_html(body=body, lead_type=lead_type))

    @admin.display(description="preview")
    def preview(self, obj):
        lead_type = obj.lead_type if obj else ""
        return format_html(
            '<div id="textback-preview" data-url="{}" data-lead-type="{}">{}</div>',
            reverse("admin:leads_textbacktemplate_preview"), lead_type,
            textback_preview_html(body=obj.body if obj else "", lead_type=lead_type),
        )


# --- what leads hear after the text-back ------------------------------------------------------


class PlaybookForm(forms.ModelForm):
    # A declared field takes no initial value from the model: a new playbook starts with every question, as the model does.
    questions = forms.TypedMultipleChoiceField(
        choices=QUESTION_CHOICES, widget=forms.CheckboxSelectMultiple, required=False, initial=default_questions,
        help_text="Asked in this order, one at a time; an unclear answer gets one clarifying question, then the next.",
    )

    class Meta:
        model = Playbook
        fields = "__all__"


@admin.register(Playbook)
class PlaybookAdmin(admin.ModelAdmin):
    form = PlaybookForm
    list_display = ["office", "qualification_enabled", "question_list", "follow_up_enabled", "call_back_after_minutes", "email_after_minutes"]
    list_filter = ["qualification_enabled", "follow_up_enabled"]
    search_fields = ["office__name"]
    fieldsets = [
        (None, {"fields": ["office"]}),
        ("Qualification over SMS", {"fields": ["qualification_enabled", "questions"]}),
        ("Follow-up when the text-back gets no reply", {"fields": ["follow_up_enabled", "call_back_after_minutes", "email_after_minutes"]}),
    ]

    @admin.display(description="questions")
    def question_list(self, obj):
        labels = dict(QUESTION_CHOICES)
        return ", ".join(labels.get(key, key) for key in obj.questions) or "—"


@admin.register(Qualification)
class QualificationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["lead", "state", "current", "lead_rating", "language", "started_at", "finished_at"]
    list_filter = ["state", "lead__rating", "language", "lead__office"]
    search_fields = ["lead__phone", "lead__name"]
    list_select_related = ["lead"]
    fields = ["lead", "state", "questions", "current", "clarifying", "answers", "replies", "unclear", "language",
              "stop_reason", "started_at", "finished_at"]
    readonly_fields = fields

    @admin.display(description="rating", ordering="lead__rating")
    def lead_rating(self, obj):
        return obj.lead.get_rating_display()


@admin.register(FollowUp)
class FollowUpAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["lead", "step", "due_at", "status", "note", "done_at"]
    list_filter = ["step", "status", "lead__office"]
    search_fields = ["lead__phone", "lead__name"]
    list_select_related = ["lead"]
    date_hierarchy = "due_at"
    fields = ["lead", "textback", "step", "due_at", "status", "note", "done_at"]
    readonly_fields = fields
